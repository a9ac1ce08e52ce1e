// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>

#include "stack.h"

int bf_geo_load_stack(struct bf_geo_table *table, const struct bf_config *cfg, struct bf_error *err)
{
	size_t i;
	int ret;

	for (i = 0; i < cfg->ngeo_data; i++) {
		ret = bf_geo_load_file(table, cfg->geo_data[i], err);
		if (ret)
			return ret;
	}
	for (i = 0; i < cfg->ngeo_override; i++) {
		ret = bf_geo_load_cidr_file(table, cfg->geo_override[i], err);
		if (ret)
			return ret;
	}
	return bf_geo_flatten(table, err);
}

const char *bf_geo_format_name(enum bf_geo_format format)
{
	switch (format) {
	case BF_GEO_FORMAT_TOR4:
		return "tor-geoip";
	case BF_GEO_FORMAT_TOR6:
		return "tor-geoip6";
	case BF_GEO_FORMAT_CIDR:
		return "cidr";
	case BF_GEO_FORMAT_BUILTIN:
		return "builtin";
	}
	return "unknown";
}

void bf_geo_source_describe(const struct bf_geo_table *table, unsigned int source, char *out,
			    size_t size)
{
	const struct bf_geo_source *src;

	if (source >= table->nsources) {
		snprintf(out, size, "none");
		return;
	}
	src = &table->sources[source];
	snprintf(out, size, "%s (%s%s%s)", src->path, bf_geo_format_name(src->format),
		 src->date[0] ? ", " : "", src->date);
}
