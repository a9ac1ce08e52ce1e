// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Geolocation tables.
 *
 * Loading. Each file becomes one layer, built through the interface of
 * geo_layer.h by the loader of its format (geo_csv.c for the text formats,
 * geo_mmdb.c for MaxMind DB). The loader adds the file's ranges as spans,
 * which are sorted by first address and swept once: overlapping spans of the
 * same country merge, overlapping spans of different countries are an error
 * that names both lines. The layer is appended to the table only when the
 * whole file is valid, so a layer in the table is always sorted and free of
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
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geo.h"
#include "geo_layer.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define BUILTIN_PATH "builtin:local"

/* A range while a file is loaded or a table is flattened. */
struct geo_span {
	struct geo_addr first;
	struct geo_addr last;
	uint32_t line; /* line or byte offset it came from, 0 for spans made from the table */
	uint16_t country;
	uint8_t source;
};

struct span_list {
	struct geo_span *v;
	size_t n, cap;
};

/* A layer while its file is loaded. */
struct geo_layer {
	const char *path;
	struct bf_error *err;
	enum geo_position position;
	enum bf_geo_format format;
	enum geo_range_style style;
	uint8_t source; /* index the new source gets in the table */
	char date[64];
	char detail[160];
	char sha256[65];
	struct span_list v4, v6;
	size_t count4, count6;
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

/* Layers */

static int find_builtin_source(const struct bf_geo_table *t)
{
	for (size_t i = 0; i < t->nsources; i++) {
		if (t->sources[i].format == BF_GEO_FORMAT_BUILTIN)
			return i;
	}
	return -1;
}

int geo_layer_begin(struct geo_layer **out, const struct bf_geo_table *t, const char *path,
		    enum geo_position position, struct bf_error *err)
{
	/* One source slot stays free for the builtin table that bf_geo_flatten() adds. */
	size_t max_files = BF_GEO_MAX_SOURCES - (find_builtin_source(t) < 0 ? 1 : 0);
	struct geo_layer *l;

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
	l->position = position;
	l->source = t->nsources;
	*out = l;
	return 0;
}

int geo_layer_add(struct geo_layer *l, int family, struct geo_addr first, struct geo_addr last,
		  uint16_t country, uint32_t position)
{
	struct geo_span span = {
		.first = first,
		.last = last,
		.line = position,
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

int geo_layer_add_range6(struct geo_layer *l, struct geo_addr first, struct geo_addr last,
			 uint16_t country, uint32_t position)
{
	const struct geo_addr mapped_first = { GEO_MAPPED4_HI, GEO_MAPPED4_LO };
	const struct geo_addr mapped_last = { GEO_MAPPED4_HI, GEO_MAPPED4_LO | UINT32_MAX };
	int ret;

	if (addr_cmp(&last, &mapped_first) < 0 || addr_cmp(&first, &mapped_last) > 0)
		return geo_layer_add(l, 6, first, last, country, position);

	if (addr_cmp(&first, &mapped_first) < 0) {
		ret = geo_layer_add(l, 6, first, addr_dec(mapped_first), country, position);
		if (ret)
			return ret;
		first = mapped_first;
	}
	if (addr_cmp(&last, &mapped_last) > 0) {
		ret = geo_layer_add(l, 6, addr_inc(mapped_last), last, country, position);
		if (ret)
			return ret;
		last = mapped_last;
	}
	return geo_layer_add(l, 4, addr_from4((uint32_t)first.lo), addr_from4((uint32_t)last.lo),
			     country, position);
}

void geo_layer_set_format(struct geo_layer *l, enum bf_geo_format format,
			  enum geo_range_style style)
{
	l->format = format;
	l->style = style;
}

void geo_layer_set_date(struct geo_layer *l, const char *date)
{
	(void)snprintf(l->date, sizeof(l->date), "%s", date);
}

void geo_layer_set_detail(struct geo_layer *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(l->detail, sizeof(l->detail), fmt, ap);
	va_end(ap);
}

void geo_layer_set_sha256(struct geo_layer *l, const uint8_t digest[32])
{
	for (int i = 0; i < 32; i++)
		(void)snprintf(l->sha256 + 2 * i, 3, "%02x", digest[i]);
}

size_t geo_layer_count(const struct geo_layer *l)
{
	return l->count4 + l->count6;
}

int geo_layer_error(const struct geo_layer *l, uint32_t position, const char *fmt, ...)
{
	char detail[sizeof(l->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (l->position == GEO_POSITION_OFFSET)
		return bf_error_set(l->err, -EINVAL,
				    "failed to load geolocation file '%s' offset %u: %s", l->path,
				    position, detail);
	if (!position)
		return bf_error_set(l->err, -EINVAL, "failed to load geolocation file '%s': %s",
				    l->path, detail);
	return bf_error_set(l->err, -EINVAL, "failed to load geolocation file '%s' line %u: %s",
			    l->path, position, detail);
}

void geo_format_prefix(int family, struct geo_addr addr, unsigned int prefixlen, char *out,
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

/* Writes a 128-bit number in decimal, dividing by 10 in 32-bit pieces. */
static void format_decimal128(struct geo_addr a, char *out, size_t size)
{
	char digits[40];
	size_t n = 0;

	do {
		uint64_t mid = (a.hi % 10) << 32 | a.lo >> 32;
		uint64_t low = (mid % 10) << 32 | (a.lo & UINT32_MAX);

		a.hi /= 10;
		a.lo = (mid / 10) << 32 | low / 10;
		digits[n++] = (char)('0' + low % 10);
	} while (a.hi || a.lo);

	for (size_t i = 0; i < n && i + 1 < size; i++)
		out[i] = digits[n - 1 - i];
	out[n < size ? n : size - 1] = '\0';
}

static void format_address_text(int family, struct geo_addr a, char *out, size_t size)
{
	uint8_t bytes[16];
	uint32_t v4;

	if (family == 4) {
		v4 = htonl((uint32_t)a.lo);
		(void)inet_ntop(AF_INET, &v4, out, size);
	} else {
		addr_to6(a, bytes);
		(void)inet_ntop(AF_INET6, bytes, out, size);
	}
}

/* The range of a span as its file wrote it, for error messages. */
static void format_span(const struct geo_layer *l, int family, const struct geo_span *s, char *out,
			size_t size)
{
	char first[INET6_ADDRSTRLEN], last[INET6_ADDRSTRLEN];
	struct geo_addr a = s->first, b = s->last;

	switch (l->style) {
	case GEO_RANGE_DECIMAL:
		if (family == 4) {
			(void)snprintf(out, size, "%u,%u", (uint32_t)a.lo, (uint32_t)b.lo);
			break;
		}
		/* fall through */
	case GEO_RANGE_DECIMAL6:
		if (family == 4) {
			a.lo |= GEO_MAPPED4_LO;
			b.lo |= GEO_MAPPED4_LO;
		}
		format_decimal128(a, first, sizeof(first));
		format_decimal128(b, last, sizeof(last));
		(void)snprintf(out, size, "%s,%s", first, last);
		break;
	case GEO_RANGE_TEXT:
		format_address_text(family, a, first, sizeof(first));
		format_address_text(family, b, last, sizeof(last));
		(void)snprintf(out, size, "%s,%s", first, last);
		break;
	case GEO_RANGE_PREFIX:
		geo_format_prefix(family, a, (family == 4 ? 32 : 128) - addr_fls(addr_sub(b, a)),
				  out, size);
		break;
	}
}

static int overlap_error(struct geo_layer *l, int family, const struct geo_span *a,
			 const struct geo_span *b)
{
	const struct geo_span *later = a->line > b->line ? a : b;
	const struct geo_span *earlier = later == a ? b : a;
	const char *unit = l->position == GEO_POSITION_OFFSET ? "offset" : "line";
	char range[2 * INET6_ADDRSTRLEN + 8], country[3], other_country[3];

	format_span(l, family, later, range, sizeof(range));
	bf_country_format(later->country, country);
	bf_country_format(earlier->country, other_country);
	return geo_layer_error(l, later->line,
			       "range '%s' with country %s overlaps %s %u with "
			       "country %s",
			       range, country, unit, earlier->line, other_country);
}

/*
 * Sorts the spans of one family of a file and merges overlapping spans of
 * the same country. Overlapping spans of different countries are an error.
 */
static int normalize_spans(struct geo_layer *l, int family, struct span_list *list)
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

static int append_layer(struct bf_geo_table *t, struct geo_layer *l)
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
	(void)snprintf(src->sha256, sizeof(src->sha256), "%s", l->sha256);
	(void)snprintf(src->detail, sizeof(src->detail), "%s", l->detail);
	t->nsources++;
	t->flat = false;
	return 0;
}

static void layer_free(struct geo_layer *l)
{
	span_list_free(&l->v4);
	span_list_free(&l->v6);
	free(l);
}

int geo_layer_commit(struct geo_layer *l, struct bf_geo_table *t)
{
	int ret;

	ret = normalize_spans(l, 4, &l->v4);
	if (!ret)
		ret = normalize_spans(l, 6, &l->v6);
	if (!ret) {
		ret = append_layer(t, l);
		if (ret)
			(void)bf_error_set(l->err, ret,
					   "failed to load geolocation file '%s': out of memory",
					   l->path);
	}
	layer_free(l);
	return ret;
}

void geo_layer_abort(struct geo_layer *l)
{
	if (l)
		layer_free(l);
}

void geo_table_mark(const struct bf_geo_table *t, struct geo_table_mark *mark)
{
	*mark = (struct geo_table_mark){
		.n4 = t->n4,
		.n6 = t->n6,
		.nsources = t->nsources,
		.flat = t->flat,
	};
}

/*
 * Layers are only ever appended, and a source slot past nsources is zero
 * until a layer or the builtin table fills it, so cutting the arrays back
 * and zeroing the slots restores the table as it was.
 */
void geo_table_rollback(struct bf_geo_table *t, const struct geo_table_mark *mark)
{
	for (size_t i = mark->nsources; i < t->nsources; i++)
		memset(&t->sources[i], 0, sizeof(t->sources[i]));
	t->n4 = mark->n4;
	t->n6 = mark->n6;
	t->nsources = mark->nsources;
	t->flat = mark->flat;
}

/* Loading */

static bool has_mmdb_suffix(const char *path)
{
	static const char suffix[] = ".mmdb";
	size_t len = strlen(path);

	return len >= sizeof(suffix) - 1 && !strcasecmp(path + len - (sizeof(suffix) - 1), suffix);
}

/*
 * Detects the kind of file: a folder (GeoIP2 CSV), a MaxMind DB (by its
 * metadata, or by its name when it is too damaged to have any, so that
 * libmaxminddb reports the damage), or text.
 */
int geo_open(const char *path, bool folder_ok, struct stat *st, struct bf_error *err)
{
	int fd, ret;

	/* O_NONBLOCK keeps open() from waiting for a writer when path is a FIFO. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		return bf_error_set(err, ret,
				    "failed to open geolocation file '%s': %s; correct the path or "
				    "create the file",
				    path, strerror(-ret));
	}
	if (fstat(fd, st)) {
		ret = -errno;
		(void)close(fd);
		return bf_error_set(err, ret, "failed to read geolocation file '%s': %s", path,
				    strerror(-ret));
	}
	if (!S_ISREG(st->st_mode) && !(folder_ok && S_ISDIR(st->st_mode))) {
		(void)close(fd);
		return bf_error_set(err, -EINVAL,
				    "invalid geolocation file '%s': not a regular file%s (a FIFO, "
				    "socket or device); point the config at a file",
				    path, folder_ok ? " or folder" : "");
	}
	/* The flag served the open() only: later reads of the file may block as usual. */
	(void)fcntl(fd, F_SETFL, 0);
	return fd;
}

static int load_file(struct bf_geo_table *t, const char *path, enum geo_text_mode mode,
		     uint16_t country, const struct bf_geo_options *opts, struct bf_error *err)
{
	struct stat st;
	int fd, ret;

	fd = geo_open(path, true, &st, err);
	if (fd < 0)
		return fd;

	if (mode == GEO_TEXT_ANY && S_ISDIR(st.st_mode)) {
		(void)close(fd);
		return geo_geoip2_load_folder(t, path, err);
	}
	if (mode == GEO_TEXT_ANY && S_ISREG(st.st_mode) && geo_compiled_detect(fd)) {
		ret = geo_compiled_load(t, path, fd, err);
		(void)close(fd);
		return ret;
	}
	if (mode == GEO_TEXT_ANY && S_ISREG(st.st_mode) &&
	    (geo_mmdb_detect(fd, st.st_size) || has_mmdb_suffix(path))) {
		(void)close(fd);
		return geo_mmdb_load(t, path, opts, err);
	}
	ret = geo_text_load(t, path, fd, mode, country, err);
	(void)close(fd);
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
	return load_file(t, path, GEO_TEXT_ANY, 0, NULL, err);
}

int bf_geo_load_file_opts(struct bf_geo_table *t, const char *path,
			  const struct bf_geo_options *opts, struct bf_error *err)
{
	return load_file(t, path, GEO_TEXT_ANY, 0, opts, err);
}

int bf_geo_load_cidr_file(struct bf_geo_table *t, const char *path, struct bf_error *err)
{
	return load_file(t, path, GEO_TEXT_CIDR, 0, NULL, err);
}

int bf_geo_load_list_file(struct bf_geo_table *t, const char *path, uint16_t country,
			  struct bf_error *err)
{
	return load_file(t, path, GEO_TEXT_LIST, country, NULL, err);
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
