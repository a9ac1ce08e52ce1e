// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Building the kernel's geolocation tables (maps/geo.h) from a flattened
 * table, shared by the daemon and the geolocation benchmark so both measure
 * one code path. A table is written in place through mmap() of the new map,
 * so a fill costs about what writing the table's bytes to memory costs.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "geomap.h"

#include "../../maps/geo.h"

enum bf_verdict bf_range_verdict(const struct bf_geo_table *table, const struct bf_config *cfg,
				 uint16_t country, uint8_t source)
{
	bool local =
		source < table->nsources && table->sources[source].format == BF_GEO_FORMAT_BUILTIN;

	return bf_config_verdict(cfg, country, local);
}

static uint32_t pack_value(const struct bf_geo_table *table, const struct bf_config *cfg,
			   uint16_t country, uint8_t source)
{
	return BF_GEO_PACK(country, bf_range_verdict(table, cfg, country, source), source);
}

/* Bytes of the table of a family with n ranges, up to the end of its last element. */
static uint64_t table_bytes(int family, size_t n)
{
	uint64_t record = family == 4 ? sizeof(struct bf_geo4_range)
				      : sizeof(struct bf_geo6_start) + sizeof(__u32);
	uint64_t bytes = BF_GEO_RANGES_OFFSET + record * n;

	return (bytes + BF_GEO_CHUNK_BYTES - 1) / BF_GEO_CHUNK_BYTES * BF_GEO_CHUNK_BYTES;
}

/* IPv4 */

/*
 * Writes the ranges of table, with a range of BF_GEO_PACKED_NONE in every
 * gap, to out. Only counts them when out is NULL. Returns the number of
 * ranges.
 */
static size_t write_ranges4(struct bf_geo4_range *out, const struct bf_geo_table *table,
			    const struct bf_config *cfg)
{
	uint64_t next = 0; /* first address after the last range written, 2^32 at the end */
	size_t n = 0;

	for (size_t i = 0; i < table->n4; i++) {
		const struct bf_range4 *r = &table->v4[i];

		if (r->first > next) {
			if (out)
				out[n] = (struct bf_geo4_range){ next, BF_GEO_PACKED_NONE };
			n++;
		}
		if (out)
			out[n] =
				(struct bf_geo4_range){ r->first, pack_value(table, cfg, r->country,
									     r->source) };
		n++;
		next = (uint64_t)r->last + 1;
	}
	if (next <= UINT32_MAX) {
		if (out)
			out[n] = (struct bf_geo4_range){ next, BF_GEO_PACKED_NONE };
		n++;
	}
	return n;
}

/* Writes the bucket of every /16 from the n ranges already written. */
static int write_buckets4(struct bf_geo_bucket *buckets, const struct bf_geo4_range *ranges,
			  size_t n, struct bf_error *err)
{
	size_t first = 0, last = 0, count;

	for (uint32_t block = 0; block < BF_GEO_BUCKETS; block++) {
		uint32_t block_first = block << (32 - BF_GEO_BUCKET_BITS);
		uint32_t block_last = block_first | (UINT32_MAX >> BF_GEO_BUCKET_BITS);

		while (first + 1 < n && ranges[first + 1].start <= block_first)
			first++;
		last = last > first ? last : first;
		while (last + 1 < n && ranges[last + 1].start <= block_last)
			last++;
		count = last - first + 1;
		if (count > BF_GEO_MAX_BUCKET_RANGES)
			return bf_error_set(err, -E2BIG,
					    "geolocation data has %zu ranges in %u.%u.0.0/16, more "
					    "than the %u that the BPF programs search in one /16",
					    count, block >> 8, block & 0xff,
					    BF_GEO_MAX_BUCKET_RANGES);
		buckets[block].count = count;
		buckets[block].first = count == 1 ? ranges[first].value : first;
	}
	return 0;
}

