// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <string.h>

#include "stack.h"

/* Prefixes a failed load's message with the config key that named the file, and returns ret. */
static int name_geo_key(int ret, const char *key, struct bf_error *err)
{
	char msg[sizeof(err->msg)];

	if (!err)
		return ret;
	/* The precision leaves room for the prefix, so a message too long for both loses its end. */
	snprintf(msg, sizeof(msg), "[geo] %s: %.*s", key, (int)(sizeof(msg) - 32), err->msg);
	memcpy(err->msg, msg, sizeof(msg));
	return ret;
}

int bf_geo_load_stack_data(struct bf_geo_table *table, const struct bf_config *cfg,
			   char *const *data, size_t ndata, struct bf_error *err)
{
	struct bf_geo_options opts = { .nmmdb_country = cfg->ngeo_mmdb_country };
	size_t i;
	int ret;

	for (i = 0; i < cfg->ngeo_mmdb_country; i++)
		opts.mmdb_country[i] = cfg->geo_mmdb_country[i];
	for (i = 0; i < ndata; i++) {
		ret = bf_geo_load_file_opts(table, data[i], &opts, err);
		if (ret)
			return name_geo_key(ret, "data", err);
	}
	for (i = 0; i < cfg->ngeo_lists; i++) {
		ret = bf_geo_load_list_file(table, cfg->geo_lists[i], cfg->geo_list_countries[i],
					    err);
		if (ret)
			return name_geo_key(ret, "lists", err);
	}
	for (i = 0; i < cfg->ngeo_override; i++) {
		ret = bf_geo_load_cidr_file(table, cfg->geo_override[i], err);
		if (ret)
			return name_geo_key(ret, "override", err);
	}
	return bf_geo_flatten(table, err);
}

int bf_geo_load_stack(struct bf_geo_table *table, const struct bf_config *cfg, struct bf_error *err)
{
	return bf_geo_load_stack_data(table, cfg, cfg->geo_data, cfg->ngeo_data, err);
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
	case BF_GEO_FORMAT_MMDB:
		return "mmdb";
	case BF_GEO_FORMAT_GEOIP2_CSV:
		return "geoip2-csv";
	case BF_GEO_FORMAT_DBIP_CSV:
		return "dbip-csv";
	case BF_GEO_FORMAT_IP2LOCATION_CSV:
		return "ip2location-csv";
	case BF_GEO_FORMAT_RANGE_CSV:
		return "range-csv";
	case BF_GEO_FORMAT_CIDR_LIST:
		return "cidr-list";
	}
	return "unknown";
}

void bf_geo_source_format(const struct bf_geo_source *src, char *out, size_t size)
{
	/* 16 hex digits of the SHA-256 tell two versions of a file apart in an audit. */
	snprintf(out, size, "%s (%s%s%s%s%.16s)", src->path, bf_geo_format_name(src->format),
		 src->date[0] ? ", " : "", src->date, src->sha256[0] ? ", sha256 " : "",
		 src->sha256);
}

void bf_geo_source_describe(const struct bf_geo_table *table, unsigned int source, char *out,
			    size_t size)
{
	if (source >= table->nsources) {
		snprintf(out, size, "none");
		return;
	}
	bf_geo_source_format(&table->sources[source], out, size);
}
