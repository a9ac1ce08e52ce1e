// SPDX-License-Identifier: GPL-2.0-or-later
/* Compiled geolocation files: round trip, provenance, and damaged files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "user/lib/geodiff.h"

static char folder[] = "/tmp/bf-compiled.XXXXXX";
static char data_path[256], override_path[256], compiled_path[256];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The stack: a CIDR data file and an override above it, flattened. */
static void load_stack(struct bf_geo_table *t)
{
	struct bf_error err = {};

	bf_geo_table_init(t);
	assert_int_equal(bf_geo_load_file(t, data_path, &err), 0);
	assert_int_equal(bf_geo_load_cidr_file(t, override_path, &err), 0);
	assert_int_equal(bf_geo_flatten(t, &err), 0);
}

static int setup(void **state)
{
	struct bf_geo_table t;
	struct bf_error err = {};

	if (!mkdtemp(folder))
		return -1;
	snprintf(data_path, sizeof(data_path), "%s/data.csv", folder);
	snprintf(override_path, sizeof(override_path), "%s/override.csv", folder);
	snprintf(compiled_path, sizeof(compiled_path), "%s/stack.bfgeo", folder);
	write_file(data_path, "192.0.2.0/24,MO\n198.51.100.0/24,CN\n2001:db8::/32,US\n");
	write_file(override_path, "198.51.100.128/25,HK\n");
	load_stack(&t);
	if (bf_geo_compile(&t, compiled_path, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	bf_geo_table_free(&t);
	return 0;
}

static int teardown(void **state)
{
	(void)unlink(data_path);
	(void)unlink(override_path);
	(void)unlink(compiled_path);
	(void)rmdir(folder);
	return 0;
}

static void test_round_trip_same_table(void **state)
{
	struct bf_geo_table original, compiled;
	struct bf_geo_change *changes = NULL;
	struct bf_error err = {};
	struct bf_config cfg;
	size_t n = 99;

	load_stack(&original);
	bf_geo_table_init(&compiled);
	assert_int_equal(bf_geo_load_file(&compiled, compiled_path, &err), 0);
	assert_int_equal(bf_geo_flatten(&compiled, &err), 0);
	assert_int_equal(compiled.n4, original.n4);
	assert_int_equal(compiled.n6, original.n6);
	bf_config_defaults(&cfg);
	assert_int_equal(bf_geo_diff(&original, &cfg, &compiled, &cfg, &changes, &n), 0);
	assert_int_equal(n, 0);
	free(changes);
	bf_geo_table_free(&original);
	bf_geo_table_free(&compiled);
}

static void test_round_trip_keeps_provenance(void **state)
{
	struct bf_geo_table compiled;
	struct bf_error err = {};
	const struct bf_range4 *r;
	uint32_t addr;

	bf_geo_table_init(&compiled);
	assert_int_equal(bf_geo_load_file(&compiled, compiled_path, &err), 0);
	assert_int_equal(bf_geo_flatten(&compiled, &err), 0);
	assert_int_equal(bf_parse_address("198.51.100.200", &addr, NULL), 4);
	r = bf_geo_lookup4(&compiled, addr);
	assert_non_null(r);
	assert_int_equal(r->country, BF_CC('H', 'K'));
	assert_string_equal(compiled.sources[r->source].path, override_path);
	assert_int_equal(strlen(compiled.sources[r->source].sha256), 64);
	assert_non_null(strstr(compiled.sources[r->source].detail, compiled_path));
	bf_geo_table_free(&compiled);
}

/* Copies the compiled file with one byte changed or with the end cut off, then loads it. */
static int load_damaged(long flip_offset, long cut_bytes, struct bf_error *err)
{
	char damaged[300];
	struct bf_geo_table t;
	FILE *in, *out;
	long size, i;
	int c, ret;

	snprintf(damaged, sizeof(damaged), "%s/damaged.bfgeo", folder);
	in = fopen(compiled_path, "rb");
	out = fopen(damaged, "wb");
	assert_non_null(in);
	assert_non_null(out);
	fseek(in, 0, SEEK_END);
	size = ftell(in);
	rewind(in);
	for (i = 0; i < size - cut_bytes && (c = fgetc(in)) != EOF; i++)
		fputc(i == flip_offset ? c ^ 0x40 : c, out);
	fclose(in);
	fclose(out);
	bf_geo_table_init(&t);
	ret = bf_geo_load_file(&t, damaged, err);
	assert_int_equal(t.n4 + t.n6, 0); /* nothing added on error */
	bf_geo_table_free(&t);
	(void)unlink(damaged);
	return ret;
}

static void test_flipped_byte_rejected(void **state)
{
	struct bf_error err = {};

	assert_int_not_equal(load_damaged(40, 0, &err), 0);
	assert_non_null(strstr(err.msg, "does not match its content"));
	assert_non_null(strstr(err.msg, "damaged.bfgeo"));
}

/* A flipped byte of the magic still reads as a damaged compiled file, not as text. */
static void test_damaged_magic_rejected(void **state)
{
	struct bf_error err = {};

	assert_int_not_equal(load_damaged(3, 0, &err), 0);
	assert_non_null(strstr(err.msg, "offset 0: damaged magic"));
	assert_non_null(strstr(err.msg, "damaged.bfgeo"));
}

static void test_truncated_file_rejected(void **state)
{
	struct bf_error err = {};

	assert_int_not_equal(load_damaged(-1, 50, &err), 0);
	assert_non_null(strstr(err.msg, "damaged.bfgeo"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_same_table),
		cmocka_unit_test(test_round_trip_keeps_provenance),
		cmocka_unit_test(test_flipped_byte_rejected),
		cmocka_unit_test(test_damaged_magic_rejected),
		cmocka_unit_test(test_truncated_file_rejected),
	};

	return cmocka_run_group_tests_name("geo_compiled", tests, setup, teardown);
}
