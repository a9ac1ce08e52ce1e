// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The configuration parser. inih splits the file into sections and
 * "key = value" pairs, and this file validates every value into struct
 * bf_config.
 *
 * inih is used through ini_parse_stream() with a reader of our own, because
 * the library as Debian 12 builds it (libinih1 55-1) would otherwise misread
 * some files without an error:
 * - It splits a line longer than its buffer (200 bytes by default) and
 *   parses the rest as a line of its own.
 * - It cuts section names to 49 bytes, so "[app NAME]" with a long NAME
 *   would silently become another name.
 * - It reads an indented line as the continuation of the previous value, so
 *   an indented "key = value" would become part of the key above it.
 * - Its handler does not receive the line number.
 * The reader therefore counts lines and rejects lines that do not fit. It
 * strips leading whitespace, so no line is a continuation, and strips " ;"
 * comments itself, so the result does not depend on how the library was
 * built. It also parses section headers itself.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../maps/flow.h"
#include "config.h"
#include "geo.h"

_Static_assert(BF_CONFIG_MAX_MMDB_PATHS <= BF_GEO_MAX_MMDB_PATHS,
	       "[geo] mmdb_country accepts more key paths than the loader");

#define CONFIG_MAX_FILE_BYTES	(1024 * 1024)
#define CONFIG_MAX_LINE		16384 /* bytes of one line, including the NUL */
#define CONFIG_MAX_PATH		4096  /* bytes of one path, including the NUL */
#define CONFIG_MAX_COMM		15    /* TASK_COMM_LEN - 1 */
#define CONFIG_MAX_SECTION_KEYS 8

#define REPEAT_MIN_S	1ULL
#define REPEAT_MAX_S	(7 * 86400ULL)
#define RETENTION_MIN_S 3600ULL
#define RETENTION_MAX_S (3650 * 86400ULL)

/*
 * Storage of the default list entries. They are not allocated, so
 * bf_config_defaults() cannot fail and bf_config_free() skips them.
 */
static char default_geo_data4[] = "/usr/share/borderflow/geoip";
static char default_geo_data6[] = "/usr/share/borderflow/geoip6";
static char default_app_path[] = "/opt/apps/com.alibabainc.dingtalk/";

/* Two-letter codes that registries use for something that is not a country. */
static const uint16_t pseudo_countries[] = {
	BF_CC('?', '?'), BF_CC('E', 'U'), BF_CC('A', 'P'), BF_CC('A', '1'), BF_CC('A', '2'),
	BF_CC('A', '3'), BF_CC('O', '1'), BF_CC('Z', 'Z'), BF_CC('X', 'X'),
};

enum config_section {
	SECTION_NONE, /* lines before the first section header */
	SECTION_POLICY,
	SECTION_GEO,
	SECTION_APP,
	SECTION_ALERTS,
	SECTION_METRICS,
	SECTION_HISTORY,
	SECTION_DAEMON,
	SECTION_COUNT,
};

struct config_parser {
	struct bf_config *cfg;
	struct bf_error *err;
	FILE *file;
	char *line; /* getline() buffer */
	size_t line_cap;
	const char *text; /* the current line inside line, comments and blanks stripped */
	size_t bytes_read;
	int lineno;
	int ret; /* first error, 0 while there is none */

	enum config_section section;
	char section_label[80]; /* "[policy]", "[app dingtalk]" */
	int section_line;
	struct bf_app_config *app; /* the current [app NAME] section */
	bool file_has_apps;
	int section_first_line[SECTION_COUNT]; /* header line of each section but [app NAME] */
	int app_first_line[BF_MAX_APPS];
	int key_line[CONFIG_MAX_SECTION_KEYS]; /* line of each key of the current section */
};

struct config_key {
	const char *name;
	int (*parse)(struct config_parser *p, const char *key, const char *value);
	bool allow_empty;
	const char *accepted; /* what the key accepts, the end of the message of an empty value */
};

struct config_section_def {
	const char *name;
	const struct config_key *keys; /* ends with a NULL name */
};

