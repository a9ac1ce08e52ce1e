/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal interface of the geolocation library, shared by geo.c (tables,
 * layers, flattening), geo_csv.c (the text formats) and geo_mmdb.c (MaxMind
 * DB). Not installed and not used outside user/lib.
 *
 * A loader builds one layer per file: geo_layer_begin(), then one
 * geo_layer_add() per range, the provenance setters, and geo_layer_commit().
 * The commit sorts the ranges, merges overlapping ranges of the same country,
 * rejects overlapping ranges of different countries and appends the layer to
 * the table. On any error the loader calls geo_layer_abort() instead, and the
 * table stays unchanged.
 */
#ifndef BORDERFLOW_GEO_LAYER_H
#define BORDERFLOW_GEO_LAYER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "geo.h"

/* An address of either family as a 128-bit number. IPv4 uses the low 32 bits. */
struct geo_addr {
	uint64_t hi;
	uint64_t lo;
};

/* 128-bit arithmetic on struct geo_addr */

static inline int addr_cmp(const struct geo_addr *a, const struct geo_addr *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

static inline struct geo_addr addr_inc(struct geo_addr a)
{
	a.lo++;
	if (!a.lo)
		a.hi++;
	return a;
}

static inline struct geo_addr addr_dec(struct geo_addr a)
{
	if (!a.lo)
		a.hi--;
	a.lo--;
	return a;
}

static inline struct geo_addr addr_sub(struct geo_addr a, struct geo_addr b)
{
	struct geo_addr r = { .hi = a.hi - b.hi, .lo = a.lo - b.lo };

	if (a.lo < b.lo)
		r.hi--;
	return r;
}

/* Number of significant bits: 0 for 0, 128 when the top bit is set. */
static inline unsigned int addr_fls(struct geo_addr a)
{
	if (a.hi)
		return 128 - __builtin_clzll(a.hi);
	if (a.lo)
		return 64 - __builtin_clzll(a.lo);
	return 0;
}

/* Number of trailing zero bits, capped at bits (the width of the family). */
static inline unsigned int addr_ctz(struct geo_addr a, unsigned int bits)
{
	unsigned int n;

	if (a.lo)
		n = __builtin_ctzll(a.lo);
	else if (a.hi)
		n = 64 + __builtin_ctzll(a.hi);
	else
		n = 128;
	return n < bits ? n : bits;
}

/* The number with the low n bits set, n from 0 to 128. */
static inline struct geo_addr addr_low_mask(unsigned int n)
{
	struct geo_addr m = { 0, 0 };

	if (n >= 128)
		return (struct geo_addr){ UINT64_MAX, UINT64_MAX };
	if (n >= 64) {
		m.lo = UINT64_MAX;
		m.hi = (UINT64_C(1) << (n - 64)) - 1;
	} else {
		m.lo = (UINT64_C(1) << n) - 1;
	}
	return m;
}

static inline struct geo_addr addr_or(struct geo_addr a, struct geo_addr b)
{
	return (struct geo_addr){ a.hi | b.hi, a.lo | b.lo };
}

static inline struct geo_addr addr_and(struct geo_addr a, struct geo_addr b)
{
	return (struct geo_addr){ a.hi & b.hi, a.lo & b.lo };
}

static inline struct geo_addr addr_and_not(struct geo_addr a, struct geo_addr b)
{
	return (struct geo_addr){ a.hi & ~b.hi, a.lo & ~b.lo };
}

static inline bool addr_is_zero(struct geo_addr a)
{
	return !a.hi && !a.lo;
}

static inline struct geo_addr addr_from4(uint32_t addr)
{
	return (struct geo_addr){ 0, addr };
}

static inline struct geo_addr addr_from6(const uint8_t bytes[16])
{
	struct geo_addr a = { 0, 0 };

	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | bytes[i];
		a.lo = a.lo << 8 | bytes[i + 8];
	}
	return a;
}

static inline void addr_to6(struct geo_addr a, uint8_t bytes[16])
{
	for (int i = 7; i >= 0; i--) {
		bytes[i] = a.hi & 0xff;
		bytes[i + 8] = a.lo & 0xff;
		a.hi >>= 8;
		a.lo >>= 8;
	}
}

static inline uint32_t load_be32(const uint8_t bytes[4])
{
	return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 |
	       bytes[3];
}

static inline bool is_mapped4(const uint8_t bytes[16])
{
	static const uint8_t mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(bytes, mapped_prefix, sizeof(mapped_prefix));
}

/* First address of ::ffff:0:0/96, the IPv4-mapped IPv6 addresses. */
#define GEO_MAPPED4_HI 0
#define GEO_MAPPED4_LO UINT64_C(0x0000ffff00000000)

/* Writes "address/length" of a network. */
void geo_format_prefix(int family, struct geo_addr addr, unsigned int prefixlen, char *out,
		       size_t size);

/* Layers */

/* Unit of the position of a range: a line of a text file, or a byte offset in a binary one. */
enum geo_position {
	GEO_POSITION_LINE,
	GEO_POSITION_OFFSET,
};

