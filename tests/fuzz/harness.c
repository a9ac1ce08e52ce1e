// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checks shared by the fuzz targets of the geolocation parsers. Addresses are
 * compared as unsigned __int128 numbers: IPv4 in the low 32 bits, IPv6 from
 * its 16 bytes in network order.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

typedef unsigned __int128 u128;

/* The base table of every load: one flattened layer of "CIDR,CC" lines. */
static const char base_content[] = "192.0.2.0/24,MO\n"
				   "198.51.100.0/24,CN\n"
				   "203.0.113.0/24,US\n"
				   "2001:db8::/33,HK\n"
				   "2001:db8:8000::/33,MO\n";

static char temp_dir[PATH_MAX];
static struct bf_geo_table base;
static bool base_ready;

/* Tables of fuzz_check_load(), static because each is about 140 KB. */
static struct bf_geo_table loaded, snapshot, layered;

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: check '%s' failed: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Temporary files */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_temp_dir(void)
{
	if (temp_dir[0])
		(void)nftw(temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void create_temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	int len;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	len = snprintf(temp_dir, sizeof(temp_dir), "%s/bf-fuzz.XXXXXX", tmp);
	FUZZ_CHECK(len > 0 && (size_t)len < sizeof(temp_dir), "TMPDIR '%s' is too long", tmp);
	FUZZ_CHECK(mkdtemp(temp_dir), "failed to create a folder in '%s': %s", tmp,
		   strerror(errno));
	FUZZ_CHECK(!atexit(remove_temp_dir), "atexit failed");
}

const char *fuzz_path(const char *name)
{
	char *path;

	if (!temp_dir[0])
		create_temp_dir();
	FUZZ_CHECK(asprintf(&path, "%s/%s", temp_dir, name) > 0, "out of memory");
	return path;
}

/*
 * Overwrites the file and then cuts it to size, without O_TRUNC: on ext4 a file
 * truncated to 0 and written again is flushed to disk at close (auto_da_alloc),
 * which made a target about five times slower.
 */
void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	size_t done = 0;

	FUZZ_CHECK(fd >= 0, "failed to create '%s': %s", path, strerror(errno));
	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

		FUZZ_CHECK(n > 0, "failed to write '%s': %s", path, strerror(errno));
		done += n;
	}
	FUZZ_CHECK(!ftruncate(fd, (off_t)size), "failed to truncate '%s': %s", path,
		   strerror(errno));
	FUZZ_CHECK(!close(fd), "failed to close '%s': %s", path, strerror(errno));
}

void fuzz_remove_file(const char *path)
{
	FUZZ_CHECK(!unlink(path) || errno == ENOENT, "failed to remove '%s': %s", path,
		   strerror(errno));
}

/* Tables */

static void *duplicate(const void *src, size_t size)
{
	void *dst;

	if (!size)
		return NULL;
	dst = malloc(size);
	FUZZ_CHECK(dst, "out of memory");
	memcpy(dst, src, size);
	return dst;
}

static void table_copy(struct bf_geo_table *dst, const struct bf_geo_table *src)
{
	*dst = *src;
	dst->v4 = duplicate(src->v4, src->n4 * sizeof(*src->v4));
	dst->cap4 = src->n4;
	dst->v6 = duplicate(src->v6, src->n6 * sizeof(*src->v6));
	dst->cap6 = src->n6;
}

static bool table_equal(const struct bf_geo_table *a, const struct bf_geo_table *b)
{
	return a->n4 == b->n4 && a->n6 == b->n6 && a->nsources == b->nsources &&
	       a->flat == b->flat && (!a->n4 || !memcmp(a->v4, b->v4, a->n4 * sizeof(*a->v4))) &&
	       (!a->n6 || !memcmp(a->v6, b->v6, a->n6 * sizeof(*a->v6))) &&
	       !memcmp(a->sources, b->sources, sizeof(a->sources));
}

