// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Compiled geolocation files: a flattened table written as it is in memory,
 * so loading it needs no parsing. "borderflow geo compile" writes one from
 * any stack, and [geo] data accepts it like any other file.
 *
 * Layout, every integer little-endian:
 *   8 bytes   magic "BFGEOC1\n"
 *   u32       number of sources S, u32 reserved (0)
 *   S times   source: u32 format (enum bf_geo_format), 32 bytes SHA-256 (all 0
 *             when none), then four strings (path, date, detail, reserved),
 *             each a u16 length and that many bytes
 *   u64 N4, u64 N6
 *   N4 times  u32 first, u32 last (host-order IPv4 values), u16 country,
 *             u8 source, u8 0
 *   N6 times  16 bytes first, 16 bytes last (network order), u16 country,
 *             u8 source, u8 0
 *   32 bytes  SHA-256 of everything before it
 *
 * The ranges are sorted and do not overlap. A load checks the checksum, the
 * order and every index, and rebuilds one layer per original source, so a
 * lookup still names the file that answered, with the compiled file added
 * to its detail. The fixed local ranges are not written: flattening adds
 * them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "geo_layer.h"

#define COMPILED_MAGIC	   "BFGEOC1\n"
#define COMPILED_MAX_BYTES (1ull << 30)
#define RANGE4_BYTES	   12
#define RANGE6_BYTES	   36

struct out_buffer {
	uint8_t *data;
	size_t len, cap;
	int error;
};

