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

/* True for ::ffff:a.b.c.d, which the stack sends as an IPv4 packet to a.b.c.d. */
static __always_inline bool bf_is_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff);
}

#endif
