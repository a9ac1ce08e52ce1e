// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the geolocation file formats: MaxMind DB, GeoIP2/GeoLite2
 * CSV, DB-IP, IP2Location LITE DB1, ip-location-db, prefix lists, and the
 * provenance each source records.
 *
 * Every fixture is written at run time into a folder made with mkdtemp().
 * The MaxMind DB fixtures are written by tests/unit/geo_mmdb_fixtures.pl
 * with MaxMind::DB::Writer (libmaxmind-db-writer-perl), and every network
 * the loader reads is compared with what mmdblookup (mmdb-bin) returns for
 * addresses in it. Without those tools the mmdb tests are skipped, or fail
 * when CI=true. The script is found under BORDERFLOW_SOURCE_DIR, or under
 * the current folder when that is not set.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <maxminddb.h>

#include "user/lib/geo.h"
#include "user/lib/stack.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define FIXTURE_SCRIPT "tests/unit/geo_mmdb_fixtures.pl"
#define BUILD_DATE     "2025-01-01T00:00:00Z" /* the build epoch the script writes */

static char test_dir[256];
static char mmdb_dir[PATH_MAX];
static bool mmdb_ready;
static char mmdb_missing[PATH_MAX * 4]; /* why the mmdb fixtures could not be written */

/* Helpers */

static void write_bytes(char path[PATH_MAX], const char *name, const void *content, size_t size)
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

