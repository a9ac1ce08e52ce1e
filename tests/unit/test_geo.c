// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the geolocation library: the file formats and their errors,
 * layering and flattening, lookups, and the split of ranges into prefixes.
 *
 * Every file the tests read is written into a temporary folder, except the
 * real default data: set BF_TEST_GEOIP_DIR to a folder with the Tor/IPFire
 * files geoip and geoip6 (default /usr/share/borderflow), or that test skips.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "user/lib/geo.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static char test_dir[256];

/* Helpers */

static void write_bytes(char path[PATH_MAX], const char *name, const char *content, size_t size)
{
	FILE *f;

	assert_true(snprintf(path, PATH_MAX, "%s/%s", test_dir, name) < PATH_MAX);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
}

static void write_file(char path[PATH_MAX], const char *name, const char *content)
{
	write_bytes(path, name, content, strlen(content));
}

/* Writes a file and loads it as a new layer, which must succeed. */
static void load_text(struct bf_geo_table *t, const char *name, const char *content)
{
	char path[PATH_MAX];
	struct bf_error err = { "" };
	int ret;

	write_file(path, name, content);
	ret = bf_geo_load_file(t, path, &err);
	if (ret)
		fail_msg("loading %s returned %d: %s", name, ret, err.msg);
}

static void flatten(struct bf_geo_table *t)
{
	struct bf_error err = { "" };
	int ret = bf_geo_flatten(t, &err);

	if (ret)
		fail_msg("bf_geo_flatten returned %d: %s", ret, err.msg);
}

static uint32_t ip4(const char *text)
{
	uint32_t addr = 0;

	assert_int_equal(bf_parse_address(text, &addr, NULL), 4);
	return addr;
}

static void ip6(const char *text, uint8_t addr[16])
{
	assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
}

static void format4(uint32_t addr, char out[INET_ADDRSTRLEN])
{
	uint32_t be = htonl(addr);

	assert_non_null(inet_ntop(AF_INET, &be, out, INET_ADDRSTRLEN));
}

static void format6(const uint8_t addr[16], char out[INET6_ADDRSTRLEN])
{
	assert_non_null(inet_ntop(AF_INET6, addr, out, INET6_ADDRSTRLEN));
}

static void append(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	assert_true((size_t)vsnprintf(buf + len, size - len, fmt, ap) < size - len);
	va_end(ap);
}

static bool is_builtin(const struct bf_geo_table *t, uint8_t source)
{
	return t->sources[source].format == BF_GEO_FORMAT_BUILTIN;
}

/*
 * Writes the ranges of a table as "first-last CC source" joined by "; ".
 * The source is the index, or "local" for the builtin table, which is left
 * out unless with_builtin is set.
 */
static void dump4(const struct bf_geo_table *t, bool with_builtin, char *out, size_t size)
{
	char first[INET_ADDRSTRLEN], last[INET_ADDRSTRLEN], cc[3];

	out[0] = '\0';
	for (size_t i = 0; i < t->n4; i++) {
		const struct bf_range4 *r = &t->v4[i];

		if (is_builtin(t, r->source) && !with_builtin)
			continue;
		format4(r->first, first);
		format4(r->last, last);
		bf_country_format(r->country, cc);
		if (is_builtin(t, r->source))
			append(out, size, "%s%s-%s %s local", out[0] ? "; " : "", first, last, cc);
		else
			append(out, size, "%s%s-%s %s %u", out[0] ? "; " : "", first, last, cc,
			       r->source);
	}
}

static void dump6(const struct bf_geo_table *t, bool with_builtin, char *out, size_t size)
{
	char first[INET6_ADDRSTRLEN], last[INET6_ADDRSTRLEN], cc[3];

	out[0] = '\0';
	for (size_t i = 0; i < t->n6; i++) {
		const struct bf_range6 *r = &t->v6[i];

		if (is_builtin(t, r->source) && !with_builtin)
			continue;
		format6(r->first, first);
		format6(r->last, last);
		bf_country_format(r->country, cc);
		if (is_builtin(t, r->source))
			append(out, size, "%s%s-%s %s local", out[0] ? "; " : "", first, last, cc);
		else
			append(out, size, "%s%s-%s %s %u", out[0] ? "; " : "", first, last, cc,
			       r->source);
	}
}

/*
 * Checks what a lookup returns, as "address CC source" so that a failure
 * prints the address along with the actual and expected result. expected is
 * "none" when no range may cover the address.
 */
static void check_lookup(const struct bf_geo_table *t, const char *addr, const char *expected)
{
	char actual[128], want[128], cc[3];
	uint8_t v6[16];
	uint32_t v4;
	int family = bf_parse_address(addr, &v4, v6);
	uint8_t source = 0;
	bool found;

	assert_int_not_equal(family, 0);
	if (family == 4) {
		const struct bf_range4 *r = bf_geo_lookup4(t, v4);

		found = r;
		if (r) {
			assert_true(r->first <= v4 && v4 <= r->last);
			bf_country_format(r->country, cc);
			source = r->source;
		}
	} else {
		const struct bf_range6 *r = bf_geo_lookup6(t, v6);

		found = r;
		if (r) {
			assert_true(memcmp(r->first, v6, 16) <= 0 && memcmp(v6, r->last, 16) <= 0);
			bf_country_format(r->country, cc);
			source = r->source;
		}
	}

	if (!found)
		(void)snprintf(actual, sizeof(actual), "%s none", addr);
	else if (is_builtin(t, source))
		(void)snprintf(actual, sizeof(actual), "%s %s local", addr, cc);
	else
		(void)snprintf(actual, sizeof(actual), "%s %s %u", addr, cc, source);
	(void)snprintf(want, sizeof(want), "%s %s", addr, expected);
	assert_string_equal(actual, want);
}

