/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The INI configuration of borderflowd and borderflow, parsed with inih.
 * Unknown sections and keys are errors so that a typo never silently turns a
 * setting off.
 */
#ifndef BORDERFLOW_CONFIG_H
#define BORDERFLOW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "../../maps/common.h"

#define BF_CONFIG_DEFAULT_PATH "/etc/borderflow/borderflow.conf"
#define BF_CONFIG_MAX_FILES    16 /* per list key: [geo] data, [geo] override, [geo] lists */
#define BF_CONFIG_MAX_MATCHERS 16 /* per list key of an [app NAME] section */
#define BF_CONFIG_MAX_APPROVED 256

#define BF_CONFIG_MAX_MMDB_PATHS 8   /* [geo] mmdb_country, at most BF_GEO_MAX_MMDB_PATHS */
#define BF_CONFIG_MMDB_PATH_SIZE 128 /* bytes of one mmdb key path, including the NUL */

/* One [app NAME] section. */
struct bf_app_config {
	char name[64]; /* [a-z0-9_-], at most 63 characters */
	/*
	 * "path =": absolute paths; one ending in '/' watches every executable
	 * under that folder, any other names one executable file.
	 */
	char *paths[BF_CONFIG_MAX_MATCHERS];
	size_t npaths;
	/* "comm =": process names, matched exactly against the first 15 characters. */
	char comms[BF_CONFIG_MAX_MATCHERS][16];
	size_t ncomms;
};

struct bf_config {
	char path[4096]; /* the file read, "" for built-in defaults */

	/* [policy] */
	uint16_t approved[BF_CONFIG_MAX_APPROVED]; /* BF_CC() codes; default MO HK */
	size_t napproved;
	bool unknown_alert; /* unknown = alert (default) | ignore */

	/* [geo] */
	char *geo_data[BF_CONFIG_MAX_FILES]; /* default /usr/share/borderflow/geoip and geoip6 */
	size_t ngeo_data;
	char *geo_override[BF_CONFIG_MAX_FILES];
	size_t ngeo_override;
	/* "lists = CC:PATH ...": files of one prefix per line, each of the country before it */
	char *geo_lists[BF_CONFIG_MAX_FILES];
	uint16_t geo_list_countries[BF_CONFIG_MAX_FILES]; /* BF_CC() codes */
	size_t ngeo_lists;
	/*
	 * "mmdb_country =": key paths of the country in an mmdb record, tried in
	 * order; default country/iso_code registered_country/iso_code country_code
	 */
	char geo_mmdb_country[BF_CONFIG_MAX_MMDB_PATHS][BF_CONFIG_MMDB_PATH_SIZE];
	size_t ngeo_mmdb_country;

	/* [app NAME] sections, in file order; application id = index + 1 */
	struct bf_app_config apps[BF_MAX_APPS];
	size_t napps;

	/* [alerts] */
	char alerts_file[4096];	  /* default /var/log/borderflow/alerts.jsonl; "" disables */
	uint64_t alerts_repeat_s; /* repeat = 10m; one alert per destination per interval */

	/* [metrics] */
	char metrics_listen[128];    /* host:port, default 127.0.0.1:9782 */
	bool metrics_other;	     /* other = show (default) | hide: the series of app="other" */
	char metrics_textfile[4096]; /* textfile = folder for node_exporter's textfile collector, ""
					for none */

	/* [history] */
	char history_dir[4096];	      /* default /var/lib/borderflow/history */
	uint64_t history_retention_s; /* retention = 30d */

	/* [daemon] */
	char control_socket[4096]; /* socket = /run/borderflow/borderflowd.sock */
	char pin_dir[4096];	   /* pin = /sys/fs/bpf/borderflow */
	uint32_t sockets;	   /* sockets = 262144, entries of the socks map */
};

/* Fills cfg with the built-in defaults: the DingTalk application, MO HK approved. */
void bf_config_defaults(struct bf_config *cfg);

/*
 * Resets cfg to the defaults, then reads path over them: a key the file
 * sets replaces its default, a key it does not set keeps it. The default
 * [app dingtalk] stays only when the file has no [app ...] section. cfg
 * must be initialised (by bf_config_defaults() or a previous load, freed
 * with bf_config_free()) before it is loaded again.
 *
 * Returns 0, or a negative errno with err naming the file, the line and the
 * invalid value, and what is accepted there. On error cfg holds the
 * defaults and nothing allocated.
 */
int bf_config_load(struct bf_config *cfg, const char *path, struct bf_error *err);

/* Frees what a load allocated and leaves cfg at the defaults; safe to call twice. */
void bf_config_free(struct bf_config *cfg);

/*
 * Parses a duration: a whole number followed by s, m, h or d ("10m", "30d").
 * Returns 0 or -EINVAL.
 */
int bf_parse_duration(const char *text, uint64_t *seconds);

/* Verdict of a country under the [policy] of cfg; local is true for a fixed local range. */
enum bf_verdict bf_config_verdict(const struct bf_config *cfg, uint16_t country, bool local);

/* "local", "approved", "foreign", "unknown". */
const char *bf_verdict_name(enum bf_verdict verdict);

#endif