static void make_dir(char path[PATH_MAX], const char *name)
{
	assert_true(snprintf(path, PATH_MAX, "%s/%s", test_dir, name) < PATH_MAX);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* Runs a shell command and returns its output, or fails the test. Returns the exit status. */
static int run_command(const char *command, char *out, size_t size)
{
	size_t used = 0, got;
	FILE *p = popen(command, "re");
	int status;

	assert_non_null(p);
	while (used + 1 < size && (got = fread(out + used, 1, size - 1 - used, p)) > 0)
		used += got;
	out[used] = '\0';
	status = pclose(p);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void check_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("'%s' does not contain '%s'", text, part);
}

static void load_ok(struct bf_geo_table *t, const char *path)
{
	struct bf_error err = { "" };
	int ret = bf_geo_load_file(t, path, &err);

	if (ret)
		fail_msg("loading %s returned %d: %s", path, ret, err.msg);
}

static void load_text(struct bf_geo_table *t, const char *name, const char *content)
{
	char path[PATH_MAX];

	write_file(path, name, content);
	load_ok(t, path);
}

static void flatten(struct bf_geo_table *t)
{
	struct bf_error err = { "" };
	int ret = bf_geo_flatten(t, &err);

	if (ret)
		fail_msg("bf_geo_flatten returned %d: %s", ret, err.msg);
}

/* "CC SOURCE" of the range that covers addr in a flattened table, or "none". */
static void lookup(const struct bf_geo_table *t, const char *addr, char *out, size_t size)
{
	uint8_t v6[16];
	uint32_t v4;
	char country[3];
	int family = bf_parse_address(addr, &v4, v6);

	assert_int_not_equal(family, 0);
	if (family == 4) {
		const struct bf_range4 *r = bf_geo_lookup4(t, v4);

		if (!r) {
			(void)snprintf(out, size, "none");
			return;
		}
		bf_country_format(r->country, country);
		(void)snprintf(out, size, "%s %u", country, r->source);
		return;
	}
	const struct bf_range6 *r = bf_geo_lookup6(t, v6);

	if (!r) {
		(void)snprintf(out, size, "none");
		return;
	}
	bf_country_format(r->country, country);
	(void)snprintf(out, size, "%s %u", country, r->source);
}

static void check_lookup(const struct bf_geo_table *t, const char *addr, const char *expected)
{
	char got[32];

	lookup(t, addr, got, sizeof(got));
	if (strcmp(got, expected))
		fail_msg("lookup of %s: got '%s', expected '%s'", addr, got, expected);
}

/* The SHA-256 of a file as sha256sum (coreutils) computes it. */
static void sha256sum(const char *path, char out[65])
{
	char command[PATH_MAX + 32], output[256];

	(void)snprintf(command, sizeof(command), "sha256sum '%s'", path);
	assert_int_equal(run_command(command, output, sizeof(output)), 0);
	assert_true(strlen(output) > 64);
	memcpy(out, output, 64);
	out[64] = '\0';
}

static void check_source(const struct bf_geo_table *t, size_t index, const char *path,
			 enum bf_geo_format format, const char *detail, const char *date)
{
	const struct bf_geo_source *src = &t->sources[index];
	char sha[65];

	assert_true(index < t->nsources);
	assert_string_equal(src->path, path);
	if (src->format != format)
		fail_msg("source %zu '%s' has format %s, expected %s", index, path,
			 bf_geo_format_name(src->format), bf_geo_format_name(format));
	assert_string_equal(src->detail, detail);
	assert_string_equal(src->date, date);
	sha256sum(path, sha);
	assert_string_equal(src->sha256, sha);
}

/* Loads a file that must fail with -EINVAL and checks that the message names it and a position. */
static void check_load_error(const char *path, const struct bf_geo_options *opts,
			     const char *position, const char *parts[], int expected_ret)
{
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char where[PATH_MAX + 64];
	int ret;

	bf_geo_table_init(&t);
	ret = bf_geo_load_file_opts(&t, path, opts, &err);
	if (ret != expected_ret)
		fail_msg("loading %s returned %d (%s), expected %d", path, ret, err.msg,
			 expected_ret);
	(void)snprintf(where, sizeof(where), "failed to load geolocation file '%s%s", path,
		       position);
	check_contains(err.msg, where);
	for (size_t i = 0; parts[i]; i++)
		check_contains(err.msg, parts[i]);
	assert_int_equal(t.nsources, 0);
	assert_int_equal(t.n4, 0);
	assert_int_equal(t.n6, 0);
	bf_geo_table_free(&t);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/*
 * Writes the mmdb fixtures, when perl, MaxMind::DB::Writer and mmdblookup are
 * there. Their absence is recorded, for the mmdb tests to skip or fail.
 */
static void write_mmdb_fixtures(void)
{
	const char *source_dir = getenv("BORDERFLOW_SOURCE_DIR");
	char script[PATH_MAX], command[3 * PATH_MAX], output[4096];

	if (!source_dir || !*source_dir)
		source_dir = ".";
	(void)snprintf(script, sizeof(script), "%s/%s", source_dir, FIXTURE_SCRIPT);
	(void)snprintf(mmdb_dir, sizeof(mmdb_dir), "%s/mmdb", test_dir);
	if (access(script, R_OK)) {
		(void)snprintf(mmdb_missing, sizeof(mmdb_missing),
			       "'%s' not found; set BORDERFLOW_SOURCE_DIR", script);
		return;
	}
	if (run_command("mmdblookup --version 2>&1", output, sizeof(output))) {
		(void)snprintf(mmdb_missing, sizeof(mmdb_missing),
			       "mmdblookup is not installed (Debian package mmdb-bin)");
		return;
	}
	if (run_command("perl -MMaxMind::DB::Writer::Tree -e 1 2>&1", output, sizeof(output))) {
		(void)snprintf(mmdb_missing, sizeof(mmdb_missing),
			       "perl module MaxMind::DB::Writer::Tree is not installed (Debian "
			       "package libmaxmind-db-writer-perl): %.300s",
			       output);
		return;
	}
	if (mkdir(mmdb_dir, 0755)) {
		(void)snprintf(mmdb_missing, sizeof(mmdb_missing), "mkdir '%s': %s", mmdb_dir,
			       strerror(errno));
		return;
	}
	(void)snprintf(command, sizeof(command), "perl '%s' '%s' 2>&1", script, mmdb_dir);
	if (run_command(command, output, sizeof(output))) {
		(void)snprintf(mmdb_missing, sizeof(mmdb_missing), "'%s' failed: %.300s", command,
			       output);
		return;
	}
	mmdb_ready = true;
}

static int setup_dir(void **state)
{
	const char *tmp = getenv("TMPDIR");
	int len = snprintf(test_dir, sizeof(test_dir), "%s/bf-test-geo-formats.XXXXXX",
			   tmp && *tmp ? tmp : "/tmp");

	if (len < 0 || (size_t)len >= sizeof(test_dir) || !mkdtemp(test_dir))
		return -1;
	write_mmdb_fixtures();
	return 0;
}

static int teardown_dir(void **state)
{
	return nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Skips an mmdb test without its tools, except under CI=true, where it fails. */
static void require_mmdb(void)
{
	const char *ci = getenv("CI");

	if (mmdb_ready)
		return;
	if (ci && !strcmp(ci, "true"))
		fail_msg("the mmdb fixtures are required with CI=true: %s", mmdb_missing);
	print_message("skipped: %s\n", mmdb_missing);
	skip();
}

static void mmdb_path(char path[PATH_MAX], const char *name)
{
	assert_true(snprintf(path, PATH_MAX, "%s/%s", mmdb_dir, name) < PATH_MAX);
}

/* mmdblookup */

/*
 * The country mmdblookup finds for addr with the default key paths of the
 * loader: country/iso_code, then registered_country/iso_code, then
 * country_code. "none" when the database has no record for addr, "??" when
 * the record has none of the paths.
 */
static void mmdblookup_country(const char *db, const char *addr, char out[8])
{
	static const char *const paths[] = { "country iso_code", "registered_country iso_code",
					     "country_code" };
	char command[PATH_MAX + 128], output[1024];
	const char *quote;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		(void)snprintf(command, sizeof(command), "mmdblookup --file '%s' --ip '%s' %s 2>&1",
			       db, addr, paths[i]);
		(void)run_command(command, output, sizeof(output));
		if (strstr(output, "Could not find an entry")) {
			strcpy(out, "none");
			return;
		}
		if (strstr(output, "lookup path does not match the data"))
			continue;
		quote = strchr(output, '"');
		if (!quote || !strstr(output, "<utf8_string>") || quote[3] != '"')
			fail_msg("unexpected output of '%s': %s", command, output);
		out[0] = quote[1] >= 'a' ? quote[1] - 'a' + 'A' : quote[1];
		out[1] = quote[2] >= 'a' ? quote[2] - 'a' + 'A' : quote[2];
		out[2] = '\0';
		return;
	}
	strcpy(out, "??");
}

static void check_mmdblookup(const char *db, const char *addr, const char *expected)
{
	char got[8];

	mmdblookup_country(db, addr, got);
	if (strcmp(got, expected))
		fail_msg("%s: mmdblookup returns '%s' for %s, the loader stored '%s'", db, got,
			 addr, expected);
}

static void format4(uint32_t addr, char out[INET_ADDRSTRLEN])
{
	uint32_t be = htonl(addr);

	assert_non_null(inet_ntop(AF_INET, &be, out, INET_ADDRSTRLEN));
}

/* The addresses of an IPv6 database that alias IPv4 addr: IPv4-mapped, 6to4 and Teredo. */
static void check_ipv4_aliases(const char *db, uint32_t addr, const char *expected)
{
	char text[INET6_ADDRSTRLEN + 8];

	(void)snprintf(text, sizeof(text), "::ffff:%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255,
		       (addr >> 8) & 255, addr & 255);
	check_mmdblookup(db, text, expected);
	(void)snprintf(text, sizeof(text), "2002:%x:%x::", addr >> 16, addr & 0xffff);
	check_mmdblookup(db, text, expected);
	(void)snprintf(text, sizeof(text), "2001:0:%x:%x::", addr >> 16, addr & 0xffff);
	check_mmdblookup(db, text, expected);
}

/*
 * Compares each IPv4 range the loader stored (network by network, before
 * flattening) with mmdblookup at its first, middle and last address, and
 * checks that mmdblookup has no record at the ends of the gaps between them.
 */
static void compare_ranges4(const char *db, const struct bf_geo_table *t, bool aliases)
{
	char first[INET_ADDRSTRLEN], country[3];
	uint32_t next = 0;

	for (size_t i = 0; i < t->n4; i++) {
		const struct bf_range4 *r = &t->v4[i];
		const uint32_t samples[] = { r->first, r->first + (r->last - r->first) / 2,
					     r->last };

		if (i)
			assert_true(r->first > t->v4[i - 1].last);
		if (r->first > next) {
			format4(next, first);
			check_mmdblookup(db, first, "none");
			format4(r->first - 1, first);
			check_mmdblookup(db, first, "none");
		}
		bf_country_format(r->country, country);
		for (size_t j = 0; j < ARRAY_SIZE(samples); j++) {
			format4(samples[j], first);
			check_mmdblookup(db, first, country);
			if (aliases)
				check_ipv4_aliases(db, samples[j], country);
		}
		next = r->last + 1;
	}
	if (t->n4 && t->v4[t->n4 - 1].last != UINT32_MAX) {
		format4(UINT32_MAX, first);
		check_mmdblookup(db, first, "none");
	}
}

static void compare_ranges6(const char *db, const struct bf_geo_table *t)
{
	char text[INET6_ADDRSTRLEN], country[3];

	for (size_t i = 0; i < t->n6; i++) {
		const struct bf_range6 *r = &t->v6[i];
		uint8_t middle[16];

		bf_country_format(r->country, country);
		/* The ranges of the fixtures are networks: first and last differ in the low bits.
		 */
		memcpy(middle, r->first, 16);
		middle[15] |= 0x80;
		assert_non_null(inet_ntop(AF_INET6, r->first, text, sizeof(text)));
		check_mmdblookup(db, text, country);
		assert_non_null(inet_ntop(AF_INET6, middle, text, sizeof(text)));
		check_mmdblookup(db, text, country);
		assert_non_null(inet_ntop(AF_INET6, r->last, text, sizeof(text)));
		check_mmdblookup(db, text, country);
	}
}

/* True when an IPv6 range overlaps ::/96, ::ffff:0:0/96, 2001::/32 or 2002::/16. */
static bool in_ipv4_alias(const struct bf_range6 *r)
{
	static const uint8_t zero[12], mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (!memcmp(r->first, zero, 12) || !memcmp(r->last, zero, 12))
		return true;
	if (!memcmp(r->first, mapped, 12) || !memcmp(r->last, mapped, 12))
		return true;
	if (r->first[0] == 0x20 &&
	    (r->first[1] == 0x02 || (r->first[1] == 0x01 && !r->first[2] && !r->first[3])))
		return true;
	return false;
}

/* MaxMind DB */

/* Expected IPv4 networks of v4.mmdb, and of the IPv4 part of v6.mmdb. */
static const char *const fixture_networks4[][2] = {
	{ "1.0.0.0", "AU 0" },	     { "1.0.1.255", "CN 0" },	    { "5.6.7.8", "DE 0" },
	{ "5.6.9.200", "DE 0" },     { "5.6.9.201", "none" },	    { "5.6.7.7", "none" },
	{ "128.0.0.0", "US 0" },     { "191.255.255.255", "US 0" }, { "192.0.2.1", "MO 0" },
	{ "192.0.2.200", "HK 0" },   { "198.51.100.7", "CN 0" },    { "203.0.113.1", "?? 0" },
	{ "203.0.113.100", "EU 0" }, { "203.0.113.200", "none" },   { "202.175.3.3", "MO 0" },
};

#define FIXTURE_COUNT4 19 /* networks: 5.6.7.8-5.6.9.200 alone is 10 */

static void test_mmdb_ipv4(void **state)
{
	struct bf_geo_table t;
	char path[PATH_MAX];

	require_mmdb();
	mmdb_path(path, "v4.mmdb");
	bf_geo_table_init(&t);
	load_ok(&t, path);
	check_source(&t, 0, path, BF_GEO_FORMAT_MMDB, "Borderflow-Test-Country", BUILD_DATE);
	assert_int_equal(t.sources[0].count4, FIXTURE_COUNT4);
	assert_int_equal(t.sources[0].count6, 0);
	assert_int_equal(t.n4, FIXTURE_COUNT4);
	compare_ranges4(path, &t, false);

	flatten(&t);
	for (size_t i = 0; i < ARRAY_SIZE(fixture_networks4); i++)
		check_lookup(&t, fixture_networks4[i][0], fixture_networks4[i][1]);
	bf_geo_table_free(&t);
}

static void test_mmdb_ipv6_aliases(void **state)
{
	struct bf_geo_table t;
	char path[PATH_MAX];

	require_mmdb();
	mmdb_path(path, "v6.mmdb");
	bf_geo_table_init(&t);
	load_ok(&t, path);
	check_source(&t, 0, path, BF_GEO_FORMAT_MMDB, "Borderflow-Test-Country", BUILD_DATE);
	/* Each IPv4 network once, although four paths of the tree reach it. */
	assert_int_equal(t.sources[0].count4, FIXTURE_COUNT4);
	assert_int_equal(t.sources[0].count6, 5);
	for (size_t i = 0; i < t.n6; i++)
		assert_false(in_ipv4_alias(&t.v6[i]));
	compare_ranges4(path, &t, true);
	compare_ranges6(path, &t);

	flatten(&t);
	for (size_t i = 0; i < ARRAY_SIZE(fixture_networks4); i++)
		check_lookup(&t, fixture_networks4[i][0], fixture_networks4[i][1]);
	check_lookup(&t, "2001:db8::1", "MO 0");
	check_lookup(&t, "2001:db8:8000::1", "HK 0");
	check_lookup(&t, "2400:cb00:ffff::1", "JP 0");
	check_lookup(&t, "2a00:1457:ffff::1", "IE 0");
	check_lookup(&t, "2a00:1458::", "none");
	/* fd00::/8 has a record without a country; the local range fc00::/7 covers it after
	 * flattening. */
	check_lookup(&t, "fd00::1", "?? 1");
	bf_geo_table_free(&t);
}

static void test_mmdb_detected_by_content(void **state)
{
	struct bf_geo_table t;
	char path[PATH_MAX], copy[PATH_MAX], command[3 * PATH_MAX], output[256];

	require_mmdb();
	mmdb_path(path, "v4.mmdb");
	assert_true(snprintf(copy, sizeof(copy), "%s/v4-copy.bin", test_dir) < PATH_MAX);
	(void)snprintf(command, sizeof(command), "cp '%s' '%s'", path, copy);
	assert_int_equal(run_command(command, output, sizeof(output)), 0);
	bf_geo_table_init(&t);
	load_ok(&t, copy);
	assert_int_equal(t.sources[0].format, BF_GEO_FORMAT_MMDB);
	assert_int_equal(t.n4, FIXTURE_COUNT4);
	bf_geo_table_free(&t);
}

static void test_mmdb_country_paths(void **state)
{
	struct bf_geo_options opts = {
		.mmdb_country = { "location/geo/cc", "cc" },
		.nmmdb_country = 2,
	};
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	require_mmdb();
	mmdb_path(path, "paths.mmdb");
	bf_geo_table_init(&t);
	assert_int_equal(bf_geo_load_file_opts(&t, path, &opts, &err), 0);
	flatten(&t);
	check_lookup(&t, "192.0.2.1", "MO 0");
	check_lookup(&t, "198.51.100.1", "CN 0");
	bf_geo_table_free(&t);

	/* The defaults find country/iso_code only. */
	bf_geo_table_init(&t);
	load_ok(&t, path);
	flatten(&t);
	check_lookup(&t, "192.0.2.1", "?? 0");
	check_lookup(&t, "198.51.100.1", "HK 0");
	bf_geo_table_free(&t);
}

/* The file offset of the data section of an mmdb file, from libmaxminddb. */
static uint32_t data_section_offset(const char *path, uint32_t *file_size)
{
	MMDB_s mmdb;
	uint32_t offset;

	assert_int_equal(MMDB_open(path, MMDB_MODE_MMAP, &mmdb), MMDB_SUCCESS);
	offset = (uint32_t)(mmdb.data_section - mmdb.file_content);
	*file_size = (uint32_t)mmdb.file_size;
	MMDB_close(&mmdb);
	return offset;
}

/* Parses the number after "offset " in a message. */
static uint32_t message_offset(const char *msg)
{
	const char *at = strstr(msg, "' offset ");

	assert_non_null(at);
	return (uint32_t)strtoul(at + strlen("' offset "), NULL, 10);
}

static void test_mmdb_value_errors(void **state)
{
	struct bf_geo_options numeric = { .mmdb_country = { "country/numeric_code" },
					  .nmmdb_country = 1 };
	const char *bad_code[] = { "invalid country code 'USA' at 'country/iso_code'", NULL };
	const char *bad_type[] = { "invalid country code at 'country/numeric_code'",
				   "expected a string", NULL };
	const char *overlap[] = { "range '192.0.2.0/24' with country US overlaps offset",
				  "with country MO", NULL };
	struct bf_geo_table t;
	struct bf_error err = { "" };
	uint32_t data_offset, file_size, offset;
	char path[PATH_MAX];

	require_mmdb();
	mmdb_path(path, "bad-code.mmdb");
	check_load_error(path, NULL, "' offset ", bad_code, -EINVAL);
	/* The offset is that of a data record. */
	bf_geo_table_init(&t);
	assert_int_equal(bf_geo_load_file(&t, path, &err), -EINVAL);
	data_offset = data_section_offset(path, &file_size);
	offset = message_offset(err.msg);
	assert_true(offset >= data_offset);
	assert_true(offset < file_size);
	bf_geo_table_free(&t);

	mmdb_path(path, "bad-type.mmdb");
	check_load_error(path, &numeric, "' offset ", bad_type, -EINVAL);
	/* The default key paths do not read the number, so the network has no country. */
	bf_geo_table_init(&t);
	load_ok(&t, path);
	flatten(&t);
	check_lookup(&t, "203.0.113.1", "?? 0");
	bf_geo_table_free(&t);

	mmdb_path(path, "overlap.mmdb");
	check_load_error(path, NULL, "' offset ", overlap, -EINVAL);
}

static void test_mmdb_bad_key_paths(void **state)
{
	static const char *const paths[] = { "country//iso_code", "/country", "country/", "" };
	const char *parts[] = { "invalid mmdb country key path", NULL };
	struct bf_geo_options opts = { .nmmdb_country = 1 };
	char path[PATH_MAX];

	require_mmdb();
	mmdb_path(path, "v4.mmdb");
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		opts.mmdb_country[0] = paths[i];
		check_load_error(path, &opts, "': ", parts, -EINVAL);
	}
}

/* Writes a copy of an mmdb fixture, cut to size bytes or with bytes replaced at offset. */
static void write_damaged(char out[PATH_MAX], const char *fixture, const char *name, long size,
			  long offset, const void *bytes, size_t nbytes)
{
	char path[PATH_MAX];
	char *content;
	long len;
	FILE *f;

	mmdb_path(path, fixture);
	f = fopen(path, "rbe");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	content = malloc(len);
	assert_non_null(content);
	assert_int_equal(fread(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	if (size >= 0 && size < len)
		len = size;
	if (bytes)
		memcpy(content + offset, bytes, nbytes);
	write_bytes(out, name, content, len);
	free(content);
}

static void test_mmdb_damaged(void **state)
{
	static const uint8_t past_data[3] = { 0xff, 0xff, 0xff };
	static const uint8_t to_itself[3] = { 0, 0, 1 }; /* node 1's left record points to node 1 */
	const char *metadata[] = { "invalid MaxMind DB file: ", NULL };
	const char *binary[] = { "the line contains a NUL byte", "MaxMind DB", NULL };
	const char *root[] = { "invalid search tree: node 0 has the invalid right record 16777215",
			       NULL };
	const char *loop[] = { "invalid search tree", NULL };
	char path[PATH_MAX], full[PATH_MAX];
	struct stat st;

	require_mmdb();
	mmdb_path(full, "v6.mmdb");
	assert_int_equal(stat(full, &st), 0);

	/* The metadata is cut: it starts the last bytes, so libmaxminddb finds it damaged. */
	write_damaged(path, "v6.mmdb", "cut-end.dat", st.st_size - 20, 0, NULL, 0);
	check_load_error(path, NULL, "': ", metadata, -EINVAL);
	/* The metadata is gone: the name still says mmdb, so libmaxminddb reports it. */
	write_damaged(path, "v6.mmdb", "cut-half.mmdb", st.st_size / 2, 0, NULL, 0);
	check_load_error(path, NULL, "': ", metadata, -EINVAL);
	/* Without the name it is a binary file that no text format accepts. */
	write_damaged(path, "v6.mmdb", "cut-half.dat", st.st_size / 2, 0, NULL, 0);
	check_load_error(path, NULL, "'", binary, -EINVAL);

	/* Records of 24 bits: node 0 is bytes 0 to 5, its right record bytes 3 to 5. */
	write_damaged(path, "v4.mmdb", "root.mmdb", -1, 3, past_data, sizeof(past_data));
	check_load_error(path, NULL, "' offset 0: ", root, -EINVAL);
	write_damaged(path, "v4.mmdb", "loop.mmdb", -1, 6, to_itself, sizeof(to_itself));
	check_load_error(path, NULL, "' offset ", loop, -EINVAL);
}

/* GeoIP2 / GeoLite2 CSV */

static const char geoip2_blocks4[] =
	"network,geoname_id,registered_country_geoname_id,represented_country_geoname_id,"
	"is_anonymous_proxy,is_satellite_provider,is_anycast\r\n"
	"192.0.2.0/25,1821275,1821275,,0,0,\r\n"
	"192.0.2.128/25,,1819730,,0,0,\r\n"	    /* only the registered country */
	"198.51.100.0/24,6255147,1814991,,0,0,\r\n" /* a continent: the registered country */
	"203.0.113.0/24,,,,1,0,\r\n";		    /* no country */

static const char geoip2_blocks6[] =
	"network,geoname_id,registered_country_geoname_id,represented_country_geoname_id,"
	"is_anonymous_proxy,is_satellite_provider\n"
	"2001:db8::/33,1821275,1821275,,0,0\n"
	"2001:db8:8000::/33,1819730,1819730,,0,0\n";

static const char geoip2_locations_en[] =
	"geoname_id,locale_code,continent_code,continent_name,country_iso_code,country_name,"
	"is_in_european_union\n"
	"1821275,en,AS,Asia,MO,Macao,0\n"
	"1819730,en,AS,Asia,HK,\"Hong Kong, \"\"SAR\"\"\",0\n"
	"1814991,en,AS,Asia,CN,China,0\n"
	"6255147,en,AS,Asia,,,0\n";

/* Another language, with other countries, to show which file is read. */
static const char geoip2_locations_de[] =
	"geoname_id,locale_code,continent_code,continent_name,country_iso_code,country_name,"
	"is_in_european_union\n"
	"1821275,de,AS,Asien,DE,Macau,0\n"
	"1819730,de,AS,Asien,DE,Hongkong,0\n"
	"1814991,de,AS,Asien,DE,China,0\n"
	"6255147,de,AS,Asien,,,0\n";

/* Writes a GeoLite2 CSV folder into dir; a NULL content leaves that file out. */
static void write_geoip2_folder(char dir[PATH_MAX], const char *name, const char *blocks4,
				const char *blocks6, const char *locations_en,
				const char *locations_de)
{
	const struct {
		const char *file;
		const char *content;
	} files[] = {
		{ "GeoLite2-Country-Blocks-IPv4.csv", blocks4 },
		{ "GeoLite2-Country-Blocks-IPv6.csv", blocks6 },
		{ "GeoLite2-Country-Locations-en.csv", locations_en },
		{ "GeoLite2-Country-Locations-de.csv", locations_de },
	};
	char path[PATH_MAX], file[PATH_MAX + 64];

	make_dir(dir, name);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i].content)
			continue;
		(void)snprintf(file, sizeof(file), "%s/%s", name, files[i].file);
		write_file(path, file, files[i].content);
	}
}

