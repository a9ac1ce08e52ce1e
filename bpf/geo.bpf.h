/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_GEO_BPF_H
#define BORDERFLOW_GEO_BPF_H

#include "maps.bpf.h"
#include <bpf/bpf_endian.h>

#define AF_INET	 2
#define AF_INET6 10

/*
 * Looks a peer up in the trie in force for its family. An address that no
 * prefix covers has no country and the verdict unknown, and so does every
 * address before the daemon put the first trie in place.
 */
static __always_inline struct bf_geo_value bf_geo_lookup(__u8 family, const __u32 addr[4])
{
	struct bf_geo_value none = {
		.country = BF_CC_NONE,
		.verdict = BF_VERDICT_UNKNOWN,
		.source = BF_GEO_SOURCE_NONE,
	};
	struct bf_geo_value *found = NULL;
	__u32 slot = 0;
	void *trie;

	if (family == 4) {
		struct bf_geo4_key key = { .prefixlen = 32 };

		trie = bpf_map_lookup_elem(&geo4, &slot);
		__builtin_memcpy(key.addr, addr, 4);
		if (trie)
			found = bpf_map_lookup_elem(trie, &key);
	} else {
		struct bf_geo6_key key = { .prefixlen = 128 };

		trie = bpf_map_lookup_elem(&geo6, &slot);
		__builtin_memcpy(key.addr, addr, 16);
		if (trie)
			found = bpf_map_lookup_elem(trie, &key);
	}
	return found ? *found : none;
}

/*
 * Returns the geolocation of a peer as the tries in force have it, from
 * geo_cache when it has the result. The epoch is read before the trie, so a
 * result cached while the daemon puts new tries in place carries the old
 * epoch and is not used once the daemon has moved to the next one.
 */
static __always_inline struct bf_geo_value bf_geo_lookup_cached(__u8 family, const __u32 addr[4])
{
	struct bf_geo_cache_key key = {};
	struct bf_geo_value geo, *cached;
	__u32 slot = 0, *epoch;

	epoch = bpf_map_lookup_elem(&geo_epoch, &slot);
	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	key.epoch = epoch ? *epoch : 0;
	key.family = family;
	cached = bpf_map_lookup_elem(&geo_cache, &key);
	if (cached)
		return *cached;
	geo = bf_geo_lookup(family, addr);
	(void)bpf_map_update_elem(&geo_cache, &key, &geo, BPF_ANY);
	return geo;
}

/* True for ::ffff:a.b.c.d, which the stack sends as an IPv4 packet to a.b.c.d. */
static __always_inline bool bf_is_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff);
}

#endif