static int config_verror(struct config_parser *p, int line, int ret, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int config_verror(struct config_parser *p, int line, int ret, const char *fmt, va_list ap)
{
	char what[sizeof(p->err->msg)];

	(void)vsnprintf(what, sizeof(what), fmt, ap);
	p->ret =
		bf_error_set(p->err, ret, "config file '%s' line %d: %s", p->cfg->path, line, what);
	return p->ret;
}

/* Records the first error of the parse, on the given line. */
static int config_error(struct config_parser *p, int line, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int config_error(struct config_parser *p, int line, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ret = config_verror(p, line, ret, fmt, ap);
	va_end(ap);
	return ret;
}

/* Records an invalid value on the current line. Returns -EINVAL. */
static int config_invalid(struct config_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int config_invalid(struct config_parser *p, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = config_verror(p, p->lineno, -EINVAL, fmt, ap);
	va_end(ap);
	return ret;
}

static int config_no_memory(struct config_parser *p)
{
	return config_error(p, p->lineno, -ENOMEM, "out of memory");
}

static bool is_default_entry(const char *entry)
{
	return entry == default_geo_data4 || entry == default_geo_data6 ||
	       entry == default_app_path;
}

static void free_list(char **list, size_t *count)
{
	size_t i;

	for (i = 0; i < *count; i++) {
		if (!is_default_entry(list[i]))
			free(list[i]);
		list[i] = NULL;
	}
	*count = 0;
}

static bool is_pseudo_country(uint16_t country)
{
	size_t i;

	for (i = 0; i < sizeof(pseudo_countries) / sizeof(pseudo_countries[0]); i++) {
		if (pseudo_countries[i] == country)
			return true;
	}
	return false;
}

static bool is_ascii_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Parses two ASCII letters, in either case, into a BF_CC() code. */
static bool parse_country_letters(const char *text, size_t len, uint16_t *country)
{
	if (len != 2 || !is_ascii_letter(text[0]) || !is_ascii_letter(text[1]))
		return false;
	*country = BF_CC(ascii_upper(text[0]), ascii_upper(text[1]));
	return true;
}

/* Returns the next space-separated token after *cursor and sets *len, or NULL at the end. */
static const char *next_token(const char **cursor, size_t *len)
{
	const char *start = *cursor;
	const char *end;

	while (isspace((unsigned char)*start))
		start++;
	if (!*start)
		return NULL;
	end = start;
	while (*end && !isspace((unsigned char)*end))
		end++;
	*len = (size_t)(end - start);
	*cursor = end;
	return start;
}

static int copy_value(struct config_parser *p, const char *key, const char *value, char *dst,
		      size_t size)
{
	size_t len = strlen(value);

	if (len >= size)
		return config_invalid(p, "value of '%s' is longer than %zu bytes '%.64s...'", key,
				      size - 1, value);
	memcpy(dst, value, len + 1);
	return 0;
}

/* Copies a single absolute path. The whole value is the path, spaces included. */
static int copy_path(struct config_parser *p, const char *key, const char *value, char *dst,
		     size_t size)
{
	if (value[0] && value[0] != '/')
		return config_invalid(
			p, "'%s' is not an absolute path '%s'; use a path that starts with '/'",
			key, value);
	return copy_value(p, key, value, dst, size);
}

/* Replaces list with the space-separated absolute paths of value. */
static int parse_path_list(struct config_parser *p, const char *key, const char *value, char **list,
			   size_t *count, size_t max)
{
	const char *cursor = value;
	const char *token;
	size_t len;

	free_list(list, count);
	while ((token = next_token(&cursor, &len))) {
		if (token[0] != '/')
			return config_invalid(p,
					      "'%s' has a path that is not absolute '%.*s'; use "
					      "paths that start with '/'",
					      key, (int)len, token);
		if (len >= CONFIG_MAX_PATH)
			return config_invalid(p, "'%s' has a path longer than %d bytes '%.64s...'",
					      key, CONFIG_MAX_PATH - 1, token);
		if (*count == max)
			return config_invalid(p,
					      "'%s' has too many paths, the first one over the "
					      "limit is '%.*s'; at most %zu are accepted",
					      key, (int)len, token, max);
		list[*count] = strndup(token, len);
		if (!list[*count])
			return config_no_memory(p);
		(*count)++;
	}
	return 0;
}

static int parse_duration_key(struct config_parser *p, const char *key, const char *value,
			      uint64_t *seconds, uint64_t min_s, uint64_t max_s, const char *range)
{
	uint64_t parsed;

	if (bf_parse_duration(value, &parsed))
		return config_invalid(p,
				      "invalid duration for '%s' '%s'; use a whole number followed "
				      "by s, m, h or d, from %s",
				      key, value, range);
	if (parsed < min_s || parsed > max_s)
		return config_invalid(p, "duration for '%s' is out of range '%s'; use %s", key,
				      value, range);
	*seconds = parsed;
	return 0;
}

static int parse_approved(struct config_parser *p, const char *key, const char *value)
{
	struct bf_config *cfg = p->cfg;
	const char *cursor = value;
	const char *token;
	uint16_t country;
	size_t len, i;

	cfg->napproved = 0;
	if (!strcmp(value, "none"))
		return 0;

	while ((token = next_token(&cursor, &len))) {
		if (len == 4 && !strncmp(token, "none", 4))
			return config_invalid(p,
					      "'none' is combined with country codes in '%s' '%s'; "
					      "use either 'none' alone or country codes",
					      key, value);
		if (!parse_country_letters(token, len, &country))
			return config_invalid(p,
					      "invalid country code in '%s' '%.*s'; use ISO 3166-1 "
					      "alpha-2 codes of two letters such as MO HK",
					      key, (int)len, token);
		if (is_pseudo_country(country))
			return config_invalid(p,
					      "'%s' has a code that is not a country '%.*s'; "
					      "registries use it for "
					      "regions or unknown locations, which always get the "
					      "verdict unknown",
					      key, (int)len, token);
		for (i = 0; i < cfg->napproved; i++) {
			if (cfg->approved[i] == country)
				return config_invalid(p,
						      "duplicate country code in '%s' '%.*s'; list "
						      "each code once",
						      key, (int)len, token);
		}
		if (cfg->napproved == BF_CONFIG_MAX_APPROVED)
			return config_invalid(p,
					      "'%s' has too many country codes, the first one over "
					      "the limit is '%.*s'; at most %d are accepted",
					      key, (int)len, token, BF_CONFIG_MAX_APPROVED);
		cfg->approved[cfg->napproved++] = country;
	}
	return 0;
}

static int parse_unknown(struct config_parser *p, const char *key, const char *value)
{
	if (!strcmp(value, "alert"))
		p->cfg->unknown_alert = true;
	else if (!strcmp(value, "ignore"))
		p->cfg->unknown_alert = false;
	else
		return config_invalid(p, "invalid value for '%s' '%s'; use alert or ignore", key,
				      value);
	return 0;
}

static int parse_geo_data(struct config_parser *p, const char *key, const char *value)
{
	return parse_path_list(p, key, value, p->cfg->geo_data, &p->cfg->ngeo_data,
			       BF_CONFIG_MAX_FILES);
}

static int parse_geo_override(struct config_parser *p, const char *key, const char *value)
{
	return parse_path_list(p, key, value, p->cfg->geo_override, &p->cfg->ngeo_override,
			       BF_CONFIG_MAX_FILES);
}

/* Replaces [geo] lists with the "CC:PATH" entries of value. */
static int parse_geo_lists(struct config_parser *p, const char *key, const char *value)
{
	struct bf_config *cfg = p->cfg;
	const char *cursor = value;
	const char *token;
	uint16_t country;
	size_t len;

	free_list(cfg->geo_lists, &cfg->ngeo_lists);
	while ((token = next_token(&cursor, &len))) {
		if (len < 4 || token[2] != ':' || !parse_country_letters(token, 2, &country) ||
		    token[3] != '/')
			return config_invalid(
				p,
				"invalid entry in '%s' '%.*s'; use CC:PATH with a "
				"two-letter country code and an absolute path, such as "
				"MO:/etc/borderflow/macau.txt",
				key, (int)len, token);
		if (len - 3 >= CONFIG_MAX_PATH)
			return config_invalid(p, "'%s' has a path longer than %d bytes '%.64s...'",
					      key, CONFIG_MAX_PATH - 1, token + 3);
		if (cfg->ngeo_lists == BF_CONFIG_MAX_FILES)
			return config_invalid(p,
					      "'%s' has too many entries, the first one over the "
					      "limit is '%.*s'; at most %d are accepted",
					      key, (int)len, token, BF_CONFIG_MAX_FILES);
		cfg->geo_lists[cfg->ngeo_lists] = strndup(token + 3, len - 3);
		if (!cfg->geo_lists[cfg->ngeo_lists])
			return config_no_memory(p);
		cfg->geo_list_countries[cfg->ngeo_lists++] = country;
	}
	return 0;
}

/* True for map keys or array indexes separated by single '/', such as country/iso_code. */
static bool is_mmdb_key_path(const char *path, size_t len)
{
	size_t keys = 1;

	if (!len || path[0] == '/' || path[len - 1] == '/')
		return false;
	for (size_t i = 1; i < len; i++) {
		if (path[i] != '/')
			continue;
		if (path[i - 1] == '/')
			return false;
		keys++;
	}
	return keys <= BF_GEO_MAX_MMDB_KEYS;
}

static int parse_geo_mmdb_country(struct config_parser *p, const char *key, const char *value)
{
	struct bf_config *cfg = p->cfg;
	const char *cursor = value;
	const char *token;
	size_t len;

	cfg->ngeo_mmdb_country = 0;
	while ((token = next_token(&cursor, &len))) {
		if (len >= BF_CONFIG_MMDB_PATH_SIZE || !is_mmdb_key_path(token, len))
			return config_invalid(p,
					      "invalid key path in '%s' '%.*s'; use up to %d map "
					      "keys separated by '/', such as country/iso_code, of "
					      "at most %d bytes",
					      key, (int)len, token, BF_GEO_MAX_MMDB_KEYS,
					      BF_CONFIG_MMDB_PATH_SIZE - 1);
		if (cfg->ngeo_mmdb_country == BF_CONFIG_MAX_MMDB_PATHS)
			return config_invalid(p,
					      "'%s' has too many key paths, the first one over the "
					      "limit is '%.*s'; at most %d are accepted",
					      key, (int)len, token, BF_CONFIG_MAX_MMDB_PATHS);
		memcpy(cfg->geo_mmdb_country[cfg->ngeo_mmdb_country], token, len);
		cfg->geo_mmdb_country[cfg->ngeo_mmdb_country++][len] = '\0';
	}
	return 0;
}

/*
 * Returns the [app NAME] section that already lists path: one of the sections
 * before app, or app itself when path is among its first count paths. Returns
 * NULL when no section lists it.
 */
static const struct bf_app_config *find_path_owner(const struct bf_config *cfg,
						   const struct bf_app_config *app, size_t count,
						   const char *path)
{
	const struct bf_app_config *other;
	size_t i, n;

	for (other = cfg->apps; other <= app; other++) {
		n = other == app ? count : other->npaths;
		for (i = 0; i < n; i++) {
			if (!strcmp(other->paths[i], path))
				return other;
		}
	}
	return NULL;
}

/* Same as find_path_owner() for a process name in "comm =". */
static const struct bf_app_config *find_comm_owner(const struct bf_config *cfg,
						   const struct bf_app_config *app, size_t count,
						   const char *comm)
{
	const struct bf_app_config *other;
	size_t i, n;

	for (other = cfg->apps; other <= app; other++) {
		n = other == app ? count : other->ncomms;
		for (i = 0; i < n; i++) {
			if (!strcmp(other->comms[i], comm))
				return other;
		}
	}
	return NULL;
}

/*
 * A path or process name listed twice, in one section or in two, is rejected
 * because a process would then match two applications.
 */
static int parse_app_path(struct config_parser *p, const char *key, const char *value)
{
	struct bf_app_config *app = p->app;
	const struct bf_app_config *owner;
	size_t i;
	int ret;

	ret = parse_path_list(p, key, value, app->paths, &app->npaths, BF_CONFIG_MAX_MATCHERS);
	if (ret)
		return ret;
	for (i = 0; i < app->npaths; i++) {
		owner = find_path_owner(p->cfg, app, i, app->paths[i]);
		if (owner)
			return config_invalid(p,
					      "duplicate path in '%s' '%s', also in [app %s]; give "
					      "each path to one application",
					      key, app->paths[i], owner->name);
	}
	return 0;
}

static int parse_app_comm(struct config_parser *p, const char *key, const char *value)
{
	struct bf_app_config *app = p->app;
	const struct bf_app_config *owner;
	const char *cursor = value;
	const char *token;
	size_t len;

	app->ncomms = 0;
	while ((token = next_token(&cursor, &len))) {
		if (len > CONFIG_MAX_COMM)
			return config_invalid(
				p,
				"process name in '%s' is longer than %d bytes '%.*s'; the kernel "
				"keeps "
				"only the first %d bytes of a process name, so use '%.*s'",
				key, CONFIG_MAX_COMM, (int)len, token, CONFIG_MAX_COMM,
				CONFIG_MAX_COMM, token);
		if (app->ncomms == BF_CONFIG_MAX_MATCHERS)
			return config_invalid(p,
					      "'%s' has too many process names, the first one over "
					      "the limit is '%.*s'; at most %d are accepted",
					      key, (int)len, token, BF_CONFIG_MAX_MATCHERS);
		memcpy(app->comms[app->ncomms], token, len);
		app->comms[app->ncomms][len] = '\0';
		owner = find_comm_owner(p->cfg, app, app->ncomms, app->comms[app->ncomms]);
		if (owner)
			return config_invalid(p,
					      "duplicate process name in '%s' '%.*s', also in [app "
					      "%s]; give each process name to one application",
					      key, (int)len, token, owner->name);
		app->ncomms++;
	}
	return 0;
}

static int parse_alerts_file(struct config_parser *p, const char *key, const char *value)
{
	return copy_path(p, key, value, p->cfg->alerts_file, sizeof(p->cfg->alerts_file));
}

static int parse_alerts_repeat(struct config_parser *p, const char *key, const char *value)
{
	return parse_duration_key(p, key, value, &p->cfg->alerts_repeat_s, REPEAT_MIN_S,
				  REPEAT_MAX_S, "1s to 7d");
}

static int parse_metrics_other(struct config_parser *p, const char *key, const char *value)
{
	if (!strcmp(value, "show"))
		p->cfg->metrics_other = true;
	else if (!strcmp(value, "hide"))
		p->cfg->metrics_other = false;
	else
		return config_invalid(p, "invalid value for '%s' '%s'; use show or hide", key,
				      value);
	return 0;
}

static int parse_metrics_textfile(struct config_parser *p, const char *key, const char *value)
{
	return copy_path(p, key, value, p->cfg->metrics_textfile, sizeof(p->cfg->metrics_textfile));
}

static int parse_port(const char *text, uint16_t *port)
{
	unsigned long value = 0;
	size_t i;

	if (!text[0] || strlen(text) > 5)
		return -EINVAL;
	for (i = 0; text[i]; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		value = value * 10 + (unsigned long)(text[i] - '0');
	}
	if (value < 1 || value > 65535)
		return -EINVAL;
	*port = (uint16_t)value;
	return 0;
}

/* Accepts "IPv4:port" and "[IPv6]:port" with numeric addresses, stored as written. */
static int parse_metrics_listen(struct config_parser *p, const char *key, const char *value)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *host_start, *host_end, *port_text;
	uint16_t port;
	int family;

	if (value[0] == '[') {
		family = AF_INET6;
		host_start = value + 1;
		host_end = strchr(host_start, ']');
		if (!host_end || host_end[1] != ':')
			return config_invalid(p,
					      "invalid '%s' address '%s'; write an IPv6 address as "
					      "[address]:port, such as [::1]:9782",
					      key, value);
		port_text = host_end + 2;
	} else {
		family = AF_INET;
		host_start = value;
		host_end = strrchr(value, ':');
		if (!host_end)
			return config_invalid(p,
					      "'%s' value '%s' has no port; use address:port, such "
					      "as 127.0.0.1:9782",
					      key, value);
		if (memchr(value, ':', (size_t)(host_end - value)))
			return config_invalid(p,
					      "invalid '%s' address '%s'; write an IPv6 address in "
					      "brackets, such as [::1]:9782",
					      key, value);
		port_text = host_end + 1;
	}

	if ((size_t)(host_end - host_start) >= sizeof(host))
		return config_invalid(
			p, "invalid '%s' address '%s'; use a numeric IPv4 or IPv6 address", key,
			value);
	memcpy(host, host_start, (size_t)(host_end - host_start));
	host[host_end - host_start] = '\0';
	if (inet_pton(family, host, addr) != 1)
		return config_invalid(p,
				      "invalid '%s' address '%s'; use a numeric IPv4 or IPv6 "
				      "address, such as 127.0.0.1:9782 or [::1]:9782",
				      key, value);
	if (parse_port(port_text, &port))
		return config_invalid(p, "invalid '%s' port '%s'; use a port from 1 to 65535", key,
				      value);
	return copy_value(p, key, value, p->cfg->metrics_listen, sizeof(p->cfg->metrics_listen));
}

static int parse_history_dir(struct config_parser *p, const char *key, const char *value)
{
	return copy_path(p, key, value, p->cfg->history_dir, sizeof(p->cfg->history_dir));
}

static int parse_history_retention(struct config_parser *p, const char *key, const char *value)
{
	return parse_duration_key(p, key, value, &p->cfg->history_retention_s, RETENTION_MIN_S,
				  RETENTION_MAX_S, "1h to 3650d");
}

static int parse_daemon_socket(struct config_parser *p, const char *key, const char *value)
{
	return copy_path(p, key, value, p->cfg->control_socket, sizeof(p->cfg->control_socket));
}

static int parse_daemon_pin(struct config_parser *p, const char *key, const char *value)
{
	return copy_path(p, key, value, p->cfg->pin_dir, sizeof(p->cfg->pin_dir));
}

static int parse_daemon_sockets(struct config_parser *p, const char *key, const char *value)
{
	unsigned long long parsed;
	char *end;

	errno = 0;
	parsed = strtoull(value, &end, 10);
	if (!isdigit((unsigned char)value[0]) || *end)
		return config_invalid(
			p, "invalid number for '%s' '%s'; use a whole number from %u to %u", key,
			value, BF_SOCKS_MIN, BF_SOCKS_MAX);
	/* strtoull() sets ERANGE for a number past 64 bits. */
	if (errno == ERANGE || parsed < BF_SOCKS_MIN || parsed > BF_SOCKS_MAX)
		return config_invalid(p, "number for '%s' is out of range '%s'; use %u to %u", key,
				      value, BF_SOCKS_MIN, BF_SOCKS_MAX);
	p->cfg->sockets = (uint32_t)parsed;
	return 0;
}

static const struct config_key policy_keys[] = {
	{ "approved", parse_approved, false,
	  "use ISO 3166-1 alpha-2 country codes separated by spaces, such as MO HK, or none" },
	{ "unknown", parse_unknown, false, "use alert or ignore" },
	{ 0 },
};

static const struct config_key geo_keys[] = {
	{ "data", parse_geo_data, false,
	  "use absolute paths of geolocation files separated by spaces" },
	{ "override", parse_geo_override, true,
	  "use absolute paths of \"CIDR,CC\" files separated by spaces" },
	{ "lists", parse_geo_lists, true,
	  "use CC:PATH entries separated by spaces, such as MO:/etc/borderflow/macau.txt" },
	{ "mmdb_country", parse_geo_mmdb_country, false,
	  "use mmdb key paths separated by spaces, such as country/iso_code" },
	{ 0 },
};

static const struct config_key app_keys[] = {
	{ "path", parse_app_path, false,
	  "use absolute paths separated by spaces, where a path ending in '/' is a folder" },
	{ "comm", parse_app_comm, false, "use process names of 1 to 15 bytes separated by spaces" },
	{ 0 },
};

static const struct config_key alerts_keys[] = {
	{ "file", parse_alerts_file, true,
	  "use an absolute path, or nothing to turn the alert file off" },
	{ "repeat", parse_alerts_repeat, false, "use a duration from 1s to 7d, such as 10m" },
	{ 0 },
};

static const struct config_key metrics_keys[] = {
	{ "listen", parse_metrics_listen, false,
	  "use address:port or [IPv6 address]:port, such as 127.0.0.1:9782" },
	{ "other", parse_metrics_other, false, "use show or hide" },
	{ "textfile", parse_metrics_textfile, true,
	  "use an absolute folder path, or nothing for no textfile" },
	{ 0 },
};

static const struct config_key history_keys[] = {
	{ "dir", parse_history_dir, false, "use an absolute path" },
	{ "retention", parse_history_retention, false,
	  "use a duration from 1h to 3650d, such as 30d" },
	{ 0 },
};

static const struct config_key daemon_keys[] = {
	{ "socket", parse_daemon_socket, false, "use an absolute path" },
	{ "pin", parse_daemon_pin, false, "use an absolute path in a BPF file system" },
	{ "sockets", parse_daemon_sockets, false, "use a whole number from 1024 to 4194304" },
	{ 0 },
};

static const struct config_section_def sections[SECTION_COUNT] = {
	[SECTION_POLICY] = { "policy", policy_keys },
	[SECTION_GEO] = { "geo", geo_keys },
	[SECTION_APP] = { "app", app_keys },
	[SECTION_ALERTS] = { "alerts", alerts_keys },
	[SECTION_METRICS] = { "metrics", metrics_keys },
	[SECTION_HISTORY] = { "history", history_keys },
	[SECTION_DAEMON] = { "daemon", daemon_keys },
};

#define SECTIONS_ACCEPTED "[policy], [geo], [app NAME], [alerts], [metrics], [history], [daemon]"

/* Checks the section that ends at a new header or at the end of the file. */
static int config_end_section(struct config_parser *p)
{
	const struct bf_app_config *app = p->app;

	if (p->section != SECTION_APP || app->npaths || app->ncomms)
		return 0;
	return config_error(
		p, p->section_line, -EINVAL,
		"section has neither 'path' nor 'comm' '[app %s]'; set at least one of them",
		app->name);
}

static bool is_app_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int config_begin_app(struct config_parser *p, const char *name, size_t len)
{
	struct bf_config *cfg = p->cfg;
	struct bf_app_config *app;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!is_app_name_char(name[i]))
			break;
	}
	if (len == 0 || len >= sizeof(app->name) || i < len)
		return config_invalid(p,
				      "invalid application name '%.*s'; use 1 to %zu characters of "
				      "a-z, 0-9, '_' and '-'",
				      (int)len, name, sizeof(app->name) - 1);
	if ((len == 5 && !strncmp(name, "other", 5)) ||
	    (len == 12 && !strncmp(name, "unattributed", 12)))
		return config_invalid(p,
				      "application name is reserved '%.*s'; 'other' and "
				      "'unattributed' label traffic "
				      "of no watched application, so choose another name",
				      (int)len, name);

	/* The first [app NAME] section of the file replaces the default application. */
	if (!p->file_has_apps) {
		for (i = 0; i < cfg->napps; i++)
			free_list(cfg->apps[i].paths, &cfg->apps[i].npaths);
		cfg->napps = 0;
		p->file_has_apps = true;
	}
	for (i = 0; i < cfg->napps; i++) {
		if (strlen(cfg->apps[i].name) == len && !strncmp(cfg->apps[i].name, name, len))
			return config_invalid(p,
					      "duplicate section '[app %.*s]', first at line %d; "
					      "use one section per application",
					      (int)len, name, p->app_first_line[i]);
	}
	if (cfg->napps == BF_MAX_APPS)
		return config_invalid(p,
				      "too many [app NAME] sections, the first one over the limit "
				      "is '[app %.*s]'; at most %u are accepted",
				      (int)len, name, BF_MAX_APPS);

	p->app_first_line[cfg->napps] = p->lineno;
	app = &cfg->apps[cfg->napps++];
	memset(app, 0, sizeof(*app));
	memcpy(app->name, name, len);
	p->app = app;
	p->section = SECTION_APP;
	return 0;
}