static void check_contains(const char *message, const char *part)
{
	if (!strstr(message, part))
		fail_msg("message \"%s\" does not contain \"%s\"", message, part);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int setup_dir(void **state)
{
	const char *tmp = getenv("TMPDIR");

	int len = snprintf(test_dir, sizeof(test_dir), "%s/bf-test-geo.XXXXXX", tmp ? tmp : "/tmp");

	if (len < 0 || (size_t)len >= sizeof(test_dir))
		return -1;
	return mkdtemp(test_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	return nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Formats */

static void test_tor4_format(void **state)
{
	static const char content[] =
		"# This file has been converted from the IPFire Location database\r\n"
		"#\r\n"
		"# Generated: Thu, 25 Jun 2026 04:33:59 GMT  \r\n"
		"# Generated: not this one\r\n"
		"\r\n"
		"3221225984,3221226239,mo\r\n" /* 192.0.2.0/24 */
		"   \t\r\n"
		"3325256704,3325256959,Cn\r\n" /* 198.51.100.0/24 */
		"3405803776,3405804031,??\r\n" /* 203.0.113.0/24 */
		"16777216,16777216,AU";	       /* 1.0.0.0, no line end */
	struct bf_geo_table t;
	char path[PATH_MAX];
	struct bf_error err = { "" };

	bf_geo_table_init(&t);
	write_file(path, "tor4", content);
	assert_int_equal(bf_geo_load_file(&t, path, &err), 0);
	assert_int_equal(t.nsources, 1);
	assert_string_equal(t.sources[0].path, path);
	assert_int_equal(t.sources[0].format, BF_GEO_FORMAT_TOR4);
	assert_string_equal(t.sources[0].date, "Thu, 25 Jun 2026 04:33:59 GMT");
	assert_int_equal(t.sources[0].count4, 4);
	assert_int_equal(t.sources[0].count6, 0);
	assert_int_equal(t.n4, 4);
	assert_int_equal(t.n6, 0);
	assert_false(t.flat);

	flatten(&t);
	check_lookup(&t, "192.0.2.0", "MO 0");
	check_lookup(&t, "198.51.100.200", "CN 0");
	check_lookup(&t, "203.0.113.9", "?? 0");
	check_lookup(&t, "1.0.0.0", "AU 0");
	check_lookup(&t, "1.0.0.1", "none");
	bf_geo_table_free(&t);
}

static void test_tor6_format(void **state)
{
	static const char content[] = "# Generated: Mon, 01 Jan 2024 00:00:00 GMT\n"
				      "2001:db8:852::,2001:db8:852:ffff:ffff:ffff:ffff:ffff,hk\n"
				      "2001:db8:853::,2001:db8:853::ff,MO\n"
				      "2001:db8:854::1,2001:db8:854::1,??\n";
	struct bf_geo_table t;
	char path[PATH_MAX];
	struct bf_error err = { "" };

	bf_geo_table_init(&t);
	write_file(path, "tor6", content);
	assert_int_equal(bf_geo_load_file(&t, path, &err), 0);
	assert_int_equal(t.sources[0].format, BF_GEO_FORMAT_TOR6);
	assert_string_equal(t.sources[0].date, "Mon, 01 Jan 2024 00:00:00 GMT");
	assert_int_equal(t.sources[0].count4, 0);
	assert_int_equal(t.sources[0].count6, 3);
	assert_int_equal(t.n6, 3);

	flatten(&t);
	check_lookup(&t, "2001:db8:852::", "HK 0");
	check_lookup(&t, "2001:db8:852:ffff:ffff:ffff:ffff:ffff", "HK 0");
	check_lookup(&t, "2001:db8:853::ff", "MO 0");
	check_lookup(&t, "2001:db8:854::1", "?? 0");
	check_lookup(&t, "2001:db8:854::2", "none");
	bf_geo_table_free(&t);
}

static void test_cidr_format(void **state)
{
	static const char content[] = "# overrides\n"
				      "2001:db8:852::/48,HK\n"
				      "192.0.2.0/24,MO\n"
				      "  198.51.100.0/25 , cn \t\n"
				      "203.0.113.7/32,??\n"
				      "::ffff:198.51.100.128/121,US\n";
	struct bf_geo_table t;
	char path[PATH_MAX];
	struct bf_error err = { "" };
	char dump[512];

	bf_geo_table_init(&t);
	write_file(path, "cidr", content);
	assert_int_equal(bf_geo_load_cidr_file(&t, path, &err), 0);
	assert_int_equal(t.sources[0].format, BF_GEO_FORMAT_CIDR);
	assert_string_equal(t.sources[0].date, "");
	assert_string_equal(t.sources[0].detail, "prefixes 'CIDR,CC'");
	assert_int_equal(t.sources[0].count4, 4);
	assert_int_equal(t.sources[0].count6, 1);

	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "192.0.2.0-192.0.2.255 MO 0; "
				  "198.51.100.0-198.51.100.127 CN 0; "
				  "198.51.100.128-198.51.100.255 US 0; "
				  "203.0.113.7-203.0.113.7 ?? 0");
	dump6(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "2001:db8:852::-2001:db8:852:ffff:ffff:ffff:ffff:ffff HK 0");
	bf_geo_table_free(&t);
}

static void test_cidr_format_any_loader(void **state)
{
	struct bf_geo_table t;

	bf_geo_table_init(&t);
	load_text(&t, "cidr-any", "192.0.2.0/24,MO\n");
	assert_int_equal(t.sources[0].format, BF_GEO_FORMAT_CIDR);
	bf_geo_table_free(&t);
}

static void test_line_length_limit(void **state)
{
	char line[1100], content[1200], path[PATH_MAX];
	struct bf_geo_table t;
	struct bf_error err = { "" };

	/* 1024 characters are accepted, CR LF not counted. */
	memset(line, ' ', 1018);
	strcpy(line + 1018, "1,2,US");
	assert_int_equal(strlen(line), 1024);
	(void)snprintf(content, sizeof(content), "%s\r\n", line);
	bf_geo_table_init(&t);
	write_file(path, "line-1024", content);
	assert_int_equal(bf_geo_load_file(&t, path, &err), 0);
	bf_geo_table_free(&t);
}

static void test_overlap_same_country_merges(void **state)
{
	struct bf_geo_table t;
	char dump[256];

	bf_geo_table_init(&t);
	load_text(&t, "merge-same-cidr",
		  "192.0.2.0/24,MO\n"
		  "192.0.2.0/24,mo\n"
		  "192.0.2.128/25,MO\n");
	assert_int_equal(t.n4, 1);
	load_text(&t, "merge-same-tor4",
		  "3325256804,3325256904,CN\n"	 /* 198.51.100.100-198.51.100.200 */
		  "3325256704,3325256854,CN\n"); /* 198.51.100.0-198.51.100.150 */
	assert_int_equal(t.n4, 2);
	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "192.0.2.0-192.0.2.255 MO 0; 198.51.100.0-198.51.100.200 CN 1");
	bf_geo_table_free(&t);
}

/* Errors */

struct error_case {
	const char *name;
	const char *content;
	int line;	      /* line named in the message, 0 for none */
	const char *parts[3]; /* further text the message must contain */
};

static const struct error_case error_cases[] = {
	{ "cc-long",
	  "1,2,USA\n",
	  1,
	  { "invalid country code 'USA'", "two ASCII letters or '?\?'" } },
	{ "cc-digit", "# comment\n1,2,U1\n", 2, { "invalid country code 'U1'" } },
	{ "cc-empty", "1,2,\n", 1, { "invalid country code ''" } },
	{ "cc-one", "192.0.2.0/24,M\n", 1, { "invalid country code 'M'" } },
	{ "cc-utf8", "192.0.2.0/24,\xc3\x89\xc3\x89\n", 1, { "invalid country code '\xc3\x89" } },
	{ "cc-question", "1,2,?\n", 1, { "invalid country code '?'" } },
	{ "tor4-reversed", "10,9,US\n", 1, { "invalid range '10,9'", "greater than" } },
	{ "tor6-reversed",
	  "2001:db8::2,2001:db8::1,US\n",
	  1,
	  { "invalid range '2001:db8::2,2001:db8::1'", "greater than" } },
	{ "tor4-address", "1,2,US\n12x,13,US\n", 2, { "invalid address '12x'", "decimal IPv4" } },
	/* The first data line decides whether decimal numbers are IPv4 or 128-bit IPv6. */
	{ "tor4-overflow",
	  "1,2,US\n4294967296,4294967296,US\n",
	  2,
	  { "invalid address '4294967296'", "decimal IPv4 address from 0 to 4294967295" } },
	{ "decimal6-overflow",
	  "4294967296,340282366920938463463374607431768211456,US\n",
	  1,
	  { "invalid address '340282366920938463463374607431768211456'",
	    "decimal IPv6 address from 0 to 340282366920938463463374607431768211455" } },
	{ "text4-reversed",
	  "192.0.2.255,192.0.2.0,MO\n",
	  1,
	  { "invalid range '192.0.2.255,192.0.2.0'", "greater than" } },
	{ "text4-address",
	  "192.0.2.256,192.0.2.255,MO\n",
	  1,
	  { "invalid address '192.0.2.256'", "expected an IPv4 address" } },
	{ "text-families",
	  "192.0.2.0,2001:db8::ff,MO\n",
	  1,
	  { "invalid range '192.0.2.0,2001:db8::ff'", "different families" } },
	{ "tor4-empty", ",2,US\n", 1, { "invalid address ''" } },
	{ "tor6-address",
	  "2001:db8::g,2001:db8::ff,US\n",
	  1,
	  { "invalid address '2001:db8::g'", "IPv6 address" } },
	{ "cidr-address", "192.0.2/24,US\n", 1, { "invalid prefix '192.0.2/24'", "IPv4 address" } },
	{ "cidr-address6", "2001:db8:::/48,US\n", 1, { "invalid prefix '2001:db8:::/48'" } },
	{ "cidr-length33", "10.0.0.0/33,US\n", 1, { "invalid prefix '10.0.0.0/33'", "0 to 32" } },
	{ "cidr-length129",
	  "2001:db8::/129,HK\n",
	  1,
	  { "invalid prefix '2001:db8::/129'", "0 to 128" } },
	{ "cidr-length-empty", "10.0.0.0/,US\n", 1, { "invalid prefix '10.0.0.0/'" } },
	{ "cidr-length-negative", "10.0.0.0/-1,US\n", 1, { "invalid prefix '10.0.0.0/-1'" } },
	{ "cidr-length-huge",
	  "10.0.0.0/4294967304,US\n",
	  1,
	  { "invalid prefix '10.0.0.0/4294967304'" } },
	{ "cidr-host4",
	  "10.0.0.1/8,US\n",
	  1,
	  { "invalid prefix '10.0.0.1/8'", "host bits", "probably '10.0.0.0/8'" } },
	{ "cidr-host6",
	  "2001:db8::1/32,HK\n",
	  1,
	  { "invalid prefix '2001:db8::1/32'", "host bits", "probably '2001:db8::/32'" } },
	{ "cidr-no-length", "192.0.2.1,US\n", 1, { "missing prefix length in '192.0.2.1'" } },
	{ "mixed-cidr-tor4",
	  "192.0.2.0/24,MO\n\n1,2,US\n",
	  3,
	  { "'1,2,US' is a decimal IPv4 range",
	    "first data line (line 1) is a prefix 'CIDR,CC'" } },
	{ "mixed-tor4-tor6",
	  "# x\n1,2,US\n2001:db8::,2001:db8::ff,US\n",
	  3,
	  { "'2001:db8::,2001:db8::ff,US' is an IPv6 range", "(line 2) is a decimal IPv4 range" } },
	{ "mixed-tor6-tor4",
	  "2001:db8::,2001:db8::ff,US\n1,2,US\n",
	  2,
	  { "'1,2,US' is a decimal IPv4 range", "(line 1) is an IPv6 range" } },
	{ "mixed-tor4-cidr", "1,2,US\n192.0.2.0/24,MO\n", 2, { "'192.0.2.0/24,MO' is a prefix" } },
	{ "unrecognized", "just text\n", 1, { "unrecognized line 'just text'" } },
	{ "too-many-fields", "1,2,US,extra\n", 1, { "unrecognized line '1,2,US,extra'" } },
	{ "overlap-cidr",
	  "# x\n192.0.2.0/24,MO\n198.51.100.0/24,CN\n192.0.2.128/25,US\n",
	  4,
	  { "range '192.0.2.128/25' with country US overlaps line 2 with country MO" } },
	{ "overlap-tor4",
	  "100,200,US\n150,250,CN\n",
	  2,
	  { "range '150,250' with country CN overlaps line 1 with country US" } },
	{ "overlap-tor4-unsorted",
	  "150,250,CN\n100,200,US\n",
	  2,
	  { "range '100,200' with country US overlaps line 1 with country CN" } },
	{ "overlap-after-merge",
	  "100,200,US\n150,300,US\n250,260,CN\n",
	  3,
	  { "range '250,260' with country CN overlaps line 2 with country US" } },
	{ "duplicate",
	  "100,200,US\n100,200,CN\n",
	  2,
	  { "range '100,200' with country CN overlaps line 1 with country US" } },
	{ "overlap-tor6",
	  "2001:db8::,2001:db8::ffff,HK\n2001:db8::100,2001:db8::1ff,MO\n",
	  2,
	  { "range '2001:db8::100,2001:db8::1ff' with country MO overlaps line 1 with country "
	    "HK" } },
	{ "empty", "", 0, { "no data lines" } },
	{ "only-comments",
	  "# Generated: Thu, 25 Jun 2026 04:33:59 GMT\n\n  \r\n",
	  0,
	  { "no data lines" } },
};

static void test_load_errors(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		const struct error_case *c = &error_cases[i];
		struct bf_geo_table t;
		struct bf_error err = { "" };
		char path[PATH_MAX], where[PATH_MAX + 64];
		int ret;

		bf_geo_table_init(&t);
		write_file(path, c->name, c->content);
		ret = bf_geo_load_file(&t, path, &err);
		if (ret != -EINVAL)
			fail_msg("case %s: returned %d (%s), expected -EINVAL", c->name, ret,
				 err.msg);
		if (c->line)
			(void)snprintf(where, sizeof(where),
				       "failed to load geolocation file '%s' line %d: ", path,
				       c->line);
		else
			(void)snprintf(where, sizeof(where),
				       "failed to load geolocation file '%s': ", path);
		check_contains(err.msg, where);
		for (size_t j = 0; j < ARRAY_SIZE(c->parts) && c->parts[j]; j++)
			check_contains(err.msg, c->parts[j]);
		assert_int_equal(t.nsources, 0);
		assert_int_equal(t.n4, 0);
		assert_int_equal(t.n6, 0);
		bf_geo_table_free(&t);
	}
}

