/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel's geolocation tables (maps/geo.h), built from a flattened
 * table by the daemon and by the geolocation benchmark.
 */
#ifndef BORDERFLOW_GEOMAP_H
#define BORDERFLOW_GEOMAP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "geo.h"

/* Sizes that bf_geo_map_fill() wrote and the seconds each family took. */
struct bf_geo_map_fill {
	size_t ranges4, ranges6; /* ranges of the tables, those without data included */
	size_t bytes4, bytes6;	 /* sizes of the tables in bytes */
	double seconds4, seconds6;
};

/* Verdict of a range of table under cfg: local for the fixed local ranges. */
enum bf_verdict bf_range_verdict(const struct bf_geo_table *table, const struct bf_config *cfg,
				 uint16_t country, uint8_t source);

/*
 * Counts the ranges that the kernel's tables of a flattened table contain: its
 * ranges and those between them that no range covers. ranges4 and ranges6
 * may be NULL. Returns 0, or -EINVAL when the table is not flat.
 */
int bf_geo_map_count(const struct bf_geo_table *table, size_t *ranges4, size_t *ranges6);

/*
 * Creates an empty geolocation table for family 4 or 6 with room for
 * ranges, as bf_geo_map_count() counts them. Returns the map fd or a
 * negative errno.
 */
int bf_geo_map_create(int family, size_t ranges);

/*
 * Writes every range of table, with its verdict under cfg and generation,
 * into the tables fd4 and fd6 that bf_geo_map_create() made for it.
 * Returns 0, or a negative errno with err set: -E2BIG when a /16 has more
 * ranges than the BPF programs search (BF_GEO_MAX_BUCKET_RANGES).
 */
int bf_geo_map_fill(int fd4, int fd6, const struct bf_geo_table *table, const struct bf_config *cfg,
		    uint16_t generation, struct bf_geo_map_fill *out, struct bf_error *err);

#endif
