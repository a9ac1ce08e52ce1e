// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Geolocation tables.
 *
 * Loading. Each file becomes one layer. Its lines are parsed into spans,
 * sorted by first address and swept once: overlapping spans of the same
 * country merge, overlapping spans of different countries are an error that
 * names both lines. The layer is appended to the table only when the whole
 * file is valid, so a layer in the table is always sorted and free of
 * overlaps.
 *
 * Flattening. The table's array is a sequence of layers in load order (the
 * first may be the result of an earlier flatten). Consecutive layers whose
 * ranges do not overlap form one run. Runs are laid over each other in order:
 * laying a sorted, overlap-free upper run over a sorted, overlap-free lower
 * table is one linear merge that cuts out of the lower ranges what the upper
 * ones cover. The fixed local ranges are laid last, then adjacent ranges with
 * the same country and source merge. With L runs of N ranges in total this
 * costs O(N log N) for the sort at load and O(L * N) for flattening, and L is
 * at most BF_GEO_MAX_SOURCES.
 *
 * Both address families share that code: a span stores its addresses as
 * 128-bit numbers, IPv4 in the low 32 bits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geo.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define GEO_MAX_LINE   1024  /* characters of a line, without its CR LF */
#define GEO_READ_CHUNK 65536 /* bytes per read(2) */

#define BUILTIN_PATH "builtin:local"

/* An address of either family as a 128-bit number. IPv4 uses the low 32 bits. */
struct geo_addr {
	uint64_t hi;
	uint64_t lo;
};

/* A range while a file is loaded or a table is flattened. */
struct geo_span {
	struct geo_addr first;
	struct geo_addr last;
	uint32_t line; /* line of the file it came from, 0 for spans made from the table */
	uint16_t country;
	uint8_t source;
};

struct span_list {
	struct geo_span *v;
	size_t n, cap;
};

struct line_reader {
	int fd;
	size_t start, end; /* unread bytes are buf[start..end) */
	bool eof;
	uint32_t line; /* number of the line last returned */
	char buf[GEO_READ_CHUNK + 1];
};

/* State of one bf_geo_load_file() call. */
struct geo_loader {
	const char *path;
	struct bf_error *err;
	enum bf_geo_format required; /* 0 accepts any format */
	enum bf_geo_format format;   /* format of the first data line, 0 before it */
	uint32_t format_line;	     /* number of the first data line */
	uint8_t source;		     /* index the new source gets in the table */
	char date[64];
	struct span_list v4, v6;
	size_t count4, count6;
	struct line_reader reader;
};

struct local_prefix4 {
	uint32_t addr;
	unsigned int prefixlen;
};

struct local_prefix6 {
	uint8_t addr[16];
	unsigned int prefixlen;
};

/*
 * Local ranges: never a cross-border transfer. Sorted by address, because
 * bf_geo_flatten() lays them over the data as one run.
 */
static const struct local_prefix4 local4[] = {
	{ 0x00000000, 8 },  /* "this network", RFC 1122 */
	{ 0x0a000000, 8 },  /* private, RFC 1918 */
	{ 0x64400000, 10 }, /* shared address space (CGNAT), RFC 6598 */
	{ 0x7f000000, 8 },  /* loopback */
	{ 0xa9fe0000, 16 }, /* link-local, RFC 3927 */
	{ 0xac100000, 12 }, /* private, RFC 1918 */
	{ 0xc0a80000, 16 }, /* private, RFC 1918 */
	{ 0xe0000000, 4 },  /* multicast */
	{ 0xf0000000, 4 },  /* reserved, including the limited broadcast address 255.255.255.255 */
};

/*
 * IPv4-mapped addresses (::ffff:0:0/96) are absent on purpose: the BPF
 * programs look them up as the IPv4 address they carry.
 */
static const struct local_prefix6 local6[] = {
	{ { 0 }, 128 },		/* unspecified address */
	{ { [15] = 1 }, 128 },	/* loopback */
	{ { 0xfc }, 7 },	/* unique local, RFC 4193 */
	{ { 0xfe, 0x80 }, 10 }, /* link-local */
	{ { 0xff }, 8 },	/* multicast */
};

static const char *format_name(enum bf_geo_format format)
{
	switch (format) {
	case BF_GEO_FORMAT_TOR4:
		return "a decimal IPv4 range 'first,last,CC'";
	case BF_GEO_FORMAT_TOR6:
		return "an IPv6 range 'first,last,CC'";
	case BF_GEO_FORMAT_CIDR:
		return "a prefix 'CIDR,CC'";
	case BF_GEO_FORMAT_BUILTIN:
		break;
	}
	return "the built-in table";
}

/* 128-bit arithmetic on struct geo_addr */