static void prepare_base(void)
{
	const char *path = fuzz_path("base-layer.csv");
	struct bf_error err = { "" };
	int ret;

	fuzz_write_file(path, (const uint8_t *)base_content, sizeof(base_content) - 1);
	bf_geo_table_init(&base);
	ret = bf_geo_load_cidr_file(&base, path, &err);
	FUZZ_CHECK(!ret, "loading the base table returned %d: %s", ret, err.msg);
	ret = bf_geo_flatten(&base, &err);
	FUZZ_CHECK(!ret, "flattening the base table returned %d: %s", ret, err.msg);
	free((char *)path);
	base_ready = true;
}

/* Addresses */

static u128 load_u128(const uint8_t bytes[16])
{
	u128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | bytes[i];
	return v;
}

static void store_u128(u128 v, uint8_t bytes[16])
{
	for (int i = 15; i >= 0; i--) {
		bytes[i] = (uint8_t)v;
		v >>= 8;
	}
}

static u128 low_mask(unsigned int bits)
{
	return bits >= 128 ? ~(u128)0 : ((u128)1 << bits) - 1;
}

/* Checks of an unflattened table */

static bool is_lower_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	return strspn(s, "0123456789abcdef") == len;
}

/* Checks the sources that the load appended after the base table's. */
static void check_new_sources(const struct bf_geo_table *t, unsigned int flags)
{
	/* A compiled file may hold nothing but the builtin source, which is not loaded again. */
	FUZZ_CHECK((t->nsources > base.nsources ||
		    (flags & FUZZ_FOREIGN_SOURCES && t->nsources == base.nsources)) &&
			   t->nsources <= BF_GEO_MAX_SOURCES,
		   "%zu sources after a successful load, the base table has %zu", t->nsources,
		   base.nsources);
	for (size_t i = base.nsources; i < t->nsources; i++) {
		const struct bf_geo_source *s = &t->sources[i];

		/* A compiled file names the formats of its sources; the loader rejects unknown
		 * ones. */
		FUZZ_CHECK(s->format >= BF_GEO_FORMAT_TOR4 &&
				   s->format <= BF_GEO_FORMAT_CIDR_LIST &&
				   s->format != BF_GEO_FORMAT_BUILTIN,
			   "source %zu has the format %d", i, s->format);
		if (flags & FUZZ_FOREIGN_SOURCES)
			continue;
		FUZZ_CHECK(!strncmp(s->path, temp_dir, strlen(temp_dir)),
			   "source %zu has the path '%s'", i, s->path);
		FUZZ_CHECK(is_lower_hex(s->sha256, 64), "source %zu has the SHA-256 '%s'", i,
			   s->sha256);
		/* The detail of an mmdb file is its database_type, which may be "". */
		FUZZ_CHECK(s->detail[0] || s->format == BF_GEO_FORMAT_MMDB,
			   "source %zu has no detail", i);
		FUZZ_CHECK(s->count4 + s->count6 > 0, "source %zu has no ranges", i);
	}
}

/*
 * Checks the layers appended after the base table's ranges: each is sorted and
 * overlap-free, layers come in source order, and a layer has at most as many
 * ranges as the file had before merging.
 */
static void check_new_ranges4(const struct bf_geo_table *t)
{
	size_t per_source[BF_GEO_MAX_SOURCES] = { 0 };

	for (size_t i = base.n4; i < t->n4; i++) {
		const struct bf_range4 *r = &t->v4[i], *prev = i > base.n4 ? r - 1 : NULL;

		FUZZ_CHECK(r->first <= r->last, "IPv4 range %zu is %u-%u", i, r->first, r->last);
		FUZZ_CHECK(r->source >= base.nsources && r->source < t->nsources,
			   "IPv4 range %zu has source %u", i, r->source);
		if (prev && prev->source == r->source)
			FUZZ_CHECK(prev->last < r->first,
				   "IPv4 ranges %zu and %zu of a layer overlap", i - 1, i);
		else if (prev)
			FUZZ_CHECK(prev->source < r->source, "IPv4 layers out of order at %zu", i);
		per_source[r->source]++;
	}
	for (size_t i = base.nsources; i < t->nsources; i++)
		FUZZ_CHECK(per_source[i] <= t->sources[i].count4,
			   "source %zu has %zu IPv4 ranges but read %zu", i, per_source[i],
			   t->sources[i].count4);
}

