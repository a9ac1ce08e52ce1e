/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_GEODIFF_H
#define BORDERFLOW_GEODIFF_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "geo.h"

/*
 * Addresses whose country or verdict differs between two geolocation
 * stacks, summed per pair of old and new country and verdict. An address
 * no range covers has no country (BF_CC_NONE) and the verdict unknown.
 */
struct bf_geo_change {
	uint16_t old_country;
	uint16_t new_country;
	uint8_t old_verdict; /* enum bf_verdict */
	uint8_t new_verdict;
	uint64_t addresses4;
	unsigned __int128 addresses6;
};

/*
 * Compares two flattened tables, each under the [policy] of its config.
 * Returns 0 with a malloc'ed array of changes in *changes (free it), or
 * -ENOMEM.
 */
int bf_geo_diff(const struct bf_geo_table *old_table, const struct bf_config *old_cfg,
		const struct bf_geo_table *new_table, const struct bf_config *new_cfg,
		struct bf_geo_change **changes, size_t *nchanges);

#endif
