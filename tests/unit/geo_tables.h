/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small flattened geolocation tables built by hand, put in the kernel with
 * the daemon's own code (user/lib/geomap.c), for the tests that run BPF
 * programs. Include after <cmocka.h>: the helpers fail the test on error.
 */
#ifndef BORDERFLOW_TESTS_GEO_TABLES_H
#define BORDERFLOW_TESTS_GEO_TABLES_H

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "user/lib/geomap.h"

/* Sources of the tables: a data file, and the fixed local ranges. */
#define TEST_SOURCE_DATA    0
#define TEST_SOURCE_BUILTIN 1

static inline void test_table_init(struct bf_geo_table *t)
{
	bf_geo_table_init(t);
	strcpy(t->sources[TEST_SOURCE_DATA].path, "test.csv");
	t->sources[TEST_SOURCE_DATA].format = BF_GEO_FORMAT_CIDR;
	strcpy(t->sources[TEST_SOURCE_BUILTIN].path, "builtin");
	t->sources[TEST_SOURCE_BUILTIN].format = BF_GEO_FORMAT_BUILTIN;
	t->nsources = 2;
	t->flat = true;
}

/* Appends an IPv4 range, host order. Ranges come in address order, without overlaps. */
static inline void test_table_add4(struct bf_geo_table *t, uint32_t first, uint32_t last,
				   uint16_t country, uint8_t source)
{
	assert_true(first <= last);
	assert_true(!t->n4 || first > t->v4[t->n4 - 1].last);
	t->v4 = realloc(t->v4, (t->n4 + 1) * sizeof(*t->v4));
	assert_non_null(t->v4);
	t->v4[t->n4++] = (struct bf_range4){
		.first = first, .last = last, .country = country, .source = source
	};
	t->cap4 = t->n4;
}

/* Appends an IPv6 range, network order. */
static inline void test_table_add6(struct bf_geo_table *t, const uint8_t first[16],
				   const uint8_t last[16], uint16_t country, uint8_t source)
{
	struct bf_range6 *r;

	assert_true(memcmp(first, last, 16) <= 0);
	assert_true(!t->n6 || memcmp(first, t->v6[t->n6 - 1].last, 16) > 0);
	t->v6 = realloc(t->v6, (t->n6 + 1) * sizeof(*t->v6));
	assert_non_null(t->v6);
	r = &t->v6[t->n6++];
	memset(r, 0, sizeof(*r));
	memcpy(r->first, first, 16);
	memcpy(r->last, last, 16);
	r->country = country;
	r->source = source;
	t->cap6 = t->n6;
}

/* Same as test_table_add4() and test_table_add6() with addresses as text. */
static inline void test_table_add(struct bf_geo_table *t, const char *first, const char *last,
				  uint16_t country, uint8_t source)
{
	uint8_t first6[16], last6[16];
	uint32_t first4, last4;

	if (inet_pton(AF_INET, first, &first4) == 1) {
		assert_int_equal(inet_pton(AF_INET, last, &last4), 1);
		test_table_add4(t, ntohl(first4), ntohl(last4), country, source);
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, first, first6), 1);
	assert_int_equal(inet_pton(AF_INET6, last, last6), 1);
	test_table_add6(t, first6, last6, country, source);
}

/*
 * Builds the kernel's tables of t under cfg and puts them in slot 0 of the
 * arrays of maps geo4_fd and geo6_fd, as the daemon does.
 */
static inline void test_tables_put(const struct bf_geo_table *t, const struct bf_config *cfg,
				   uint16_t generation, int geo4_fd, int geo6_fd)
{
	struct bf_geo_map_fill filled = { 0 };
	struct bf_error err = { "" };
	size_t n4, n6;
	__u32 slot = 0;
	int fd4, fd6, ret;

	assert_int_equal(bf_geo_map_count(t, &n4, &n6), 0);
	fd4 = bf_geo_map_create(4, n4);
	fd6 = bf_geo_map_create(6, n6);
	if (fd4 < 0 || fd6 < 0)
		fail_msg("bf_geo_map_create() returned %d and %d", fd4, fd6);
	ret = bf_geo_map_fill(fd4, fd6, t, cfg, generation, &filled, &err);
	if (ret)
		fail_msg("bf_geo_map_fill() returned %d: %s", ret, err.msg);
	assert_int_equal(filled.ranges4, n4);
	assert_int_equal(filled.ranges6, n6);
	assert_int_equal(bpf_map_update_elem(geo4_fd, &slot, &fd4, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(geo6_fd, &slot, &fd6, BPF_ANY), 0);
	close(fd4);
	close(fd6);
}

#endif
