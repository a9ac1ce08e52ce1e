// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel's geolocation tables: tables that user/lib/geomap.c builds
 * from flattened tables, looked up with bf_geo_lookup() of bpf/geo.bpf.h
 * through BPF_PROG_TEST_RUN of the benchmark's lookup program
 * (tests/bench/geo_lookup.bpf.c), and compared with the userspace lookup
 * of user/lib/geo.c, address by address.
 *
 * The test of the real default data reads the Tor/IPFire files geoip and
 * geoip6 from BF_TEST_GEOIP_DIR (default /usr/share/borderflow), or skips.
 *
 * Needs root (CAP_BPF). Outside CI the tests skip without it; with CI=true
 * a missing capability fails them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cmocka.h>

#include "geo_tables.h"
#include "maps/geo.h"
#include "tests/geo_lookup.skel.h"
#include "tests/bench/geo_lookup.h"

/* Addresses per BPF_PROG_TEST_RUN, the size of the program's arrays. */
#define BATCH 65536
/* Mismatches printed before a check fails. */
#define MAX_MISMATCHES_PRINTED 5
#define GENERATION	       7

struct fixture {
	struct geo_lookup_bpf *skel;
	struct bf_config cfg;
};

/* A list of addresses to look up. */
struct addr_list {
	struct geo_lookup_addr *addrs;
	size_t count, cap;
};

