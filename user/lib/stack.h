/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_STACK_H
#define BORDERFLOW_STACK_H

#include "config.h"
#include "geo.h"

/*
 * Loads the geolocation stack that cfg names into an initialised table: the
 * [geo] data files in order, then the override files above them, then the
 * fixed local ranges, flattened. On error err names the file and line.
 */
int bf_geo_load_stack(struct bf_geo_table *table, const struct bf_config *cfg,
		      struct bf_error *err);

/* "tor-geoip", "tor-geoip6", "cidr" or "builtin". */
const char *bf_geo_format_name(enum bf_geo_format format);

/* "PATH (FORMAT, DATE)" of a source index, or "none" for an address no source covers. */
void bf_geo_source_describe(const struct bf_geo_table *table, unsigned int source, char *out,
			    size_t size);

#endif
