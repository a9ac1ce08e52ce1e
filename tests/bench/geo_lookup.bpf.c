// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Looks a list of addresses up in the geolocation tables with the lookup that
 * borderflow's programs use, bf_geo_lookup() of bpf/geo.bpf.h. The benchmark
 * tests/bench/geo_lookup.c runs it with BPF_PROG_TEST_RUN on a dummy packet,
 * one slice of the list per run, and so does tests/unit/test_geo_map.c to
 * compare the values with the userspace table's.
 *
 * The maps of bpf/maps.bpf.h are defined here, so geo4 and geo6 have the
 * daemon's definitions. The benchmark creates only those two of them, and
 * the tables that it fills take the place that the daemon's tables take.
 */
#define BF_DEFINE_MAPS
#include "bpf/geo.bpf.h"
#include "tests/bench/geo_lookup.h"

char LICENSE[] SEC("license") = "GPL";

/* Addresses to look up. The benchmark sets max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct geo_lookup_addr);
} addrs SEC(".maps");

/* Value found for each address of addrs, at the same index. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bf_geo_value);
} results SEC(".maps");

/* The slice of addrs that the next run looks up, set by the benchmark before each run. */
__u32 lookup_first;
__u32 lookup_count;

/* Lookups that found a range of the data, over all runs. */
__u64 hits;

static long lookup_one(__u32 i, void *ctx)
{
	__u32 index = lookup_first + i;
	struct bf_geo_value *result;
	struct geo_lookup_addr *addr;

	addr = bpf_map_lookup_elem(&addrs, &index);
	result = bpf_map_lookup_elem(&results, &index);
	if (!addr || !result)
		return 1;
	*result = bf_geo_lookup(addr->family, (const __u32 *)addr->addr);
	if (result->source != BF_GEO_SOURCE_NONE)
		hits++;
	return 0;
}

SEC("tc")
int geo_lookup_run(struct __sk_buff *skb)
{
	bpf_loop(lookup_count, lookup_one, NULL, 0);
	return 0;
}
