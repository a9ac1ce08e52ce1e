// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The text formats of geolocation files: Tor/IPFire ranges, "CIDR,CC",
 * DB-IP and ip-location-db ranges, IP2Location LITE DB1, GeoIP2/GeoLite2
 * Blocks joined with Locations, and prefix lists of one country.
 *
 * A file is read line by line. Its first data line decides the format, and
 * every later data line must have the same shape, so that a line of another
 * format is reported as such instead of as a bad value. A header line is
 * recognised only before the first data line. The SHA-256 of the file is
 * computed over the bytes as they are read.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "geo.h"
#include "geo_layer.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define GEO_MAX_LINE   1024  /* characters of a line, without its CR LF */
#define GEO_READ_CHUNK 65536 /* bytes per read(2) */
#define CSV_MAX_FIELDS 32    /* more than the 14 columns of a GeoIP2 City Locations file */

#define FORMATS_ACCEPTED                                                                           \
	"accepted are MaxMind DB (.mmdb), GeoIP2/GeoLite2 CSV (a Blocks file or its folder), "     \
	"'first,last,CC' ranges (Tor/IPFire, DB-IP, ip-location-db, decimal or text), "            \
	"IP2Location LITE DB1 CSV and 'CIDR,CC' lines"

struct line_reader {
	int fd;
	size_t start, end; /* unread bytes are buf[start..end) */
	bool eof;
	uint32_t line;	 /* number of the line last returned */
	EVP_MD_CTX *sha; /* hash of the bytes read, NULL when not wanted */
	char buf[GEO_READ_CHUNK + 1];
};

struct csv_field {
	char *text; /* NUL-terminated, without blanks around it and without quotes */
	size_t len;
	bool quoted;
};

/* The shape of a data line, which decides the format of a file. */
enum line_kind {
	LINE_UNKNOWN,
	LINE_DECIMAL,	  /* "first,last,CC", decimal numbers */
	LINE_TEXT4,	  /* "first,last,CC", IPv4 text addresses */
	LINE_TEXT6,	  /* "first,last,CC", IPv6 text addresses */
	LINE_CIDR,	  /* "CIDR,CC" */
	LINE_IP2LOCATION, /* "first","last","CC","name" */
	LINE_GEOIP2,	  /* a GeoIP2 Blocks row, with the columns its header names */
	LINE_PREFIX,	  /* one prefix, of a prefix list */
};

/* geoname_id to country, from a GeoIP2 Locations file. */
struct geoip2_location {
	uint32_t geoname_id;
	uint16_t country;
	uint32_t line;
};

struct geoip2_locations {
	char path[PATH_MAX];
	struct geoip2_location *v;
	size_t n;
};

/* Columns of a GeoIP2 Blocks file, from its header. */
struct geoip2_columns {
	size_t count;
	int network;
	int geoname_id;
	int registered; /* registered_country_geoname_id, -1 when absent */
};

/* State of one text file load. */
struct text_loader {
	struct geo_layer *layer;
	const char *path;
	struct bf_error *err;
	enum geo_text_mode mode;
	uint16_t list_country;
	enum line_kind kind; /* of the first data line, LINE_UNKNOWN before it */
	uint32_t kind_line;  /* number of the first data line */
	bool wide;	     /* decimal numbers are 128-bit IPv6 addresses */
	bool date_seen;
	bool seen4, seen6;
	char header[96]; /* the header line, "" when there is none */
	bool dbip_header;
	struct geoip2_columns columns;
	const struct geoip2_locations *locations; /* for a GeoIP2 Blocks file */
	struct geoip2_locations *own_locations;	  /* loaded by this loader, freed with it */
	struct line_reader reader;
};

/* Reading lines */

/*
 * Reads the next line into the reader's buffer, NUL-terminated and without
 * its LF or CR LF. Returns 1 and the line, 0 at the end of the file,
 * -EMSGSIZE for a line longer than GEO_MAX_LINE, -ENOMEM when hashing fails,
 * or the negative errno of read(2).
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
		if (got > 0 && r->sha && !EVP_DigestUpdate(r->sha, r->buf + r->end, got))
			return -ENOMEM;
		r->end += got;
	}
}

/* Fields */

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

/*
 * Splits a line of len characters at its commas into trimmed fields, in
 * place. A field may be quoted, with "" for a quote inside it, as in RFC
 * 4180, but it cannot span lines. Stores at most max fields and returns the
 * number of fields the line has, or -1 for a quote that is not closed or
 * text after a closing quote.
 */
static int split_csv(char *line, size_t len, struct csv_field *fields, size_t max)
{
	char *p = line, *end = line + len;
	size_t n = 0;

	for (;;) {
		struct csv_field f = { .quoted = false };
		char *stop;
		bool more;

		while (p < end && is_blank(*p))
			p++;
		if (p < end && *p == '"') {
			char *out = ++p;

			f.text = out;
			f.quoted = true;
			for (;;) {
				if (p == end)
					return -1;
				if (*p == '"' && p + 1 < end && p[1] == '"') {
					*out++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*out++ = *p++;
				}
			}
			stop = out;
			while (p < end && is_blank(*p))
				p++;
			if (p < end && *p != ',')
				return -1;
		} else {
			char *comma = memchr(p, ',', end - p);

			f.text = p;
			p = comma ? comma : end;
			stop = p;
			while (stop > f.text && is_blank(stop[-1]))
				stop--;
		}
		more = p < end;
		*stop = '\0';
		f.len = stop - f.text;
		if (n < max)
			fields[n] = f;
		n++;
		if (!more)
			return n;
		p++;
	}
}

