/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_STACK_H
#define BORDERFLOW_STACK_H

#include "config.h"
#include "geo.h"

/*
 * Loads the geolocation stack that cfg names into an initialised table: the
 * [geo] data files in order (mmdb records read at the [geo] mmdb_country key
 * paths), then the [geo] lists, then the override files above them, then the
 * fixed local ranges, flattened. On error err names the file and line.
 */
int bf_geo_load_stack(struct bf_geo_table *table, const struct bf_config *cfg,
		      struct bf_error *err);

/* Same as bf_geo_load_stack() with data in place of the [geo] data files of cfg. */
int bf_geo_load_stack_data(struct bf_geo_table *table, const struct bf_config *cfg,
			   char *const *data, size_t ndata, struct bf_error *err);

/*
 * "tor-geoip", "tor-geoip6", "cidr", "builtin", "mmdb", "geoip2-csv", "dbip-csv",
 * "ip2location-csv", "range-csv" or "cidr-list".
 */
const char *bf_geo_format_name(enum bf_geo_format format);

/*
 * "PATH (FORMAT, DATE, sha256 HASH)" of a source index, HASH being the first
 * 16 hex digits, or "none" for an address no source covers.
 */
void bf_geo_source_describe(const struct bf_geo_table *table, unsigned int source, char *out,
			    size_t size);

/* "PATH (FORMAT, DATE, sha256 HASH)" of one source. */
void bf_geo_source_format(const struct bf_geo_source *src, char *out, size_t size);

#endif
