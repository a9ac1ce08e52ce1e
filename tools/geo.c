// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/un.h>

#include "borderflow.h"
#include "user/lib/apps.h"
#include "user/lib/geodiff.h"
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

/* Counts the prefixes of the flattened table per source and family. */
struct prefix_count {
	size_t *count;
};

static int count_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	(*((struct prefix_count *)ctx)->count)++;
	return 0;
}

static int count_prefix6(const uint8_t addr[16], unsigned int prefixlen, void *ctx)
{
	(*((struct prefix_count *)ctx)->count)++;
	return 0;
}

static void print_info(const struct bf_geo_table *table)
{
	size_t p4[BF_GEO_MAX_SOURCES] = { 0 }, p6[BF_GEO_MAX_SOURCES] = { 0 };
	size_t i, total4 = 0, total6 = 0;

	for (i = 0; i < table->n4; i++) {
		struct prefix_count ctx = { &p4[table->v4[i].source % BF_GEO_MAX_SOURCES] };

		(void)bf_range4_to_prefixes(table->v4[i].first, table->v4[i].last, count_prefix4,
					    &ctx);
	}
	for (i = 0; i < table->n6; i++) {
		struct prefix_count ctx = { &p6[table->v6[i].source % BF_GEO_MAX_SOURCES] };

		(void)bf_range6_to_prefixes(table->v6[i].first, table->v6[i].last, count_prefix6,
					    &ctx);
	}
	for (i = 0; i < table->nsources; i++) {
		const struct bf_geo_source *src = &table->sources[i];

		printf("source %zu: %s\n", i, src->path);
		printf("  format:   %s%s%s\n", bf_geo_format_name(src->format),
		       src->detail[0] ? ", " : "", src->detail);
		printf("  date:     %s\n", src->date[0] ? src->date : "(not stated)");
		printf("  sha256:   %s\n", src->sha256[0] ? src->sha256 : "(built in)");
		printf("  read:     IPv4 ranges %zu, IPv6 ranges %zu\n", src->count4, src->count6);
		printf("  in force: IPv4 prefixes %zu, IPv6 prefixes %zu\n", p4[i], p6[i]);
		total4 += p4[i];
		total6 += p6[i];
	}
	printf("total in force: IPv4 prefixes %zu, IPv6 prefixes %zu (IPv4 ranges %zu, IPv6 ranges "
	       "%zu)\n",
	       total4, total6, table->n4, table->n6);
}

/* Parses the options of geo info and geo diff: only --config. Returns optind or -1. */
static int parse_config_option(int argc, char **argv, const char **config_path, const char *usage)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*config_path = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			tool_error("%s: invalid option '%s'; see 'borderflow geo %s --help'",
				   argv[0], argv[optind - 1], argv[0]);
			return -1;
		}
	}
	return optind;
}

static int geo_info(int argc, char **argv)
{
	const char *config_path = BF_CONFIG_DEFAULT_PATH;
	struct bf_geo_table table;
	struct bf_config cfg;
	int ret, first;

	first = parse_config_option(argc, argv, &config_path,
				    "Usage: borderflow geo info [--config FILE]\n"
				    "Prints every geolocation source that FILE loads, with its "
				    "format, date, SHA-256,\nthe ranges read and the prefixes in "
				    "force after layering.\n");
	if (first < 0)
		return 2;
	if (first < argc) {
		tool_error("geo info: unexpected argument '%s'", argv[first]);
		return 2;
	}
	ret = load(config_path, &cfg, &table);
	if (!ret)
		print_info(&table);
	bf_geo_table_free(&table);
	bf_config_free(&cfg);
	return ret;
}

static bool is_config_path(const char *path)
{
	size_t len = strlen(path);

	return len > 5 && !strcmp(path + len - 5, ".conf");
}

/*
 * Loads one side of a diff: a config file (ending in .conf) with its own
 * stack and policy, or a geolocation file or folder that replaces the
 * [geo] data of base, keeping its lists, overrides and policy.
 */
static int load_side(const char *path, const char *base, struct bf_config *cfg,
		     struct bf_geo_table *table)
{
	struct bf_error err = {};
	char *data[1] = { (char *)path };

	if (is_config_path(path))
		return load(path, cfg, table);
	bf_geo_table_init(table);
	if (bf_config_load(cfg, base, &err) || bf_geo_load_stack_data(table, cfg, data, 1, &err)) {
		tool_error("%s", err.msg);
		return 1;
	}
	return 0;
}

static void format_count6(unsigned __int128 n, char *out, size_t size)
{
	if (n <= UINT64_MAX)
		snprintf(out, size, "%llu", (unsigned long long)n);
	else
		snprintf(out, size, "%.3Le", (long double)n);
}

static int compare_changes(const void *a, const void *b)
{
	const struct bf_geo_change *x = a, *y = b;

	if (x->addresses4 != y->addresses4)
		return x->addresses4 > y->addresses4 ? -1 : 1;
	return x->addresses6 > y->addresses6 ? -1 : x->addresses6 < y->addresses6;
}