static void test_geoip2_folder(void **state)
{
	struct bf_geo_table t;
	static const char detail[] = "Blocks with Locations 'GeoLite2-Country-Locations-en.csv'";
	char dir[PATH_MAX], blocks4[PATH_MAX + 64], blocks6[PATH_MAX + 64];

	write_geoip2_folder(dir, "GeoLite2-Country-CSV_20250103", geoip2_blocks4, geoip2_blocks6,
			    geoip2_locations_en, geoip2_locations_de);
	(void)snprintf(blocks4, sizeof(blocks4), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	(void)snprintf(blocks6, sizeof(blocks6), "%s/GeoLite2-Country-Blocks-IPv6.csv", dir);

	bf_geo_table_init(&t);
	load_ok(&t, dir);
	assert_int_equal(t.nsources, 2);
	check_source(&t, 0, blocks4, BF_GEO_FORMAT_GEOIP2_CSV, detail, "2025-01-03");
	check_source(&t, 1, blocks6, BF_GEO_FORMAT_GEOIP2_CSV, detail, "2025-01-03");
	assert_int_equal(t.sources[0].count4, 4);
	assert_int_equal(t.sources[0].count6, 0);
	assert_int_equal(t.sources[1].count4, 0);
	assert_int_equal(t.sources[1].count6, 2);
	flatten(&t);
	check_lookup(&t, "192.0.2.1", "MO 0");
	check_lookup(&t, "192.0.2.200", "HK 0");
	check_lookup(&t, "198.51.100.1", "CN 0");
	check_lookup(&t, "203.0.113.1", "?? 0");
	check_lookup(&t, "2001:db8::1", "MO 1");
	check_lookup(&t, "2001:db8:8000::1", "HK 1");
	bf_geo_table_free(&t);

	/* One Blocks file finds the Locations file beside it. */
	bf_geo_table_init(&t);
	load_ok(&t, blocks6);
	assert_int_equal(t.nsources, 1);
	check_source(&t, 0, blocks6, BF_GEO_FORMAT_GEOIP2_CSV, detail, "2025-01-03");
	bf_geo_table_free(&t);
}

static void test_geoip2_locations_fallback(void **state)
{
	static const char detail[] = "Blocks with Locations 'GeoLite2-Country-Locations-de.csv'";
	struct bf_geo_table t;
	char dir[PATH_MAX];

	/* Without -en, another language; the folder name carries no date. */
	write_geoip2_folder(dir, "geoip2-de", geoip2_blocks4, geoip2_blocks6, NULL,
			    geoip2_locations_de);
	bf_geo_table_init(&t);
	load_ok(&t, dir);
	assert_string_equal(t.sources[0].detail, detail);
	assert_string_equal(t.sources[0].date, "");
	flatten(&t);
	check_lookup(&t, "192.0.2.1", "DE 0");
	check_lookup(&t, "2001:db8::1", "DE 1");
	bf_geo_table_free(&t);
}

static void test_geoip2_errors(void **state)
{
	const char *no_locations[] = { "missing GeoIP2 Locations file",
				       "GeoLite2-Country-Locations-en.csv", NULL };
	const char *unknown_id[] = { "unknown geoname_id '999'", "not in the Locations file",
				     "GeoLite2-Country-Locations-en.csv", NULL };
	const char *unknown_registered[] = { "unknown registered_country_geoname_id '998'", NULL };
	const char *fields[] = {
		"'192.0.2.0/24,1821275' has 2 fields but the header (line 1) has 6", NULL
	};
	const char *host_bits[] = { "invalid prefix '192.0.2.1/24'", "host bits", NULL };
	const char *locations_file[] = { "header of a GeoIP2 Locations file", "Blocks file", NULL };
	const char *overlap[] = { "range '192.0.2.0/25' with country HK overlaps line 2 with "
				  "country MO",
				  NULL };
	static const char header6[] =
		"network,geoname_id,registered_country_geoname_id,represented_country_geoname_id,"
		"is_anonymous_proxy,is_satellite_provider\n";
	char dir[PATH_MAX], path[PATH_MAX + 64], content[1024];
	struct bf_geo_table t;
	struct bf_error err = { "" };

	write_geoip2_folder(dir, "no-locations", geoip2_blocks4, geoip2_blocks6, NULL, NULL);
	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	check_load_error(path, NULL, "': ", no_locations, -ENOENT);

	(void)snprintf(content, sizeof(content),
		       "%s192.0.2.0/24,1821275,,,0,0\n"
		       "198.51.100.0/24,999,1821275,,0,0\n",
		       header6);
	write_geoip2_folder(dir, "unknown-id", content, geoip2_blocks6, geoip2_locations_en, NULL);
	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	check_load_error(path, NULL, "' line 3: ", unknown_id, -EINVAL);

	(void)snprintf(content, sizeof(content), "%s192.0.2.0/24,1821275,998,,0,0\n", header6);
	write_geoip2_folder(dir, "unknown-registered", content, geoip2_blocks6, geoip2_locations_en,
			    NULL);
	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	check_load_error(path, NULL, "' line 2: ", unknown_registered, -EINVAL);

	(void)snprintf(content, sizeof(content), "%s192.0.2.0/24,1821275\n", header6);
	write_geoip2_folder(dir, "fields", content, geoip2_blocks6, geoip2_locations_en, NULL);
	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	check_load_error(path, NULL, "' line 2: ", fields, -EINVAL);

	(void)snprintf(content, sizeof(content), "%s192.0.2.1/24,1821275,,,0,0\n", header6);
	write_geoip2_folder(dir, "host-bits", content, geoip2_blocks6, geoip2_locations_en, NULL);
	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	check_load_error(path, NULL, "' line 2: ", host_bits, -EINVAL);

	(void)snprintf(content, sizeof(content),
		       "%s192.0.2.0/24,1821275,,,0,0\n"
		       "192.0.2.0/25,1819730,,,0,0\n",
		       header6);
	write_geoip2_folder(dir, "overlap", content, geoip2_blocks6, geoip2_locations_en, NULL);
	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Blocks-IPv4.csv", dir);
	check_load_error(path, NULL, "' line 3: ", overlap, -EINVAL);

	(void)snprintf(path, sizeof(path), "%s/GeoLite2-Country-Locations-en.csv", dir);
	check_load_error(path, NULL, "' line 1: ", locations_file, -EINVAL);

	/* A folder without its IPv6 Blocks file. */
	write_geoip2_folder(dir, "no-ipv6", geoip2_blocks4, NULL, geoip2_locations_en, NULL);
	bf_geo_table_init(&t);
	assert_int_equal(bf_geo_load_file(&t, dir, &err), -ENOENT);
	check_contains(err.msg, dir);
	check_contains(err.msg, "missing '*-Blocks-IPv6.csv' file");
	assert_int_equal(t.nsources, 0);

	/* An empty folder is not a text file: the folder is named, and what it must contain. */
	make_dir(dir, "empty-folder");
	assert_int_equal(bf_geo_load_file(&t, dir, &err), -ENOENT);
	check_contains(err.msg, "failed to load geolocation folder");
	check_contains(err.msg, "*-Blocks-IPv4.csv");
	assert_int_equal(t.nsources, 0);
	bf_geo_table_free(&t);
}

/* A folder whose second Blocks file is bad leaves the table as it was, the first layer undone. */
static void test_geoip2_folder_leaves_table(void **state)
{
	struct bf_geo_table t;
	struct bf_error err = { "" };
	struct bf_geo_source sources[BF_GEO_MAX_SOURCES];
	struct bf_range4 *v4;
	char dir[PATH_MAX], content[512];
	size_t n4, n6;

	(void)snprintf(content, sizeof(content),
		       "%s2001:db8::/33,1821275,1821275,,0,0\n"
		       "2001:db8::/32,bad,,,0,0\n",
		       "network,geoname_id,registered_country_geoname_id,"
		       "represented_country_geoname_id,is_anonymous_proxy,is_satellite_provider\n");
	write_geoip2_folder(dir, "bad-ipv6", geoip2_blocks4, content, geoip2_locations_en, NULL);

	bf_geo_table_init(&t);
	load_text(&t, "before", "198.18.0.0/15,US\n");
	flatten(&t);
	n4 = t.n4;
	n6 = t.n6;
	memcpy(sources, t.sources, sizeof(sources));
	v4 = malloc(n4 * sizeof(*v4));
	assert_non_null(v4);
	memcpy(v4, t.v4, n4 * sizeof(*v4));

	assert_int_equal(bf_geo_load_file(&t, dir, &err), -EINVAL);
	check_contains(err.msg, "GeoLite2-Country-Blocks-IPv6.csv' line 3: ");
	check_contains(err.msg, "invalid geoname_id 'bad'");
	assert_int_equal(t.n4, n4);
	assert_int_equal(t.n6, n6);
	assert_int_equal(t.nsources, 2);
	assert_true(t.flat);
	assert_memory_equal(t.sources, sources, sizeof(sources));
	assert_memory_equal(t.v4, v4, n4 * sizeof(*v4));
	check_lookup(&t, "192.0.2.1", "none");
	check_lookup(&t, "198.18.0.1", "US 0");
	free(v4);
	bf_geo_table_free(&t);
}

/* DB-IP and ip-location-db ranges */

static void test_dbip_with_header(void **state)
{
	static const char content[] = "# DB-IP country lite, CC BY 4.0\r\n"
				      "ip_start,ip_end,country\r\n"
				      "1.0.0.0,1.0.0.255,AU\r\n"
				      "\r\n"
				      "192.0.2.0 , 192.0.2.255 , mo\r\n"
				      "2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,HK\r\n"
				      "::ffff:198.51.100.0,::ffff:198.51.100.255,CN\r\n";
	struct bf_geo_table t;
	char path[PATH_MAX];

	write_file(path, "dbip-header.csv", content);
	bf_geo_table_init(&t);
	load_ok(&t, path);
	check_source(&t, 0, path, BF_GEO_FORMAT_DBIP_CSV,
		     "text IPv4 and IPv6 ranges, header ip_start,ip_end,country", "");
	/* The IPv4-mapped range is stored as IPv4. */
	assert_int_equal(t.sources[0].count4, 3);
	assert_int_equal(t.sources[0].count6, 1);
	flatten(&t);
	check_lookup(&t, "1.0.0.255", "AU 0");
	check_lookup(&t, "192.0.2.9", "MO 0");
	check_lookup(&t, "198.51.100.9", "CN 0");
	check_lookup(&t, "2001:db8:1234::1", "HK 0");
	bf_geo_table_free(&t);
}

static void test_dbip_without_header(void **state)
{
	struct bf_geo_table t;
	char path[PATH_MAX];

	/* Both families in one file, the way DB-IP writes them; quotes are accepted. */
	write_file(path, "dbip.csv",
		   "\"1.0.0.0\",\"1.0.0.255\",\"AU\"\n"
		   "2001:db8::,2001:db8::ffff,HK\n");
	bf_geo_table_init(&t);
	load_ok(&t, path);
	check_source(&t, 0, path, BF_GEO_FORMAT_DBIP_CSV, "text IPv4 and IPv6 ranges", "");
	flatten(&t);
	check_lookup(&t, "1.0.0.1", "AU 0");
	check_lookup(&t, "2001:db8::ffff", "HK 0");
	check_lookup(&t, "2001:db8::1:0", "none");
	bf_geo_table_free(&t);
}

static void test_ip_location_db(void **state)
{
	struct bf_geo_table t;
	char text4[PATH_MAX], text6[PATH_MAX], num4[PATH_MAX], num6[PATH_MAX], header[PATH_MAX];

	write_file(text4, "geo-asn-country-ipv4.csv",
		   "1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.3.255,CN\n");
	write_file(text6, "geo-asn-country-ipv6.csv", "2001:db8::,2001:db8::ffff,HK\n");
	write_file(num4, "geo-asn-country-ipv4-num.csv", "16777216,16777471,AU\r\n");
	write_file(num6, "geo-asn-country-ipv6-num.csv",
		   "# 2001:db8:852::/48\n"
		   "42540766413857604852683145093777981440,"
		   "42540766413858813778502759722952687615,HK\n"
		   /* ::ffff:198.51.100.0/24, stored as IPv4 */
		   "281474007000064,281474007000319,CN\n"
		   /* low numbers are IPv6 too once the first line was wide */
		   "1,1,US\n");
	write_file(header, "start-end.csv", "start,end,country\n203.0.113.0,203.0.113.255,US\n");

	bf_geo_table_init(&t);
	load_ok(&t, text4);
	load_ok(&t, text6);
	load_ok(&t, num4);
	load_ok(&t, num6);
	load_ok(&t, header);
	check_source(&t, 0, text4, BF_GEO_FORMAT_RANGE_CSV, "text IPv4 ranges", "");
	check_source(&t, 1, text6, BF_GEO_FORMAT_TOR6, "text IPv6 ranges", "");
	check_source(&t, 2, num4, BF_GEO_FORMAT_TOR4, "decimal IPv4 ranges", "");
	check_source(&t, 3, num6, BF_GEO_FORMAT_RANGE_CSV, "decimal IPv6 ranges", "");
	check_source(&t, 4, header, BF_GEO_FORMAT_RANGE_CSV,
		     "text IPv4 ranges, header start,end,country", "");
	assert_int_equal(t.sources[3].count4, 1);
	assert_int_equal(t.sources[3].count6, 2);
	flatten(&t);
	check_lookup(&t, "1.0.0.7", "AU 2");
	check_lookup(&t, "1.0.2.7", "CN 0");
	check_lookup(&t, "2001:db8::7", "HK 1");
	check_lookup(&t, "2001:db8:852:1::7", "HK 3");
	check_lookup(&t, "198.51.100.7", "CN 3");
	check_lookup(&t, "::1", "?? 5");
	check_lookup(&t, "203.0.113.1", "US 4");
	bf_geo_table_free(&t);
}

/* IP2Location LITE DB1 */

static void test_ip2location_ipv4(void **state)
{
	static const char content[] =
		"\"0\",\"16777215\",\"-\",\"-\"\r\n"
		"\"16777216\",\"16777471\",\"AU\",\"Australia\"\r\n"
		"\"3221225984\",\"3221226239\",\"MO\",\"Macao\"\r\n"
		"\"3325256704\",\"3325256959\",\"KR\",\"Korea, Republic of\"\r\n";
	struct bf_geo_table t;
	char path[PATH_MAX];

	write_file(path, "IP2LOCATION-LITE-DB1.CSV", content);
	bf_geo_table_init(&t);
	load_ok(&t, path);
	check_source(&t, 0, path, BF_GEO_FORMAT_IP2LOCATION_CSV, "DB1, IPv4 edition", "");
	assert_int_equal(t.n4, 4);
	/* "-" is no country. */
	assert_int_equal(t.v4[0].country, BF_CC_NONE);
	flatten(&t);
	check_lookup(&t, "1.0.0.1", "AU 0");
	check_lookup(&t, "192.0.2.1", "MO 0");
	check_lookup(&t, "198.51.100.1", "KR 0");
	bf_geo_table_free(&t);
}

static void test_ip2location_ipv6(void **state)
{
	static const char content[] =
		"\"0\",\"281470681743359\",\"-\",\"-\"\n"
		/* ::ffff:1.0.0.0 to ::ffff:1.0.0.255 */
		"\"281470698520576\",\"281470698520831\",\"AU\",\"Australia\"\n"
		/* ::ffff:192.0.2.0/24 */
		"\"281473902969344\",\"281473902969599\",\"MO\",\"Macao\"\n"
		/* 2001:db8::/32 */
		"\"42540766411282592856903984951653826560\","
		"\"42540766490510755371168322545197776895\",\"HK\",\"Hong Kong\"\n";
	struct bf_geo_table t;
	char path[PATH_MAX];

	write_file(path, "IP2LOCATION-LITE-DB1.IPV6.CSV", content);
	bf_geo_table_init(&t);
	load_ok(&t, path);
	check_source(&t, 0, path, BF_GEO_FORMAT_IP2LOCATION_CSV, "DB1, IPv6 edition", "");
	assert_int_equal(t.sources[0].count4, 2);
	assert_int_equal(t.sources[0].count6, 2);
	flatten(&t);
	check_lookup(&t, "1.0.0.1", "AU 0");
	check_lookup(&t, "::ffff:1.0.0.1", "AU 0");
	check_lookup(&t, "192.0.2.255", "MO 0");
	check_lookup(&t, "1.0.1.0", "none");
	check_lookup(&t, "2001:db8:ffff::1", "HK 0");
	check_lookup(&t, "::fffe:ffff:ffff", "?? 0");
	bf_geo_table_free(&t);
}

/* A range across the start of ::ffff:0:0/96 is split into its IPv6 and IPv4 parts. */
static void test_ip2location_mapped_split(void **state)
{
	struct bf_geo_table t;
	char dump[256], first[INET6_ADDRSTRLEN], last[INET6_ADDRSTRLEN];

	bf_geo_table_init(&t);
	/* ::fffe:ffff:ff00 to ::ffff:0.0.0.255 */
	load_text(&t, "ip2location-split.csv",
		  "\"281470681743104\",\"281470681743615\",\"JP\",\"Japan\"\n");
	assert_int_equal(t.n4, 1);
	assert_int_equal(t.n6, 1);
	assert_int_equal(t.v4[0].first, 0);
	assert_int_equal(t.v4[0].last, 255);
	assert_non_null(inet_ntop(AF_INET6, t.v6[0].first, first, sizeof(first)));
	assert_non_null(inet_ntop(AF_INET6, t.v6[0].last, last, sizeof(last)));
	(void)snprintf(dump, sizeof(dump), "%s-%s", first, last);
	assert_string_equal(dump, "::fffe:ffff:ff00-::fffe:ffff:ffff");
	bf_geo_table_free(&t);
}

/* Prefix lists */

static void test_prefix_list(void **state)
{
	static const char content[] = "# Macau\r\n"
				      "202.175.0.0/17\r\n"
				      "2001:db8:853::/48 ; operator note\r\n"
				      "203.0.113.7   # one host\r\n"
				      "::ffff:198.51.100.0/120\r\n";
	struct bf_geo_table t;
	struct bf_error err = { "" };
	char path[PATH_MAX];

	write_file(path, "macau.txt", content);
	bf_geo_table_init(&t);
	assert_int_equal(bf_geo_load_list_file(&t, path, BF_CC('M', 'O'), &err), 0);
	check_source(&t, 0, path, BF_GEO_FORMAT_CIDR_LIST, "prefixes of country MO", "");
	assert_int_equal(t.sources[0].count4, 3);
	assert_int_equal(t.sources[0].count6, 1);
	flatten(&t);
	check_lookup(&t, "202.175.3.3", "MO 0");
	check_lookup(&t, "2001:db8:853::1", "MO 0");
	check_lookup(&t, "203.0.113.7", "MO 0");
	check_lookup(&t, "203.0.113.8", "none");
	check_lookup(&t, "198.51.100.1", "MO 0");
	bf_geo_table_free(&t);
}

static void test_prefix_list_errors(void **state)
{
	static const struct {
		const char *content;
		const char *parts[3];
	} cases[] = {
		{ "192.0.2.0/24\n192.0.2.0/24,MO\n",
		  { "line 2: invalid prefix '192.0.2.0/24,MO'", "one prefix per line" } },
		{ "# x\n\n10.0.0.1/8\n", { "line 3: invalid prefix '10.0.0.1/8'", "host bits" } },
		{ "192.0.2/24\n", { "line 1: invalid prefix '192.0.2/24'" } },
		{ "# nothing\n", { "no data lines", "one prefix per line" } },
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bf_geo_table t;
		struct bf_error err = { "" };

		write_file(path, "bad-list.txt", cases[i].content);
		bf_geo_table_init(&t);
		assert_int_equal(bf_geo_load_list_file(&t, path, BF_CC('M', 'O'), &err), -EINVAL);
		check_contains(err.msg, path);
		for (size_t j = 0; j < ARRAY_SIZE(cases[i].parts) && cases[i].parts[j]; j++)
			check_contains(err.msg, cases[i].parts[j]);
		assert_int_equal(t.nsources, 0);
		bf_geo_table_free(&t);
	}
}

/* Errors of the text formats */

struct error_case {
	const char *name;
	const char *content;
	const char *position; /* what follows the quoted path: "' line 2: " or "': " */
	const char *parts[3];
};

static const struct error_case error_cases[] = {
	{ "unrecognized",
	  "just text\n",
	  "' line 1: ",
	  { "unrecognized line 'just text'", "accepted are MaxMind DB (.mmdb), GeoIP2/GeoLite2 CSV",
	    "IP2Location LITE DB1 CSV and 'CIDR,CC' lines" } },
	{ "empty", "", "': ", { "no data lines", "accepted are MaxMind DB" } },
	{ "header-only", "ip_start,ip_end,country\n", "': ", { "no data lines" } },
	{ "ip2location-number",
	  "\"16777216\",\"abc\",\"AU\",\"Australia\"\n",
	  "' line 1: ",
	  { "invalid address 'abc'", "decimal IPv4 address" } },
	{ "ip2location-country",
	  "\"1\",\"2\",\"USA\",\"x\"\n",
	  "' line 1: ",
	  { "invalid country code 'USA'", "or '-'" } },
	{ "ip2location-quote",
	  "\"1\",\"2\",\"AU\",\"x\"\n\"3\",\"4,\"AU\",\"x\"\n",
	  "' line 2: ",
	  { "invalid quoting in '\"3\",\"4,\"AU\",\"x\"'" } },
	{ "ip2location-mixed",
	  "\"1\",\"2\",\"AU\",\"x\"\n3,4,AU\n",
	  "' line 2: ",
	  { "'3,4,AU' is a decimal IPv4 range", "(line 1) is an IP2Location row" } },
	{ "ip2location-overlap6",
	  "\"281470698520576\",\"281470698520831\",\"AU\",\"Australia\"\n"
	  "\"281470698520700\",\"281470698520900\",\"CN\",\"China\"\n",
	  "' line 2: ",
	  { "range '281470698520700,281470698520900' with country CN overlaps line 1 with "
	    "country AU" } },
	{ "dbip-overlap",
	  "192.0.2.0,192.0.2.255,MO\n192.0.2.128,192.0.2.200,US\n",
	  "' line 2: ",
	  { "range '192.0.2.128,192.0.2.200' with country US overlaps line 1 with country MO" } },
	{ "dbip-address",
	  "ip_start,ip_end,country\n1.0.0.0,1.0.0.x,AU\n",
	  "' line 2: ",
	  { "invalid address '1.0.0.x'", "IPv4 address" } },
	{ "decimal6-mixed",
	  "42540766411282592856903984951653826560,42540766411282592856903984951653826561,HK\n"
	  "2001:db8::,2001:db8::1,HK\n",
	  "' line 2: ",
	  { "is an IPv6 range 'first,last,CC'", "(line 1) is a decimal IPv6 range" } },
	{ "decimal6-overlap",
	  "42540766411282592856903984951653826560,42540766411282592856903984951653826570,HK\n"
	  "42540766411282592856903984951653826565,42540766411282592856903984951653826575,MO\n",
	  "' line 2: ",
	  { "range '42540766411282592856903984951653826565,"
	    "42540766411282592856903984951653826575' with country MO overlaps line 1" } },
	{ "locations-alone",
	  "geoname_id,locale_code,continent_code,continent_name,country_iso_code\n",
	  "' line 1: ",
	  { "header of a GeoIP2 Locations file" } },
	{ "geoip2-header",
	  "network,registered_country_geoname_id\n192.0.2.0/24,1\n",
	  "' line 1: ",
	  { "invalid GeoIP2 Blocks header", "geoname_id" } },
};

static void test_format_errors(void **state)
{
	char path[PATH_MAX], name[64];

	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		const struct error_case *c = &error_cases[i];
		const char *parts[ARRAY_SIZE(c->parts) + 1] = { NULL };

		for (size_t j = 0; j < ARRAY_SIZE(c->parts); j++)
			parts[j] = c->parts[j];
		(void)snprintf(name, sizeof(name), "error-%s.csv", c->name);
		write_file(path, name, c->content);
		check_load_error(path, NULL, c->position, parts, -EINVAL);
	}
}