static void check_new_ranges6(const struct bf_geo_table *t)
{
	size_t per_source[BF_GEO_MAX_SOURCES] = { 0 };

	for (size_t i = base.n6; i < t->n6; i++) {
		const struct bf_range6 *r = &t->v6[i], *prev = i > base.n6 ? r - 1 : NULL;

		FUZZ_CHECK(memcmp(r->first, r->last, 16) <= 0,
			   "IPv6 range %zu ends before it starts", i);
		FUZZ_CHECK(r->source >= base.nsources && r->source < t->nsources,
			   "IPv6 range %zu has source %u", i, r->source);
		if (prev && prev->source == r->source)
			FUZZ_CHECK(memcmp(prev->last, r->first, 16) < 0,
				   "IPv6 ranges %zu and %zu of a layer overlap", i - 1, i);
		else if (prev)
			FUZZ_CHECK(prev->source < r->source, "IPv6 layers out of order at %zu", i);
		per_source[r->source]++;
	}
	for (size_t i = base.nsources; i < t->nsources; i++)
		FUZZ_CHECK(per_source[i] <= t->sources[i].count6,
			   "source %zu has %zu IPv6 ranges but read %zu", i, per_source[i],
			   t->sources[i].count6);
}

/* Checks of a flattened table */

static void check_flat4(const struct bf_geo_table *t)
{
	for (size_t i = 0; i < t->n4; i++) {
		const struct bf_range4 *r = &t->v4[i], *prev = i ? r - 1 : NULL;

		FUZZ_CHECK(r->first <= r->last, "flat IPv4 range %zu is %u-%u", i, r->first,
			   r->last);
		FUZZ_CHECK(r->source < t->nsources, "flat IPv4 range %zu has source %u", i,
			   r->source);
		if (prev) {
			FUZZ_CHECK(prev->last < r->first, "flat IPv4 ranges %zu and %zu overlap",
				   i - 1, i);
			FUZZ_CHECK(prev->last + 1 != r->first || prev->country != r->country ||
					   prev->source != r->source,
				   "flat IPv4 ranges %zu and %zu are not merged", i - 1, i);
		}
		FUZZ_CHECK(bf_geo_lookup4(t, r->first) == r, "lookup of the first address of %zu",
			   i);
		FUZZ_CHECK(bf_geo_lookup4(t, r->last) == r, "lookup of the last address of %zu", i);
		if (r->first)
			FUZZ_CHECK(bf_geo_lookup4(t, r->first - 1) ==
					   (prev && prev->last == r->first - 1 ? prev : NULL),
				   "lookup of the address before %zu", i);
	}
}

static void check_flat6(const struct bf_geo_table *t)
{
	for (size_t i = 0; i < t->n6; i++) {
		const struct bf_range6 *r = &t->v6[i], *prev = i ? r - 1 : NULL;
		u128 first = load_u128(r->first), last = load_u128(r->last);
		uint8_t before[16];

		FUZZ_CHECK(first <= last, "flat IPv6 range %zu ends before it starts", i);
		FUZZ_CHECK(r->source < t->nsources, "flat IPv6 range %zu has source %u", i,
			   r->source);
		if (prev) {
			u128 prev_last = load_u128(prev->last);

			FUZZ_CHECK(prev_last < first, "flat IPv6 ranges %zu and %zu overlap", i - 1,
				   i);
			FUZZ_CHECK(prev_last + 1 != first || prev->country != r->country ||
					   prev->source != r->source,
				   "flat IPv6 ranges %zu and %zu are not merged", i - 1, i);
		}
		FUZZ_CHECK(bf_geo_lookup6(t, r->first) == r, "lookup of the first address of %zu",
			   i);
		FUZZ_CHECK(bf_geo_lookup6(t, r->last) == r, "lookup of the last address of %zu", i);
		if (first) {
			store_u128(first - 1, before);
			FUZZ_CHECK(
				bf_geo_lookup6(t, before) ==
					(prev && load_u128(prev->last) == first - 1 ? prev : NULL),
				"lookup of the address before %zu", i);
		}
	}
}