static int config_begin_named_section(struct config_parser *p, const char *name, size_t len)
{
	int kind;

	for (kind = SECTION_NONE + 1; kind < SECTION_COUNT; kind++) {
		if (kind != SECTION_APP && strlen(sections[kind].name) == len &&
		    !strncmp(sections[kind].name, name, len))
			break;
	}
	if (kind == SECTION_COUNT)
		return config_invalid(
			p, "unknown section '[%.*s]'; the accepted sections are " SECTIONS_ACCEPTED,
			(int)len, name);
	if (p->section_first_line[kind])
		return config_invalid(
			p, "duplicate section '[%.*s]', first at line %d; write each section once",
			(int)len, name, p->section_first_line[kind]);
	p->section_first_line[kind] = p->lineno;
	p->section = kind;
	return 0;
}

/*
 * Starts the section of a header line. inih parses the same line again, but
 * its copy of the name is cut to 49 bytes, so the section is tracked here.
 */
static int config_begin_section(struct config_parser *p, const char *text)
{
	const char *name = text + 1;
	const char *close = strchr(name, ']');
	size_t len;
	int ret;

	if (!close)
		return config_invalid(p, "section header has no closing ']' '%s'; use [name]",
				      text);
	if (close[1])
		return config_invalid(
			p, "unexpected text after section header '%s'; start a comment with ' ;'",
			text);
	len = (size_t)(close - name);

	ret = config_end_section(p);
	if (ret)
		return ret;
	memset(p->key_line, 0, sizeof(p->key_line));
	p->section_line = p->lineno;

	if (len > 4 && !strncmp(name, "app ", 4))
		ret = config_begin_app(p, name + 4, len - 4);
	else if (len == 3 && !strncmp(name, "app", 3))
		ret = config_invalid(p, "section has no application name '%s'; use [app NAME]",
				     text);
	else
		ret = config_begin_named_section(p, name, len);
	if (ret)
		return ret;
	(void)snprintf(p->section_label, sizeof(p->section_label), "[%.*s]", (int)len, name);
	return 0;
}