static int print_nothing(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static bool in_ci(void)
{
	const char *ci = getenv("CI");

	return ci && !strcmp(ci, "true");
}

/* Fixture */

static struct geo_lookup_bpf *load_program(void)
{
	struct geo_lookup_bpf *skel = geo_lookup_bpf__open();

	if (!skel)
		return NULL;
	if (geo_lookup_skip_unused_maps(skel) || bpf_map__set_max_entries(skel->maps.addrs, BATCH) ||
	    bpf_map__set_max_entries(skel->maps.results, BATCH) || geo_lookup_bpf__load(skel)) {
		geo_lookup_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	libbpf_set_print(print_nothing);
	bf_config_defaults(&f->cfg);
	if (geteuid() == 0)
		f->skel = load_program();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	geo_lookup_bpf__destroy(f->skel);
	free(f);
	return 0;
}

static struct fixture *need_program(void **state)
{
	struct fixture *f = *state;

	if (f->skel)
		return f;
	if (in_ci())
		fail_msg("BPF program could not be loaded (needs root and a BPF-enabled kernel)");
	skip();
	return NULL;
}

static void put_tables(struct fixture *f, const struct bf_geo_table *t)
{
	test_tables_put(t, &f->cfg, GENERATION, bpf_map__fd(f->skel->maps.geo4),
			bpf_map__fd(f->skel->maps.geo6));
}

/* Addresses */

/* Adds an address in network order, of 4 bytes for family 4 and 16 for family 6. */
static void add_addr(struct addr_list *list, int family, const uint8_t *addr)
{
	if (list->count == list->cap) {
		list->cap = list->cap ? 2 * list->cap : 1024;
		list->addrs = realloc(list->addrs, list->cap * sizeof(*list->addrs));
		assert_non_null(list->addrs);
	}
	list->addrs[list->count] = (struct geo_lookup_addr){ .family = family };
	memcpy(list->addrs[list->count].addr, addr, family == 4 ? 4 : 16);
	list->count++;
}

/* Adds an IPv4 address given in host order. Values past the address space wrap around. */
static void add_addr4(struct addr_list *list, uint64_t host)
{
	uint32_t be = htonl((uint32_t)host);

	add_addr(list, 4, (const uint8_t *)&be);
}

/* Adds addr + delta, with delta -1, 0 or 1, wrapping around the address space. */
static void add_addr6(struct addr_list *list, const uint8_t addr[16], int delta)
{
	uint8_t moved[16];
	int i;

	memcpy(moved, addr, 16);
	for (i = 15; delta > 0 && i >= 0 && ++moved[i] == 0; i--)
		;
	for (i = 15; delta < 0 && i >= 0 && moved[i]-- == 0; i--)
		;
	add_addr(list, 6, moved);
}

static void add_text(struct addr_list *list, const char *text)
{
	uint8_t addr[16];

	if (inet_pton(AF_INET, text, addr) == 1) {
		add_addr(list, 4, addr);
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
	add_addr(list, 6, addr);
}

/* Every range's first and last address, each with its neighbours on both sides. */
static void add_boundaries(struct addr_list *list, const struct bf_geo_table *t)
{
	for (size_t i = 0; i < t->n4; i++) {
		for (int delta = -1; delta <= 1; delta++) {
			add_addr4(list, (uint64_t)t->v4[i].first + delta);
			add_addr4(list, (uint64_t)t->v4[i].last + delta);
		}
	}
	for (size_t i = 0; i < t->n6; i++) {
		for (int delta = -1; delta <= 1; delta++) {
			add_addr6(list, t->v6[i].first, delta);
			add_addr6(list, t->v6[i].last, delta);
		}
	}
}

/* The first and last address of every /16 of both families, and of both address spaces. */
static void add_blocks(struct addr_list *list)
{
	uint8_t addr[16];

	for (uint32_t block = 0; block < BF_GEO_BUCKETS; block++) {
		add_addr4(list, (uint64_t)block << 16);
		add_addr4(list, (uint64_t)block << 16 | 0xffff);
		memset(addr, 0, sizeof(addr));
		addr[0] = block >> 8;
		addr[1] = block & 0xff;
		add_addr(list, 6, addr);
		memset(addr + 2, 0xff, 14);
		add_addr(list, 6, addr);
	}
}

static uint64_t random64(unsigned short state[3])
{
	return (uint64_t)(uint32_t)jrand48(state) << 32 | (uint32_t)jrand48(state);
}

/*
 * Adds count addresses of each family drawn from seed: half anywhere, and
 * half inside a range of t (IPv4) or sharing the first bytes of one (IPv6).
 */
static void add_random(struct addr_list *list, const struct bf_geo_table *t, size_t count,
		       unsigned short seed)
{
	unsigned short state[3] = { 0x330e, seed, 0 };
	uint8_t addr[16];
	uint64_t word;

	for (size_t i = 0; i < count; i++) {
		const struct bf_range4 *r = t->n4 ? &t->v4[random64(state) % t->n4] : NULL;

		word = random64(state);
		if (r && i % 2)
			word = r->first + word % ((uint64_t)r->last - r->first + 1);
		add_addr4(list, word);
	}
	for (size_t i = 0; i < count; i++) {
		const struct bf_range6 *r = t->n6 ? &t->v6[random64(state) % t->n6] : NULL;

		word = random64(state);
		memcpy(addr, &word, 8);
		word = random64(state);
		memcpy(addr + 8, &word, 8);
		/* Near a range: its bytes up to the first that differs between its ends. */
		for (int b = 0; r && i % 2 && b < 16 && r->first[b] == r->last[b]; b++)
			addr[b] = r->first[b];
		add_addr(list, 6, addr);
	}
}

static void free_addrs(struct addr_list *list)
{
	free(list->addrs);
	memset(list, 0, sizeof(*list));
}

/* Lookups */

/* The value the kernel must return for an address: the userspace lookup of t. */
static struct bf_geo_value expected_value(const struct bf_geo_table *t, const struct bf_config *cfg,
					  const struct geo_lookup_addr *a)
{
	struct bf_geo_value value = { .country = BF_CC_NONE,
				      .verdict = BF_VERDICT_UNKNOWN,
				      .source = BF_GEO_SOURCE_NONE };
	uint16_t country;
	uint8_t source;

	if (a->family == 4) {
		uint32_t be;
		const struct bf_range4 *r;

		memcpy(&be, a->addr, 4);
		r = bf_geo_lookup4(t, ntohl(be));
		if (!r)
			return value;
		country = r->country;
		source = r->source;
	} else {
		const struct bf_range6 *r = bf_geo_lookup6(t, a->addr);

		if (!r)
			return value;
		country = r->country;
		source = r->source;
	}
	value.country = country;
	value.source = source;
	value.verdict = bf_range_verdict(t, cfg, country, source);
	value.generation = GENERATION;
	return value;
}

/* Looks count addresses, at most BATCH, up in the kernel's tables. */
static void kernel_lookup(struct fixture *f, const struct geo_lookup_addr *addrs, size_t count,
			  struct bf_geo_value *values)
{
	LIBBPF_OPTS(bpf_map_batch_opts, batch_opts, .elem_flags = BPF_ANY);
	uint8_t packet[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, run_opts, .data_in = packet, .data_size_in = sizeof(packet),
		    .repeat = 1);
	static __u32 keys[BATCH];
	__u32 n = count, out_batch;
	int ret;

	for (__u32 i = 0; i < count; i++)
		keys[i] = i;
	assert_int_equal(bpf_map_update_batch(bpf_map__fd(f->skel->maps.addrs), keys, addrs, &n,
					      &batch_opts),
			 0);
	f->skel->bss->lookup_first = 0;
	f->skel->bss->lookup_count = count;
	assert_int_equal(
		bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.geo_lookup_run), &run_opts),
		0);
	n = count;
	ret = bpf_map_lookup_batch(bpf_map__fd(f->skel->maps.results), NULL, &out_batch, keys,
				   values, &n, &batch_opts);
	if (ret && ret != -ENOENT)
		fail_msg("reading the map 'results' returned %d", ret);
	assert_int_equal(n, count);
}

static void print_mismatch(const struct geo_lookup_addr *a, const struct bf_geo_value *got,
			   const struct bf_geo_value *expected)
{
	char text[INET6_ADDRSTRLEN], got_cc[3], expected_cc[3];

	inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, text, sizeof(text));
	bf_country_format(got->country, got_cc);
	bf_country_format(expected->country, expected_cc);
	print_error("%s: kernel country %s verdict %u source %u generation %u, expected %s %u %u "
		    "%u\n",
		    text, got_cc, got->verdict, got->source, got->generation, expected_cc,
		    expected->verdict, expected->source, expected->generation);
}