/* Notation of a range in error messages, as close as possible to the file's own. */
enum geo_range_style {
	GEO_RANGE_PREFIX,   /* "192.0.2.0/24" */
	GEO_RANGE_DECIMAL,  /* "3221225984,3221226239", IPv4 as 32-bit numbers */
	GEO_RANGE_DECIMAL6, /* 128-bit numbers, IPv4 as IPv4-mapped IPv6 numbers */
	GEO_RANGE_TEXT,	    /* "192.0.2.0,192.0.2.255" */
};

struct geo_layer;

/*
 * Starts a layer for path, which becomes the source with index t->nsources
 * when the layer is committed. Fails with -E2BIG when no source slot is left
 * (one stays free for the builtin table), -ENAMETOOLONG or -ENOMEM, with err
 * set. The layer keeps err and reports its later errors there.
 */
int geo_layer_begin(struct geo_layer **out, const struct bf_geo_table *t, const char *path,
		    enum geo_position position, struct bf_error *err);

/*
 * Adds the inclusive range [first, last] of family 4 or 6 with a country
 * (BF_CC_NONE for none), found at position (a line or a byte offset, in the
 * unit given to geo_layer_begin()). Returns 0 or -ENOMEM with err set.
 */
int geo_layer_add(struct geo_layer *l, int family, struct geo_addr first, struct geo_addr last,
		  uint16_t country, uint32_t position);

/*
 * Adds an IPv6 range whose part inside ::ffff:0:0/96 is stored as the IPv4
 * range it maps, because the BPF programs look IPv4-mapped addresses up as
 * IPv4. The parts below and above that block stay IPv6.
 */
int geo_layer_add_range6(struct geo_layer *l, struct geo_addr first, struct geo_addr last,
			 uint16_t country, uint32_t position);

/* Sets the format of the source and how error messages write its ranges. */
void geo_layer_set_format(struct geo_layer *l, enum bf_geo_format format,
			  enum geo_range_style style);

/* Sets the build date the file states. */
void geo_layer_set_date(struct geo_layer *l, const char *date);

/* Sets the format detail: the mmdb database_type, or the CSV variant. */
void geo_layer_set_detail(struct geo_layer *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sets the content hash from the SHA-256 digest of the bytes the loader read. */
void geo_layer_set_sha256(struct geo_layer *l, const uint8_t digest[32]);

/* Number of ranges added so far, of both families. */
size_t geo_layer_count(const struct geo_layer *l);

/*
 * Sets err to "failed to load geolocation file 'PATH' line N: DETAIL", or
 * "offset N" in a binary file, and returns -EINVAL. Line 0 of a text file
 * leaves the position out, for errors of the whole file.
 */
int geo_layer_error(const struct geo_layer *l, uint32_t position, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Sorts and checks the ranges and appends them to t as a new layer, then
 * frees l. Overlapping ranges of one country merge. Overlapping ranges of
 * different countries fail with -EINVAL and a message that names both
 * positions. On error t is unchanged.
 */
int geo_layer_commit(struct geo_layer *l, struct bf_geo_table *t);

/* Frees a layer that is not committed. Accepts NULL. */
void geo_layer_abort(struct geo_layer *l);

/* The state of a table before a load that may append several layers, to undo them on error. */
struct geo_table_mark {
	size_t n4, n6, nsources;
	bool flat;
};

void geo_table_mark(const struct bf_geo_table *t, struct geo_table_mark *mark);

/* Removes the layers appended since mark. */
void geo_table_rollback(struct bf_geo_table *t, const struct geo_table_mark *mark);

/* Loaders of the formats, called by bf_geo_load_file() and its variants */

/* What a text file must contain. */
enum geo_text_mode {
	GEO_TEXT_ANY,  /* any text format, detected from the content */
	GEO_TEXT_CIDR, /* "CIDR,CC" lines only (overrides) */
	GEO_TEXT_LIST, /* one prefix per line, of the country the caller names */
};

/*
 * Opens a geolocation file for reading, or a folder when folder_ok. Anything
 * else (a FIFO, socket or device) is rejected, and the open itself does not
 * block, so a reload does not wait for a FIFO's writer. Returns the fd, with its mode in *st, or a
 * negative errno with err set.
 */
int geo_open(const char *path, bool folder_ok, struct stat *st, struct bf_error *err);

/*
 * Loads the text file open as fd (the caller closes it) as one layer.
 * country is the country of a GEO_TEXT_LIST file.
 */
int geo_text_load(struct bf_geo_table *t, const char *path, int fd, enum geo_text_mode mode,
		  uint16_t country, struct bf_error *err);

/* Loads both Blocks files of a GeoIP2/GeoLite2 CSV folder, as two layers. */
int geo_geoip2_load_folder(struct bf_geo_table *t, const char *path, struct bf_error *err);

/* True when the file open as fd, of size bytes, ends with MaxMind DB metadata. */
bool geo_mmdb_detect(int fd, uint64_t size);

/* True when fd starts with the magic of a compiled file (geo_compiled.c). */
bool geo_compiled_detect(int fd);

/* Loads a compiled file as one layer per source it names; the table is unchanged on error. */
int geo_compiled_load(struct bf_geo_table *t, const char *path, int fd, struct bf_error *err);

/* Loads a MaxMind DB file as one layer. */
int geo_mmdb_load(struct bf_geo_table *t, const char *path, const struct bf_geo_options *opts,
		  struct bf_error *err);

#endif