static void put(struct out_buffer *b, const void *data, size_t len)
{
	if (b->error)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;
		uint8_t *bigger;

		while (cap < b->len + len)
			cap *= 2;
		bigger = realloc(b->data, cap);
		if (!bigger) {
			b->error = -ENOMEM;
			return;
		}
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void put_u16(struct out_buffer *b, uint16_t v)
{
	uint8_t bytes[2] = { v & 0xff, v >> 8 };

	put(b, bytes, 2);
}

static void put_u32(struct out_buffer *b, uint32_t v)
{
	uint8_t bytes[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };

	put(b, bytes, 4);
}

static void put_u64(struct out_buffer *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static void put_string(struct out_buffer *b, const char *s)
{
	size_t len = strlen(s);

	put_u16(b, (uint16_t)len);
	put(b, s, len);
}

static int hex_to_digest(const char *hex, uint8_t digest[32])
{
	unsigned int byte;
	int i;

	memset(digest, 0, 32);
	if (strlen(hex) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return -1;
		digest[i] = (uint8_t)byte;
	}
	return 0;
}

static bool is_builtin(const struct bf_geo_table *t, uint8_t source)
{
	return source < t->nsources && t->sources[source].format == BF_GEO_FORMAT_BUILTIN;
}

static void serialize(const struct bf_geo_table *t, struct out_buffer *b)
{
	uint8_t digest[32];
	uint64_t n4 = 0, n6 = 0;
	size_t i;

	put(b, COMPILED_MAGIC, 8);
	put_u32(b, (uint32_t)t->nsources);
	put_u32(b, 0);
	for (i = 0; i < t->nsources; i++) {
		const struct bf_geo_source *src = &t->sources[i];

		put_u32(b, src->format);
		(void)hex_to_digest(src->sha256, digest);
		put(b, digest, 32);
		put_string(b, src->path);
		put_string(b, src->date);
		put_string(b, src->detail);
		put_string(b, "");
	}
	for (i = 0; i < t->n4; i++)
		n4 += !is_builtin(t, t->v4[i].source);
	for (i = 0; i < t->n6; i++)
		n6 += !is_builtin(t, t->v6[i].source);
	put_u64(b, n4);
	put_u64(b, n6);
	for (i = 0; i < t->n4; i++) {
		const struct bf_range4 *r = &t->v4[i];
		uint8_t tail[2] = { r->source, 0 };

		if (is_builtin(t, r->source))
			continue;
		put_u32(b, r->first);
		put_u32(b, r->last);
		put_u16(b, r->country);
		put(b, tail, 2);
	}
	for (i = 0; i < t->n6; i++) {
		const struct bf_range6 *r = &t->v6[i];
		uint8_t tail[2] = { r->source, 0 };

		if (is_builtin(t, r->source))
			continue;
		put(b, r->first, 16);
		put(b, r->last, 16);
		put_u16(b, r->country);
		put(b, tail, 2);
	}
	if (!b->error && !EVP_Digest(b->data, b->len, digest, NULL, EVP_sha256(), NULL))
		b->error = -EIO;
	put(b, digest, 32);
}

int bf_geo_compile(const struct bf_geo_table *t, const char *path, struct bf_error *err)
{
	struct out_buffer b = { 0 };
	char tmp[4200];
	ssize_t n;
	size_t off = 0;
	int fd, ret = 0;

	if (!t->flat)
		return bf_error_set(err, -EINVAL, "failed to compile: the table is not flattened");
	serialize(t, &b);
	if (b.error) {
		free(b.data);
		return bf_error_set(err, b.error, "failed to compile geolocation data: %s",
				    strerror(-b.error));
	}
	/* Written beside the target and renamed, so no reader sees half a file. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		free(b.data);
		return bf_error_set(err, ret, "failed to create '%s': %s", tmp, strerror(-ret));
	}
	while (off < b.len) {
		n = write(fd, b.data + off, b.len - off);
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		off += n;
	}
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	free(b.data);
	if (ret) {
		(void)unlink(tmp);
		return bf_error_set(err, ret, "failed to write compiled geolocation file '%s': %s",
				    path, strerror(-ret));
	}
	return 0;
}

/*
 * True when fd starts with the magic, or with at least 5 of its 8 bytes in
 * place. Such a file is a damaged compiled file, which geo_compiled_load()
 * reports as one, where the text parsers would report an unrecognized line.
 */
bool geo_compiled_detect(int fd)
{
	char magic[8];
	size_t i, same = 0;

	if (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
		return false;
	for (i = 0; i < sizeof(magic); i++)
		same += magic[i] == COMPILED_MAGIC[i];
	return same >= 5;
}

struct in_buffer {
	const uint8_t *data;
	size_t len, pos;
	bool short_read;
};

static const uint8_t *take(struct in_buffer *b, size_t len)
{
	const uint8_t *p;

	if (b->short_read || b->len - b->pos < len) {
		b->short_read = true;
		return NULL;
	}
	p = b->data + b->pos;
	b->pos += len;
	return p;
}

static uint32_t get_u32(struct in_buffer *b)
{
	const uint8_t *p = take(b, 4);

	return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			       (uint32_t)p[3] << 24
		 : 0;
}

static uint64_t get_u64(struct in_buffer *b)
{
	uint64_t lo = get_u32(b);

	return lo | (uint64_t)get_u32(b) << 32;
}

static uint16_t get_u16(struct in_buffer *b)
{
	const uint8_t *p = take(b, 2);

	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static void get_string(struct in_buffer *b, char *out, size_t size)
{
	uint16_t len = get_u16(b);
	const uint8_t *p = take(b, len);
	size_t copy = len < size - 1 ? len : size - 1;

	out[0] = '\0';
	if (!p)
		return;
	memcpy(out, p, copy);
	out[copy] = '\0';
}

struct compiled_source {
	uint32_t format;
	uint8_t sha256[32];
	char path[4096], date[64], detail[160];
};

static bool valid_country(uint16_t cc)
{
	unsigned char a = cc & 0xff, b = cc >> 8;

	return cc == BF_CC_NONE || (((a >= 'A' && a <= 'Z') || (a >= '0' && a <= '9')) &&
				    ((b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')));
}

/* Reads the whole file into memory after checking its size; returns the buffer or NULL. */
static uint8_t *read_all(int fd, const char *path, size_t *len, struct bf_error *err)
{
	struct stat st;
	uint8_t *data;
	size_t off = 0;
	ssize_t n;

	if (fstat(fd, &st) || st.st_size < 8 + 8 + 16 + 32 ||
	    (uint64_t)st.st_size > COMPILED_MAX_BYTES) {
		bf_error_set(err, -EINVAL,
			     "invalid compiled geolocation file '%s': size %lld bytes, expected "
			     "%d to %llu",
			     path, (long long)st.st_size, 8 + 8 + 16 + 32, COMPILED_MAX_BYTES);
		return NULL;
	}
	data = malloc(st.st_size);
	if (!data) {
		bf_error_set(err, -ENOMEM, "failed to read '%s': out of memory", path);
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		n = pread(fd, data + off, st.st_size - off, off);
		if (n <= 0) {
			bf_error_set(err, n < 0 ? -errno : -EIO,
				     "failed to read compiled geolocation file '%s' at offset %zu",
				     path, off);
			free(data);
			return NULL;
		}
		off += n;
	}
	*len = off;
	return data;
}

/* Adds the ranges of one source as a layer. Returns 0 or a negative errno with err set. */
static int load_source(struct bf_geo_table *t, const char *path, const struct compiled_source *s,
		       unsigned int index, struct in_buffer *ranges, uint64_t n4, uint64_t n6,
		       struct bf_error *err)
{
	struct geo_layer *l;
	uint64_t i;
	int ret;

	ret = geo_layer_begin(&l, t, s->path, GEO_POSITION_OFFSET, err);
	if (ret)
		return ret;
	geo_layer_set_format(l, (enum bf_geo_format)s->format, GEO_RANGE_TEXT);
	geo_layer_set_date(l, s->date);
	geo_layer_set_detail(l, "%s%scompiled into '%s'", s->detail, s->detail[0] ? "; " : "",
			     path);
	geo_layer_set_sha256(l, s->sha256);

	ranges->pos = 0;
	for (i = 0; i < n4 + n6 && !ret; i++) {
		size_t offset = ranges->pos;
		struct geo_addr first, last;
		uint16_t country;
		uint8_t source;

		if (i < n4) {
			first = addr_from4(get_u32(ranges));
			last = addr_from4(get_u32(ranges));
		} else {
			const uint8_t *a = take(ranges, 16), *b = take(ranges, 16);

			if (!a || !b)
				break;
			first = addr_from6(a);
			last = addr_from6(b);
		}
		const uint8_t *tail;

		country = get_u16(ranges);
		tail = take(ranges, 2);
		if (!tail)
			break;
		source = tail[0];
		if (source == index)
			ret = geo_layer_add(l, i < n4 ? 4 : 6, first, last, country,
					    (uint32_t)offset);
	}
	if (ret) {
		geo_layer_abort(l);
		return ret;
	}
	return geo_layer_commit(l, t);
}

/* Checks order, indexes and countries of every range before anything is added. */
static int check_ranges(const char *path, struct in_buffer *ranges, size_t base, uint64_t n4,
			uint64_t n6, uint32_t nsources, struct bf_error *err)
{
	struct geo_addr prev_last = { 0 };
	uint64_t i;

	for (i = 0; i < n4 + n6; i++) {
		size_t offset = base + ranges->pos;
		struct geo_addr first, last;
		const uint8_t *tail;
		uint16_t country;

		if (i < n4) {
			first = addr_from4(get_u32(ranges));
			last = addr_from4(get_u32(ranges));
		} else {
			const uint8_t *a = take(ranges, 16), *b = take(ranges, 16);

			if (!a || !b)
				break;
			first = addr_from6(a);
			last = addr_from6(b);
		}
		country = get_u16(ranges);
		tail = take(ranges, 2);
		if (!tail)
			break;
		if (addr_cmp(&first, &last) > 0 ||
		    (i != 0 && i != n4 && addr_cmp(&first, &prev_last) <= 0) ||
		    tail[0] >= nsources || !valid_country(country))
			return bf_error_set(
				err, -EINVAL,
				"invalid compiled geolocation file '%s' offset %zu: range %" PRIu64
				" is out of order or names an invalid source or country; "
				"compile the file again",
				path, offset, i);
		prev_last = last;
	}
	if (ranges->short_read)
		return bf_error_set(err, -EINVAL,
				    "invalid compiled geolocation file '%s': truncated ranges; "
				    "compile the file again",
				    path);
	return 0;
}

int geo_compiled_load(struct bf_geo_table *t, const char *path, int fd, struct bf_error *err)
{
	struct compiled_source *sources = NULL;
	struct in_buffer b = { 0 }, ranges;
	struct geo_table_mark mark;
	uint8_t digest[32], *data;
	uint32_t nsources, i;
	uint64_t n4, n6;
	size_t len;
	int ret = 0;

	data = read_all(fd, path, &len, err);
	if (!data)
		return -EINVAL;
	if (memcmp(data, COMPILED_MAGIC, 8)) {
		ret = bf_error_set(err, -EINVAL,
				   "invalid compiled geolocation file '%s' offset 0: damaged magic, "
				   "expected 'BFGEOC1'; compile the file again",
				   path);
		goto out;
	}
	if (!EVP_Digest(data, len - 32, digest, NULL, EVP_sha256(), NULL) ||
	    memcmp(digest, data + len - 32, 32)) {
		ret = bf_error_set(err, -EINVAL,
				   "invalid compiled geolocation file '%s': the SHA-256 in its last "
				   "32 bytes (offset %zu) does not match its content, so it is damaged "
				   "or truncated; compile it again",
				   path, len - 32);
		goto out;
	}
	b.data = data;
	b.len = len - 32;
	(void)take(&b, 8);
	nsources = get_u32(&b);
	(void)get_u32(&b);
	if (!nsources || nsources > BF_GEO_MAX_SOURCES) {
		ret = bf_error_set(err, -EINVAL,
				   "invalid compiled geolocation file '%s' offset 8: %u sources, "
				   "expected 1 to %d",
				   path, nsources, BF_GEO_MAX_SOURCES);
		goto out;
	}
	sources = calloc(nsources, sizeof(*sources));
	if (!sources) {
		ret = bf_error_set(err, -ENOMEM, "failed to read '%s': out of memory", path);
		goto out;
	}
	for (i = 0; i < nsources; i++) {
		const uint8_t *sha;
		char reserved[8];

		sources[i].format = get_u32(&b);
		if (sources[i].format < BF_GEO_FORMAT_TOR4 ||
		    sources[i].format > BF_GEO_FORMAT_CIDR_LIST) {
			ret = bf_error_set(
				err, -EINVAL,
				"invalid compiled geolocation file '%s' offset %zu: source %u "
				"has the unknown format %u; compile the file again",
				path, b.pos - 4, i, sources[i].format);
			goto out;
		}
		sha = take(&b, 32);
		if (sha)
			memcpy(sources[i].sha256, sha, 32);
		get_string(&b, sources[i].path, sizeof(sources[i].path));
		get_string(&b, sources[i].date, sizeof(sources[i].date));
		get_string(&b, sources[i].detail, sizeof(sources[i].detail));
		get_string(&b, reserved, sizeof(reserved));
	}
	n4 = get_u64(&b);
	n6 = get_u64(&b);
	if (b.short_read || n4 > (b.len - b.pos) / RANGE4_BYTES ||
	    n6 > (b.len - b.pos - n4 * RANGE4_BYTES) / RANGE6_BYTES ||
	    b.len - b.pos != n4 * RANGE4_BYTES + n6 * RANGE6_BYTES) {
		ret = bf_error_set(err, -EINVAL,
				   "invalid compiled geolocation file '%s' offset %zu: the range "
				   "counts do not match the file size; compile it again",
				   path, b.pos);
		goto out;
	}
	ranges = (struct in_buffer){ .data = b.data + b.pos, .len = b.len - b.pos };
	ret = check_ranges(path, &ranges, b.pos, n4, n6, nsources, err);
	if (ret)
		goto out;

	/* One layer per original source; undone whole when one fails. */
	geo_table_mark(t, &mark);
	for (i = 0; i < nsources && !ret; i++) {
		if (sources[i].format == BF_GEO_FORMAT_BUILTIN)
			continue;
		ret = load_source(t, path, &sources[i], i, &ranges, n4, n6, err);
	}
	if (ret)
		geo_table_rollback(t, &mark);
out:
	free(sources);
	free(data);
	return ret;
}