/* Looks every address of list up in the kernel and fails unless each value is expected. */
static void check_lookups(struct fixture *f, const struct bf_geo_table *t,
			  const struct addr_list *list)
{
	static struct bf_geo_value values[BATCH];
	size_t mismatches = 0;

	for (size_t done = 0; done < list->count; done += BATCH) {
		size_t count = list->count - done < BATCH ? list->count - done : BATCH;

		kernel_lookup(f, list->addrs + done, count, values);
		for (size_t i = 0; i < count; i++) {
			const struct geo_lookup_addr *a = &list->addrs[done + i];
			struct bf_geo_value expected = expected_value(t, &f->cfg, a);

			if (!memcmp(&values[i], &expected, sizeof(expected)))
				continue;
			if (mismatches++ < MAX_MISMATCHES_PRINTED)
				print_mismatch(a, &values[i], &expected);
		}
	}
	if (mismatches)
		fail_msg("%zu of %zu addresses have another value in the kernel", mismatches,
			 list->count);
}

/* Puts t in place and checks its boundaries, every /16, extra, and random addresses. */
static void check_table(struct fixture *f, const struct bf_geo_table *t, const char *const *extra,
			size_t random_count)
{
	struct addr_list list = { 0 };

	put_tables(f, t);
	add_boundaries(&list, t);
	add_blocks(&list);
	for (size_t i = 0; extra && extra[i]; i++)
		add_text(&list, extra[i]);
	add_random(&list, t, random_count, 1);
	check_lookups(f, t, &list);
	free_addrs(&list);
}

/* Looks one address up in the kernel. */
static struct bf_geo_value lookup_one(struct fixture *f, const char *text)
{
	struct addr_list list = { 0 };
	struct bf_geo_value value;

	add_text(&list, text);
	kernel_lookup(f, list.addrs, 1, &value);
	free_addrs(&list);
	return value;
}

static const char *const space_ends[] = {
	"0.0.0.0",
	"0.0.0.1",
	"255.255.255.254",
	"255.255.255.255",
	"::",
	"::1",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	NULL,
};

