/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Application ids. The kernel counts per id, and the ids are kept in the
 * pinned app_names map next to the pinned counters: an [app NAME] section
 * gets the id its name had before, or the first free one. Reordering,
 * adding or removing sections thus never moves counts from one application
 * to another, and an application removed from the config keeps its id and
 * its counts.
 */
#ifndef BORDERFLOW_REGISTRY_H
#define BORDERFLOW_REGISTRY_H

#include "lib/config.h"
#include "lib/error.h"

#include "../maps/proc.h"

struct bf_registry {
	char names[BF_MAX_APPS + 1][64]; /* by id; "" for a free id */
	__u32 ids[BF_MAX_APPS];		 /* by index of cfg->apps */
};

/* Reads app_names, gives every application of cfg an id and writes app_names back. */
int bf_registry_load(struct bf_registry *reg, int map_fd, const struct bf_config *cfg,
		     struct bf_error *err);

/* Name of an application id, or "other" / "unattributed". */
const char *bf_registry_name(const struct bf_registry *reg, __u32 app);

#endif
