/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reloading of the geolocation data and the [policy] and [geo] settings,
 * on SIGHUP and when one of their files changes on disk. The new data is
 * read and written to new tables aside. The tables in the kernel and the
 * table in the daemon switch only once all of it has loaded, so an error in
 * the new data leaves the old data in force.
 */
#ifndef BORDERFLOW_RELOAD_H
#define BORDERFLOW_RELOAD_H

#include <stdint.h>

#include "lib/geo.h"

struct bf_daemon;

/* How many generations of sources are kept to describe flows tagged before a reload. */
#define BF_GEO_GENERATIONS 8

struct bf_geo_generation {
	uint16_t id; /* 0 for a free slot */
	size_t nsources;
	struct bf_geo_source sources[BF_GEO_MAX_SOURCES];
};

/* Records the sources of table as generation id, replacing the oldest one kept. */
void bf_geo_history_add(struct bf_geo_generation *history, uint16_t id,
			const struct bf_geo_table *table);

/*
 * "PATH (FORMAT, DATE, sha256 HASH)" of a source of a generation, or "none"
 * for an address no source covered, or a note that the generation is no
 * longer kept.
 */
void bf_geo_history_describe(const struct bf_geo_generation *history, uint16_t id,
			     unsigned int source, char *out, size_t size);

/* Watches the config file and every geolocation file it names. Returns the inotify fd. */
int bf_reload_watch(struct bf_daemon *d);

/* Reads the inotify events; a change to a watched file schedules a reload a second later. */
void bf_reload_note_changes(struct bf_daemon *d, uint64_t now_ns);

/* Reloads now. reason names the trigger in the log. */
void bf_reload(struct bf_daemon *d, const char *reason);

#endif