/* Tests */

static void test_unaligned_ranges(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_table t;

	test_table_init(&t);
	test_table_add(&t, "1.2.3.4", "1.2.3.200", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "1.2.3.201", "1.3.0.7", BF_CC('M', 'O'), TEST_SOURCE_DATA);
	test_table_add(&t, "1.3.0.9", "1.3.0.9", BF_CC('U', 'S'), TEST_SOURCE_DATA);
	test_table_add(&t, "5.6.7.8", "9.10.11.12", BF_CC('D', 'E'), TEST_SOURCE_DATA);
	test_table_add(&t, "9.10.11.13", "9.10.255.255", BF_CC('H', 'K'), TEST_SOURCE_DATA);
	test_table_add(&t, "10.0.0.0", "10.255.255.255", BF_CC_NONE, TEST_SOURCE_BUILTIN);
	test_table_add(&t, "2001:db8::5", "2001:db8::9", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "2001:db8::a", "2001:db9:ffff::7", BF_CC('M', 'O'), TEST_SOURCE_DATA);
	test_table_add(&t, "2400:1::", "2600::ffff", BF_CC('J', 'P'), TEST_SOURCE_DATA);
	test_table_add(&t, "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", BF_CC_NONE,
		       TEST_SOURCE_BUILTIN);
	check_table(f, &t, space_ends, 20000);
	bf_geo_table_free(&t);
}

/* A range across hundreds of /16 fills their buckets alone, whose lookups need no search. */
static void test_range_across_many_buckets(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_value value;
	struct bf_geo_table t;
	size_t n4, n6;

	test_table_init(&t);
	test_table_add(&t, "10.0.0.5", "12.200.0.0", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "2001:db8::1", "3fff:0:0:1::", BF_CC('H', 'K'), TEST_SOURCE_DATA);
	assert_int_equal(bf_geo_map_count(&t, &n4, &n6), 0);
	assert_int_equal(n4, 3);
	assert_int_equal(n6, 3);
	check_table(f, &t, space_ends, 20000);

	value = lookup_one(f, "11.128.0.0");
	assert_int_equal(value.country, BF_CC('C', 'N'));
	assert_int_equal(value.verdict, BF_VERDICT_FOREIGN);
	assert_int_equal(value.source, TEST_SOURCE_DATA);
	assert_int_equal(value.generation, GENERATION);
	value = lookup_one(f, "3000::");
	assert_int_equal(value.country, BF_CC('H', 'K'));
	assert_int_equal(value.verdict, BF_VERDICT_APPROVED);
	bf_geo_table_free(&t);
}

/* 6000 ranges in one /16 of each family, with gaps, so a lookup takes 14 search steps. */
static void test_bucket_with_many_ranges(void **state)
{
	static const uint16_t countries[] = { BF_CC('C', 'N'), BF_CC('M', 'O'), BF_CC('U', 'S') };
	struct fixture *f = need_program(state);
	uint8_t first[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01 }, last[16];
	struct bf_geo_table t;
	size_t n4, n6;

	test_table_init(&t);
	for (uint32_t i = 0; i < 6000; i++) {
		uint32_t start = 0x141e0000 + i * 10; /* 20.30.0.0 */

		test_table_add4(&t, start, start + 6 + i % 3, countries[i % 3], TEST_SOURCE_DATA);
	}
	for (uint32_t i = 0; i < 6000; i++) {
		first[6] = i >> 8;
		first[7] = i & 0xff;
		memcpy(last, first, 16);
		last[8] = 0x7f;
		memset(last + 9, 0xff, 7);
		test_table_add6(&t, first, last, countries[i % 3], TEST_SOURCE_DATA);
	}
	assert_int_equal(bf_geo_map_count(&t, &n4, &n6), 0);
	assert_int_equal(n4, 2 * 6000 + 1);
	assert_int_equal(n6, 2 * 6000 + 1);
	check_table(f, &t, NULL, 20000);
	bf_geo_table_free(&t);
}

