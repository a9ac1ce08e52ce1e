/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel side from the daemon: the skeleton's lifecycle in
 * visible steps (open and size, load, fill, attach) and its teardown.
 */
#ifndef BORDERFLOW_MONITOR_H
#define BORDERFLOW_MONITOR_H

#include <stddef.h>

#include "lib/config.h"
#include "lib/error.h"
#include "lib/geo.h"
#include "registry.h"

#include "../maps/geo.h"

#define BF_MAX_LINKS 16

struct borderflow_bpf;
struct bpf_link;

struct bf_monitor {
	struct borderflow_bpf *skel;
	struct bpf_link *links[BF_MAX_LINKS];
	size_t nlinks;
	int cgroup_fd;
	char cgroup_path[4096];
	size_t prefixes4; /* prefixes of the geolocation data in force */
	size_t prefixes6;
	size_t missing_paths; /* "path =" entries that did not exist at start */
	int pin_fd; /* the pin folder, locked while this daemon uses it; -1 without pinning */
	struct bf_registry registry;
};

/*
 * Opens the skeleton, sets the load-time settings from cfg and loads the
 * programs into the kernel. With [daemon]
 * pin, the counters (totals, stats, alert_counts) and the application ids
 * (app_names)
 * are pinned there, and a later start reuses them, so a restart does not
 * reset them.
 */
int bf_monitor_load(struct bf_monitor *mon, const struct bf_config *cfg, struct bf_error *err);

/*
 * Writes every range of table, with its verdict under cfg and the number
 * of the generation, into new tables, and puts them in place of the ones in
 * force. On error the tables in force are unchanged.
 */
int bf_monitor_fill_geo(struct bf_monitor *mon, const struct bf_geo_table *table,
			const struct bf_config *cfg, uint16_t generation, struct bf_error *err);

/* Writes the executables, folders and process names of the watched applications. */
int bf_monitor_fill_apps(struct bf_monitor *mon, const struct bf_config *cfg, struct bf_error *err);

/* Attaches the exec, fork and exit tracepoints. */
int bf_monitor_attach_tracepoints(struct bf_monitor *mon, struct bf_error *err);

/*
 * Attaches the socket and packet programs to cgroup_path, or to the root of
 * the cgroup v2 hierarchy when it is NULL.
 */
int bf_monitor_attach_cgroup(struct bf_monitor *mon, const char *cgroup_path, struct bf_error *err);

/* Detaches everything and frees the kernel objects. Safe on a partly set up monitor. */
void bf_monitor_destroy(struct bf_monitor *mon);

/* Finds the mount point of the cgroup v2 hierarchy in /proc/self/mountinfo. */
int bf_find_cgroup2_root(char *path, size_t size, struct bf_error *err);

/*
 * Labels the TCP and UDP sockets that running processes opened before the
 * programs were attached. Returns how many, or a negative errno.
 */
int bf_monitor_seed_sockets(struct bf_monitor *mon, const struct bf_geo_table *table,
			    const struct bf_config *cfg);

/*
 * Returns the value the geolocation tables hold for an address (family 4 or
 * 6, network order): country, verdict under cfg and source, or no country
 * and the verdict unknown when no range covers it.
 */
struct bf_geo_value bf_monitor_geo_value(const struct bf_geo_table *table,
					 const struct bf_config *cfg, int family,
					 const uint8_t addr[16]);

/* Seeds procs with the processes of watched applications that already run. Returns how many. */
int bf_monitor_seed_procs(struct bf_monitor *mon, const struct bf_config *cfg);

#endif