/* Strips a UTF-8 byte order mark, whitespace at both ends and a " ;" comment. */
static char *clean_line(char *line, int lineno)
{
	char *start = line;
	char *end;
	char *c;

	if (lineno == 1 && !strncmp(start, "\xef\xbb\xbf", 3))
		start += 3;
	while (isspace((unsigned char)*start))
		start++;
	if (*start != ';' && *start != '#') {
		for (c = start; *c; c++) {
			if (c > start && *c == ';' && isspace((unsigned char)c[-1])) {
				*c = '\0';
				break;
			}
		}
	}
	end = start + strlen(start);
	while (end > start && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return start;
}

/*
 * The ini_reader of ini_parse_stream(): returns the next line, cleaned, in
 * buf of size bytes, or NULL at the end of the file or after an error.
 */
static char *config_read_line(char *buf, int size, void *stream)
{
	struct config_parser *p = stream;
	ssize_t len;
	size_t text_len;

	if (p->ret)
		return NULL;
	errno = 0;
	len = getline(&p->line, &p->line_cap, p->file);
	if (len < 0) {
		if (ferror(p->file))
			p->ret = bf_error_set(p->err, errno ? -errno : -EIO,
					      "failed to read config file '%s': %s", p->cfg->path,
					      strerror(errno ? errno : EIO));
		return NULL;
	}
	p->lineno++;
	p->bytes_read += (size_t)len;
	if (p->bytes_read > CONFIG_MAX_FILE_BYTES) {
		p->ret = bf_error_set(p->err, -EFBIG, "config file '%s' is larger than 1 MiB",
				      p->cfg->path);
		return NULL;
	}
	if (memchr(p->line, '\0', (size_t)len)) {
		(void)config_invalid(p, "line contains a NUL byte '%s'; a config file is text",
				     p->line);
		return NULL;
	}

	p->text = clean_line(p->line, p->lineno);
	text_len = strlen(p->text);
	if (text_len >= (size_t)size) {
		(void)config_invalid(p, "line is longer than %d bytes '%.40s...'; shorten it",
				     size - 1, p->text);
		return NULL;
	}
	if (p->text[0] == '[' && config_begin_section(p, p->text))
		return NULL;
	memcpy(buf, p->text, text_len + 1);
	return buf;
}

static const struct config_key *find_key(const struct config_key *keys, const char *name,
					 size_t *index)
{
	size_t i;

	for (i = 0; keys[i].name; i++) {
		if (!strcmp(keys[i].name, name)) {
			*index = i;
			return &keys[i];
		}
	}
	return NULL;
}

static int config_unknown_key(struct config_parser *p, const char *name)
{
	const struct config_key *keys = sections[p->section].keys;
	char accepted[128] = "";
	size_t i, used = 0;

	for (i = 0; keys[i].name && used < sizeof(accepted); i++)
		used += (size_t)snprintf(accepted + used, sizeof(accepted) - used, "%s%s",
					 i ? ", " : "", keys[i].name);
	return config_invalid(p, "unknown key in section %s '%s'; the accepted keys are %s",
			      p->section_label, name, accepted);
}

/* The ini_handler of ini_parse_stream(). Returns 1 to continue, 0 on error. */
static int config_handle_pair(void *user, const char *section, const char *name, const char *value)
{
	struct config_parser *p = user;
	const struct config_key *key;
	size_t index;

	if (p->ret)
		return 0;
	if (!value) {
		(void)config_invalid(p, "line has no '=' '%s'; use key = value", name);
		return 0;
	}
	if (p->section == SECTION_NONE) {
		(void)config_invalid(p,
				     "key outside any section '%s'; put it under a section header "
				     "such as [policy]",
				     name);
		return 0;
	}
	key = find_key(sections[p->section].keys, name, &index);
	if (!key) {
		(void)config_unknown_key(p, name);
		return 0;
	}
	if (p->key_line[index]) {
		(void)config_invalid(
			p, "duplicate key in section %s '%s', first at line %d; set each key once",
			p->section_label, name, p->key_line[index]);
		return 0;
	}
	p->key_line[index] = p->lineno;
	if (!value[0] && !key->allow_empty) {
		(void)config_invalid(p, "empty value for '%s' ''; %s", name, key->accepted);
		return 0;
	}
	return key->parse(p, name, value) ? 0 : 1;
}

static int config_open(const char *path, FILE **file, struct bf_error *err)
{
	struct stat st;
	int fd, ret;

	/* O_NONBLOCK keeps open() from waiting for a writer when path is a FIFO. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		return bf_error_set(err, ret, "failed to open config file '%s': %s", path,
				    strerror(-ret));
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		(void)bf_error_set(err, ret, "failed to stat config file '%s': %s", path,
				   strerror(-ret));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = bf_error_set(err, -EINVAL,
				   "config file '%s' is not a regular file; name a regular file",
				   path);
		goto err_close;
	}
	if (st.st_size > CONFIG_MAX_FILE_BYTES) {
		ret = bf_error_set(err, -EFBIG,
				   "config file '%s' is larger than 1 MiB (%lld bytes); a config "
				   "file is at most 1 MiB",
				   path, (long long)st.st_size);
		goto err_close;
	}
	*file = fdopen(fd, "r");
	if (!*file) {
		ret = -errno;
		(void)bf_error_set(err, ret, "failed to open config file '%s': %s", path,
				   strerror(-ret));
		goto err_close;
	}
	return 0;

err_close:
	(void)close(fd);
	return ret;
}

/*
 * Runs inih over p->file. Debian's libinih1 55-1 exports its options as
 * process-wide variables (ini_max_line and others), so they are set for this
 * parse and restored after it.
 * NOTE: a parse is therefore unsafe while another thread of the process runs inih.
 */
static int config_parse_stream(struct config_parser *p)
{
	static char comment_prefixes[] = ";#";
	char *saved_prefixes = ini_start_comment_prefixes;
	bool saved_use_stack = ini_use_stack;
	bool saved_stop = ini_stop_on_first_error;
	bool saved_no_value = ini_allow_no_value;
	int saved_max_line = ini_max_line;
	int ret;

	ini_start_comment_prefixes = comment_prefixes;
	ini_use_stack = true;
	ini_max_line = CONFIG_MAX_LINE;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;

	ret = ini_parse_stream(config_read_line, p, config_handle_pair, p);

	ini_start_comment_prefixes = saved_prefixes;
	ini_use_stack = saved_use_stack;
	ini_max_line = saved_max_line;
	ini_stop_on_first_error = saved_stop;
	ini_allow_no_value = saved_no_value;

	if (p->ret)
		return p->ret;
	/* inih stops at its first error, so p->text is still the line it rejected. */
	if (ret > 0)
		return config_error(p, ret, -EINVAL,
				    "invalid line '%s'; use [section], key = value, or a comment "
				    "starting with ';' or '#'",
				    p->text);
	if (ret < 0)
		return config_no_memory(p);
	return config_end_section(p);
}

void bf_config_defaults(struct bf_config *cfg)
{
	struct bf_app_config *app = &cfg->apps[0];

	memset(cfg, 0, sizeof(*cfg));

	cfg->approved[0] = BF_CC('M', 'O');
	cfg->approved[1] = BF_CC('H', 'K');
	cfg->napproved = 2;
	cfg->unknown_alert = true;

	cfg->geo_data[0] = default_geo_data4;
	cfg->geo_data[1] = default_geo_data6;
	cfg->ngeo_data = 2;
	strcpy(cfg->geo_mmdb_country[0], "country/iso_code");
	strcpy(cfg->geo_mmdb_country[1], "registered_country/iso_code");
	strcpy(cfg->geo_mmdb_country[2], "country_code");
	cfg->ngeo_mmdb_country = 3;

	strcpy(app->name, "dingtalk");
	app->paths[0] = default_app_path;
	app->npaths = 1;
	strcpy(app->comms[0], "com.alibabainc.");
	app->ncomms = 1;
	cfg->napps = 1;

	strcpy(cfg->alerts_file, "/var/log/borderflow/alerts.jsonl");
	cfg->alerts_repeat_s = 10 * 60;
	strcpy(cfg->metrics_listen, "127.0.0.1:9782");
	cfg->metrics_other = true;
	cfg->metrics_textfile[0] = '\0';
	strcpy(cfg->history_dir, "/var/lib/borderflow/history");
	cfg->history_retention_s = 30 * 86400;
	strcpy(cfg->control_socket, "/run/borderflow/borderflowd.sock");
	strcpy(cfg->pin_dir, "/sys/fs/bpf/borderflow");
	cfg->sockets = BF_SOCKS_DEFAULT;
}

/*
 * NOTE: cfg is overwritten, not freed. A cfg filled by an earlier
 * bf_config_load() must go through bf_config_free() before it is loaded again.
 */
int bf_config_load(struct bf_config *cfg, const char *path, struct bf_error *err)
{
	struct config_parser p = { .cfg = cfg, .err = err };
	size_t len = strlen(path);
	int ret;

	bf_config_defaults(cfg);
	if (len >= sizeof(cfg->path))
		return bf_error_set(err, -ENAMETOOLONG,
				    "config file path is longer than %zu bytes '%.64s...'",
				    sizeof(cfg->path) - 1, path);
	ret = config_open(path, &p.file, err);
	if (ret)
		return ret;
	memcpy(cfg->path, path, len + 1);

	ret = config_parse_stream(&p);

	(void)fclose(p.file);
	free(p.line);
	if (ret)
		bf_config_free(cfg);
	return ret;
}

/* Frees what bf_config_load() allocated and leaves cfg at the defaults. */
void bf_config_free(struct bf_config *cfg)
{
	size_t i;

	free_list(cfg->geo_data, &cfg->ngeo_data);
	free_list(cfg->geo_override, &cfg->ngeo_override);
	free_list(cfg->geo_lists, &cfg->ngeo_lists);
	for (i = 0; i < cfg->napps && i < BF_MAX_APPS; i++)
		free_list(cfg->apps[i].paths, &cfg->apps[i].npaths);
	bf_config_defaults(cfg);
}

int bf_parse_duration(const char *text, uint64_t *seconds)
{
	const char *c = text;
	uint64_t value = 0;
	uint64_t unit;

	if (*c < '0' || *c > '9')
		return -EINVAL;
	for (; *c >= '0' && *c <= '9'; c++) {
		uint64_t digit = (uint64_t)(*c - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -EINVAL;
		value = value * 10 + digit;
	}
	switch (*c) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (c[1] != '\0' || value == 0 || value > UINT64_MAX / unit)
		return -EINVAL;
	*seconds = value * unit;
	return 0;
}

enum bf_verdict bf_config_verdict(const struct bf_config *cfg, uint16_t country, bool local)
{
	size_t i;

	if (local)
		return BF_VERDICT_LOCAL;
	if (country == BF_CC_NONE || is_pseudo_country(country))
		return BF_VERDICT_UNKNOWN;
	for (i = 0; i < cfg->napproved; i++) {
		if (cfg->approved[i] == country)
			return BF_VERDICT_APPROVED;
	}
	return BF_VERDICT_FOREIGN;
}

const char *bf_verdict_name(enum bf_verdict verdict)
{
	switch (verdict) {
	case BF_VERDICT_LOCAL:
		return "local";
	case BF_VERDICT_APPROVED:
		return "approved";
	case BF_VERDICT_FOREIGN:
		return "foreign";
	case BF_VERDICT_UNKNOWN:
		return "unknown";
	default:
		return "invalid";
	}
}