static bool field_has(const struct csv_field *f, char c)
{
	return memchr(f->text, c, f->len) != NULL;
}

/* Returns the shape of a data line of n fields. */
static enum line_kind classify_line(const struct csv_field *fields, int n)
{
	bool dot = false;

	if (n == 2)
		return LINE_CIDR;
	if (n == 4 && fields[0].quoted)
		return LINE_IP2LOCATION;
	if (n != 3)
		return LINE_UNKNOWN;
	/* One pass over the short address fields, which is faster than a memchr() per character. */
	for (int i = 0; i < 2; i++) {
		for (const char *c = fields[i].text; *c; c++) {
			if (*c == ':')
				return LINE_TEXT6;
			dot |= *c == '.';
		}
	}
	return dot ? LINE_TEXT4 : LINE_DECIMAL;
}

static const char *kind_description(enum line_kind kind, bool wide)
{
	switch (kind) {
	case LINE_DECIMAL:
		return wide ? "a decimal IPv6 range 'first,last,CC'"
			    : "a decimal IPv4 range 'first,last,CC'";
	case LINE_TEXT4:
		return "an IPv4 range 'first,last,CC'";
	case LINE_TEXT6:
		return "an IPv6 range 'first,last,CC'";
	case LINE_CIDR:
		return "a prefix 'CIDR,CC'";
	case LINE_IP2LOCATION:
		return "an IP2Location row '\"first\",\"last\",\"CC\",\"name\"'";
	case LINE_GEOIP2:
		return "a GeoIP2 Blocks row";
	case LINE_PREFIX:
		return "a prefix";
	case LINE_UNKNOWN:
		break;
	}
	return "an unrecognized line";
}

static bool kinds_compatible(enum line_kind a, enum line_kind b)
{
	if (a == b)
		return true;
	/* DB-IP files have both families. */
	return (a == LINE_TEXT4 || a == LINE_TEXT6) && (b == LINE_TEXT4 || b == LINE_TEXT6);
}

/* Numbers, addresses and countries */