static void test_line_too_long(void **state)
{
	/* Line 2 is too long: 1025 characters, or 70000 without a line end. */
	static const struct {
		size_t length;
		const char *end;
	} lines[] = { { 1025, "\n" }, { 70000, "" } };
	struct bf_geo_table t;
	char path[PATH_MAX], where[PATH_MAX + 64];

	bf_geo_table_init(&t);
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		char *content = calloc(1, lines[i].length + 16);
		struct bf_error err = { "" };

		assert_non_null(content);
		strcpy(content, "1,2,US\n");
		memset(content + strlen(content), 'x', lines[i].length);
		strcat(content, lines[i].end);
		write_file(path, "long-line", content);
		free(content);

		assert_int_equal(bf_geo_load_file(&t, path, &err), -EINVAL);
		(void)snprintf(where, sizeof(where), "'%s' line 2: ", path);
		check_contains(err.msg, where);
		check_contains(err.msg, "longer than 1024 characters");
	}
	assert_int_equal(t.nsources, 0);
	bf_geo_table_free(&t);
}

static void test_nul_byte(void **state)
{
	static const char content[] = "1,2,US\n3,4\0,CN\n";
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	bf_geo_table_init(&t);
	write_bytes(path, "nul", content, sizeof(content) - 1);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -EINVAL);
	check_contains(err.msg, "line 2: ");
	check_contains(err.msg, "NUL byte");
	bf_geo_table_free(&t);
}