static void print_changes(struct bf_geo_change *changes, size_t n)
{
	uint64_t approved_lost = 0, approved_gained = 0;
	char from[3], to[3], six[64];
	size_t i;

	qsort(changes, n, sizeof(*changes), compare_changes);
	printf("%-16s %-16s %14s %14s\n", "OLD", "NEW", "IPV4 ADDRESSES", "IPV6 ADDRESSES");
	for (i = 0; i < n; i++) {
		const struct bf_geo_change *c = &changes[i];
		char old_text[32], new_text[32];

		bf_country_format(c->old_country, from);
		bf_country_format(c->new_country, to);
		snprintf(old_text, sizeof(old_text), "%s %s", from,
			 bf_verdict_name(c->old_verdict));
		snprintf(new_text, sizeof(new_text), "%s %s", to, bf_verdict_name(c->new_verdict));
		format_count6(c->addresses6, six, sizeof(six));
		printf("%-16s %-16s %14" PRIu64 " %14s\n", old_text, new_text, c->addresses4, six);
		if (c->old_verdict == BF_VERDICT_APPROVED && c->new_verdict != BF_VERDICT_APPROVED)
			approved_lost += c->addresses4;
		if (c->old_verdict != BF_VERDICT_APPROVED && c->new_verdict == BF_VERDICT_APPROVED)
			approved_gained += c->addresses4;
	}
	printf("\n%zu changes; IPv4 addresses leaving the approved region: %" PRIu64
	       ", entering it: %" PRIu64 "\n",
	       n, approved_lost, approved_gained);
}

static int geo_diff(int argc, char **argv)
{
	const char *config_path = BF_CONFIG_DEFAULT_PATH;
	struct bf_geo_table old_table, new_table;
	struct bf_config old_cfg, new_cfg;
	struct bf_geo_change *changes = NULL;
	size_t n = 0;
	int ret, first;

	first = parse_config_option(
		argc, argv, &config_path,
		"Usage: borderflow geo diff [--config FILE] OLD NEW\n"
		"Prints the addresses whose country or verdict changes from OLD to NEW, summed "
		"per\n"
		"pair of old and new country and verdict. OLD and NEW are configuration files\n"
		"(ending in .conf), each with its own data and policy, or geolocation files or\n"
		"folders, each loaded in place of the [geo] data of FILE "
		"(default " BF_CONFIG_DEFAULT_PATH ")\n"
		"with its lists, overrides and policy.\n"
		"Example: borderflow geo diff /usr/share/borderflow/geoip new/geoip\n");
	if (first < 0)
		return 2;
	if (argc - first != 2) {
		tool_error(
			"geo diff: give OLD and NEW, e.g. 'borderflow geo diff old.conf new.conf'");
		return 2;
	}
	bf_geo_table_init(&old_table);
	bf_geo_table_init(&new_table);
	bf_config_defaults(&old_cfg);
	bf_config_defaults(&new_cfg);
	ret = load_side(argv[first], config_path, &old_cfg, &old_table);
	if (!ret)
		ret = load_side(argv[first + 1], config_path, &new_cfg, &new_table);
	if (!ret && bf_geo_diff(&old_table, &old_cfg, &new_table, &new_cfg, &changes, &n)) {
		tool_error("geo diff: out of memory");
		ret = 1;
	}
	if (!ret)
		print_changes(changes, n);
	free(changes);
	bf_geo_table_free(&old_table);
	bf_geo_table_free(&new_table);
	bf_config_free(&old_cfg);
	bf_config_free(&new_cfg);
	return ret;
}

static int geo_compile(int argc, char **argv)
{
	const char *config_path = BF_CONFIG_DEFAULT_PATH;
	struct bf_error err = {};
	struct bf_geo_table table;
	struct bf_config cfg;
	size_t n4 = 0, n6 = 0;
	int ret, first;

	first = parse_config_option(
		argc, argv, &config_path,
		"Usage: borderflow geo compile [--config FILE] OUTPUT\n"
		"Writes the geolocation stack of FILE (data, lists and overrides, layered) as one\n"
		"compiled file that [geo] data accepts and that loads without parsing, keeping\n"
		"the provenance of every range.\n"
		"Example: borderflow geo compile /var/lib/borderflow/geo.bfgeo\n");
	if (first < 0)
		return 2;
	if (argc - first != 1) {
		tool_error("geo compile: give one output file, e.g. 'borderflow geo compile "
			   "/var/lib/borderflow/geo.bfgeo'");
		return 2;
	}
	ret = load(config_path, &cfg, &table);
	if (!ret && bf_geo_compile(&table, argv[first], &err)) {
		tool_error("%s", err.msg);
		ret = 1;
	}
	if (!ret) {
		(void)bf_geo_count_prefixes(&table, &n4, &n6);
		printf("wrote '%s': %zu sources, IPv4 ranges %zu, IPv6 ranges %zu (with the fixed "
		       "local ranges, which every load adds again)\n",
		       argv[first], table.nsources, table.n4, table.n6);
	}
	bf_geo_table_free(&table);
	bf_config_free(&cfg);
	return ret;
}

int cmd_geo(int argc, char **argv)
{
	if (argc < 2) {
		tool_error("geo: missing subcommand; use lookup, info, diff or compile");
		return 2;
	}
	if (!strcmp(argv[1], "lookup"))
		return geo_lookup(argc - 1, argv + 1);
	if (!strcmp(argv[1], "info"))
		return geo_info(argc - 1, argv + 1);
	if (!strcmp(argv[1], "diff"))
		return geo_diff(argc - 1, argv + 1);
	if (!strcmp(argv[1], "compile"))
		return geo_compile(argc - 1, argv + 1);
	tool_error("geo: unknown subcommand '%s'; use lookup, info, diff or compile", argv[1]);
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
					"does not exist; borderflowd watches it from its next "
					"start "
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
