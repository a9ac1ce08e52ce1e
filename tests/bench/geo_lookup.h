/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Types shared by the geolocation benchmark and its BPF program. */
#ifndef BORDERFLOW_BENCH_GEO_LOOKUP_H
#define BORDERFLOW_BENCH_GEO_LOOKUP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* An address to look up, in network order: family 4 with the address in addr[0..3], or 6. */
struct geo_lookup_addr {
	__u32 family;
	__u8 addr[16];
};

/*
 * The userspace side, for the benchmark and the unit tests, which include the
 * skeleton first.
 */
#ifdef __GEO_LOOKUP_BPF_SKEL_H__
#include <stdbool.h>

/* Disables the creation of the maps of bpf/maps.bpf.h that the lookup program does not use. */
static inline int geo_lookup_skip_unused_maps(struct geo_lookup_bpf *skel)
{
	struct bpf_map *used[] = { skel->maps.geo4, skel->maps.geo6, skel->maps.addrs,
				   skel->maps.results, skel->maps.bss };
	struct bpf_map *map;
	bool keep;
	size_t i;
	int ret;

	bpf_object__for_each_map(map, skel->obj) {
		for (i = 0, keep = false; i < sizeof(used) / sizeof(used[0]); i++)
			keep = keep || map == used[i];
		ret = keep ? 0 : bpf_map__set_autocreate(map, false);
		if (ret)
			return ret;
	}
	return 0;
}
#endif

#endif