static void test_missing_file(void **state)
{
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX], expected[PATH_MAX + 128];

	bf_geo_table_init(&t);
	(void)snprintf(path, sizeof(path), "%s/does-not-exist.csv", test_dir);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -ENOENT);
	(void)snprintf(expected, sizeof(expected), "'%s': %s", path, strerror(ENOENT));
	check_contains(err.msg, expected);
	assert_int_equal(t.nsources, 0);
	bf_geo_table_free(&t);
}

/* A FIFO fails at once, without waiting for a writer. */
static void test_fifo_rejected(void **state)
{
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	bf_geo_table_init(&t);
	(void)snprintf(path, sizeof(path), "%s/fifo.csv", test_dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -EINVAL);
	check_contains(err.msg, path);
	check_contains(err.msg, "not a regular file or folder");
	assert_int_equal(t.nsources, 0);
	assert_int_equal(unlink(path), 0);
	bf_geo_table_free(&t);
}

static void test_unreadable_file(void **state)
{
	static const char path[] = "/proc/self/mem";
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char expected[PATH_MAX + 128];

	/*
	 * read(2) fails even for root, who may read any file: at offset 0 of
	 * /proc/self/mem with EIO, because address 0 is not mapped, and on a
	 * folder with EISDIR where the file must be text.
	 */
	bf_geo_table_init(&t);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -EIO);
	(void)snprintf(expected, sizeof(expected), "failed to read geolocation file '%s': %s", path,
		       strerror(EIO));
	check_contains(err.msg, expected);

	assert_int_equal(bf_geo_load_cidr_file(&t, test_dir, &err), -EISDIR);
	(void)snprintf(expected, sizeof(expected), "failed to read geolocation file '%s': %s",
		       test_dir, strerror(EISDIR));
	check_contains(err.msg, expected);
	assert_int_equal(t.nsources, 0);
	bf_geo_table_free(&t);
}

static void test_cidr_loader_rejects_ranges(void **state)
{
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	bf_geo_table_init(&t);
	write_file(path, "override-ranges", "1,2,US\n");
	assert_int_equal(bf_geo_load_cidr_file(&t, path, &err), -EINVAL);
	check_contains(err.msg, "line 1: '1,2,US' is a decimal IPv4 range");
	check_contains(err.msg, "this file must contain a prefix 'CIDR,CC'");
	assert_int_equal(t.nsources, 0);
	bf_geo_table_free(&t);
}

static void test_too_many_files(void **state)
{
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	bf_geo_table_init(&t);
	write_file(path, "one", "192.0.2.0/24,MO\n");
	/* One source slot is kept for the builtin table. */
	for (int i = 0; i < BF_GEO_MAX_SOURCES - 1; i++)
		assert_int_equal(bf_geo_load_file(&t, path, &err), 0);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -E2BIG);
	check_contains(err.msg, "too many geolocation files, at most 31");
	assert_int_equal(t.nsources, BF_GEO_MAX_SOURCES - 1);

	flatten(&t);
	assert_int_equal(t.nsources, BF_GEO_MAX_SOURCES);
	check_lookup(&t, "192.0.2.1", "MO 30");
	assert_int_equal(bf_geo_load_file(&t, path, &err), -E2BIG);
	bf_geo_table_free(&t);
}

/* A table snapshot: everything bf_geo_load_file() must leave as it was on error. */
struct table_copy {
	struct bf_range4 *v4;
	struct bf_range6 *v6;
	size_t n4, n6, nsources;
	bool flat;
	struct bf_geo_source sources[BF_GEO_MAX_SOURCES];
};

static void copy_table(const struct bf_geo_table *t, struct table_copy *c)
{
	c->v4 = malloc(t->n4 * sizeof(*c->v4) + 1);
	c->v6 = malloc(t->n6 * sizeof(*c->v6) + 1);
	assert_non_null(c->v4);
	assert_non_null(c->v6);
	memcpy(c->v4, t->v4, t->n4 * sizeof(*c->v4));
	memcpy(c->v6, t->v6, t->n6 * sizeof(*c->v6));
	c->n4 = t->n4;
	c->n6 = t->n6;
	c->nsources = t->nsources;
	c->flat = t->flat;
	memcpy(c->sources, t->sources, sizeof(c->sources));
}

static void check_table_equal(const struct bf_geo_table *t, const struct table_copy *c)
{
	assert_int_equal(t->n4, c->n4);
	assert_int_equal(t->n6, c->n6);
	assert_int_equal(t->nsources, c->nsources);
	assert_int_equal(t->flat, c->flat);
	assert_memory_equal(t->v4, c->v4, c->n4 * sizeof(*c->v4));
	assert_memory_equal(t->v6, c->v6, c->n6 * sizeof(*c->v6));
	assert_memory_equal(t->sources, c->sources, sizeof(c->sources));
}

static void test_failed_load_leaves_table(void **state)
{
	static const char *const bad[][2] = {
		/* The bad line comes after valid lines of both families. */
		{ "bad-last", "2001:db8::/32,CN\n198.51.100.0/24,CN\n203.0.113.0/24,XXX\n" },
		/* Found only after the whole file is parsed. */
		{ "bad-overlap", "198.51.100.0/24,CN\n198.51.100.0/25,US\n" },
		{ "bad-empty", "# nothing\n" },
	};
	struct bf_geo_table t;
	struct table_copy before;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	bf_geo_table_init(&t);
	load_text(&t, "good", "192.0.2.0/24,MO\n2001:db8:852::/48,HK\n");
	flatten(&t);
	copy_table(&t, &before);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_file(path, bad[i][0], bad[i][1]);
		assert_int_equal(bf_geo_load_file(&t, path, &err), -EINVAL);
		check_table_equal(&t, &before);
	}
	(void)snprintf(path, sizeof(path), "%s/missing", test_dir);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -ENOENT);
	check_table_equal(&t, &before);

	check_lookup(&t, "192.0.2.1", "MO 0");
	check_lookup(&t, "198.51.100.1", "none");
	check_lookup(&t, "2001:db8::1", "none");
	free(before.v4);
	free(before.v6);
	bf_geo_table_free(&t);
}

/* Layering and flattening */

static void test_layer_splits_lower_range(void **state)
{
	struct bf_geo_table t;
	char dump[512];

	bf_geo_table_init(&t);
	load_text(&t, "layer-low", "198.51.100.0/24,CN\n");
	load_text(&t, "layer-high", "3325256768,3325256831,US\n"); /* .64-.127 */
	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "198.51.100.0-198.51.100.63 CN 0; "
				  "198.51.100.64-198.51.100.127 US 1; "
				  "198.51.100.128-198.51.100.255 CN 0");
	check_lookup(&t, "198.51.100.63", "CN 0");
	check_lookup(&t, "198.51.100.64", "US 1");
	check_lookup(&t, "198.51.100.127", "US 1");
	check_lookup(&t, "198.51.100.128", "CN 0");
	bf_geo_table_free(&t);
}