/* The fixed local ranges lie on top of every flattened table. */
static void check_local_ranges(const struct bf_geo_table *t)
{
	static const uint8_t loopback6[16] = { [15] = 1 };
	const struct bf_range4 *r4 = bf_geo_lookup4(t, 0x7f000001);
	const struct bf_range6 *r6 = bf_geo_lookup6(t, loopback6);

	FUZZ_CHECK(r4 && r4->country == BF_CC_NONE &&
			   t->sources[r4->source].format == BF_GEO_FORMAT_BUILTIN,
		   "127.0.0.1 is not in the builtin local ranges");
	FUZZ_CHECK(r6 && r6->country == BF_CC_NONE &&
			   t->sources[r6->source].format == BF_GEO_FORMAT_BUILTIN,
		   "::1 is not in the builtin local ranges");
}

/* Prefixes */

/* State of the split of one range: the prefixes must tile it in order, with none mergeable. */
struct prefix_walk {
	u128 next, last;
	unsigned int bits;
	unsigned int prev_len;
	u128 prev_addr;
	size_t count;
	bool done;
};

static int check_prefix(struct prefix_walk *w, u128 addr, unsigned int prefixlen)
{
	unsigned int host_bits = w->bits - prefixlen;
	u128 block_last;

	FUZZ_CHECK(!w->done, "a prefix after the end of the range");
	FUZZ_CHECK(prefixlen <= w->bits, "prefix length %u", prefixlen);
	FUZZ_CHECK(addr == w->next, "the prefixes leave a gap or overlap");
	FUZZ_CHECK(!(addr & low_mask(host_bits)), "a prefix with host bits set");
	block_last = addr | low_mask(host_bits);
	FUZZ_CHECK(block_last <= w->last, "a prefix past the end of the range");
	/* Two neighbours of one length that share the shorter prefix are one prefix. */
	if (w->count && w->prev_len == prefixlen && prefixlen > 0)
		FUZZ_CHECK(w->prev_addr & ((u128)1 << host_bits),
			   "two prefixes of length %u that merge", prefixlen);
	w->prev_len = prefixlen;
	w->prev_addr = addr;
	w->count++;
	w->done = block_last == w->last;
	w->next = block_last + 1;
	return 0;
}

static int check_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	return check_prefix(ctx, addr, prefixlen);
}

static int check_prefix6(const uint8_t addr[16], unsigned int prefixlen, void *ctx)
{
	return check_prefix(ctx, load_u128(addr), prefixlen);
}

static void check_prefixes(const struct bf_geo_table *t)
{
	size_t total4 = 0, total6 = 0, counted4 = 0, counted6 = 0;
	int ret;

	for (size_t i = 0; i < t->n4; i++) {
		struct prefix_walk w = { .next = t->v4[i].first,
					 .last = t->v4[i].last,
					 .bits = 32 };

		ret = bf_range4_to_prefixes(t->v4[i].first, t->v4[i].last, check_prefix4, &w);
		FUZZ_CHECK(!ret && w.done, "IPv4 range %zu split into prefixes", i);
		total4 += w.count;
	}
	for (size_t i = 0; i < t->n6; i++) {
		struct prefix_walk w = {
			.next = load_u128(t->v6[i].first),
			.last = load_u128(t->v6[i].last),
			.bits = 128,
		};

		ret = bf_range6_to_prefixes(t->v6[i].first, t->v6[i].last, check_prefix6, &w);
		FUZZ_CHECK(!ret && w.done, "IPv6 range %zu split into prefixes", i);
		total6 += w.count;
	}
	ret = bf_geo_count_prefixes(t, &counted4, &counted6);
	FUZZ_CHECK(!ret, "bf_geo_count_prefixes returned %d", ret);
	FUZZ_CHECK(counted4 == total4 && counted6 == total6,
		   "bf_geo_count_prefixes counted %zu and %zu, the splits made %zu and %zu",
		   counted4, counted6, total4, total6);
}

