// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * MaxMind DB (.mmdb) files, read with libmaxminddb.
 *
 * libmaxminddb looks single addresses up but has no call that lists every
 * network, so the loader walks the search tree itself with MMDB_read_node().
 * The walk is depth-first from node 0 and visits the left (0) branch before
 * the right (1) branch, so networks come out in address order. A data record
 * at depth d is the network of the d bits on the path to it.
 *
 * An IPv6 database stores IPv4 under ::/96: the network ::a.b.c.d/(96+n) is
 * the IPv4 network a.b.c.d/n, which is how libmaxminddb looks IPv4 addresses
 * up in it. Such databases usually alias ::ffff:0:0/96, 2001::/32 (Teredo)
 * and 2002::/16 (6to4) to the node of ::/96, so that every IPv4 network is
 * reachable four ways. The walk skips a record of those three networks when
 * it points at the node of ::/96, so each IPv4 network is stored once. A
 * ::ffff:0:0/96 that holds its own records is stored as IPv4 too, because
 * the BPF programs look IPv4-mapped addresses up as IPv4.
 *
 * Positions in error messages are byte offsets in the file: that of the
 * node for the search tree, and that of the data record for its values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <maxminddb.h>
#include <openssl/evp.h>

#include "geo.h"
#include "geo_layer.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* libmaxminddb looks for the metadata in the last 128 KiB of the file. */
#define MMDB_METADATA_MAX   (128 * 1024)
#define MMDB_METADATA_START "\xab\xcd\xefMaxMind.com"

#define COUNTRY_CACHE_SIZE 1024 /* data records whose country is remembered, a power of 2 */
#define MAX_DEPTH	   128

static const char *const default_country_paths[] = {
	"country/iso_code",
	"registered_country/iso_code",
	"country_code",
};

/* A key path such as "country/iso_code", split for MMDB_aget_value(). */
struct key_path {
	const char *text;
	char buf[256];
	const char *keys[BF_GEO_MAX_MMDB_KEYS + 1]; /* NULL-terminated */
};

struct country_cache_entry {
	uint32_t offset; /* of the record in the data section */
	uint16_t country;
	bool valid;
};

/* A search tree node still to visit, with the network its path spells. */
struct walk_frame {
	uint32_t node;
	unsigned int depth;
	struct geo_addr prefix;
};

struct mmdb_loader {
	MMDB_s mmdb;
	bool open;
	struct geo_layer *layer;
	const char *path;
	struct bf_error *err;
	unsigned int bits;     /* 32 or 128 */
	bool has_ipv4_subtree; /* an IPv6 tree with a record at ::/96 */
	uint64_t ipv4_record;  /* the record of ::/96 */
	uint32_t data_offset;  /* file offset of the data section */
	uint64_t nodes_visited;
	struct key_path paths[BF_GEO_MAX_MMDB_PATHS];
	size_t npaths;
	struct country_cache_entry cache[COUNTRY_CACHE_SIZE];
	struct walk_frame stack[2 * (MAX_DEPTH + 1)];
};

bool geo_mmdb_detect(int fd, uint64_t size)
{
	size_t len = size < MMDB_METADATA_MAX ? (size_t)size : MMDB_METADATA_MAX;
	char *tail;
	ssize_t got;
	bool found;

	if (len < sizeof(MMDB_METADATA_START) - 1)
		return false;
	tail = malloc(len);
	if (!tail)
		return false;
	got = pread(fd, tail, len, (off_t)(size - len));
	found = got == (ssize_t)len &&
		memmem(tail, len, MMDB_METADATA_START, sizeof(MMDB_METADATA_START) - 1);
	free(tail);
	return found;
}