/* Ranges that cover the first and the last address of each family. */
static void test_space_ends_covered(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_value value;
	struct bf_geo_table t;

	test_table_init(&t);
	test_table_add(&t, "0.0.0.0", "0.0.0.9", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "255.255.255.250", "255.255.255.255", BF_CC('M', 'O'), TEST_SOURCE_DATA);
	test_table_add(&t, "::", "::9", BF_CC('U', 'S'), TEST_SOURCE_DATA);
	test_table_add(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0",
		       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", BF_CC('H', 'K'),
		       TEST_SOURCE_DATA);
	check_table(f, &t, space_ends, 1000);

	value = lookup_one(f, "0.0.0.0");
	assert_int_equal(value.country, BF_CC('C', 'N'));
	value = lookup_one(f, "255.255.255.255");
	assert_int_equal(value.country, BF_CC('M', 'O'));
	value = lookup_one(f, "::");
	assert_int_equal(value.country, BF_CC('U', 'S'));
	value = lookup_one(f, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_int_equal(value.country, BF_CC('H', 'K'));
	bf_geo_table_free(&t);
}

/* One range over each whole address space: no gap at all. */
static void test_whole_space_one_range(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_table t;
	size_t n4, n6;

	test_table_init(&t);
	test_table_add(&t, "0.0.0.0", "255.255.255.255", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", BF_CC('H', 'K'),
		       TEST_SOURCE_DATA);
	assert_int_equal(bf_geo_map_count(&t, &n4, &n6), 0);
	assert_int_equal(n4, 1);
	assert_int_equal(n6, 1);
	check_table(f, &t, space_ends, 1000);
	bf_geo_table_free(&t);
}

/* Without any range, every address has the value of no data, generation 0 included. */
static void test_empty_table_returns_none(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_value value;
	struct bf_geo_table t;
	size_t n4, n6;

	test_table_init(&t);
	assert_int_equal(bf_geo_map_count(&t, &n4, &n6), 0);
	assert_int_equal(n4, 1);
	assert_int_equal(n6, 1);
	check_table(f, &t, space_ends, 1000);

	value = lookup_one(f, "192.0.2.1");
	assert_int_equal(value.country, BF_CC_NONE);
	assert_int_equal(value.verdict, BF_VERDICT_UNKNOWN);
	assert_int_equal(value.source, BF_GEO_SOURCE_NONE);
	assert_int_equal(value.generation, 0);
	bf_geo_table_free(&t);
}

/* Gaps return no data; data without a country is unknown but keeps its source. */
static void test_gaps_and_verdicts(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_value value;
	struct bf_geo_table t;

	test_table_init(&t);
	test_table_add(&t, "10.0.0.0", "10.255.255.255", BF_CC_NONE, TEST_SOURCE_BUILTIN);
	test_table_add(&t, "192.0.2.0", "192.0.2.127", BF_CC('M', 'O'), TEST_SOURCE_DATA);
	test_table_add(&t, "192.0.2.129", "192.0.2.200", BF_CC_NONE, TEST_SOURCE_DATA);
	test_table_add(&t, "198.51.100.0", "198.51.100.255", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	check_table(f, &t, space_ends, 1000);

	value = lookup_one(f, "10.1.2.3");
	assert_int_equal(value.verdict, BF_VERDICT_LOCAL);
	assert_int_equal(value.source, TEST_SOURCE_BUILTIN);
	value = lookup_one(f, "192.0.2.127");
	assert_int_equal(value.verdict, BF_VERDICT_APPROVED);
	value = lookup_one(f, "192.0.2.128");
	assert_int_equal(value.source, BF_GEO_SOURCE_NONE);
	assert_int_equal(value.generation, 0);
	value = lookup_one(f, "192.0.2.129");
	assert_int_equal(value.country, BF_CC_NONE);
	assert_int_equal(value.verdict, BF_VERDICT_UNKNOWN);
	assert_int_equal(value.source, TEST_SOURCE_DATA);
	assert_int_equal(value.generation, GENERATION);
	value = lookup_one(f, "198.51.100.0");
	assert_int_equal(value.verdict, BF_VERDICT_FOREIGN);
	bf_geo_table_free(&t);
}

/* IPv6 ranges whose first and last addresses differ only in the last 64 bits. */
static void test_ipv6_ranges_in_low_bits(void **state)
{
	struct fixture *f = need_program(state);
	static const char *const extra[] = {
		"2001:db8:0:1::",
		"2001:db8:0:1::5",
		"2001:db8:0:1::6",
		"2001:db8:0:1:8000::",
		"2001:db8:0:2:ffff:ffff:ffff:ffff",
		"2001:db8:0:3::",
		"2001:db8:0:3::11",
		NULL,
	};
	struct bf_geo_table t;

	test_table_init(&t);
	test_table_add(&t, "2001:db8:0:1::", "2001:db8:0:1::5", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "2001:db8:0:1::6", "2001:db8:0:1:7fff:ffff:ffff:ffff", BF_CC('M', 'O'),
		       TEST_SOURCE_DATA);
	test_table_add(&t, "2001:db8:0:1:8000::1", "2001:db8:0:1:8000::1", BF_CC('U', 'S'),
		       TEST_SOURCE_DATA);
	/* Across a boundary of the first 64 bits. */
	test_table_add(&t, "2001:db8:0:2:ffff:ffff:ffff:fff0", "2001:db8:0:3::10", BF_CC('H', 'K'),
		       TEST_SOURCE_DATA);
	check_table(f, &t, extra, 20000);
	bf_geo_table_free(&t);
}

static const uint16_t random_countries[] = { BF_CC('C', 'N'), BF_CC('M', 'O'), BF_CC('U', 'S'),
					     BF_CC_NONE };

/* A size from 1 to 2^max_bits with each bit length equally likely, so that small ones dominate. */
static uint64_t random_size(unsigned short state[3], unsigned int max_bits)
{
	return 1 + random64(state) % (1ull << (random64(state) % (max_bits + 1)));
}

/* A gap after a range: none in two cases of three, else below max. */
static uint64_t random_gap(unsigned short state[3], uint64_t max)
{
	return random64(state) % 3 ? 0 : random64(state) % max;
}

static void add_random_ranges4(struct bf_geo_table *t, unsigned short state[3])
{
	uint64_t next = random64(state) % 1000, last;

	while (next <= UINT32_MAX) {
		last = next + random_size(state, 24) - 1;
		last = last > UINT32_MAX ? UINT32_MAX : last;
		test_table_add4(t, next, last, random_countries[random64(state) % 4],
				TEST_SOURCE_DATA);
		next = last + 1 + random_gap(state, 500);
	}
}

/* Writes the first 48 bits of an IPv6 address from unit, the others 0. */
static void unit_to_addr6(uint64_t unit, uint8_t addr[16])
{
	memset(addr, 0, 16);
	for (int b = 0; b < 6; b++)
		addr[b] = unit >> (40 - 8 * b);
}

/*
 * IPv6 ranges that start and end on boundaries of the first 48 bits, counted
 * here as units, but for the random last 64 bits of each first address.
 */
static void add_random_ranges6(struct bf_geo_table *t, unsigned short state[3])
{
	const uint64_t max_unit = (1ull << 48) - 1;
	uint8_t first[16], last_addr[16];
	uint64_t next = 0, last, low;

	while (next <= max_unit) {
		last = next + random_size(state, 40) - 1;
		last = last > max_unit ? max_unit : last;
		low = random64(state);
		unit_to_addr6(next, first);
		memcpy(first + 8, &low, 8);
		unit_to_addr6(last, last_addr);
		memset(last_addr + 6, 0xff, 10);
		test_table_add6(t, first, last_addr, random_countries[random64(state) % 4],
				TEST_SOURCE_DATA);
		next = last + 1 + random_gap(state, 50);
	}
}

/* Random tables from a fixed seed: ranges of random sizes, with gaps. */
static void test_random_tables(void **state)
{
	struct fixture *f = need_program(state);
	unsigned short random_state[3] = { 0x330e, 42, 0 };
	struct bf_geo_table t;

	for (int round = 0; round < 3; round++) {
		test_table_init(&t);
		add_random_ranges4(&t, random_state);
		add_random_ranges6(&t, random_state);
		check_table(f, &t, space_ends, 100000);
		bf_geo_table_free(&t);
	}
}

/* The real default data, flattened with the fixed local ranges, as the daemon loads it. */
static void test_default_data(void **state)
{
	struct fixture *f = need_program(state);
	const char *dir = getenv("BF_TEST_GEOIP_DIR");
	char path4[4096], path6[4096];
	struct bf_error err = { "" };
	struct bf_geo_table t;
	int ret;

	if (!dir)
		dir = "/usr/share/borderflow";
	snprintf(path4, sizeof(path4), "%s/geoip", dir);
	snprintf(path6, sizeof(path6), "%s/geoip6", dir);
	if (access(path4, R_OK) || access(path6, R_OK)) {
		print_message("no readable '%s' and '%s', skipping\n", path4, path6);
		skip();
	}
	bf_geo_table_init(&t);
	ret = bf_geo_load_file(&t, path4, &err);
	if (!ret)
		ret = bf_geo_load_file(&t, path6, &err);
	if (!ret)
		ret = bf_geo_flatten(&t, &err);
	if (ret)
		fail_msg("loading the default data returned %d: %s", ret, err.msg);
	check_table(f, &t, space_ends, 200000);
	bf_geo_table_free(&t);
}

/* Filling a table made for another number of ranges fails and names the sizes. */
static void test_fill_rejects_other_size(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_map_fill filled = { 0 };
	struct bf_error err = { "" };
	struct bf_geo_table t;
	int fd4, fd6;

	test_table_init(&t);
	test_table_add(&t, "192.0.2.0", "192.0.2.255", BF_CC('M', 'O'), TEST_SOURCE_DATA);
	/* 3 ranges with the gaps fit in one element of the array, 100000 need two. */
	fd4 = bf_geo_map_create(4, 100000);
	fd6 = bf_geo_map_create(6, 1);
	assert_true(fd4 >= 0);
	assert_true(fd6 >= 0);
	assert_int_equal(bf_geo_map_fill(fd4, fd6, &t, &f->cfg, GENERATION, &filled, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "IPv4 geolocation table of 2 elements"));
	close(fd4);
	close(fd6);
	bf_geo_table_free(&t);
}

/* Before the daemon puts a table in place, lookups return the value of no data. */
static void test_no_table_in_place(void **state)
{
	struct fixture *f = need_program(state);
	struct bf_geo_value value;
	__u32 slot = 0;

	(void)bpf_map_delete_elem(bpf_map__fd(f->skel->maps.geo4), &slot);
	(void)bpf_map_delete_elem(bpf_map__fd(f->skel->maps.geo6), &slot);
	value = lookup_one(f, "198.51.100.1");
	assert_int_equal(value.country, BF_CC_NONE);
	assert_int_equal(value.verdict, BF_VERDICT_UNKNOWN);
	assert_int_equal(value.source, BF_GEO_SOURCE_NONE);
	assert_int_equal(value.generation, 0);
	value = lookup_one(f, "2001:db8::1");
	assert_int_equal(value.source, BF_GEO_SOURCE_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_table_in_place),
		cmocka_unit_test(test_unaligned_ranges),
		cmocka_unit_test(test_range_across_many_buckets),
		cmocka_unit_test(test_bucket_with_many_ranges),
		cmocka_unit_test(test_space_ends_covered),
		cmocka_unit_test(test_whole_space_one_range),
		cmocka_unit_test(test_empty_table_returns_none),
		cmocka_unit_test(test_gaps_and_verdicts),
		cmocka_unit_test(test_ipv6_ranges_in_low_bits),
		cmocka_unit_test(test_random_tables),
		cmocka_unit_test(test_default_data),
		cmocka_unit_test(test_fill_rejects_other_size),
	};

	return cmocka_run_group_tests_name("geo_map", tests, setup, teardown);
}