/* Names and provenance */

static void test_format_names(void **state)
{
	static const struct {
		enum bf_geo_format format;
		int value;
		const char *name;
	} formats[] = {
		{ BF_GEO_FORMAT_TOR4, 1, "tor-geoip" },
		{ BF_GEO_FORMAT_TOR6, 2, "tor-geoip6" },
		{ BF_GEO_FORMAT_CIDR, 3, "cidr" },
		{ BF_GEO_FORMAT_BUILTIN, 4, "builtin" },
		{ BF_GEO_FORMAT_MMDB, 5, "mmdb" },
		{ BF_GEO_FORMAT_GEOIP2_CSV, 6, "geoip2-csv" },
		{ BF_GEO_FORMAT_DBIP_CSV, 7, "dbip-csv" },
		{ BF_GEO_FORMAT_IP2LOCATION_CSV, 8, "ip2location-csv" },
		{ BF_GEO_FORMAT_RANGE_CSV, 9, "range-csv" },
		{ BF_GEO_FORMAT_CIDR_LIST, 10, "cidr-list" },
	};

	/* The values are stored, so the existing ones keep their numbers. */
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		assert_int_equal(formats[i].format, formats[i].value);
		assert_string_equal(bf_geo_format_name(formats[i].format), formats[i].name);
	}
}

