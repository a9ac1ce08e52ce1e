/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Geolocation tables: the daemon fills one table per address family with
 * the country and verdict of every address range of the loaded data, and
 * the BPF programs look each new flow's peer up in them. Each table is a
 * BPF_MAP_TYPE_ARRAY in slot 0 of an array of maps (geo4, geo6), so a reload
 * fills new tables aside and puts them in place with one update. So no
 * lookup reads a half-filled table.
 *
 * A table covers the whole address space of its family with ranges sorted
 * by start and without overlaps. Parts of the space that the data does not
 * cover are ranges with the packed value BF_GEO_PACKED_NONE, so every
 * address falls in exactly one range, which starts at the address or before
 * it. The table is one run of bytes, cut into array elements of
 * BF_GEO_CHUNK_BYTES, with these parts at these byte offsets:
 *
 *	0			struct bf_geo_header
 *	BF_GEO_BUCKETS_OFFSET	struct bf_geo_bucket of each /16, in address order
 *	BF_GEO_RANGES_OFFSET	IPv4: struct bf_geo4_range of each range
 *				IPv6: struct bf_geo6_start of each range, then
 *				the packed value (__u32) of each range
 *
 * A /16 is the block of addresses that share their first 16 bits. Its
 * bucket lists the ranges that overlap the block, and a lookup searches
 * only those for the last range that starts at or before the address.
 *
 * Elements are large because each bpf_map_lookup_elem() on a map in a map
 * is a helper call, which costs more than the search steps within an
 * element. Element 0 contains the header and all buckets, and the ranges of
 * most buckets lie in one element, so most lookups make two or three calls.
 * With one element per record instead (8 or 16 bytes), tests/bench/geo_lookup.c
 * measured 4.7 million lookups per second in place of 8.4 million, on Linux
 * 6.18 on 2 vCPU AMD EPYC. That kernel uses the "Safe RET" mitigation of
 * SRSO, which makes every function return mispredict (kernel commit
 * fb3bd914b3ec, "x86/srso: Add a Speculative RAS Overflow mitigation"),
 * probably the larger part of a call's cost. No record crosses an element
 * boundary.
 */
#ifndef BORDERFLOW_MAPS_GEO_H
#define BORDERFLOW_MAPS_GEO_H

#include "common.h"

/* Source index of a lookup that found no range of the data. */
#define BF_GEO_SOURCE_NONE 0xff

/*
 * Value that bf_geo_lookup() returns. source is an index into the source
 * table of the generation: the daemon numbers each load of the data, so a
 * flow tagged before a reload still names the data that tagged it.
 * generation is 0 when source is BF_GEO_SOURCE_NONE.
 */
struct bf_geo_value {
	__u16 country;
	__u8 verdict; /* enum bf_verdict */
	__u8 source;
	__u16 generation;
	__u16 pad;
};

/*
 * The tables store a range's value in 32 bits, the fields of struct
 * bf_geo_value without the generation, which the header stores once.
 */
#define BF_GEO_PACK(country, verdict, source)                                                  \
	((__u32)(__u16)(country) | (__u32)(__u8)(verdict) << 16 | (__u32)(__u8)(source) << 24)
#define BF_GEO_PACKED_COUNTRY(packed) ((__u16)((packed) & 0xffff))
#define BF_GEO_PACKED_VERDICT(packed) ((__u8)((packed) >> 16))
#define BF_GEO_PACKED_SOURCE(packed)  ((__u8)((packed) >> 24))
/* Packed value of the addresses that no range of the data covers. */
#define BF_GEO_PACKED_NONE BF_GEO_PACK(BF_CC_NONE, BF_VERDICT_UNKNOWN, BF_GEO_SOURCE_NONE)

/*
 * Flags of every table and of the template in bpf/maps.bpf.h, which must be
 * equal: the size varies per load, and the daemon writes the table through
 * mmap(). BPF_F_RDONLY_PROG would forbid a writable mapping. The names come
 * from linux/bpf.h, or vmlinux.h on the BPF side.
 */
#define BF_GEO_TABLE_FLAGS (BPF_F_INNER_MAP | BPF_F_MMAPABLE)

/* Bytes of one array element of a table: 1 MiB. */
#define BF_GEO_CHUNK_SHIFT 20
#define BF_GEO_CHUNK_BYTES (1u << BF_GEO_CHUNK_SHIFT)

/* Buckets of a table: one per value of the first 16 bits of an address. */
#define BF_GEO_BUCKET_BITS 16
#define BF_GEO_BUCKETS	   (1u << BF_GEO_BUCKET_BITS)

#define BF_GEO_BUCKETS_OFFSET 16u
#define BF_GEO_RANGES_OFFSET  (BF_GEO_BUCKETS_OFFSET + BF_GEO_BUCKETS * 8u)

/*
 * Steps of the binary search in one bucket. The BPF verifier needs a bound
 * on the loop, so the daemon rejects data with more ranges in one /16 than
 * this many steps can search. The default data (IPFire Location export of
 * 25 June 2026 in tor-geoipdb) has at most 10,724 ranges in an IPv4 /16
 * (94.46.0.0/16) and 67,649 in an IPv6 /16 (2a10::/16).
 */
#define BF_GEO_SEARCH_STEPS	 24
#define BF_GEO_MAX_BUCKET_RANGES (1u << BF_GEO_SEARCH_STEPS)

/* Start of a table. */
struct bf_geo_header {
	__u32 ranges;	  /* ranges of the table, those of BF_GEO_PACKED_NONE included */
	__u16 generation; /* of every range whose source is not BF_GEO_SOURCE_NONE */
	__u16 pad;
	__u64 pad2; /* so that the records after the buckets are aligned to their size */
};

/* The ranges that overlap one /16: count of them, from range index first. */
struct bf_geo_bucket {
	__u32 first; /* the packed value of the only range instead when count is 1 */
	__u32 count;
};

/* An IPv4 range: its first address in host order, and its packed value. */
struct bf_geo4_range {
	__u32 start;
	__u32 value;
};

/* First address of an IPv6 range, in host order: the first 64 bits in hi. */
struct bf_geo6_start {
	__u64 hi;
	__u64 lo;
};

#endif