static void test_layer_overlaps_both_ends(void **state)
{
	struct bf_geo_table t;
	char dump[512];

	bf_geo_table_init(&t);
	load_text(&t, "ends-low", "192.0.2.0/25,MO\n192.0.2.128/25,HK\n");
	load_text(&t, "ends-high", "3221226084,3221226134,US\n"); /* 192.0.2.100-192.0.2.150 */
	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "192.0.2.0-192.0.2.99 MO 0; "
				  "192.0.2.100-192.0.2.150 US 1; "
				  "192.0.2.151-192.0.2.255 HK 0");

	/* A third layer covers both lower ranges exactly. */
	load_text(&t, "ends-top", "192.0.2.0/24,CN\n");
	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "192.0.2.0-192.0.2.255 CN 3");
	assert_int_equal(t.nsources, 4);
	assert_int_equal(t.sources[2].format, BF_GEO_FORMAT_BUILTIN);
	bf_geo_table_free(&t);
}

static void test_layer_many_pieces(void **state)
{
	struct bf_geo_table t;
	char dump[1024];

	bf_geo_table_init(&t);
	load_text(&t, "pieces-low", "198.51.100.0/24,CN\n203.0.113.0/25,US\n");
	load_text(&t, "pieces-mid",
		  "198.51.100.16/28,US\n198.51.100.64/28,HK\n198.51.100.255/32,MO\n"
		  "203.0.113.0/24,DE\n");
	load_text(&t, "pieces-top", "198.51.100.64/26,FR\n203.0.113.64/26,?\?\n");
	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "198.51.100.0-198.51.100.15 CN 0; "
				  "198.51.100.16-198.51.100.31 US 1; "
				  "198.51.100.32-198.51.100.63 CN 0; "
				  "198.51.100.64-198.51.100.127 FR 2; "
				  "198.51.100.128-198.51.100.254 CN 0; "
				  "198.51.100.255-198.51.100.255 MO 1; "
				  "203.0.113.0-203.0.113.63 DE 1; "
				  "203.0.113.64-203.0.113.127 ?? 2; "
				  "203.0.113.128-203.0.113.255 DE 1");
	bf_geo_table_free(&t);
}

static void test_layer_ipv6(void **state)
{
	struct bf_geo_table t;
	char dump[1024];

	bf_geo_table_init(&t);
	load_text(&t, "v6-low", "2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,CN\n");
	load_text(&t, "v6-high",
		  "2001:db8:852::/48,HK\n2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128,MO\n");
	flatten(&t);
	dump6(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "2001:db8::-2001:db8:851:ffff:ffff:ffff:ffff:ffff CN 0; "
				  "2001:db8:852::-2001:db8:852:ffff:ffff:ffff:ffff:ffff HK 1; "
				  "2001:db8:853::-2001:db8:ffff:ffff:ffff:ffff:ffff:fffe CN 0; "
				  "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff-"
				  "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff MO 1");
	check_lookup(&t, "2001:db8:851:ffff:ffff:ffff:ffff:ffff", "CN 0");
	check_lookup(&t, "2001:db8:852::", "HK 1");
	check_lookup(&t, "2001:db8:853::", "CN 0");
	check_lookup(&t, "2001:db9::", "none");
	bf_geo_table_free(&t);
}

static void test_local_overlay4(void **state)
{
	struct bf_geo_table t;
	char dump[2048];

	bf_geo_table_init(&t);
	load_text(&t, "all4", "0,4294967295,US\n");
	flatten(&t);
	dump4(&t, true, dump, sizeof(dump));
	assert_string_equal(dump, "0.0.0.0-0.255.255.255 ?? local; "
				  "1.0.0.0-9.255.255.255 US 0; "
				  "10.0.0.0-10.255.255.255 ?? local; "
				  "11.0.0.0-100.63.255.255 US 0; "
				  "100.64.0.0-100.127.255.255 ?? local; "
				  "100.128.0.0-126.255.255.255 US 0; "
				  "127.0.0.0-127.255.255.255 ?? local; "
				  "128.0.0.0-169.253.255.255 US 0; "
				  "169.254.0.0-169.254.255.255 ?? local; "
				  "169.255.0.0-172.15.255.255 US 0; "
				  "172.16.0.0-172.31.255.255 ?? local; "
				  "172.32.0.0-192.167.255.255 US 0; "
				  "192.168.0.0-192.168.255.255 ?? local; "
				  "192.169.0.0-223.255.255.255 US 0; "
				  "224.0.0.0-255.255.255.255 ?? local");
	assert_int_equal(t.nsources, 2);
	assert_string_equal(t.sources[1].path, "builtin:local");
	assert_int_equal(t.sources[1].format, BF_GEO_FORMAT_BUILTIN);
	assert_string_equal(t.sources[1].date, "");

	/* Documentation ranges are not local: tests map them to countries. */
	check_lookup(&t, "192.0.2.1", "US 0");
	check_lookup(&t, "198.51.100.1", "US 0");
	check_lookup(&t, "203.0.113.1", "US 0");
	check_lookup(&t, "255.255.255.255", "?? local");
	bf_geo_table_free(&t);
}

static void test_local_overlay6(void **state)
{
	struct bf_geo_table t;
	char dump[2048];

	bf_geo_table_init(&t);
	load_text(&t, "all6", "::/0,US\n");
	flatten(&t);
	dump6(&t, true, dump, sizeof(dump));
	assert_string_equal(dump, "::-::1 ?? local; "
				  "::2-fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff US 0; "
				  "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ?? local; "
				  "fe00::-fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff US 0; "
				  "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff ?? local; "
				  "fec0::-feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff US 0; "
				  "ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ?? local");
	check_lookup(&t, "2001:db8::1", "US 0");
	check_lookup(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "?? local");
	bf_geo_table_free(&t);
}

static void test_local_overlay_mapped(void **state)
{
	struct bf_geo_table t;
	const struct bf_range6 *r;
	uint8_t addr[16];

	/*
	 * The IPv6 table leaves IPv4-mapped addresses to the data. A prefix
	 * shorter than /96 that covers them stays IPv6.
	 */
	bf_geo_table_init(&t);
	load_text(&t, "mapped", "::/64,US\n");
	flatten(&t);
	ip6("::ffff:10.0.0.1", addr);
	r = bf_geo_lookup6(&t, addr);
	assert_non_null(r);
	assert_int_equal(r->source, 0);
	assert_false(bf_geo_is_local6(addr));
	bf_geo_table_free(&t);
}

static void test_merge_adjacent(void **state)
{
	struct bf_geo_table t;
	char dump[512];

	bf_geo_table_init(&t);
	load_text(&t, "adjacent",
		  "192.0.2.0/25,MO\n192.0.2.128/25,MO\n"
		  "198.51.100.0/25,CN\n198.51.100.128/25,US\n");
	assert_int_equal(t.n4, 4);
	load_text(&t, "adjacent-other-source", "192.0.3.0/24,MO\n");
	flatten(&t);
	dump4(&t, false, dump, sizeof(dump));
	assert_string_equal(dump, "192.0.2.0-192.0.2.255 MO 0; "
				  "192.0.3.0-192.0.3.255 MO 1; "
				  "198.51.100.0-198.51.100.127 CN 0; "
				  "198.51.100.128-198.51.100.255 US 0");
	bf_geo_table_free(&t);
}