static int fill4(uint8_t *mem, size_t n, const struct bf_geo_table *table,
		 const struct bf_config *cfg, uint16_t generation, struct bf_error *err)
{
	struct bf_geo_header *header = (struct bf_geo_header *)mem;
	struct bf_geo_bucket *buckets = (struct bf_geo_bucket *)(mem + BF_GEO_BUCKETS_OFFSET);
	struct bf_geo4_range *ranges = (struct bf_geo4_range *)(mem + BF_GEO_RANGES_OFFSET);

	*header = (struct bf_geo_header){ .ranges = n, .generation = generation };
	(void)write_ranges4(ranges, table, cfg);
	return write_buckets4(buckets, ranges, n, err);
}

/* IPv6 */

static struct bf_geo6_start start6(const uint8_t addr[16])
{
	struct bf_geo6_start start;

	memcpy(&start.hi, addr, 8);
	memcpy(&start.lo, addr + 8, 8);
	start.hi = be64toh(start.hi);
	start.lo = be64toh(start.lo);
	return start;
}

static bool less_equal6(struct bf_geo6_start a, struct bf_geo6_start b)
{
	return a.hi < b.hi || (a.hi == b.hi && a.lo <= b.lo);
}

/* Same as write_ranges4() for IPv6, the starts to starts and the packed values to values. */
static size_t write_ranges6(struct bf_geo6_start *starts, __u32 *values,
			    const struct bf_geo_table *table, const struct bf_config *cfg)
{
	struct bf_geo6_start next = { 0, 0 }, first, last;
	bool end = false; /* the last range written ends at the last address */
	size_t n = 0;

	for (size_t i = 0; i < table->n6; i++) {
		const struct bf_range6 *r = &table->v6[i];

		first = start6(r->first);
		last = start6(r->last);
		if (!less_equal6(first, next)) {
			if (starts) {
				starts[n] = next;
				values[n] = BF_GEO_PACKED_NONE;
			}
			n++;
		}
		if (starts) {
			starts[n] = first;
			values[n] = pack_value(table, cfg, r->country, r->source);
		}
		n++;
		next.lo = last.lo + 1;
		next.hi = last.hi + !next.lo;
		end = last.hi == UINT64_MAX && last.lo == UINT64_MAX;
	}
	if (!end) {
		if (starts) {
			starts[n] = next;
			values[n] = BF_GEO_PACKED_NONE;
		}
		n++;
	}
	return n;
}

static int write_buckets6(struct bf_geo_bucket *buckets, const struct bf_geo6_start *starts,
			  const __u32 *values, size_t n, struct bf_error *err)
{
	size_t first = 0, last = 0, count;

	for (uint32_t block = 0; block < BF_GEO_BUCKETS; block++) {
		struct bf_geo6_start block_first = { (uint64_t)block << (64 - BF_GEO_BUCKET_BITS),
						     0 };
		struct bf_geo6_start block_last = {
			block_first.hi | (UINT64_MAX >> BF_GEO_BUCKET_BITS), UINT64_MAX
		};

		while (first + 1 < n && less_equal6(starts[first + 1], block_first))
			first++;
		last = last > first ? last : first;
		while (last + 1 < n && less_equal6(starts[last + 1], block_last))
			last++;
		count = last - first + 1;
		if (count > BF_GEO_MAX_BUCKET_RANGES)
			return bf_error_set(err, -E2BIG,
					    "geolocation data has %zu ranges in %x::/16, more than "
					    "the %u that the BPF programs search in one /16",
					    count, block, BF_GEO_MAX_BUCKET_RANGES);
		buckets[block].count = count;
		buckets[block].first = count == 1 ? values[first] : first;
	}
	return 0;
}

static int fill6(uint8_t *mem, size_t n, const struct bf_geo_table *table,
		 const struct bf_config *cfg, uint16_t generation, struct bf_error *err)
{
	struct bf_geo_header *header = (struct bf_geo_header *)mem;
	struct bf_geo_bucket *buckets = (struct bf_geo_bucket *)(mem + BF_GEO_BUCKETS_OFFSET);
	struct bf_geo6_start *starts = (struct bf_geo6_start *)(mem + BF_GEO_RANGES_OFFSET);
	__u32 *values = (__u32 *)(starts + n);

	*header = (struct bf_geo_header){ .ranges = n, .generation = generation };
	(void)write_ranges6(starts, values, table, cfg);
	return write_buckets6(buckets, starts, values, n, err);
}