/* Layering */

static uint16_t country4_at(const struct bf_geo_table *t, uint32_t addr)
{
	const struct bf_range4 *r = bf_geo_lookup4(t, addr);

	FUZZ_CHECK(r, "no range covers %u", addr);
	return r->country;
}

static uint16_t country6_at(const struct bf_geo_table *t, const uint8_t addr[16])
{
	const struct bf_range6 *r = bf_geo_lookup6(t, addr);

	FUZZ_CHECK(r, "no range covers an IPv6 address");
	return r->country;
}

/* Checks that a and b give every range edge of a the same country. */
static void check_same_countries(const struct bf_geo_table *a, const struct bf_geo_table *b)
{
	for (size_t i = 0; i < a->n4; i++) {
		const struct bf_range4 *r = &a->v4[i];

		FUZZ_CHECK(country4_at(b, r->first) == r->country &&
				   country4_at(b, r->last) == r->country,
			   "the second layer changed the country of IPv4 range %zu", i);
	}
	for (size_t i = 0; i < a->n6; i++) {
		const struct bf_range6 *r = &a->v6[i];

		FUZZ_CHECK(country6_at(b, r->first) == r->country &&
				   country6_at(b, r->last) == r->country,
			   "the second layer changed the country of IPv6 range %zu", i);
	}
}

/* The load as a whole */

static void check_error(int ret, const struct bf_error *err, const struct bf_geo_table *t)
{
	FUZZ_CHECK(ret < 0, "the load returned %d", ret);
	FUZZ_CHECK(strstr(err->msg, temp_dir), "the error message '%s' names no file", err->msg);
	FUZZ_CHECK(table_equal(t, &base), "a failed load (%d: %s) changed the table", ret,
		   err->msg);
}

static void flatten(struct bf_geo_table *t)
{
	struct bf_error err = { "" };
	int ret = bf_geo_flatten(t, &err);

	FUZZ_CHECK(!ret, "bf_geo_flatten returned %d: %s", ret, err.msg);
	FUZZ_CHECK(t->flat, "bf_geo_flatten left the table unflattened");
}

void fuzz_check_load(fuzz_load_fn load, const void *ctx, unsigned int flags)
{
	struct bf_error err = { "" };
	int ret;

	if (!base_ready)
		prepare_base();

	table_copy(&loaded, &base);
	ret = load(&loaded, ctx, &err);
	if (ret) {
		check_error(ret, &err, &loaded);
		bf_geo_table_free(&loaded);
		return;
	}
	check_new_sources(&loaded, flags);
	check_new_ranges4(&loaded);
	check_new_ranges6(&loaded);

	flatten(&loaded);
	check_flat4(&loaded);
	check_flat6(&loaded);
	check_local_ranges(&loaded);
	check_prefixes(&loaded);

	/* Flattening a flat table changes nothing. */
	table_copy(&snapshot, &loaded);
	flatten(&snapshot);
	FUZZ_CHECK(table_equal(&snapshot, &loaded), "a second bf_geo_flatten changed the table");
	bf_geo_table_free(&snapshot);

	/* The same files as a layer on top must not change the country of any address. */
	table_copy(&layered, &loaded);
	ret = load(&layered, ctx, &err);
	FUZZ_CHECK(!ret, "loading the files a second time returned %d: %s", ret, err.msg);
	flatten(&layered);
	check_flat4(&layered);
	check_flat6(&layered);
	check_same_countries(&loaded, &layered);
	check_same_countries(&layered, &loaded);

	bf_geo_table_free(&layered);
	bf_geo_table_free(&loaded);
}