static void test_flatten_empty_table(void **state)
{
	struct bf_geo_table t;

	bf_geo_table_init(&t);
	flatten(&t);
	assert_true(t.flat);
	assert_int_equal(t.nsources, 1);
	check_lookup(&t, "8.8.8.8", "none");
	check_lookup(&t, "0.0.0.0", "?? local");
	check_lookup(&t, "::1", "?? local");
	check_lookup(&t, "2001:db8::1", "none");

	/* Flattening again adds no second builtin source. */
	flatten(&t);
	assert_int_equal(t.nsources, 1);
	bf_geo_table_free(&t);
}

/* Lookups */

static void test_lookup_boundaries(void **state)
{
	struct bf_geo_table t;

	bf_geo_table_init(&t);
	load_text(&t, "bounds4",
		  "3221226000,3221226010,MO\n"	 /* 192.0.2.16-192.0.2.26 */
		  "3221226011,3221226011,HK\n"); /* 192.0.2.27 */
	load_text(&t, "bounds6", "2001:db8:853::10,2001:db8:853::1a,MO\n");
	assert_null(bf_geo_lookup4(&t, ip4("192.0.2.16")));
	flatten(&t);
	check_lookup(&t, "192.0.2.15", "none");
	check_lookup(&t, "192.0.2.16", "MO 0");
	check_lookup(&t, "192.0.2.26", "MO 0");
	check_lookup(&t, "192.0.2.27", "HK 0");
	check_lookup(&t, "192.0.2.28", "none");
	check_lookup(&t, "2001:db8:853::f", "none");
	check_lookup(&t, "2001:db8:853::10", "MO 1");
	check_lookup(&t, "2001:db8:853::1a", "MO 1");
	check_lookup(&t, "2001:db8:853::1b", "none");

	/* A later load makes the table unflattened again. */
	load_text(&t, "bounds-more", "198.51.100.0/24,CN\n");
	assert_false(t.flat);
	assert_null(bf_geo_lookup4(&t, ip4("192.0.2.16")));
	bf_geo_table_free(&t);
}

static void test_is_local4(void **state)
{
	static const struct {
		const char *addr;
		bool local;
	} cases[] = {
		{ "0.0.0.0", true },	      { "0.255.255.255", true },
		{ "1.0.0.0", false },	      { "9.255.255.255", false },
		{ "10.0.0.0", true },	      { "10.255.255.255", true },
		{ "11.0.0.0", false },	      { "100.63.255.255", false },
		{ "100.64.0.0", true },	      { "100.127.255.255", true },
		{ "100.128.0.0", false },     { "127.0.0.1", true },
		{ "169.254.1.1", true },      { "169.255.0.0", false },
		{ "172.15.255.255", false },  { "172.16.0.0", true },
		{ "172.31.255.255", true },   { "172.32.0.0", false },
		{ "192.168.0.1", true },      { "192.169.0.0", false },
		{ "223.255.255.255", false }, { "224.0.0.1", true },
		{ "239.255.255.255", true },  { "240.0.0.1", true },
		{ "255.255.255.255", true },  { "192.0.2.1", false },
		{ "198.51.100.1", false },    { "203.0.113.1", false },
		{ "8.8.8.8", false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (bf_geo_is_local4(ip4(cases[i].addr)) != cases[i].local)
			fail_msg("bf_geo_is_local4(%s) is %d, expected %d", cases[i].addr,
				 !cases[i].local, cases[i].local);
	}
}

static void test_is_local6(void **state)
{
	static const struct {
		const char *addr;
		bool local;
	} cases[] = {
		{ "::", true },
		{ "::1", true },
		{ "::2", false },
		{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false },
		{ "fc00::", true },
		{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
		{ "fe00::", false },
		{ "fe80::1", true },
		{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
		{ "fec0::", false },
		{ "ff02::1", true },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
		{ "::ffff:10.0.0.1", false },
		{ "::ffff:127.0.0.1", false },
		{ "2001:db8::1", false },
		{ "2001:db8:852::1", false },
	};
	uint8_t addr[16];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ip6(cases[i].addr, addr);
		if (bf_geo_is_local6(addr) != cases[i].local)
			fail_msg("bf_geo_is_local6(%s) is %d, expected %d", cases[i].addr,
				 !cases[i].local, cases[i].local);
	}
}

/* Prefixes */

static int append_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	char text[INET_ADDRSTRLEN];
	char *out = ctx;

	format4(addr, text);
	append(out, 4096, "%s%s/%u", out[0] ? " " : "", text, prefixlen);
	return 0;
}

static int append_prefix6(const uint8_t addr[16], unsigned int prefixlen, void *ctx)
{
	char text[INET6_ADDRSTRLEN];
	char *out = ctx;

	format6(addr, text);
	append(out, 8192, "%s%s/%u", out[0] ? " " : "", text, prefixlen);
	return 0;
}

static void check_prefixes4(const char *first, const char *last, const char *expected)
{
	char out[4096] = "";

	assert_int_equal(bf_range4_to_prefixes(ip4(first), ip4(last), append_prefix4, out), 0);
	assert_string_equal(out, expected);
}

static void check_prefixes6(const char *first, const char *last, const char *expected)
{
	uint8_t a[16], b[16];
	char out[8192] = "";

	ip6(first, a);
	ip6(last, b);
	assert_int_equal(bf_range6_to_prefixes(a, b, append_prefix6, out), 0);
	assert_string_equal(out, expected);
}

static int count_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	size_t *count = ctx;

	return ++*count == 2 ? 7 : 0;
}

static void test_prefixes4_cases(void **state)
{
	char out[4096] = "";
	size_t count = 0;

	check_prefixes4("1.0.0.1", "1.0.0.6", "1.0.0.1/32 1.0.0.2/31 1.0.0.4/31 1.0.0.6/32");
	check_prefixes4("192.0.2.0", "192.0.2.255", "192.0.2.0/24");
	check_prefixes4("192.0.2.0", "192.0.3.127", "192.0.2.0/24 192.0.3.0/25");
	check_prefixes4("203.0.113.7", "203.0.113.7", "203.0.113.7/32");
	check_prefixes4("0.0.0.0", "255.255.255.255", "0.0.0.0/0");
	check_prefixes4("0.0.0.0", "0.0.0.0", "0.0.0.0/32");
	check_prefixes4("255.255.255.255", "255.255.255.255", "255.255.255.255/32");
	check_prefixes4("128.0.0.0", "255.255.255.255", "128.0.0.0/1");
	check_prefixes4("255.255.255.254", "255.255.255.255", "255.255.255.254/31");

	/* Everything but the first or the last address: one prefix per length. */
	assert_int_equal(bf_range4_to_prefixes(1, UINT32_MAX, append_prefix4, out), 0);
	assert_true(!strncmp(out, "0.0.0.1/32 0.0.0.2/31 0.0.0.4/30 ", 33));
	assert_non_null(strstr(out, " 64.0.0.0/2 128.0.0.0/1"));
	assert_int_equal(strlen(strstr(out, " 128.0.0.0/1")), strlen(" 128.0.0.0/1"));
	out[0] = '\0';
	assert_int_equal(bf_range4_to_prefixes(0, UINT32_MAX - 1, append_prefix4, out), 0);
	assert_true(!strncmp(out, "0.0.0.0/1 128.0.0.0/2 ", 22));
	assert_non_null(strstr(out, " 255.255.255.252/31 255.255.255.254/32"));

	assert_int_equal(bf_range4_to_prefixes(2, 1, count_prefix4, &count), -EINVAL);
	assert_int_equal(count, 0);
	/* The callback's first non-zero result stops the split. */
	assert_int_equal(bf_range4_to_prefixes(1, 6, count_prefix4, &count), 7);
	assert_int_equal(count, 2);
}

