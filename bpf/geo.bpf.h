/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_GEO_BPF_H
#define BORDERFLOW_GEO_BPF_H

#include "maps.bpf.h"
#include <bpf/bpf_endian.h>

#define AF_INET	 2
#define AF_INET6 10

/*
 * An element of a geolocation table (maps/geo.h), which the lookups keep
 * while their records are in it, so that they call bpf_map_lookup_elem()
 * only when they move to another element.
 */
struct bf_geo_cursor {
	void *table;
	void *chunk;
	__u32 index; /* of chunk */
};

/*
 * Returns the record of size bytes at offset in the table, or NULL past its
 * end. Records are aligned to their size, a power of two, so none crosses an
 * element boundary.
 */
static __always_inline void *bf_geo_record(struct bf_geo_cursor *cursor, __u32 offset, __u32 size)
{
	__u32 index = offset >> BF_GEO_CHUNK_SHIFT;

	if (index != cursor->index) {
		cursor->chunk = bpf_map_lookup_elem(cursor->table, &index);
		cursor->index = index;
	}
	if (!cursor->chunk)
		return NULL;
	return cursor->chunk + (offset & (BF_GEO_CHUNK_BYTES - size));
}

static __always_inline struct bf_geo_value bf_geo_unpack(__u32 packed, __u16 generation)
{
	struct bf_geo_value value = {
		.country = BF_GEO_PACKED_COUNTRY(packed),
		.verdict = BF_GEO_PACKED_VERDICT(packed),
		.source = BF_GEO_PACKED_SOURCE(packed),
	};

	if (value.source != BF_GEO_SOURCE_NONE)
		value.generation = generation;
	return value;
}

/*
 * Binary search of a bucket of count ranges from range index first. Returns
 * the packed value of the last range that starts at or before addr. There is
 * one, because the first range of a bucket starts at or before the bucket.
 */
static __always_inline __u32 bf_geo_search4(struct bf_geo_cursor *cursor, __u32 first, __u32 count,
					    __u32 addr)
{
	struct bf_geo4_range *range;
	__u32 index, half, i;

	for (i = 0; i < BF_GEO_SEARCH_STEPS && count > 1; i++) {
		half = count / 2;
		index = first + half;
		range = bf_geo_record(cursor, BF_GEO_RANGES_OFFSET + index * sizeof(*range),
				      sizeof(*range));
		if (!range)
			return BF_GEO_PACKED_NONE;
		if (range->start <= addr)
			first = index;
		count -= half;
	}
	range = bf_geo_record(cursor, BF_GEO_RANGES_OFFSET + first * sizeof(*range),
			      sizeof(*range));
	return range ? range->value : BF_GEO_PACKED_NONE;
}

static __always_inline struct bf_geo_value bf_geo_lookup4(__u32 addr_be)
{
	__u32 addr = bpf_ntohl(addr_be), slot = 0, packed;
	struct bf_geo_cursor cursor = { .index = 0 };
	struct bf_geo_header *header;
	struct bf_geo_bucket *bucket;

	cursor.table = bpf_map_lookup_elem(&geo4, &slot);
	if (!cursor.table)
		return bf_geo_unpack(BF_GEO_PACKED_NONE, 0);
	cursor.chunk = bpf_map_lookup_elem(cursor.table, &slot);
	if (!cursor.chunk)
		return bf_geo_unpack(BF_GEO_PACKED_NONE, 0);

	/* The header and the buckets are in element 0. */
	header = cursor.chunk;
	bucket = cursor.chunk + BF_GEO_BUCKETS_OFFSET +
		 (addr >> (32 - BF_GEO_BUCKET_BITS)) * sizeof(*bucket);
	if (bucket->count == 1)
		packed = bucket->first;
	else
		packed = bf_geo_search4(&cursor, bucket->first, bucket->count, addr);
	return bf_geo_unpack(packed, header->generation);
}

/*
 * Same as bf_geo_search4() on the starts of an IPv6 table. Returns the
 * index of the range, or -1 when the table ends too early.
 */
static __always_inline __s64 bf_geo_search6(struct bf_geo_cursor *cursor, __u32 first, __u32 count,
					    __u64 hi, __u64 lo)
{
	struct bf_geo6_start *start;
	__u32 index, half, i;

	for (i = 0; i < BF_GEO_SEARCH_STEPS && count > 1; i++) {
		half = count / 2;
		index = first + half;
		start = bf_geo_record(cursor, BF_GEO_RANGES_OFFSET + index * sizeof(*start),
				      sizeof(*start));
		if (!start)
			return -1;
		if (start->hi < hi || (start->hi == hi && start->lo <= lo))
			first = index;
		count -= half;
	}
	return first;
}

static __always_inline struct bf_geo_value bf_geo_lookup6(const __u32 addr[4])
{
	__u64 hi = (__u64)bpf_ntohl(addr[0]) << 32 | bpf_ntohl(addr[1]);
	__u64 lo = (__u64)bpf_ntohl(addr[2]) << 32 | bpf_ntohl(addr[3]);
	struct bf_geo_cursor cursor = { .index = 0 };
	__u32 slot = 0, ranges, *packed;
	struct bf_geo_header *header;
	struct bf_geo_bucket *bucket;
	__u16 generation;
	__s64 range;

	cursor.table = bpf_map_lookup_elem(&geo6, &slot);
	if (!cursor.table)
		return bf_geo_unpack(BF_GEO_PACKED_NONE, 0);
	cursor.chunk = bpf_map_lookup_elem(cursor.table, &slot);
	if (!cursor.chunk)
		return bf_geo_unpack(BF_GEO_PACKED_NONE, 0);

	header = cursor.chunk;
	ranges = header->ranges;
	generation = header->generation;
	bucket = cursor.chunk + BF_GEO_BUCKETS_OFFSET +
		 (hi >> (64 - BF_GEO_BUCKET_BITS)) * sizeof(*bucket);
	if (bucket->count == 1)
		return bf_geo_unpack(bucket->first, generation);

	range = bf_geo_search6(&cursor, bucket->first, bucket->count, hi, lo);
	if (range < 0)
		return bf_geo_unpack(BF_GEO_PACKED_NONE, 0);
	packed = bf_geo_record(&cursor,
			       BF_GEO_RANGES_OFFSET + ranges * sizeof(struct bf_geo6_start) +
				       (__u32)range * sizeof(*packed),
			       sizeof(*packed));
	return bf_geo_unpack(packed ? *packed : BF_GEO_PACKED_NONE, generation);
}

/*
 * Looks a peer up in the table in force for its family (maps/geo.h). addr
 * is in network order, an IPv4 address in addr[0]. An address that no range
 * of the data covers has no country and the verdict unknown, and so does
 * every address before the daemon put the first table in place.
 */
static __always_inline struct bf_geo_value bf_geo_lookup(__u8 family, const __u32 addr[4])
{
	if (family == 4)
		return bf_geo_lookup4(addr[0]);
	return bf_geo_lookup6(addr);
}

/* True for ::ffff:a.b.c.d, which the stack sends as an IPv4 packet to a.b.c.d. */
static __always_inline bool bf_is_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff);
}

#endif
