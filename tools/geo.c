// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/un.h>

#include "borderflow.h"
#include "user/lib/apps.h"
#include "user/lib/stack.h"

/* Loads cfg from path and the geolocation stack it names; prints the error and returns 1 on
 * failure. */
static int load(const char *path, struct bf_config *cfg, struct bf_geo_table *table)
{
	struct bf_error err = {};

	bf_geo_table_init(table);
	if (bf_config_load(cfg, path, &err) || bf_geo_load_stack(table, cfg, &err)) {
		tool_error("%s", err.msg);
		return 1;
	}
	return 0;
}

static void print_lookup(const struct bf_config *cfg, const struct bf_geo_table *table,
			 const char *text)
{
	char described[4200];
	uint16_t country = BF_CC_NONE;
	uint8_t v6[16], source = 0xff;
	char code[3];
	uint32_t v4;
	bool local;
	int family = bf_parse_address(text, &v4, v6);

	if (family == 4) {
		const struct bf_range4 *r = bf_geo_lookup4(table, v4);

		if (r) {
			country = r->country;
			source = r->source;
		}
		local = bf_geo_is_local4(v4);
	} else {
		const struct bf_range6 *r = bf_geo_lookup6(table, v6);

		if (r) {
			country = r->country;
			source = r->source;
		}
		local = bf_geo_is_local6(v6);
	}
	bf_geo_source_describe(table, source, described, sizeof(described));
	bf_country_format(country, code);
	printf("%-40s %-7s %-9s %s\n", text, code,
	       bf_verdict_name(bf_config_verdict(cfg, country, local)), described);
}

static int geo_lookup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *config_path = BF_CONFIG_DEFAULT_PATH;
	struct bf_geo_table table;
	struct bf_config cfg;
	uint8_t v6[16];
	uint32_t v4;
	int c, i, ret = 0;

	optind = 1;
	opterr = 0; /* unknown options are reported below, with the command's prefix */
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			printf("Usage: borderflow geo lookup [--config FILE] ADDRESS...\n"
			       "Prints country, verdict and source of each IPv4 or IPv6 address "
			       "under "
			       "the [policy] and [geo] of FILE (default %s).\n",
			       BF_CONFIG_DEFAULT_PATH);
			return 0;
		default:
			tool_error("%s: invalid option '%s'; see '%s --help'", argv[0],
				   argv[optind - 1], argv[0]);
			return 2;
		}
	}
	if (optind >= argc) {
		tool_error(
			"geo lookup: no address given; e.g. 'borderflow geo lookup 202.175.3.3'");
		return 2;
	}
	for (i = optind; i < argc; i++) {
		if (!bf_parse_address(argv[i], &v4, v6)) {
			tool_error("geo lookup: invalid address '%s'; give an IPv4 or IPv6 address",
				   argv[i]);
			return 2;
		}
	}
	if (load(config_path, &cfg, &table)) {
		ret = 1;
		goto out;
	}
	printf("%-40s %-7s %-9s %s\n", "ADDRESS", "COUNTRY", "VERDICT", "SOURCE");
	for (i = optind; i < argc; i++)
		print_lookup(&cfg, &table, argv[i]);
out:
	bf_geo_table_free(&table);
	bf_config_free(&cfg);
	return ret;
}

int cmd_geo(int argc, char **argv)
{
	if (argc < 2) {
		tool_error("geo: missing subcommand; 'borderflow geo lookup ADDRESS...'");
		return 2;
	}
	if (!strcmp(argv[1], "lookup"))
		return geo_lookup(argc - 1, argv + 1);
	tool_error("geo: unknown subcommand '%s'; 'borderflow geo lookup ADDRESS...'", argv[1]);
	return 2;
}

/*
 * Checks every "path =" entry as borderflowd does at start. A path that does
 * not exist is a warning: the application may not be installed yet.
 */
static int check_paths(const struct bf_config *cfg, size_t *warnings)
{
	struct bf_error err = {};
	struct stat st;
	size_t i, j;
	int ret;

	*warnings = 0;
	if (strlen(cfg->control_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		tool_error("config file '%s' [daemon] socket '%s' is longer than %zu bytes, the "
			   "limit of a Unix socket path",
			   cfg->path, cfg->control_socket,
			   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return 1;
	}
	for (i = 0; i < cfg->napps; i++) {
		const struct bf_app_config *app = &cfg->apps[i];

		for (j = 0; j < app->npaths; j++) {
			ret = bf_app_path_check(cfg, app, app->paths[j], &st, &err);
			if (ret == -ENOENT) {
				fprintf(stderr,
					"borderflow: warning: config file '%s' [app %s] path '%s' "
					"does not exist; borderflowd watches it from its next start "
					"after it is created\n",
					cfg->path, app->name, app->paths[j]);
				(*warnings)++;
				continue;
			}
			if (ret) {
				tool_error("%s", err.msg);
				return 1;
			}
		}
	}
	return 0;
}

int cmd_check_config(int argc, char **argv)
{
	struct bf_geo_table table;
	struct bf_config cfg;
	size_t i, warnings = 0;
	int ret;

	if (argc != 2) {
		tool_error(
			"check-config: give one configuration file, e.g. 'borderflow check-config "
			"%s'",
			BF_CONFIG_DEFAULT_PATH);
		return 2;
	}
	ret = load(argv[1], &cfg, &table);
	if (!ret)
		ret = check_paths(&cfg, &warnings);
	if (!ret) {
		printf("config file '%s' is valid%s\n", argv[1],
		       warnings ? ", with the warnings above" : "");
		printf("  approved:");
		for (i = 0; i < cfg.napproved; i++) {
			char code[3];

			bf_country_format(cfg.approved[i], code);
			printf(" %s", code);
		}
		printf("%s\n  unknown destinations: %s\n", cfg.napproved ? "" : " none",
		       cfg.unknown_alert ? "alert" : "ignore");
		for (i = 0; i < cfg.napps; i++)
			printf("  application '%s': paths %zu, process names %zu\n",
			       cfg.apps[i].name, cfg.apps[i].npaths, cfg.apps[i].ncomms);
		for (i = 0; i < table.nsources; i++)
			printf("  geolocation source '%s' (%s): IPv4 ranges %zu, IPv6 ranges %zu\n",
			       table.sources[i].path, bf_geo_format_name(table.sources[i].format),
			       table.sources[i].count4, table.sources[i].count6);
	}
	bf_geo_table_free(&table);
	bf_config_free(&cfg);
	return ret;
}