static void test_prefixes6_cases(void **state)
{
	static const char all[] = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
	uint8_t a[16], b[16];
	char out[8192] = "";

	check_prefixes6("::", all, "::/0");
	check_prefixes6("::", "::", "::/128");
	check_prefixes6(all, all, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	check_prefixes6("8000::", all, "8000::/1");
	check_prefixes6("2001:db8::1", "2001:db8::6",
			"2001:db8::1/128 2001:db8::2/127 2001:db8::4/127 2001:db8::6/128");
	check_prefixes6("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32");
	/* Across the boundary of the two 64-bit halves. */
	check_prefixes6("::ffff:ffff:ffff:ffff",
			"0:0:0:1::", "::ffff:ffff:ffff:ffff/128 0:0:0:1::/128");
	check_prefixes6("::8000:0:0:0", "0:0:0:1:7fff:ffff:ffff:ffff",
			"::8000:0:0:0/65 0:0:0:1::/65");

	/* Everything but :: needs one prefix per length. */
	ip6("::1", a);
	ip6(all, b);
	assert_int_equal(bf_range6_to_prefixes(a, b, append_prefix6, out), 0);
	assert_true(!strncmp(out, "::1/128 ::2/127 ::4/126 ", 24));
	assert_non_null(strstr(out, " 4000::/2 8000::/1"));
	assert_int_equal(strlen(strstr(out, " 8000::/1")), strlen(" 8000::/1"));

	assert_int_equal(bf_range6_to_prefixes(b, a, append_prefix6, out), -EINVAL);
}

/* splitmix64: deterministic pseudo-random numbers for the property checks. */
static uint64_t next_random(uint64_t *seed)
{
	uint64_t z = (*seed += 0x9e3779b97f4a7c15);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
	return z ^ (z >> 31);
}

struct prefix_list {
	struct {
		unsigned __int128 addr;
		unsigned int prefixlen;
	} v[256];
	size_t n;
};

static int collect_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	struct prefix_list *list = ctx;

	if (list->n == ARRAY_SIZE(list->v))
		return -E2BIG;
	list->v[list->n].addr = addr;
	list->v[list->n++].prefixlen = prefixlen;
	return 0;
}

static int collect_prefix6(const uint8_t addr[16], unsigned int prefixlen, void *ctx)
{
	struct prefix_list *list = ctx;
	unsigned __int128 value = 0;

	if (list->n == ARRAY_SIZE(list->v))
		return -E2BIG;
	for (int i = 0; i < 16; i++)
		value = value << 8 | addr[i];
	list->v[list->n].addr = value;
	list->v[list->n++].prefixlen = prefixlen;
	return 0;
}

/* The addresses a prefix does not fix: the low bits - prefixlen bits set. */
static unsigned __int128 host_mask(unsigned int bits, unsigned int prefixlen)
{
	unsigned int n = bits - prefixlen;

	return n >= 128 ? ~(unsigned __int128)0 : ((unsigned __int128)1 << n) - 1;
}

/*
 * Checks that the prefixes tile [first, last] exactly, in order, and that
 * each is maximal: its parent prefix does not fit in the range. A tiling of
 * maximal prefixes is the unique minimal cover.
 */
static void check_tiling(const struct prefix_list *list, unsigned __int128 first,
			 unsigned __int128 last, unsigned int bits)
{
	unsigned __int128 next = first;

	assert_true(list->n >= 1);
	assert_true(list->n <= 2 * bits - 2);
	for (size_t i = 0; i < list->n; i++) {
		unsigned int len = list->v[i].prefixlen;
		unsigned __int128 addr = list->v[i].addr;
		unsigned __int128 end = addr | host_mask(bits, len);

		assert_true(len <= bits);
		assert_true(addr == next);
		assert_true((addr & host_mask(bits, len)) == 0);
		assert_true(end <= last);
		if (len > 0) {
			unsigned __int128 parent = addr & ~host_mask(bits, len - 1);
			unsigned __int128 parent_end = parent | host_mask(bits, len - 1);

			assert_true(parent < first || parent_end > last);
		}
		if (i + 1 == list->n)
			assert_true(end == last);
		else
			next = end + 1;
	}
}

static void test_prefixes4_random(void **state)
{
	uint64_t seed = 20260625;

	for (int i = 0; i < 4000; i++) {
		uint32_t first = next_random(&seed);
		uint64_t span = next_random(&seed) >> (32 + next_random(&seed) % 32);
		uint32_t last;
		struct prefix_list list = { .n = 0 };

		if (i % 4 == 0)
			first &= ~(uint32_t)0 << (next_random(&seed) % 32);
		last = first + span > UINT32_MAX ? UINT32_MAX : first + span;
		assert_int_equal(bf_range4_to_prefixes(first, last, collect_prefix4, &list), 0);
		check_tiling(&list, first, last, 32);
	}
}

static void test_prefixes6_random(void **state)
{
	uint64_t seed = 20260626;

	for (int i = 0; i < 4000; i++) {
		unsigned __int128 first =
			(unsigned __int128)next_random(&seed) << 64 | next_random(&seed);
		unsigned __int128 span =
			(unsigned __int128)next_random(&seed) << 64 | next_random(&seed);
		unsigned __int128 last;
		struct prefix_list list = { .n = 0 };
		uint8_t a[16], b[16];

		span >>= next_random(&seed) % 128;
		if (i % 4 == 0)
			first &= ~host_mask(128, 128 - next_random(&seed) % 128);
		last = first + span < first ? ~(unsigned __int128)0 : first + span;
		for (int j = 15; j >= 0; j--) {
			a[j] = (uint8_t)(first >> (8 * (15 - j)));
			b[j] = (uint8_t)(last >> (8 * (15 - j)));
		}
		assert_int_equal(bf_range6_to_prefixes(a, b, collect_prefix6, &list), 0);
		check_tiling(&list, first, last, 128);
	}
}

static void test_count_prefixes(void **state)
{
	struct bf_geo_table t;
	size_t n4 = 0, n6 = 0;

	bf_geo_table_init(&t);
	load_text(
		&t, "count",
		"192.0.2.0/24,MO\n198.51.100.1/32,CN\n"
		"2001:db8::1/128,HK\n2001:db8::2/127,HK\n2001:db8::4/127,HK\n2001:db8::6/128,HK\n");
	load_text(&t, "count-range", "16777217,16777222,AU\n"); /* 1.0.0.1-1.0.0.6 */
	assert_int_equal(bf_geo_count_prefixes(&t, &n4, &n6), -EINVAL);
	flatten(&t);
	assert_int_equal(bf_geo_count_prefixes(&t, &n4, &n6), 0);
	/*
	 * Data: 1 + 1 + 4 IPv4 prefixes and one merged IPv6 range of 4. Builtin:
	 * 8 IPv4 prefixes (224/4 and 240/4 merge into 224/3) and 4 IPv6 ones
	 * (:: and ::1 merge into ::/127).
	 */
	assert_int_equal(n4, 6 + 8);
	assert_int_equal(n6, 4 + 4);
	assert_int_equal(bf_geo_count_prefixes(&t, NULL, NULL), 0);
	bf_geo_table_free(&t);
}