static int mmdb_error(struct mmdb_loader *m, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int mmdb_error(struct mmdb_loader *m, int ret, const char *fmt, ...)
{
	char detail[sizeof(m->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return bf_error_set(m->err, ret, "failed to load geolocation file '%s': %s", m->path,
			    detail);
}

static int parse_key_path(struct mmdb_loader *m, const char *text, struct key_path *path)
{
	size_t nkeys = 0;
	char *key, *save = NULL;

	path->text = text;
	if (strlen(text) >= sizeof(path->buf))
		return mmdb_error(m, -EINVAL,
				  "invalid mmdb country key path '%.64s...': longer "
				  "than %zu bytes",
				  text, sizeof(path->buf) - 1);
	if (!*text || text[0] == '/' || text[strlen(text) - 1] == '/' || strstr(text, "//"))
		return mmdb_error(m, -EINVAL,
				  "invalid mmdb country key path '%s': expected map keys "
				  "separated by '/', such as country/iso_code",
				  text);
	strcpy(path->buf, text);
	for (key = strtok_r(path->buf, "/", &save); key; key = strtok_r(NULL, "/", &save)) {
		if (nkeys == BF_GEO_MAX_MMDB_KEYS)
			return mmdb_error(m, -EINVAL,
					  "invalid mmdb country key path '%s': more than %d keys",
					  text, BF_GEO_MAX_MMDB_KEYS);
		path->keys[nkeys++] = key;
	}
	path->keys[nkeys] = NULL;
	return 0;
}

static int parse_key_paths(struct mmdb_loader *m, const struct bf_geo_options *opts)
{
	const char *const *texts = default_country_paths;
	size_t n = ARRAY_SIZE(default_country_paths);
	int ret;

	if (opts && opts->nmmdb_country) {
		texts = opts->mmdb_country;
		n = opts->nmmdb_country;
	}
	if (n > BF_GEO_MAX_MMDB_PATHS)
		return mmdb_error(m, -EINVAL, "too many mmdb country key paths, at most %d",
				  BF_GEO_MAX_MMDB_PATHS);
	for (size_t i = 0; i < n; i++) {
		ret = parse_key_path(m, texts[i], &m->paths[i]);
		if (ret)
			return ret;
	}
	m->npaths = n;
	return 0;
}

static int open_database(struct mmdb_loader *m)
{
	int status = MMDB_open(m->path, MMDB_MODE_MMAP, &m->mmdb);

	if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) {
		int ret = errno ? -errno : -EIO;

		return bf_error_set(m->err, ret, "failed to read geolocation file '%s': %s: %s",
				    m->path, MMDB_strerror(status), strerror(-ret));
	}
	if (status == MMDB_OUT_OF_MEMORY_ERROR)
		return mmdb_error(m, -ENOMEM, "out of memory");
	if (status != MMDB_SUCCESS)
		return mmdb_error(m, -EINVAL, "invalid MaxMind DB file: %s", MMDB_strerror(status));
	m->open = true;

	if (m->mmdb.file_size > UINT32_MAX)
		return mmdb_error(m, -EFBIG, "file of %zd bytes, at most 4 GiB are supported",
				  m->mmdb.file_size);
	if (m->mmdb.metadata.ip_version != 4 && m->mmdb.metadata.ip_version != 6)
		return mmdb_error(m, -EINVAL,
				  "invalid MaxMind DB file: ip_version %u, expected 4 "
				  "or 6",
				  m->mmdb.metadata.ip_version);
	if (!m->mmdb.metadata.node_count)
		return mmdb_error(m, -EINVAL, "invalid MaxMind DB file: no search tree nodes");
	m->bits = m->mmdb.metadata.ip_version == 4 ? 32 : 128;
	m->data_offset = (uint32_t)(m->mmdb.data_section - m->mmdb.file_content);
	return 0;
}

static uint32_t node_offset(const struct mmdb_loader *m, uint32_t node)
{
	return node * m->mmdb.full_record_byte_size;
}

static int read_node(struct mmdb_loader *m, uint32_t node, MMDB_search_node_s *out)
{
	int status = MMDB_read_node(&m->mmdb, node, out);

	if (status != MMDB_SUCCESS)
		return geo_layer_error(m->layer, node_offset(m, node),
				       "failed to read search tree node %u: %s", node,
				       MMDB_strerror(status));
	return 0;
}

/* Finds the record of ::/96 in an IPv6 tree, where the IPv4 networks start. */
static int find_ipv4_subtree(struct mmdb_loader *m)
{
	MMDB_search_node_s node;
	uint64_t record = 0;
	int ret;

	if (m->bits != 128)
		return 0;
	for (unsigned int depth = 0; depth < 96; depth++) {
		ret = read_node(m, (uint32_t)record, &node);
		if (ret)
			return ret;
		record = node.left_record;
		if (node.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE)
			return 0;
	}
	m->has_ipv4_subtree = true;
	m->ipv4_record = record;
	return 0;
}

/* True for ::ffff:0:0/96, 2001::/32 and 2002::/16 when they point at the node of ::/96. */
static bool is_ipv4_alias(const struct mmdb_loader *m, struct geo_addr prefix, unsigned int depth,
			  uint64_t record)
{
	if (!m->has_ipv4_subtree || record != m->ipv4_record)
		return false;
	if (depth == 96)
		return prefix.hi == GEO_MAPPED4_HI && prefix.lo == GEO_MAPPED4_LO;
	if (depth == 32)
		return prefix.hi == UINT64_C(0x2001000000000000) && !prefix.lo;
	if (depth == 16)
		return prefix.hi == UINT64_C(0x2002000000000000) && !prefix.lo;
	return false;
}

/* Copies a two-letter string value into a country code. */
static int parse_country_value(struct mmdb_loader *m, const MMDB_entry_data_s *data,
			       const struct key_path *path, uint32_t position, uint16_t *country)
{
	char code[3];

	if (data->type != MMDB_DATA_TYPE_UTF8_STRING)
		return geo_layer_error(
			m->layer, position,
			"invalid country code at '%s': expected a string, the record "
			"has data type %u",
			path->text, data->type);
	if (data->data_size == 2) {
		memcpy(code, data->utf8_string, 2);
		code[2] = '\0';
		if (!bf_country_parse(code, country))
			return 0;
	}
	return geo_layer_error(m->layer, position,
			       "invalid country code '%.*s' at '%s': expected two ASCII letters",
			       data->data_size > 32 ? 32 : (int)data->data_size, data->utf8_string,
			       path->text);
}

/*
 * Returns the country of a data record: the string at the first key path
 * that the record has, else BF_CC_NONE. Records are shared by many networks,
 * so the result is cached by the record's offset.
 */
static int record_country(struct mmdb_loader *m, MMDB_entry_s *entry, uint16_t *country)
{
	struct country_cache_entry *slot =
		&m->cache[(entry->offset * UINT32_C(2654435761)) >> 22 & (COUNTRY_CACHE_SIZE - 1)];
	uint32_t position = m->data_offset + entry->offset;
	int ret;

	if (slot->valid && slot->offset == entry->offset) {
		*country = slot->country;
		return 0;
	}
	*country = BF_CC_NONE;
	for (size_t i = 0; i < m->npaths; i++) {
		MMDB_entry_data_s data;
		int status = MMDB_aget_value(entry, &data, m->paths[i].keys);

		/* The record has no such key, or a value that is not a map where the path needs
		 * one. */
		if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
		    status == MMDB_INVALID_LOOKUP_PATH_ERROR || (!status && !data.has_data))
			continue;
		if (status != MMDB_SUCCESS)
			return geo_layer_error(m->layer, position,
					       "failed to read '%s' of the data record: %s",
					       m->paths[i].text, MMDB_strerror(status));
		ret = parse_country_value(m, &data, &m->paths[i], position, country);
		if (ret)
			return ret;
		break;
	}
	*slot = (struct country_cache_entry){
		.offset = entry->offset,
		.country = *country,
		.valid = true,
	};
	return 0;
}

/* Adds the network of a data record, an IPv4 network when it lies under ::/96 or ::ffff:0:0/96. */
static int add_network(struct mmdb_loader *m, struct geo_addr prefix, unsigned int depth,
		       MMDB_entry_s *entry)
{
	uint32_t position = m->data_offset + entry->offset;
	struct geo_addr first4, last;
	uint16_t country;
	bool under_ipv4, under_mapped;
	int ret;

	ret = record_country(m, entry, &country);
	if (ret)
		return ret;
	if (m->bits == 32) {
		last = addr_or(prefix, addr_low_mask(32 - depth));
		return geo_layer_add(m->layer, 4, prefix, last, country, position);
	}

	last = addr_or(prefix, addr_low_mask(128 - depth));
	under_ipv4 = depth >= 96 && !prefix.hi && !(prefix.lo >> 32);
	under_mapped = depth >= 96 && prefix.hi == GEO_MAPPED4_HI &&
		       (prefix.lo & ~(uint64_t)UINT32_MAX) == GEO_MAPPED4_LO;
	if (under_ipv4 || under_mapped) {
		first4 = addr_from4((uint32_t)prefix.lo);
		return geo_layer_add(m->layer, 4, first4, addr_from4((uint32_t)last.lo), country,
				     position);
	}
	ret = geo_layer_add(m->layer, 6, prefix, last, country, position);
	/* A network around ::/96, such as ::/64, contains every IPv4 address too. */
	if (!ret && addr_is_zero(prefix) && depth < 96)
		ret = geo_layer_add(m->layer, 4, addr_from4(0), addr_from4(UINT32_MAX), country,
				    position);
	return ret;
}

static int visit_record(struct mmdb_loader *m, uint32_t node, unsigned int side,
			const struct walk_frame *parent, uint64_t record, uint8_t type,
			MMDB_entry_s *entry, size_t *top)
{
	unsigned int depth = parent->depth + 1, bit = m->bits - depth;
	struct geo_addr prefix = parent->prefix;

	if (side) {
		if (bit >= 64)
			prefix.hi |= UINT64_C(1) << (bit - 64);
		else
			prefix.lo |= UINT64_C(1) << bit;
	}

	if (m->bits == 128 && type != MMDB_RECORD_TYPE_EMPTY &&
	    is_ipv4_alias(m, prefix, depth, record))
		return 0;

	switch (type) {
	case MMDB_RECORD_TYPE_EMPTY:
		return 0;
	case MMDB_RECORD_TYPE_DATA:
		return add_network(m, prefix, depth, entry);
	case MMDB_RECORD_TYPE_SEARCH_NODE:
		if (depth >= m->bits)
			return geo_layer_error(m->layer, node_offset(m, node),
					       "invalid search tree: node %u at depth %u points to "
					       "node %llu, deeper than the %u bits of an address",
					       node, depth - 1, (unsigned long long)record,
					       m->bits);
		m->stack[(*top)++] = (struct walk_frame){
			.node = (uint32_t)record,
			.depth = depth,
			.prefix = prefix,
		};
		return 0;
	default:
		return geo_layer_error(
			m->layer, node_offset(m, node),
			"invalid search tree: node %u has the invalid %s record "
			"%llu, which points back to the root or past the data section",
			node, side ? "right" : "left", (unsigned long long)record);
	}
}

static int walk_tree(struct mmdb_loader *m)
{
	size_t top = 0;
	int ret;

	m->stack[top++] = (struct walk_frame){ .node = 0, .depth = 0 };
	while (top) {
		struct walk_frame frame = m->stack[--top];
		MMDB_search_node_s node;

		/* A valid tree reaches each node once; more visits mean a loop in a damaged file.
		 */
		if (++m->nodes_visited > m->mmdb.metadata.node_count)
			return geo_layer_error(m->layer, node_offset(m, frame.node),
					       "invalid search tree: node %u is reached more than "
					       "once",
					       frame.node);
		ret = read_node(m, frame.node, &node);
		if (ret)
			return ret;
		/* The right branch is pushed first, so the left one is visited first. */
		ret = visit_record(m, frame.node, 1, &frame, node.right_record,
				   node.right_record_type, &node.right_record_entry, &top);
		if (!ret)
			ret = visit_record(m, frame.node, 0, &frame, node.left_record,
					   node.left_record_type, &node.left_record_entry, &top);
		if (ret)
			return ret;
	}
	if (!geo_layer_count(m->layer))
		return mmdb_error(m, -EINVAL, "the database contains no networks");
	return 0;
}

static int set_provenance(struct mmdb_loader *m)
{
	const MMDB_metadata_s *meta = &m->mmdb.metadata;
	time_t epoch = (time_t)meta->build_epoch;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int size = 0;
	char date[32];
	struct tm tm;

	if (!EVP_Digest(m->mmdb.file_content, (size_t)m->mmdb.file_size, digest, &size,
			EVP_sha256(), NULL) ||
	    size != 32)
		return mmdb_error(m, -ENOMEM, "SHA-256 failed");
	geo_layer_set_sha256(m->layer, digest);
	geo_layer_set_format(m->layer, BF_GEO_FORMAT_MMDB, GEO_RANGE_PREFIX);
	geo_layer_set_detail(m->layer, "%s", meta->database_type ? meta->database_type : "");
	if (gmtime_r(&epoch, &tm) && strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm))
		geo_layer_set_date(m->layer, date);
	return 0;
}

int geo_mmdb_load(struct bf_geo_table *t, const char *path, const struct bf_geo_options *opts,
		  struct bf_error *err)
{
	struct mmdb_loader *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return bf_error_set(err, -ENOMEM,
				    "failed to load geolocation file '%s': out of memory", path);
	m->path = path;
	m->err = err;

	ret = parse_key_paths(m, opts);
	if (!ret)
		ret = geo_layer_begin(&m->layer, t, path, GEO_POSITION_OFFSET, err);
	if (!ret)
		ret = open_database(m);
	if (!ret)
		ret = find_ipv4_subtree(m);
	if (!ret)
		ret = walk_tree(m);
	if (!ret)
		ret = set_provenance(m);
	if (!ret) {
		ret = geo_layer_commit(m->layer, t);
		m->layer = NULL;
	}

	geo_layer_abort(m->layer);
	if (m->open)
		MMDB_close(&m->mmdb);
	free(m);
	return ret;
}