static int addr_cmp(const struct geo_addr *a, const struct geo_addr *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

static struct geo_addr addr_inc(struct geo_addr a)
{
	a.lo++;
	if (!a.lo)
		a.hi++;
	return a;
}

static struct geo_addr addr_dec(struct geo_addr a)
{
	if (!a.lo)
		a.hi--;
	a.lo--;
	return a;
}

static struct geo_addr addr_sub(struct geo_addr a, struct geo_addr b)
{
	struct geo_addr r = { .hi = a.hi - b.hi, .lo = a.lo - b.lo };

	if (a.lo < b.lo)
		r.hi--;
	return r;
}

/* Number of significant bits: 0 for 0, 128 when the top bit is set. */
static unsigned int addr_fls(struct geo_addr a)
{
	if (a.hi)
		return 128 - __builtin_clzll(a.hi);
	if (a.lo)
		return 64 - __builtin_clzll(a.lo);
	return 0;
}

/* Number of trailing zero bits, capped at bits (the width of the family). */
static unsigned int addr_ctz(struct geo_addr a, unsigned int bits)
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
static struct geo_addr addr_low_mask(unsigned int n)
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

static struct geo_addr addr_or(struct geo_addr a, struct geo_addr b)
{
	return (struct geo_addr){ a.hi | b.hi, a.lo | b.lo };
}

static struct geo_addr addr_and(struct geo_addr a, struct geo_addr b)
{
	return (struct geo_addr){ a.hi & b.hi, a.lo & b.lo };
}

static struct geo_addr addr_and_not(struct geo_addr a, struct geo_addr b)
{
	return (struct geo_addr){ a.hi & ~b.hi, a.lo & ~b.lo };
}

static bool addr_is_zero(struct geo_addr a)
{
	return !a.hi && !a.lo;
}

static struct geo_addr addr_from4(uint32_t addr)
{
	return (struct geo_addr){ 0, addr };
}

static struct geo_addr addr_from6(const uint8_t bytes[16])
{
	struct geo_addr a = { 0, 0 };

	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | bytes[i];
		a.lo = a.lo << 8 | bytes[i + 8];
	}
	return a;
}

static void addr_to6(struct geo_addr a, uint8_t bytes[16])
{
	for (int i = 7; i >= 0; i--) {
		bytes[i] = a.hi & 0xff;
		bytes[i + 8] = a.lo & 0xff;
		a.hi >>= 8;
		a.lo >>= 8;
	}
}

static uint32_t load_be32(const uint8_t bytes[4])
{
	return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 |
	       bytes[3];
}

static bool is_mapped4(const uint8_t bytes[16])
{
	static const uint8_t mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(bytes, mapped_prefix, sizeof(mapped_prefix));
}

/* Span lists */