static void test_tor_provenance(void **state)
{
	struct bf_geo_table t;
	char path4[PATH_MAX], path6[PATH_MAX];

	write_file(path4, "geoip",
		   "# Generated: Thu, 25 Jun 2026 04:33:59 GMT\n"
		   "3221225984,3221226239,MO\n");
	write_file(path6, "geoip6",
		   "# Generated: Thu, 25 Jun 2026 04:33:59 GMT\n"
		   "2001:db8:852::,2001:db8:852:ffff:ffff:ffff:ffff:ffff,HK\n");
	bf_geo_table_init(&t);
	load_ok(&t, path4);
	load_ok(&t, path6);
	check_source(&t, 0, path4, BF_GEO_FORMAT_TOR4, "decimal IPv4 ranges",
		     "Thu, 25 Jun 2026 04:33:59 GMT");
	check_source(&t, 1, path6, BF_GEO_FORMAT_TOR6, "text IPv6 ranges",
		     "Thu, 25 Jun 2026 04:33:59 GMT");
	flatten(&t);
	assert_string_equal(t.sources[2].sha256, "");
	assert_string_equal(t.sources[2].detail, "");
	bf_geo_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mmdb_ipv4),
		cmocka_unit_test(test_mmdb_ipv6_aliases),
		cmocka_unit_test(test_mmdb_detected_by_content),
		cmocka_unit_test(test_mmdb_country_paths),
		cmocka_unit_test(test_mmdb_value_errors),
		cmocka_unit_test(test_mmdb_bad_key_paths),
		cmocka_unit_test(test_mmdb_damaged),
		cmocka_unit_test(test_geoip2_folder),
		cmocka_unit_test(test_geoip2_locations_fallback),
		cmocka_unit_test(test_geoip2_errors),
		cmocka_unit_test(test_geoip2_folder_leaves_table),
		cmocka_unit_test(test_dbip_with_header),
		cmocka_unit_test(test_dbip_without_header),
		cmocka_unit_test(test_ip_location_db),
		cmocka_unit_test(test_ip2location_ipv4),
		cmocka_unit_test(test_ip2location_ipv6),
		cmocka_unit_test(test_ip2location_mapped_split),
		cmocka_unit_test(test_prefix_list),
		cmocka_unit_test(test_prefix_list_errors),
		cmocka_unit_test(test_format_errors),
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_tor_provenance),
	};

	return cmocka_run_group_tests_name("geo_formats", tests, setup_dir, teardown_dir);
}