/* Both families */

int bf_geo_map_count(const struct bf_geo_table *table, size_t *ranges4, size_t *ranges6)
{
	if (!table->flat)
		return -EINVAL;
	if (ranges4)
		*ranges4 = write_ranges4(NULL, table, NULL);
	if (ranges6)
		*ranges6 = write_ranges6(NULL, NULL, table, NULL);
	return 0;
}

int bf_geo_map_create(int family, size_t ranges)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BF_GEO_TABLE_FLAGS);
	uint64_t bytes = table_bytes(family, ranges);
	int fd;

	/* Byte offsets in the table are 32 bits wide on the BPF side. */
	if (bytes > UINT32_MAX)
		return -E2BIG;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, family == 4 ? "geo4_table" : "geo6_table",
			    sizeof(__u32), BF_GEO_CHUNK_BYTES, bytes / BF_GEO_CHUNK_BYTES, &opts);
	return fd < 0 ? -errno : fd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Maps the table fd for writing, after checking that bf_geo_map_create()
 * made it for n ranges of family.
 */
static int map_table(int fd, int family, size_t n, uint8_t **mem, size_t *bytes,
		     struct bf_error *err)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int ret;

	*bytes = table_bytes(family, n);
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (ret)
		return bf_error_set(err, ret, "failed to read the IPv%d geolocation table: %s",
				    family, strerror(-ret));
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != BF_GEO_CHUNK_BYTES ||
	    (uint64_t)info.max_entries * BF_GEO_CHUNK_BYTES != *bytes ||
	    info.map_flags != BF_GEO_TABLE_FLAGS)
		return bf_error_set(err, -EINVAL,
				    "IPv%d geolocation table of %u elements of %u bytes does not "
				    "fit the data, which needs %zu elements of %u bytes: create it "
				    "for the count of bf_geo_map_count()",
				    family, info.max_entries, info.value_size,
				    *bytes / BF_GEO_CHUNK_BYTES, BF_GEO_CHUNK_BYTES);
	*mem = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*mem == MAP_FAILED)
		return bf_error_set(err, -errno, "failed to map the IPv%d geolocation table: %s",
				    family, strerror(errno));
	return 0;
}

static int fill_family(int fd, int family, const struct bf_geo_table *table,
		       const struct bf_config *cfg, uint16_t generation, size_t *ranges,
		       size_t *bytes, double *seconds, struct bf_error *err)
{
	double t0 = now_s();
	size_t n = family == 4 ? write_ranges4(NULL, table, cfg)
			       : write_ranges6(NULL, NULL, table, cfg);
	uint8_t *mem;
	int ret;

	ret = map_table(fd, family, n, &mem, bytes, err);
	if (ret)
		return ret;
	if (family == 4)
		ret = fill4(mem, n, table, cfg, generation, err);
	else
		ret = fill6(mem, n, table, cfg, generation, err);
	(void)munmap(mem, *bytes);
	*ranges = n;
	*seconds = now_s() - t0;
	return ret;
}

int bf_geo_map_fill(int fd4, int fd6, const struct bf_geo_table *table, const struct bf_config *cfg,
		    uint16_t generation, struct bf_geo_map_fill *out, struct bf_error *err)
{
	int ret;

	if (!table->flat)
		return bf_error_set(err, -EINVAL, "geolocation table is not flattened");
	ret = fill_family(fd4, 4, table, cfg, generation, &out->ranges4, &out->bytes4,
			  &out->seconds4, err);
	if (!ret)
		ret = fill_family(fd6, 6, table, cfg, generation, &out->ranges6, &out->bytes6,
				  &out->seconds6, err);
	return ret;
}