static int span_list_reserve(struct span_list *list, size_t extra)
{
	struct geo_span *v;
	size_t cap;

	if (list->cap - list->n >= extra)
		return 0;
	cap = list->cap ? list->cap : 1024;
	while (cap - list->n < extra)
		cap *= 2;
	v = reallocarray(list->v, cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	list->v = v;
	list->cap = cap;
	return 0;
}

static int span_list_push(struct span_list *list, const struct geo_span *span)
{
	int ret = span_list_reserve(list, 1);

	if (ret)
		return ret;
	list->v[list->n++] = *span;
	return 0;
}

static void span_list_free(struct span_list *list)
{
	free(list->v);
	*list = (struct span_list){ 0 };
}

static int span_cmp(const void *pa, const void *pb)
{
	const struct geo_span *a = pa, *b = pb;
	int ret = addr_cmp(&a->first, &b->first);

	if (ret)
		return ret;
	return a->line < b->line ? -1 : a->line > b->line;
}

/* Reading lines */

/*
 * Reads the next line into the reader's buffer, NUL-terminated and without
 * its LF or CR LF. Returns 1 and the line, 0 at the end of the file,
 * -EMSGSIZE for a line longer than GEO_MAX_LINE, or the negative errno of
 * read(2).
 */
static int reader_next(struct line_reader *r, char **line, size_t *len)
{
	r->line++;
	for (;;) {
		char *begin = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *newline = memchr(begin, '\n', avail);
		ssize_t got;

		if (newline || (r->eof && avail)) {
			size_t n = newline ? (size_t)(newline - begin) : avail;

			begin[n] = '\0';
			r->start += newline ? n + 1 : n;
			if (n && begin[n - 1] == '\r')
				begin[--n] = '\0';
			*line = begin;
			*len = n;
			return n > GEO_MAX_LINE ? -EMSGSIZE : 1;
		}
		if (r->eof)
			return 0;
		/* Past GEO_MAX_LINE and a CR the line is too long, so reading stops. */
		if (avail > GEO_MAX_LINE + 1)
			return -EMSGSIZE;

		memmove(r->buf, begin, avail);
		r->start = 0;
		r->end = avail;
		do {
			got = read(r->fd, r->buf + r->end, GEO_READ_CHUNK - r->end);
		} while (got < 0 && errno == EINTR);
		if (got < 0)
			return -errno;
		if (!got)
			r->eof = true;
		r->end += got;
	}
}

/* Parsing */

static int line_error(struct geo_loader *l, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int line_error(struct geo_loader *l, uint32_t line, const char *fmt, ...)
{
	char detail[sizeof(l->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return bf_error_set(l->err, -EINVAL, "failed to load geolocation file '%s' line %u: %s",
			    l->path, line, detail);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
	char *end;

	while (is_blank(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_blank(end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* Splits a line with exactly n - 1 commas into n trimmed fields. */
static void split_fields(char *line, char *fields[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *comma = strchr(line, ',');
		char *next = NULL;

		if (comma) {
			*comma = '\0';
			next = comma + 1;
		}
		fields[i] = trim(line);
		line = next;
	}
}

/*
 * Returns the format a data line is written in, or 0. Only the shape counts
 * here: whether the fields are valid is checked by the parser of that format,
 * so that "12x,13,US" in a decimal file is reported as an invalid address.
 */
static enum bf_geo_format classify_line(const char *line)
{
	const char *comma1 = strchr(line, ',');
	const char *comma2;

	if (!comma1)
		return 0;
	comma2 = strchr(comma1 + 1, ',');
	if (!comma2)
		return BF_GEO_FORMAT_CIDR;
	if (strchr(comma2 + 1, ','))
		return 0;
	if (memchr(line, ':', comma2 - line))
		return BF_GEO_FORMAT_TOR6;
	return BF_GEO_FORMAT_TOR4;
}

static bool parse_decimal(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned int)(*s - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = v;
	return true;
}

static int parse_country(struct geo_loader *l, const char *text, uint16_t *country)
{
	if (bf_country_parse(text, country))
		return line_error(l, l->reader.line,
				  "invalid country code '%s': expected two ASCII letters or '?\?'",
				  text);
	return 0;
}

static int add_span(struct geo_loader *l, int family, struct geo_addr first, struct geo_addr last,
		    uint16_t country)
{
	struct geo_span span = {
		.first = first,
		.last = last,
		.line = l->reader.line,
		.country = country,
		.source = l->source,
	};
	int ret;

	if (family == 4) {
		ret = span_list_push(&l->v4, &span);
		l->count4++;
	} else {
		ret = span_list_push(&l->v6, &span);
		l->count6++;
	}
	if (ret)
		return bf_error_set(l->err, ret,
				    "failed to load geolocation file '%s': out of memory", l->path);
	return 0;
}

static int parse_tor4_address(struct geo_loader *l, const char *text, uint32_t *addr)
{
	if (!parse_decimal(text, addr))
		return line_error(l, l->reader.line,
				  "invalid address '%s': expected a decimal IPv4 address from 0 to "
				  "4294967295",
				  text);
	return 0;
}

static int parse_tor4(struct geo_loader *l, char *line)
{
	char *fields[3];
	uint32_t first = 0, last = 0;
	uint16_t country;
	int ret;

	split_fields(line, fields, 3);
	ret = parse_tor4_address(l, fields[0], &first);
	if (ret)
		return ret;
	ret = parse_tor4_address(l, fields[1], &last);
	if (ret)
		return ret;
	if (first > last)
		return line_error(
			l, l->reader.line,
			"invalid range '%s,%s': the first address is greater than the last",
			fields[0], fields[1]);
	ret = parse_country(l, fields[2], &country);
	if (ret)
		return ret;
	return add_span(l, 4, addr_from4(first), addr_from4(last), country);
}

static int parse_tor6(struct geo_loader *l, char *line)
{
	char *fields[3];
	uint8_t bytes[2][16];
	struct geo_addr first, last;
	uint16_t country;
	int ret;

	split_fields(line, fields, 3);
	for (int i = 0; i < 2; i++) {
		if (inet_pton(AF_INET6, fields[i], bytes[i]) != 1)
			return line_error(l, l->reader.line,
					  "invalid address '%s': expected an IPv6 address",
					  fields[i]);
	}
	first = addr_from6(bytes[0]);
	last = addr_from6(bytes[1]);
	if (addr_cmp(&first, &last) > 0)
		return line_error(
			l, l->reader.line,
			"invalid range '%s,%s': the first address is greater than the last",
			fields[0], fields[1]);
	ret = parse_country(l, fields[2], &country);
	if (ret)
		return ret;
	return add_span(l, 6, first, last, country);
}

static void format_prefix(int family, struct geo_addr addr, unsigned int prefixlen, char *out,
			  size_t size)
{
	char text[INET6_ADDRSTRLEN];
	uint8_t bytes[16];
	uint32_t v4;

	if (family == 4) {
		v4 = htonl((uint32_t)addr.lo);
		(void)inet_ntop(AF_INET, &v4, text, sizeof(text));
	} else {
		addr_to6(addr, bytes);
		(void)inet_ntop(AF_INET6, bytes, text, sizeof(text));
	}
	(void)snprintf(out, size, "%s/%u", text, prefixlen);
}

/*
 * Parses "address/length". An IPv4-mapped IPv6 prefix of length 96 or more
 * is stored as the IPv4 prefix it covers, because that is how the BPF
 * programs look mapped addresses up.
 */
static int parse_prefix(struct geo_loader *l, char *text, int *family, struct geo_addr *first,
			struct geo_addr *last)
{
	char *slash = strchr(text, '/');
	char network[INET6_ADDRSTRLEN + 4];
	struct geo_addr host;
	uint8_t bytes[16];
	uint32_t prefixlen;
	unsigned int bits;
	bool valid;

	if (!slash)
		return line_error(l, l->reader.line,
				  "missing prefix length in '%s': expected 'address/length'", text);
	*slash = '\0';
	*family = strchr(text, ':') ? 6 : 4;
	bits = *family == 4 ? 32 : 128;
	valid = inet_pton(*family == 4 ? AF_INET : AF_INET6, text, bytes) == 1;
	*slash = '/';
	if (!valid)
		return line_error(l, l->reader.line, "invalid prefix '%s': invalid IPv%d address",
				  text, *family);
	if (!parse_decimal(slash + 1, &prefixlen) || prefixlen > bits)
		return line_error(l, l->reader.line,
				  "invalid prefix '%s': the prefix length must be 0 to %u", text,
				  bits);

	*first = *family == 4 ? addr_from4(load_be32(bytes)) : addr_from6(bytes);
	host = addr_low_mask(bits - prefixlen);
	if (!addr_is_zero(addr_and(*first, host))) {
		format_prefix(*family, addr_and_not(*first, host), prefixlen, network,
			      sizeof(network));
		return line_error(l, l->reader.line,
				  "invalid prefix '%s': host bits are set, the network is probably "
				  "'%s'",
				  text, network);
	}
	*last = addr_or(*first, host);

	if (*family == 6 && prefixlen >= 96 && is_mapped4(bytes)) {
		*family = 4;
		*first = addr_from4((uint32_t)first->lo);
		*last = addr_from4((uint32_t)last->lo);
	}
	return 0;
}

static int parse_cidr(struct geo_loader *l, char *line)
{
	char *fields[2];
	struct geo_addr first, last;
	uint16_t country;
	int family = 0, ret;

	split_fields(line, fields, 2);
	ret = parse_prefix(l, fields[0], &family, &first, &last);
	if (ret)
		return ret;
	ret = parse_country(l, fields[1], &country);
	if (ret)
		return ret;
	return add_span(l, family, first, last, country);
}

static int parse_data_line(struct geo_loader *l, char *line)
{
	enum bf_geo_format format = classify_line(line);

	if (!format)
		return line_error(
			l, l->reader.line,
			"unrecognized line '%.64s': expected 'first,last,CC' or 'CIDR,CC'", line);
	if (!l->format) {
		if (l->required && format != l->required)
			return line_error(l, l->reader.line,
					  "'%.64s' is %s but this file must contain %s", line,
					  format_name(format), format_name(l->required));
		l->format = format;
		l->format_line = l->reader.line;
	} else if (format != l->format) {
		return line_error(l, l->reader.line,
				  "'%.64s' is %s but the first data line (line %u) is %s, and a "
				  "file must use one format",
				  line, format_name(format), l->format_line,
				  format_name(l->format));
	}

	switch (format) {
	case BF_GEO_FORMAT_TOR4:
		return parse_tor4(l, line);
	case BF_GEO_FORMAT_TOR6:
		return parse_tor6(l, line);
	default:
		return parse_cidr(l, line);
	}
}

/* Stores the date of a Tor/IPFire header line "# Generated: Thu, 25 Jun 2026 04:33:59 GMT". */
static void parse_comment(struct geo_loader *l, char *comment)
{
	static const char key[] = "Generated:";
	char *value;

	if (l->date[0])
		return;
	while (is_blank(*comment))
		comment++;
	if (strncmp(comment, key, strlen(key)))
		return;
	value = trim(comment + strlen(key));
	(void)snprintf(l->date, sizeof(l->date), "%s", value);
}

static int read_lines(struct geo_loader *l)
{
	char *line = NULL, *text;
	size_t len = 0;
	int ret;

	while ((ret = reader_next(&l->reader, &line, &len)) > 0) {
		if (strlen(line) != len)
			return line_error(l, l->reader.line, "the line contains a NUL byte");
		text = trim(line);
		if (!*text)
			continue;
		if (*text == '#') {
			parse_comment(l, text + 1);
			continue;
		}
		ret = parse_data_line(l, text);
		if (ret)
			return ret;
	}
	if (ret == -EMSGSIZE)
		return line_error(l, l->reader.line, "the line is longer than %d characters",
				  GEO_MAX_LINE);
	if (ret < 0)
		return bf_error_set(l->err, ret, "failed to read geolocation file '%s': %s",
				    l->path, strerror(-ret));
	if (!l->format)
		return bf_error_set(l->err, -EINVAL,
				    "failed to load geolocation file '%s': no data lines, expected "
				    "'first,last,CC' or 'CIDR,CC' lines",
				    l->path);
	return 0;
}

/* The range of a span as its file wrote it, for error messages. */
static void format_span(const struct geo_loader *l, int family, const struct geo_span *s, char *out,
			size_t size)
{
	char first[INET6_ADDRSTRLEN], last[INET6_ADDRSTRLEN];
	uint8_t bytes[16];

	switch (l->format) {
	case BF_GEO_FORMAT_TOR4:
		(void)snprintf(out, size, "%u,%u", (uint32_t)s->first.lo, (uint32_t)s->last.lo);
		break;
	case BF_GEO_FORMAT_TOR6:
		addr_to6(s->first, bytes);
		(void)inet_ntop(AF_INET6, bytes, first, sizeof(first));
		addr_to6(s->last, bytes);
		(void)inet_ntop(AF_INET6, bytes, last, sizeof(last));
		(void)snprintf(out, size, "%s,%s", first, last);
		break;
	default:
		format_prefix(family, s->first,
			      (family == 4 ? 32 : 128) - addr_fls(addr_sub(s->last, s->first)), out,
			      size);
		break;
	}
}

static int overlap_error(struct geo_loader *l, int family, const struct geo_span *a,
			 const struct geo_span *b)
{
	const struct geo_span *later = a->line > b->line ? a : b;
	const struct geo_span *earlier = later == a ? b : a;
	char range[2 * INET6_ADDRSTRLEN + 8], country[3], other_country[3];

	format_span(l, family, later, range, sizeof(range));
	bf_country_format(later->country, country);
	bf_country_format(earlier->country, other_country);
	return line_error(l, later->line,
			  "range '%s' with country %s overlaps line %u with country %s", range,
			  country, earlier->line, other_country);
}

/*
 * Sorts the spans of one family of a file and merges overlapping spans of
 * the same country. Overlapping spans of different countries are an error.
 */
static int normalize_spans(struct geo_loader *l, int family, struct span_list *list)
{
	struct geo_span *v = list->v;
	struct geo_span owner; /* the span of the line that ends v[n - 1] */
	size_t n = 0;

	for (size_t i = 1; i < list->n; i++) {
		if (span_cmp(&v[i - 1], &v[i]) > 0) {
			qsort(v, list->n, sizeof(*v), span_cmp);
			break;
		}
	}

	for (size_t i = 0; i < list->n; i++) {
		const struct geo_span cur = v[i];

		if (!n || addr_cmp(&cur.first, &v[n - 1].last) > 0) {
			v[n++] = cur;
			owner = cur;
			continue;
		}
		if (cur.country != owner.country)
			return overlap_error(l, family, &owner, &cur);
		if (addr_cmp(&cur.last, &owner.last) > 0) {
			v[n - 1].last = cur.last;
			owner = cur;
		}
	}
	list->n = n;
	return 0;
}

static int append_layer(struct bf_geo_table *t, struct geo_loader *l)
{
	struct bf_geo_source *src = &t->sources[t->nsources];
	struct bf_range4 *v4;
	struct bf_range6 *v6;

	if (t->cap4 - t->n4 < l->v4.n) {
		v4 = reallocarray(t->v4, t->n4 + l->v4.n, sizeof(*v4));
		if (!v4)
			return -ENOMEM;
		t->v4 = v4;
		t->cap4 = t->n4 + l->v4.n;
	}
	if (t->cap6 - t->n6 < l->v6.n) {
		v6 = reallocarray(t->v6, t->n6 + l->v6.n, sizeof(*v6));
		if (!v6)
			return -ENOMEM;
		t->v6 = v6;
		t->cap6 = t->n6 + l->v6.n;
	}

	for (size_t i = 0; i < l->v4.n; i++) {
		const struct geo_span *s = &l->v4.v[i];

		t->v4[t->n4++] = (struct bf_range4){
			.first = (uint32_t)s->first.lo,
			.last = (uint32_t)s->last.lo,
			.country = s->country,
			.source = s->source,
		};
	}
	for (size_t i = 0; i < l->v6.n; i++) {
		const struct geo_span *s = &l->v6.v[i];
		struct bf_range6 *r = &t->v6[t->n6++];

		*r = (struct bf_range6){ .country = s->country, .source = s->source };
		addr_to6(s->first, r->first);
		addr_to6(s->last, r->last);
	}

	*src = (struct bf_geo_source){
		.format = l->format,
		.count4 = l->count4,
		.count6 = l->count6,
	};
	(void)snprintf(src->path, sizeof(src->path), "%s", l->path);
	(void)snprintf(src->date, sizeof(src->date), "%s", l->date);
	t->nsources++;
	t->flat = false;
	return 0;
}

static int find_builtin_source(const struct bf_geo_table *t)
{
	for (size_t i = 0; i < t->nsources; i++) {
		if (t->sources[i].format == BF_GEO_FORMAT_BUILTIN)
			return i;
	}
	return -1;
}

static int load_file(struct bf_geo_table *t, const char *path, enum bf_geo_format required,
		     struct bf_error *err)
{
	/* One source slot stays free for the builtin table that bf_geo_flatten() adds. */
	size_t max_files = BF_GEO_MAX_SOURCES - (find_builtin_source(t) < 0 ? 1 : 0);
	struct geo_loader *l;
	int ret;

	if (t->nsources >= max_files)
		return bf_error_set(err, -E2BIG,
				    "failed to load geolocation file '%s': too many geolocation "
				    "files, at most %zu",
				    path, max_files);
	if (strlen(path) >= sizeof(t->sources[0].path))
		return bf_error_set(err, -ENAMETOOLONG,
				    "failed to load geolocation file '%.64s...': path too long",
				    path);

	l = calloc(1, sizeof(*l));
	if (!l)
		return bf_error_set(err, -ENOMEM,
				    "failed to load geolocation file '%s': out of memory", path);
	l->path = path;
	l->err = err;
	l->required = required;
	l->source = t->nsources;
	l->reader.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (l->reader.fd < 0) {
		ret = -errno;
		(void)bf_error_set(err, ret, "failed to open geolocation file '%s': %s", path,
				   strerror(-ret));
		goto out;
	}

	ret = read_lines(l);
	if (ret)
		goto out;
	ret = normalize_spans(l, 4, &l->v4);
	if (ret)
		goto out;
	ret = normalize_spans(l, 6, &l->v6);
	if (ret)
		goto out;
	ret = append_layer(t, l);
	if (ret)
		(void)bf_error_set(err, ret, "failed to load geolocation file '%s': out of memory",
				   path);
out:
	if (l->reader.fd >= 0)
		(void)close(l->reader.fd);
	span_list_free(&l->v4);
	span_list_free(&l->v6);
	free(l);
	return ret;
}

void bf_geo_table_init(struct bf_geo_table *t)
{
	memset(t, 0, sizeof(*t));
}

void bf_geo_table_free(struct bf_geo_table *t)
{
	free(t->v4);
	free(t->v6);
	bf_geo_table_init(t);
}

int bf_geo_load_file(struct bf_geo_table *t, const char *path, struct bf_error *err)
{
	return load_file(t, path, 0, err);
}

int bf_geo_load_cidr_file(struct bf_geo_table *t, const char *path, struct bf_error *err)
{
	return load_file(t, path, BF_GEO_FORMAT_CIDR, err);
}

/* Flattening */

/* Appends a lower piece to out, after the upper spans that start before it. */
static void emit_piece(struct span_list *out, const struct geo_span *upper, size_t nupper,
		       size_t *next_upper, const struct geo_span *piece)
{
	while (*next_upper < nupper && addr_cmp(&upper[*next_upper].first, &piece->first) < 0)
		out->v[out->n++] = upper[(*next_upper)++];
	out->v[out->n++] = *piece;
}

/*
 * Replaces *lower with upper laid over it. Both are sorted and free of
 * overlaps, and so is the result. Every upper span splits at most one lower
 * span in two, so the result has at most lower->n + 2 * nupper spans.
 */
static int overlay_run(struct span_list *lower, const struct geo_span *upper, size_t nupper)
{
	struct span_list out = { 0 };
	size_t next_upper = 0, j = 0;
	int ret;

	ret = span_list_reserve(&out, lower->n ? lower->n + 2 * nupper : nupper);
	if (ret)
		return ret;

	for (size_t i = 0; i < lower->n; i++) {
		struct geo_span piece = lower->v[i];
		const struct geo_addr end = piece.last;

		/* upper[j] is the first upper span that may cover part of lower->v[i]. */
		while (j < nupper && addr_cmp(&upper[j].last, &piece.first) < 0)
			j++;
		for (size_t k = j;; k++) {
			if (k == nupper || addr_cmp(&upper[k].first, &end) > 0) {
				piece.last = end;
				emit_piece(&out, upper, nupper, &next_upper, &piece);
				break;
			}
			if (addr_cmp(&upper[k].first, &piece.first) > 0) {
				piece.last = addr_dec(upper[k].first);
				emit_piece(&out, upper, nupper, &next_upper, &piece);
			}
			if (addr_cmp(&upper[k].last, &end) >= 0)
				break;
			piece.first = addr_inc(upper[k].last);
		}
	}
	while (next_upper < nupper)
		out.v[out.n++] = upper[next_upper++];

	span_list_free(lower);
	*lower = out;
	return 0;
}

static void merge_adjacent(struct span_list *list)
{
	size_t n = 0;

	for (size_t i = 0; i < list->n; i++) {
		struct geo_span *prev = n ? &list->v[n - 1] : NULL;
		const struct geo_span *cur = &list->v[i];

		if (prev && prev->country == cur->country && prev->source == cur->source) {
			struct geo_addr next = addr_inc(prev->last);

			if (!addr_cmp(&next, &cur->first)) {
				prev->last = cur->last;
				continue;
			}
		}
		list->v[n++] = *cur;
	}
	list->n = n;
}

/*
 * Flattens the spans of one family (the table's layers in load order) and
 * lays the builtin spans over them. The result replaces the spans in *list.
 */
static int flatten_spans(struct span_list *list, const struct geo_span *builtin, size_t nbuiltin)
{
	struct span_list flat = { 0 };
	size_t start = 0;
	int ret = 0;

	for (size_t i = 1; i <= list->n && !ret; i++) {
		if (i < list->n && addr_cmp(&list->v[i].first, &list->v[i - 1].last) > 0)
			continue;
		if (i == list->n && !start) {
			/* One run, the usual case: it is already flat. */
			flat = *list;
			*list = (struct span_list){ 0 };
			break;
		}
		ret = overlay_run(&flat, list->v + start, i - start);
		start = i;
	}
	span_list_free(list);
	if (!ret)
		ret = overlay_run(&flat, builtin, nbuiltin);
	if (ret) {
		span_list_free(&flat);
		return ret;
	}
	merge_adjacent(&flat);
	*list = flat;
	return 0;
}

static int flatten4(const struct bf_geo_table *t, uint8_t builtin_source, struct bf_range4 **out,
		    size_t *nout)
{
	struct geo_span builtin[ARRAY_SIZE(local4)];
	struct span_list list = { 0 };
	int ret;

	for (size_t i = 0; i < ARRAY_SIZE(local4); i++) {
		struct geo_addr first = addr_from4(local4[i].addr);

		builtin[i] = (struct geo_span){
			.first = first,
			.last = addr_or(first, addr_low_mask(32 - local4[i].prefixlen)),
			.country = BF_CC_NONE,
			.source = builtin_source,
		};
	}
	ret = span_list_reserve(&list, t->n4);
	if (ret)
		return ret;
	for (size_t i = 0; i < t->n4; i++) {
		list.v[list.n++] = (struct geo_span){
			.first = addr_from4(t->v4[i].first),
			.last = addr_from4(t->v4[i].last),
			.country = t->v4[i].country,
			.source = t->v4[i].source,
		};
	}
	ret = flatten_spans(&list, builtin, ARRAY_SIZE(builtin));
	if (ret)
		return ret;

	*out = calloc(list.n, sizeof(**out));
	if (!*out) {
		span_list_free(&list);
		return -ENOMEM;
	}
	for (size_t i = 0; i < list.n; i++) {
		(*out)[i] = (struct bf_range4){
			.first = (uint32_t)list.v[i].first.lo,
			.last = (uint32_t)list.v[i].last.lo,
			.country = list.v[i].country,
			.source = list.v[i].source,
		};
	}
	*nout = list.n;
	span_list_free(&list);
	return 0;
}

static int flatten6(const struct bf_geo_table *t, uint8_t builtin_source, struct bf_range6 **out,
		    size_t *nout)
{
	struct geo_span builtin[ARRAY_SIZE(local6)];
	struct span_list list = { 0 };
	int ret;

	for (size_t i = 0; i < ARRAY_SIZE(local6); i++) {
		struct geo_addr first = addr_from6(local6[i].addr);

		builtin[i] = (struct geo_span){
			.first = first,
			.last = addr_or(first, addr_low_mask(128 - local6[i].prefixlen)),
			.country = BF_CC_NONE,
			.source = builtin_source,
		};
	}
	ret = span_list_reserve(&list, t->n6);
	if (ret)
		return ret;
	for (size_t i = 0; i < t->n6; i++) {
		list.v[list.n++] = (struct geo_span){
			.first = addr_from6(t->v6[i].first),
			.last = addr_from6(t->v6[i].last),
			.country = t->v6[i].country,
			.source = t->v6[i].source,
		};
	}
	ret = flatten_spans(&list, builtin, ARRAY_SIZE(builtin));
	if (ret)
		return ret;

	*out = calloc(list.n, sizeof(**out));
	if (!*out) {
		span_list_free(&list);
		return -ENOMEM;
	}
	for (size_t i = 0; i < list.n; i++) {
		struct bf_range6 *r = &(*out)[i];

		r->country = list.v[i].country;
		r->source = list.v[i].source;
		addr_to6(list.v[i].first, r->first);
		addr_to6(list.v[i].last, r->last);
	}
	*nout = list.n;
	span_list_free(&list);
	return 0;
}

int bf_geo_flatten(struct bf_geo_table *t, struct bf_error *err)
{
	int builtin = find_builtin_source(t);
	struct bf_range4 *v4 = NULL;
	struct bf_range6 *v6 = NULL;
	size_t n4 = 0, n6 = 0;
	int ret;

	if (builtin < 0) {
		if (t->nsources >= BF_GEO_MAX_SOURCES)
			return bf_error_set(err, -E2BIG,
					    "failed to flatten geolocation table: no source slot "
					    "left for '%s'",
					    BUILTIN_PATH);
		builtin = t->nsources;
	}

	ret = flatten4(t, builtin, &v4, &n4);
	if (!ret)
		ret = flatten6(t, builtin, &v6, &n6);
	if (ret) {
		free(v4);
		return bf_error_set(err, ret, "failed to flatten geolocation table: %s",
				    strerror(-ret));
	}

	if ((size_t)builtin == t->nsources) {
		t->sources[t->nsources++] = (struct bf_geo_source){
			.path = BUILTIN_PATH,
			.format = BF_GEO_FORMAT_BUILTIN,
			.count4 = ARRAY_SIZE(local4),
			.count6 = ARRAY_SIZE(local6),
		};
	}
	free(t->v4);
	free(t->v6);
	t->v4 = v4;
	t->n4 = t->cap4 = n4;
	t->v6 = v6;
	t->n6 = t->cap6 = n6;
	t->flat = true;
	return 0;
}

/* Lookups */

const struct bf_range4 *bf_geo_lookup4(const struct bf_geo_table *t, uint32_t addr)
{
	size_t lo = 0, hi = t->n4;

	if (!t->flat)
		return NULL;
	/* Find the first range that starts after addr: the one before it may cover addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->v4[mid].first <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || t->v4[lo - 1].last < addr)
		return NULL;
	return &t->v4[lo - 1];
}

const struct bf_range6 *bf_geo_lookup6(const struct bf_geo_table *t, const uint8_t addr[16])
{
	size_t lo = 0, hi = t->n6;

	if (!t->flat)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(t->v6[mid].first, addr, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || memcmp(t->v6[lo - 1].last, addr, 16) < 0)
		return NULL;
	return &t->v6[lo - 1];
}

bool bf_geo_is_local4(uint32_t addr)
{
	for (size_t i = 0; i < ARRAY_SIZE(local4); i++) {
		uint32_t mask = UINT32_MAX << (32 - local4[i].prefixlen);

		if ((addr & mask) == local4[i].addr)
			return true;
	}
	return false;
}

bool bf_geo_is_local6(const uint8_t addr[16])
{
	struct geo_addr a = addr_from6(addr);

	for (size_t i = 0; i < ARRAY_SIZE(local6); i++) {
		struct geo_addr host = addr_low_mask(128 - local6[i].prefixlen);
		struct geo_addr network = addr_and_not(a, host);
		struct geo_addr local = addr_from6(local6[i].addr);

		if (!addr_cmp(&network, &local))
			return true;
	}
	return false;
}

/* Prefixes */

typedef int (*geo_prefix_fn)(struct geo_addr addr, unsigned int prefixlen, void *ctx);

/*
 * Splits [first, last] of a family of the given width in bits into the
 * minimal list of prefixes, in address order. Each step takes the largest
 * block that starts at first: limited by the alignment of first and by the
 * size of what remains. The loop ends on reaching last, so the full address
 * space never needs a number beyond the family's width.
 */
static int span_to_prefixes(struct geo_addr first, struct geo_addr last, unsigned int bits,
			    geo_prefix_fn fn, void *ctx)
{
	for (;;) {
		struct geo_addr remaining = addr_sub(last, first); /* block size - 1 */
		struct geo_addr block_last;
		unsigned int size = addr_fls(remaining);
		unsigned int align = addr_ctz(first, bits);
		int ret;

		/*
		 * The block may span 2^size addresses only if remaining + 1 is that
		 * power of two, that is when remaining & (remaining + 1) is 0. For
		 * the full address space remaining + 1 wraps to 0, which also fits.
		 */
		if (!addr_is_zero(addr_and(remaining, addr_inc(remaining))))
			size--;
		if (size > align)
			size = align;

		ret = fn(first, bits - size, ctx);
		if (ret)
			return ret;
		block_last = addr_or(first, addr_low_mask(size));
		if (!addr_cmp(&block_last, &last))
			return 0;
		first = addr_inc(block_last);
	}
}

struct prefix4_ctx {
	bf_prefix4_fn fn;
	void *ctx;
};

struct prefix6_ctx {
	bf_prefix6_fn fn;
	void *ctx;
};

static int call_prefix4(struct geo_addr addr, unsigned int prefixlen, void *ctx)
{
	const struct prefix4_ctx *c = ctx;

	return c->fn((uint32_t)addr.lo, prefixlen, c->ctx);
}

static int call_prefix6(struct geo_addr addr, unsigned int prefixlen, void *ctx)
{
	const struct prefix6_ctx *c = ctx;
	uint8_t bytes[16];

	addr_to6(addr, bytes);
	return c->fn(bytes, prefixlen, c->ctx);
}

int bf_range4_to_prefixes(uint32_t first, uint32_t last, bf_prefix4_fn fn, void *ctx)
{
	struct prefix4_ctx c = { fn, ctx };

	if (first > last)
		return -EINVAL;
	return span_to_prefixes(addr_from4(first), addr_from4(last), 32, call_prefix4, &c);
}

int bf_range6_to_prefixes(const uint8_t first[16], const uint8_t last[16], bf_prefix6_fn fn,
			  void *ctx)
{
	struct prefix6_ctx c = { fn, ctx };

	if (memcmp(first, last, 16) > 0)
		return -EINVAL;
	return span_to_prefixes(addr_from6(first), addr_from6(last), 128, call_prefix6, &c);
}

static int count_prefix(struct geo_addr addr, unsigned int prefixlen, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

int bf_geo_count_prefixes(const struct bf_geo_table *t, size_t *n4, size_t *n6)
{
	size_t count4 = 0, count6 = 0;

	if (!t->flat)
		return -EINVAL;
	for (size_t i = 0; i < t->n4; i++)
		(void)span_to_prefixes(addr_from4(t->v4[i].first), addr_from4(t->v4[i].last), 32,
				       count_prefix, &count4);
	for (size_t i = 0; i < t->n6; i++)
		(void)span_to_prefixes(addr_from6(t->v6[i].first), addr_from6(t->v6[i].last), 128,
				       count_prefix, &count6);
	if (n4)
		*n4 = count4;
	if (n6)
		*n6 = count6;
	return 0;
}

/* Addresses and country codes */

int bf_parse_address(const char *text, uint32_t *v4, uint8_t v6[16])
{
	uint8_t bytes[16];

	if (inet_pton(AF_INET, text, bytes) == 1) {
		if (v4)
			*v4 = load_be32(bytes);
		return 4;
	}
	if (inet_pton(AF_INET6, text, bytes) != 1)
		return 0;
	if (is_mapped4(bytes)) {
		if (v4)
			*v4 = load_be32(bytes + 12);
		return 4;
	}
	if (v6)
		memcpy(v6, bytes, 16);
	return 6;
}

static bool is_ascii_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

int bf_country_parse(const char *text, uint16_t *country)
{
	if (!strcmp(text, "??")) {
		*country = BF_CC_NONE;
		return 0;
	}
	if (!is_ascii_letter(text[0]) || !is_ascii_letter(text[1]) || text[2])
		return -EINVAL;
	*country = BF_CC(ascii_upper(text[0]), ascii_upper(text[1]));
	return 0;
}

static bool is_code_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void bf_country_format(uint16_t country, char out[3])
{
	char a = country & 0xff, b = country >> 8;

	/* Registry codes such as A1 contain digits. Other characters are in no code. */
	if (!is_code_char(a) || !is_code_char(b)) {
		a = '?';
		b = '?';
	}
	out[0] = a;
	out[1] = b;
	out[2] = '\0';
}

bool bf_country_is_pseudo(uint16_t country)
{
	static const uint16_t pseudo[] = {
		BF_CC_NONE,	 BF_CC('E', 'U'), BF_CC('A', 'P'), BF_CC('A', '1'), BF_CC('A', '2'),
		BF_CC('A', '3'), BF_CC('O', '1'), BF_CC('Z', 'Z'), BF_CC('X', 'X'),
	};

	for (size_t i = 0; i < ARRAY_SIZE(pseudo); i++) {
		if (country == pseudo[i])
			return true;
	}
	return false;
}