static int text_error(struct text_loader *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int text_error(struct text_loader *l, const char *fmt, ...)
{
	char detail[sizeof(l->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return geo_layer_error(l->layer, l->reader.line, "%s", detail);
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

/* Parses a decimal number of up to 128 bits. */
static bool parse_decimal128(const char *s, struct geo_addr *out)
{
	struct geo_addr v = { 0, 0 };

	if (!*s)
		return false;
	for (; *s; s++) {
		uint64_t digit, lo_hi, lo_lo, carry;

		if (*s < '0' || *s > '9')
			return false;
		digit = (uint64_t)(*s - '0');
		/* v = v * 10 + digit, with the low half multiplied in 32-bit pieces */
		lo_lo = (v.lo & UINT32_MAX) * 10 + digit;
		lo_hi = (v.lo >> 32) * 10 + (lo_lo >> 32);
		carry = lo_hi >> 32;
		if (v.hi > (UINT64_MAX - carry) / 10)
			return false;
		v.hi = v.hi * 10 + carry;
		v.lo = lo_hi << 32 | (lo_lo & UINT32_MAX);
	}
	*out = v;
	return true;
}

static int parse_country(struct text_loader *l, const char *text, uint16_t *country)
{
	if (bf_country_parse(text, country))
		return text_error(
			l, "invalid country code '%s': expected two ASCII letters or '?\?'", text);
	return 0;
}

/*
 * Parses "address/length". An IPv4-mapped IPv6 prefix of length 96 or more
 * is stored as the IPv4 prefix it covers, because that is how the BPF
 * programs look mapped addresses up. Without a slash, a prefix list accepts
 * a single address.
 */
static int parse_prefix(struct text_loader *l, char *text, bool host_allowed, int *family,
			struct geo_addr *first, struct geo_addr *last)
{
	char *slash = strchr(text, '/');
	char network[INET6_ADDRSTRLEN + 4];
	struct geo_addr host;
	uint8_t bytes[16];
	uint32_t prefixlen;
	unsigned int bits;
	bool valid;

	if (!slash && !host_allowed)
		return text_error(l, "missing prefix length in '%s': expected 'address/length'",
				  text);
	if (slash)
		*slash = '\0';
	*family = strchr(text, ':') ? 6 : 4;
	bits = *family == 4 ? 32 : 128;
	valid = inet_pton(*family == 4 ? AF_INET : AF_INET6, text, bytes) == 1;
	if (slash)
		*slash = '/';
	if (!valid)
		return text_error(l, "invalid prefix '%s': invalid IPv%d address", text, *family);
	if (!slash)
		prefixlen = bits;
	else if (!parse_decimal(slash + 1, &prefixlen) || prefixlen > bits)
		return text_error(l, "invalid prefix '%s': the prefix length must be 0 to %u", text,
				  bits);

	*first = *family == 4 ? addr_from4(load_be32(bytes)) : addr_from6(bytes);
	host = addr_low_mask(bits - prefixlen);
	if (!addr_is_zero(addr_and(*first, host))) {
		geo_format_prefix(*family, addr_and_not(*first, host), prefixlen, network,
				  sizeof(network));
		return text_error(l,
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

static int range_order_error(struct text_loader *l, const struct csv_field *fields)
{
	return text_error(l, "invalid range '%s,%s': the first address is greater than the last",
			  fields[0].text, fields[1].text);
}

/*
 * Parses the two decimal addresses of a range: 32-bit IPv4 numbers, or
 * 128-bit IPv6 numbers when the first data line had a number above
 * 4294967295.
 */
static int parse_decimal_range(struct text_loader *l, const struct csv_field *fields,
			       struct geo_addr *first, struct geo_addr *last)
{
	struct geo_addr addr[2];

	for (int i = 0; i < 2; i++) {
		uint32_t v4 = 0;

		if (l->wide) {
			if (!parse_decimal128(fields[i].text, &addr[i]))
				return text_error(l,
						  "invalid address '%s': expected a decimal IPv6 "
						  "address from 0 to "
						  "340282366920938463463374607431768211455",
						  fields[i].text);
			continue;
		}
		if (!parse_decimal(fields[i].text, &v4))
			return text_error(l,
					  "invalid address '%s': expected a decimal IPv4 address "
					  "from 0 to 4294967295",
					  fields[i].text);
		addr[i] = addr_from4(v4);
	}
	if (addr_cmp(&addr[0], &addr[1]) > 0)
		return range_order_error(l, fields);
	*first = addr[0];
	*last = addr[1];
	return 0;
}

static int add_decimal_range(struct text_loader *l, struct geo_addr first, struct geo_addr last,
			     uint16_t country)
{
	if (l->wide)
		return geo_layer_add_range6(l->layer, first, last, country, l->reader.line);
	l->seen4 = true;
	return geo_layer_add(l->layer, 4, first, last, country, l->reader.line);
}

/* Parsers of the line kinds */

static int parse_decimal_line(struct text_loader *l, struct csv_field *fields)
{
	struct geo_addr first, last;
	uint16_t country;
	int ret;

	ret = parse_decimal_range(l, fields, &first, &last);
	if (ret)
		return ret;
	ret = parse_country(l, fields[2].text, &country);
	if (ret)
		return ret;
	return add_decimal_range(l, first, last, country);
}

static int parse_text_line(struct text_loader *l, struct csv_field *fields)
{
	uint8_t bytes[2][16];
	struct geo_addr first, last;
	int family[2];
	uint16_t country;
	int ret;

	for (int i = 0; i < 2; i++) {
		family[i] = field_has(&fields[i], ':') ? 6 : 4;
		if (inet_pton(family[i] == 4 ? AF_INET : AF_INET6, fields[i].text, bytes[i]) != 1)
			return text_error(l, "invalid address '%s': expected an IPv%d address",
					  fields[i].text, family[i]);
	}
	if (family[0] != family[1])
		return text_error(l,
				  "invalid range '%s,%s': the addresses are of different families",
				  fields[0].text, fields[1].text);
	if (family[0] == 4) {
		first = addr_from4(load_be32(bytes[0]));
		last = addr_from4(load_be32(bytes[1]));
	} else {
		first = addr_from6(bytes[0]);
		last = addr_from6(bytes[1]);
	}
	if (addr_cmp(&first, &last) > 0)
		return range_order_error(l, fields);
	ret = parse_country(l, fields[2].text, &country);
	if (ret)
		return ret;

	if (family[0] == 4) {
		l->seen4 = true;
		return geo_layer_add(l->layer, 4, first, last, country, l->reader.line);
	}
	l->seen6 = true;
	return geo_layer_add_range6(l->layer, first, last, country, l->reader.line);
}

static int parse_cidr_line(struct text_loader *l, struct csv_field *fields)
{
	struct geo_addr first, last;
	uint16_t country;
	int family = 0, ret;

	ret = parse_prefix(l, fields[0].text, false, &family, &first, &last);
	if (ret)
		return ret;
	ret = parse_country(l, fields[1].text, &country);
	if (ret)
		return ret;
	return geo_layer_add(l->layer, family, first, last, country, l->reader.line);
}

/* "first","last","CC","name", where "-" is no country. */
static int parse_ip2location_line(struct text_loader *l, struct csv_field *fields)
{
	struct geo_addr first, last;
	uint16_t country = BF_CC_NONE;
	int ret;

	ret = parse_decimal_range(l, fields, &first, &last);
	if (ret)
		return ret;
	if (strcmp(fields[2].text, "-")) {
		if (bf_country_parse(fields[2].text, &country))
			return text_error(l,
					  "invalid country code '%s': expected two ASCII letters "
					  "or '-'",
					  fields[2].text);
	}
	return add_decimal_range(l, first, last, country);
}

/* A line of a prefix list: "address/length" or an address, then an optional comment. */
static int parse_prefix_line(struct text_loader *l, char *line)
{
	struct geo_addr first, last;
	int family = 0, ret;
	char *comment = strpbrk(line, "#;");

	if (comment)
		*comment = '\0';
	line = trim(line);
	if (strpbrk(line, " \t,"))
		return text_error(l, "invalid prefix '%s': expected one prefix per line", line);
	ret = parse_prefix(l, line, true, &family, &first, &last);
	if (ret)
		return ret;
	return geo_layer_add(l->layer, family, first, last, l->list_country, l->reader.line);
}

/* GeoIP2 / GeoLite2 */

static int location_cmp(const void *pa, const void *pb)
{
	const struct geoip2_location *a = pa, *b = pb;

	if (a->geoname_id != b->geoname_id)
		return a->geoname_id < b->geoname_id ? -1 : 1;
	return a->line < b->line ? -1 : a->line > b->line;
}

static const struct geoip2_location *find_location(const struct geoip2_locations *locations,
						   uint32_t geoname_id)
{
	size_t lo = 0, hi = locations->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (locations->v[mid].geoname_id < geoname_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < locations->n && locations->v[lo].geoname_id == geoname_id)
		return &locations->v[lo];
	return NULL;
}

/*
 * Resolves a geoname_id column of a Blocks row: its location's country, or
 * BF_CC_NONE for an empty column or a location without a country (such as a
 * continent).
 */
static int resolve_geoname(struct text_loader *l, const struct csv_field *field, const char *column,
			   uint16_t *country)
{
	const struct geoip2_location *location;
	uint32_t geoname_id;

	*country = BF_CC_NONE;
	if (!field->len)
		return 0;
	if (!parse_decimal(field->text, &geoname_id))
		return text_error(l, "invalid %s '%s': expected a decimal number", column,
				  field->text);
	location = find_location(l->locations, geoname_id);
	if (!location)
		return text_error(l, "unknown %s '%s': not in the Locations file '%s'", column,
				  field->text, l->locations->path);
	*country = location->country;
	return 0;
}

/* A Blocks row: the country of geoname_id, else that of registered_country_geoname_id. */
static int parse_geoip2_line(struct text_loader *l, struct csv_field *fields)
{
	const struct geoip2_columns *c = &l->columns;
	struct geo_addr first, last;
	uint16_t country, registered = BF_CC_NONE;
	int family = 0, ret;

	ret = parse_prefix(l, fields[c->network].text, false, &family, &first, &last);
	if (ret)
		return ret;
	ret = resolve_geoname(l, &fields[c->geoname_id], "geoname_id", &country);
	if (!ret && c->registered >= 0)
		ret = resolve_geoname(l, &fields[c->registered], "registered_country_geoname_id",
				      &registered);
	if (ret)
		return ret;
	if (country == BF_CC_NONE)
		country = registered;
	return geo_layer_add(l->layer, family, first, last, country, l->reader.line);
}

static int find_column(const struct csv_field *fields, int n, const char *name)
{
	for (int i = 0; i < n && i < CSV_MAX_FIELDS; i++) {
		if (!strcmp(fields[i].text, name))
			return i;
	}
	return -1;
}

static int locations_error(struct bf_error *err, const char *path, uint32_t line, int ret,
			   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int locations_error(struct bf_error *err, const char *path, uint32_t line, int ret,
			   const char *fmt, ...)
{
	char detail[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (!line)
		return bf_error_set(err, ret, "failed to load geolocation file '%s': %s", path,
				    detail);
	return bf_error_set(err, ret, "failed to load geolocation file '%s' line %u: %s", path,
			    line, detail);
}

static int locations_push(struct geoip2_locations *locations, size_t *cap,
			  const struct geoip2_location *location)
{
	struct geoip2_location *v;

	if (locations->n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		v = reallocarray(locations->v, *cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		locations->v = v;
	}
	locations->v[locations->n++] = *location;
	return 0;
}

/* Parses one row of a Locations file, after its header gave the two columns. */
static int parse_location_row(struct geoip2_locations *locations, const struct csv_field *fields,
			      int n, int id_column, int country_column, uint32_t line,
			      struct geoip2_location *out, struct bf_error *err)
{
	const char *id, *code;

	if (n <= id_column || n <= country_column)
		return locations_error(
			err, locations->path, line, -EINVAL,
			"expected at least %d fields, the row has %d",
			(id_column > country_column ? id_column : country_column) + 1, n);
	id = fields[id_column].text;
	code = fields[country_column].text;
	*out = (struct geoip2_location){ .country = BF_CC_NONE, .line = line };
	if (!parse_decimal(id, &out->geoname_id))
		return locations_error(err, locations->path, line, -EINVAL,
				       "invalid geoname_id '%s': expected a decimal number", id);
	if (*code && bf_country_parse(code, &out->country))
		return locations_error(err, locations->path, line, -EINVAL,
				       "invalid country_iso_code '%s': expected two ASCII letters",
				       code);
	return 0;
}

static int read_locations(struct geoip2_locations *locations, struct line_reader *r,
			  struct bf_error *err)
{
	struct csv_field fields[CSV_MAX_FIELDS];
	struct geoip2_location location;
	int id_column = -1, country_column = -1;
	size_t cap = 0;
	char *line;
	size_t len;
	int n, ret;

	while ((ret = reader_next(r, &line, &len)) > 0) {
		char *text = trim(line);

		if (!*text || *text == '#')
			continue;
		n = split_csv(text, strlen(text), fields, CSV_MAX_FIELDS);
		if (n < 0)
			return locations_error(err, locations->path, r->line, -EINVAL,
					       "invalid quoting in '%.64s'", text);
		if (id_column < 0) {
			id_column = find_column(fields, n, "geoname_id");
			country_column = find_column(fields, n, "country_iso_code");
			if (id_column < 0 || country_column < 0)
				return locations_error(
					err, locations->path, r->line, -EINVAL,
					"invalid Locations header '%.64s': expected the columns "
					"geoname_id and country_iso_code",
					line);
			continue;
		}
		ret = parse_location_row(locations, fields, n, id_column, country_column, r->line,
					 &location, err);
		if (ret)
			return ret;
		if (locations_push(locations, &cap, &location))
			return locations_error(err, locations->path, 0, -ENOMEM, "out of memory");
	}
	if (ret == -EMSGSIZE)
		return locations_error(err, locations->path, r->line, -EINVAL,
				       "the line is longer than %d characters", GEO_MAX_LINE);
	if (ret < 0)
		return bf_error_set(err, ret, "failed to read geolocation file '%s': %s",
				    locations->path, strerror(-ret));
	if (id_column < 0)
		return locations_error(err, locations->path, 0, -EINVAL,
				       "no header, expected a GeoIP2 Locations CSV file");
	return 0;
}

/* Sorts the locations and rejects a geoname_id listed twice with different countries. */
static int check_locations(struct geoip2_locations *locations, struct bf_error *err)
{
	/* A Locations file with only its header leaves v NULL, which qsort() must not get. */
	if (locations->n > 1)
		qsort(locations->v, locations->n, sizeof(*locations->v), location_cmp);
	for (size_t i = 1; i < locations->n; i++) {
		const struct geoip2_location *a = &locations->v[i - 1], *b = &locations->v[i];
		char country_a[3], country_b[3];

		if (a->geoname_id != b->geoname_id || a->country == b->country)
			continue;
		bf_country_format(a->country, country_a);
		bf_country_format(b->country, country_b);
		return locations_error(err, locations->path, b->line, -EINVAL,
				       "geoname_id '%u' with country %s is also on line %u with "
				       "country %s",
				       b->geoname_id, country_b, a->line, country_a);
	}
	return 0;
}

static void locations_free(struct geoip2_locations *locations)
{
	if (!locations)
		return;
	free(locations->v);
	free(locations);
}

static int load_locations(const char *path, struct geoip2_locations **out, struct bf_error *err)
{
	struct geoip2_locations *locations = calloc(1, sizeof(*locations));
	struct line_reader *r = calloc(1, sizeof(*r));
	struct stat st;
	int ret;

	if (!locations || !r) {
		ret = bf_error_set(err, -ENOMEM,
				   "failed to load geolocation file '%s': out of memory", path);
		goto out;
	}
	(void)snprintf(locations->path, sizeof(locations->path), "%s", path);
	r->fd = geo_open(path, false, &st, err);
	if (r->fd < 0) {
		ret = r->fd;
		goto out;
	}
	ret = read_locations(locations, r, err);
	(void)close(r->fd);
	if (!ret)
		ret = check_locations(locations, err);
out:
	free(r);
	if (ret) {
		locations_free(locations);
		return ret;
	}
	*out = locations;
	return 0;
}

/*
 * Rank of a Locations file name for a Blocks file of name prefix ("GeoLite2-Country"):
 * English before other languages, then the same prefix before others. -1 for
 * a name that is not a Locations file.
 */
static int locations_rank(const char *name, const char *prefix, size_t prefix_len)
{
	bool same_prefix = !strncmp(name, prefix, prefix_len) && name[prefix_len] == '-';
	int rank;

	if (fnmatch("*-Locations-en.csv", name, 0) == 0)
		rank = 0;
	else if (fnmatch("*-Locations-*.csv", name, 0) == 0)
		rank = 2;
	else
		return -1;
	return rank + (same_prefix ? 0 : 1);
}

/*
 * Finds the Locations file beside a Blocks file: <prefix>-Locations-en.csv,
 * else another *-Locations-en.csv, else any *-Locations-*.csv, the first in
 * byte order among equals.
 */
static int find_locations(const char *blocks_path, char *out, size_t size, struct bf_error *err)
{
	char dir_buf[PATH_MAX], base_buf[PATH_MAX], best[256] = "";
	const char *dir, *base, *blocks;
	int best_rank = -1;
	struct dirent *entry;
	size_t prefix_len;
	DIR *d;

	(void)snprintf(dir_buf, sizeof(dir_buf), "%s", blocks_path);
	(void)snprintf(base_buf, sizeof(base_buf), "%s", blocks_path);
	dir = dirname(dir_buf);
	base = basename(base_buf);
	blocks = strstr(base, "-Blocks-");
	prefix_len = blocks ? (size_t)(blocks - base) : strlen(base);

	d = opendir(dir);
	if (!d)
		return bf_error_set(err, -errno, "failed to open geolocation folder '%s': %s", dir,
				    strerror(errno));
	while ((entry = readdir(d))) {
		int rank = locations_rank(entry->d_name, base, prefix_len);

		if (rank < 0 || strlen(entry->d_name) >= sizeof(best))
			continue;
		if (best_rank < 0 || rank < best_rank ||
		    (rank == best_rank && strcmp(entry->d_name, best) < 0)) {
			best_rank = rank;
			(void)snprintf(best, sizeof(best), "%s", entry->d_name);
		}
	}
	(void)closedir(d);
	if (best_rank < 0)
		return bf_error_set(
			err, -ENOENT,
			"failed to load geolocation file '%s': missing GeoIP2 "
			"Locations file, expected '%s/%.*s-Locations-en.csv' or another "
			"'*-Locations-*.csv' in the same folder",
			blocks_path, dir, (int)prefix_len, base);
	if ((size_t)snprintf(out, size, "%s/%s", dir, best) >= size)
		return bf_error_set(err, -ENAMETOOLONG,
				    "failed to load geolocation file '%s/%s': path too long", dir,
				    best);
	return 0;
}

/* The date of a GeoIP2 CSV folder named as MaxMind names them, "GeoLite2-Country-CSV_20250103". */
static void geoip2_folder_date(const char *blocks_path, char *out, size_t size)
{
	char buf[PATH_MAX];
	const char *name, *underscore;

	out[0] = '\0';
	(void)snprintf(buf, sizeof(buf), "%s", blocks_path);
	name = basename(dirname(buf));
	underscore = strrchr(name, '_');
	if (!underscore || strlen(underscore + 1) != 8 || strspn(underscore + 1, "0123456789") != 8)
		return;
	(void)snprintf(out, size, "%.4s-%.2s-%.2s", underscore + 1, underscore + 5, underscore + 7);
}

/* Reads the header of a Blocks file and, unless the caller gave them, its Locations. */
static int start_geoip2(struct text_loader *l, const struct csv_field *fields, int n)
{
	struct geoip2_columns *c = &l->columns;
	char locations_path[PATH_MAX], date[16];
	int ret;

	c->count = n;
	c->network = find_column(fields, n, "network");
	c->geoname_id = find_column(fields, n, "geoname_id");
	c->registered = find_column(fields, n, "registered_country_geoname_id");
	if (n > CSV_MAX_FIELDS || c->geoname_id < 0)
		return text_error(l,
				  "invalid GeoIP2 Blocks header: expected the columns network and "
				  "geoname_id, and at most %d columns",
				  CSV_MAX_FIELDS);

	if (!l->locations) {
		ret = find_locations(l->path, locations_path, sizeof(locations_path), l->err);
		if (!ret)
			ret = load_locations(locations_path, &l->own_locations, l->err);
		if (ret)
			return ret;
		l->locations = l->own_locations;
	}
	geoip2_folder_date(l->path, date, sizeof(date));
	if (date[0])
		geo_layer_set_date(l->layer, date);
	l->kind = LINE_GEOIP2;
	l->kind_line = l->reader.line;
	return 0;
}

/* Headers and the first data line */

static bool is_range_header(const char *first_column)
{
	static const char *const names[] = { "ip_start", "ip_range_start", "range_start",
					     "start",	 "first",	   "ip_from" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcasecmp(first_column, names[i]))
			return true;
	}
	return false;
}

/* Handles a header line before the first data line. Returns 1 when the line is a header. */
static int parse_header(struct text_loader *l, const char *line, struct csv_field *fields, int n)
{
	if (!strcmp(fields[0].text, "network") && n >= 2) {
		(void)snprintf(l->header, sizeof(l->header), "%s", line);
		return start_geoip2(l, fields, n) ?: 1;
	}
	if (!strcmp(fields[0].text, "geoname_id"))
		return text_error(l,
				  "'%.64s' is the header of a GeoIP2 Locations file; name the "
				  "Blocks file (*-Blocks-IPv4.csv or *-Blocks-IPv6.csv) or the "
				  "folder that contains them",
				  line);
	if ((n == 3 || n == 4) && is_range_header(fields[0].text)) {
		(void)snprintf(l->header, sizeof(l->header), "%s", line);
		l->dbip_header = !strcasecmp(fields[0].text, "ip_start");
		return 1;
	}
	return 0;
}

/* Decides the format from the first data line. */
static int start_format(struct text_loader *l, const char *line, struct csv_field *fields, int n,
			enum line_kind kind)
{
	struct geo_addr number;

	if (kind == LINE_UNKNOWN)
		return text_error(l, "unrecognized line '%.64s': %s", line,
				  l->mode == GEO_TEXT_CIDR ? "expected 'CIDR,CC'"
							   : FORMATS_ACCEPTED);
	if (l->mode == GEO_TEXT_CIDR && kind != LINE_CIDR)
		return text_error(l, "'%.64s' is %s but this file must contain a prefix 'CIDR,CC'",
				  line, kind_description(kind, false));

	if (kind == LINE_DECIMAL || kind == LINE_IP2LOCATION) {
		for (int i = 0; i < 2; i++) {
			if (parse_decimal128(fields[i].text, &number) &&
			    (number.hi || number.lo > UINT32_MAX))
				l->wide = true;
		}
	}
	l->kind = kind;
	l->kind_line = l->reader.line;
	return 0;
}

static int parse_data_line(struct text_loader *l, char *line, size_t len)
{
	struct csv_field fields[CSV_MAX_FIELDS];
	enum line_kind kind;
	char copy[80];
	int n, ret;

	if (l->mode == GEO_TEXT_LIST) {
		l->kind = LINE_PREFIX;
		return parse_prefix_line(l, line);
	}

	/* The fields are split in place, so messages quote a copy of the line's start. */
	memcpy(copy, line, len < sizeof(copy) ? len + 1 : sizeof(copy) - 1);
	copy[sizeof(copy) - 1] = '\0';
	n = split_csv(line, len, fields, CSV_MAX_FIELDS);
	if (n < 0)
		return text_error(l,
				  "invalid quoting in '%.64s': a quote is not closed or text "
				  "follows the closing quote",
				  copy);

	if (l->kind == LINE_GEOIP2) {
		if ((size_t)n != l->columns.count)
			return text_error(l,
					  "'%.64s' has %d fields but the header (line %u) has %zu",
					  copy, n, l->kind_line, l->columns.count);
		return parse_geoip2_line(l, fields);
	}

	kind = classify_line(fields, n);
	if (l->kind == LINE_UNKNOWN) {
		if (l->mode == GEO_TEXT_ANY && !l->header[0]) {
			ret = parse_header(l, copy, fields, n);
			if (ret)
				return ret < 0 ? ret : 0;
		}
		ret = start_format(l, copy, fields, n, kind);
		if (ret)
			return ret;
	} else if (!kinds_compatible(kind, l->kind)) {
		if (kind == LINE_UNKNOWN)
			return text_error(l,
					  "unrecognized line '%.64s': expected %s as on the first "
					  "data line (line %u)",
					  copy, kind_description(l->kind, l->wide), l->kind_line);
		return text_error(l,
				  "'%.64s' is %s but the first data line (line %u) is %s, and a "
				  "file must use one format",
				  copy, kind_description(kind, l->wide && kind == LINE_DECIMAL),
				  l->kind_line, kind_description(l->kind, l->wide));
	}

	switch (kind) {
	case LINE_DECIMAL:
		return parse_decimal_line(l, fields);
	case LINE_TEXT4:
	case LINE_TEXT6:
		return parse_text_line(l, fields);
	case LINE_IP2LOCATION:
		return parse_ip2location_line(l, fields);
	default:
		return parse_cidr_line(l, fields);
	}
}

/* Stores the date of a Tor/IPFire header line "# Generated: Thu, 25 Jun 2026 04:33:59 GMT". */
static void parse_comment(struct text_loader *l, char *comment)
{
	static const char key[] = "Generated:";
	char *value;

	if (l->date_seen)
		return;
	while (is_blank(*comment))
		comment++;
	if (strncmp(comment, key, strlen(key)))
		return;
	value = trim(comment + strlen(key));
	geo_layer_set_date(l->layer, value);
	l->date_seen = true;
}

static int read_lines(struct text_loader *l)
{
	char *line = NULL, *text;
	size_t len = 0;
	int ret;

	while ((ret = reader_next(&l->reader, &line, &len)) > 0) {
		if (memchr(line, '\0', len))
			return text_error(l,
					  "the line contains a NUL byte; a binary file must be a "
					  "MaxMind DB file, with its metadata at the end");
		text = line;
		while (is_blank(*text))
			text++;
		len -= text - line;
		while (len && is_blank(text[len - 1]))
			text[--len] = '\0';
		if (!len)
			continue;
		if (*text == '#') {
			parse_comment(l, text + 1);
			continue;
		}
		ret = parse_data_line(l, text, len);
		if (ret)
			return ret;
	}
	if (ret == -EMSGSIZE)
		return text_error(l, "the line is longer than %d characters", GEO_MAX_LINE);
	if (ret < 0)
		return bf_error_set(l->err, ret, "failed to read geolocation file '%s': %s",
				    l->path, strerror(-ret));
	if (l->kind == LINE_UNKNOWN || !geo_layer_count(l->layer))
		return geo_layer_error(l->layer, 0, "no data lines, %s",
				       l->mode == GEO_TEXT_CIDR	  ? "expected 'CIDR,CC' lines"
				       : l->mode == GEO_TEXT_LIST ? "expected one prefix per line"
				       : l->kind == LINE_GEOIP2	  ? "expected rows after the header"
								  : FORMATS_ACCEPTED);
	return 0;
}

static void describe_text_ranges(struct text_loader *l)
{
	const char *families = l->seen4 && l->seen6 ? "IPv4 and IPv6" : l->seen6 ? "IPv6" : "IPv4";
	const char *header = l->header[0] ? ", header " : "";
	enum bf_geo_format format;

	if (l->dbip_header || (l->seen4 && l->seen6))
		format = BF_GEO_FORMAT_DBIP_CSV;
	else if (l->seen6 && !l->header[0])
		format = BF_GEO_FORMAT_TOR6;
	else
		format = BF_GEO_FORMAT_RANGE_CSV;
	geo_layer_set_format(l->layer, format, GEO_RANGE_TEXT);
	geo_layer_set_detail(l->layer, "text %s ranges%s%.64s", families, header, l->header);
}

/* Sets the format of the source from what the file turned out to contain. */
static void describe_format(struct text_loader *l)
{
	const char *header = l->header[0] ? ", header " : "";
	const char *location_name;
	char country[3];

	switch (l->kind) {
	case LINE_DECIMAL:
		if (l->wide) {
			geo_layer_set_format(l->layer, BF_GEO_FORMAT_RANGE_CSV, GEO_RANGE_DECIMAL6);
			geo_layer_set_detail(l->layer, "decimal IPv6 ranges%s%.64s", header,
					     l->header);
		} else {
			geo_layer_set_format(l->layer, BF_GEO_FORMAT_TOR4, GEO_RANGE_DECIMAL);
			geo_layer_set_detail(l->layer, "decimal IPv4 ranges%s%.64s", header,
					     l->header);
		}
		break;
	case LINE_TEXT4:
	case LINE_TEXT6:
		describe_text_ranges(l);
		break;
	case LINE_IP2LOCATION:
		geo_layer_set_format(l->layer, BF_GEO_FORMAT_IP2LOCATION_CSV,
				     l->wide ? GEO_RANGE_DECIMAL6 : GEO_RANGE_DECIMAL);
		geo_layer_set_detail(l->layer, "DB1, %s edition", l->wide ? "IPv6" : "IPv4");
		break;
	case LINE_GEOIP2:
		geo_layer_set_format(l->layer, BF_GEO_FORMAT_GEOIP2_CSV, GEO_RANGE_PREFIX);
		/* The Locations file is beside the Blocks file, so its name is enough. */
		location_name = strrchr(l->locations->path, '/');
		geo_layer_set_detail(l->layer, "Blocks with Locations '%.120s'",
				     location_name ? location_name + 1 : l->locations->path);
		break;
	case LINE_PREFIX:
		bf_country_format(l->list_country, country);
		geo_layer_set_format(l->layer, BF_GEO_FORMAT_CIDR_LIST, GEO_RANGE_PREFIX);
		geo_layer_set_detail(l->layer, "prefixes of country %s", country);
		break;
	default:
		geo_layer_set_format(l->layer, BF_GEO_FORMAT_CIDR, GEO_RANGE_PREFIX);
		geo_layer_set_detail(l->layer, "prefixes 'CIDR,CC'");
		break;
	}
}

static int finish_hash(struct text_loader *l)
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int size = 0;

	if (!EVP_DigestFinal_ex(l->reader.sha, digest, &size) || size != 32)
		return bf_error_set(l->err, -ENOMEM,
				    "failed to load geolocation file '%s': SHA-256 failed",
				    l->path);
	geo_layer_set_sha256(l->layer, digest);
	return 0;
}

static int text_load(struct bf_geo_table *t, const char *path, int fd, enum geo_text_mode mode,
		     uint16_t country, const struct geoip2_locations *locations,
		     struct bf_error *err)
{
	struct text_loader *l = calloc(1, sizeof(*l));
	int ret;

	if (!l)
		return bf_error_set(err, -ENOMEM,
				    "failed to load geolocation file '%s': out of memory", path);
	l->path = path;
	l->err = err;
	l->mode = mode;
	l->list_country = country;
	l->locations = locations;
	l->reader.fd = fd;

	ret = geo_layer_begin(&l->layer, t, path, GEO_POSITION_LINE, err);
	if (ret)
		goto out;
	l->reader.sha = EVP_MD_CTX_new();
	if (!l->reader.sha || !EVP_DigestInit_ex(l->reader.sha, EVP_sha256(), NULL)) {
		ret = bf_error_set(err, -ENOMEM,
				   "failed to load geolocation file '%s': SHA-256 failed", path);
		goto out;
	}

	ret = read_lines(l);
	if (!ret)
		ret = finish_hash(l);
	if (ret)
		goto out;
	describe_format(l);
	ret = geo_layer_commit(l->layer, t);
	l->layer = NULL;
out:
	geo_layer_abort(l->layer);
	EVP_MD_CTX_free(l->reader.sha);
	locations_free(l->own_locations);
	free(l);
	return ret;
}

int geo_text_load(struct bf_geo_table *t, const char *path, int fd, enum geo_text_mode mode,
		  uint16_t country, struct bf_error *err)
{
	return text_load(t, path, fd, mode, country, NULL, err);
}

/* GeoIP2 CSV folders */

/* Finds the one file of the folder whose name matches pattern. */
static int find_blocks(const char *dir, const char *pattern, char *out, size_t size,
		       struct bf_error *err)
{
	char found[256] = "";
	struct dirent *entry;
	int ret = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return bf_error_set(err, -errno, "failed to open geolocation folder '%s': %s", dir,
				    strerror(errno));
	while ((entry = readdir(d)) && !ret) {
		if (fnmatch(pattern, entry->d_name, 0))
			continue;
		if (found[0])
			ret = bf_error_set(err, -EINVAL,
					   "failed to load geolocation folder '%s': more than one "
					   "'%s' file, '%s' and '%s'; keep one database per folder",
					   dir, pattern, found, entry->d_name);
		else
			(void)snprintf(found, sizeof(found), "%s", entry->d_name);
	}
	(void)closedir(d);
	if (ret)
		return ret;
	if (!found[0])
		return bf_error_set(err, -ENOENT,
				    "failed to load geolocation folder '%s': missing '%s' file; a "
				    "geolocation folder must contain the GeoIP2/GeoLite2 CSV files "
				    "*-Blocks-IPv4.csv, *-Blocks-IPv6.csv and *-Locations-*.csv",
				    dir, pattern);
	if ((size_t)snprintf(out, size, "%s/%s", dir, found) >= size)
		return bf_error_set(err, -ENAMETOOLONG,
				    "failed to load geolocation file '%s/%s': path too long", dir,
				    found);
	return 0;
}

static int load_blocks(struct bf_geo_table *t, const char *path,
		       const struct geoip2_locations *locations, struct bf_error *err)
{
	struct stat st;
	int fd, ret;

	fd = geo_open(path, false, &st, err);
	if (fd < 0)
		return fd;
	ret = text_load(t, path, fd, GEO_TEXT_ANY, 0, locations, err);
	(void)close(fd);
	if (!ret && t->sources[t->nsources - 1].format != BF_GEO_FORMAT_GEOIP2_CSV) {
		ret = bf_error_set(err, -EINVAL,
				   "failed to load geolocation file '%s': expected a GeoIP2 "
				   "Blocks file with the header 'network,geoname_id,...'",
				   path);
	}
	return ret;
}

int geo_geoip2_load_folder(struct bf_geo_table *t, const char *path, struct bf_error *err)
{
	char blocks4[PATH_MAX], blocks6[PATH_MAX], locations_path[PATH_MAX];
	struct geoip2_locations *locations = NULL;
	struct geo_table_mark mark;
	int ret;

	ret = find_blocks(path, "*-Blocks-IPv4.csv", blocks4, sizeof(blocks4), err);
	if (!ret)
		ret = find_blocks(path, "*-Blocks-IPv6.csv", blocks6, sizeof(blocks6), err);
	if (!ret)
		ret = find_locations(blocks4, locations_path, sizeof(locations_path), err);
	if (!ret)
		ret = load_locations(locations_path, &locations, err);
	if (ret)
		return ret;

	geo_table_mark(t, &mark);
	ret = load_blocks(t, blocks4, locations, err);
	if (!ret)
		ret = load_blocks(t, blocks6, locations, err);
	if (ret)
		geo_table_rollback(t, &mark);
	locations_free(locations);
	return ret;
}