/* Addresses and country codes */

static void test_parse_address(void **state)
{
	uint8_t v6[16], expected6[16];
	uint32_t v4 = 0;

	assert_int_equal(bf_parse_address("192.0.2.1", &v4, v6), 4);
	assert_int_equal(v4, 0xc0000201);
	assert_int_equal(bf_parse_address("::ffff:198.51.100.7", &v4, v6), 4);
	assert_int_equal(v4, 0xc6336407);
	assert_int_equal(bf_parse_address("::ffff:c633:6408", &v4, v6), 4);
	assert_int_equal(v4, 0xc6336408);
	assert_int_equal(bf_parse_address("2001:db8::1", &v4, v6), 6);
	ip6("2001:db8::1", expected6);
	assert_memory_equal(v6, expected6, 16);
	assert_int_equal(bf_parse_address("::", NULL, v6), 6);
	assert_int_equal(bf_parse_address("0.0.0.0", &v4, NULL), 4);
	assert_int_equal(v4, 0);

	assert_int_equal(bf_parse_address("", &v4, v6), 0);
	assert_int_equal(bf_parse_address("192.0.2.1 ", &v4, v6), 0);
	assert_int_equal(bf_parse_address("192.0.2", &v4, v6), 0);
	assert_int_equal(bf_parse_address("192.0.2.0/24", &v4, v6), 0);
	assert_int_equal(bf_parse_address("2001:db8::g", &v4, v6), 0);
	assert_int_equal(bf_parse_address("example.com", &v4, v6), 0);
}

static void test_country_codes(void **state)
{
	static const char *const invalid[] = { "",  "C",   "CNN", "C1",	     "1C",
					       "?", "???", "C?",  "\xc3\x89" };
	uint16_t cc = 1;
	char text[3];

	assert_int_equal(bf_country_parse("CN", &cc), 0);
	assert_int_equal(cc, BF_CC('C', 'N'));
	assert_int_equal(bf_country_parse("mo", &cc), 0);
	assert_int_equal(cc, BF_CC('M', 'O'));
	assert_int_equal(bf_country_parse("hK", &cc), 0);
	assert_int_equal(cc, BF_CC('H', 'K'));
	assert_int_equal(bf_country_parse("??", &cc), 0);
	assert_int_equal(cc, BF_CC_NONE);
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		if (bf_country_parse(invalid[i], &cc) != -EINVAL)
			fail_msg("bf_country_parse(\"%s\") accepted an invalid code", invalid[i]);
	}

	bf_country_format(BF_CC('C', 'N'), text);
	assert_string_equal(text, "CN");
	bf_country_format(BF_CC_NONE, text);
	assert_string_equal(text, "??");
	bf_country_format(BF_CC('A', '1'), text);
	assert_string_equal(text, "A1");
	bf_country_format(BF_CC('c', 0x01), text);
	assert_string_equal(text, "??");

	assert_true(bf_country_is_pseudo(BF_CC_NONE));
	assert_true(bf_country_is_pseudo(BF_CC('E', 'U')));
	assert_true(bf_country_is_pseudo(BF_CC('A', 'P')));
	assert_true(bf_country_is_pseudo(BF_CC('A', '1')));
	assert_true(bf_country_is_pseudo(BF_CC('Z', 'Z')));
	assert_true(bf_country_is_pseudo(BF_CC('X', 'X')));
	assert_false(bf_country_is_pseudo(BF_CC('C', 'N')));
	assert_false(bf_country_is_pseudo(BF_CC('M', 'O')));
	assert_false(bf_country_is_pseudo(BF_CC('H', 'K')));
}

/* Real data */

static void test_default_data(void **state)
{
	const char *dir = getenv("BF_TEST_GEOIP_DIR");
	char path4[PATH_MAX], path6[PATH_MAX];
	struct bf_error err = { "" };
	struct bf_geo_table t;
	size_t n4 = 0, n6 = 0;

	if (!dir || !*dir)
		dir = "/usr/share/borderflow";
	(void)snprintf(path4, sizeof(path4), "%s/geoip", dir);
	(void)snprintf(path6, sizeof(path6), "%s/geoip6", dir);
	if (access(path4, R_OK) || access(path6, R_OK)) {
		print_message("skipped: '%s' or '%s' not readable; set BF_TEST_GEOIP_DIR to a "
			      "folder with the Tor/IPFire files geoip and geoip6\n",
			      path4, path6);
		skip();
	}

	bf_geo_table_init(&t);
	if (bf_geo_load_file(&t, path4, &err) || bf_geo_load_file(&t, path6, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(t.sources[0].format, BF_GEO_FORMAT_TOR4);
	assert_int_equal(t.sources[1].format, BF_GEO_FORMAT_TOR6);
	assert_string_equal(t.sources[0].detail, "decimal IPv4 ranges");
	assert_string_equal(t.sources[1].detail, "text IPv6 ranges");
	assert_int_equal(strspn(t.sources[0].sha256, "0123456789abcdef"), 64);
	assert_int_equal(strspn(t.sources[1].sha256, "0123456789abcdef"), 64);
	flatten(&t);

	check_lookup(&t, "202.175.3.3", "MO 0");
	check_lookup(&t, "203.198.7.66", "HK 0");
	check_lookup(&t, "10.1.2.3", "?? local");
	check_lookup(&t, "::1", "?? local");
	assert_int_equal(bf_geo_count_prefixes(&t, &n4, &n6), 0);
	assert_true(n4 > t.n4 / 2);
	assert_true(n6 > t.n6 / 2);
	bf_geo_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tor4_format),
		cmocka_unit_test(test_tor6_format),
		cmocka_unit_test(test_cidr_format),
		cmocka_unit_test(test_cidr_format_any_loader),
		cmocka_unit_test(test_line_length_limit),
		cmocka_unit_test(test_overlap_same_country_merges),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_fifo_rejected),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_cidr_loader_rejects_ranges),
		cmocka_unit_test(test_too_many_files),
		cmocka_unit_test(test_failed_load_leaves_table),
		cmocka_unit_test(test_layer_splits_lower_range),
		cmocka_unit_test(test_layer_overlaps_both_ends),
		cmocka_unit_test(test_layer_many_pieces),
		cmocka_unit_test(test_layer_ipv6),
		cmocka_unit_test(test_local_overlay4),
		cmocka_unit_test(test_local_overlay6),
		cmocka_unit_test(test_local_overlay_mapped),
		cmocka_unit_test(test_merge_adjacent),
		cmocka_unit_test(test_flatten_empty_table),
		cmocka_unit_test(test_lookup_boundaries),
		cmocka_unit_test(test_is_local4),
		cmocka_unit_test(test_is_local6),
		cmocka_unit_test(test_prefixes4_cases),
		cmocka_unit_test(test_prefixes6_cases),
		cmocka_unit_test(test_prefixes4_random),
		cmocka_unit_test(test_prefixes6_random),
		cmocka_unit_test(test_count_prefixes),
		cmocka_unit_test(test_parse_address),
		cmocka_unit_test(test_country_codes),
		cmocka_unit_test(test_default_data),
	};

	return cmocka_run_group_tests_name("geo", tests, setup_dir, teardown_dir);
}
