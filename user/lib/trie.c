// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Filling the kernel's geolocation tries from a flattened table, shared by
 * the daemon and the geolocation benchmark so both measure one code path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "trie.h"

#include "../../maps/geo.h"

/* Room above the loaded data, so that a reload with a few more prefixes fits. */
#define GEO_HEADROOM 4096

enum bf_verdict bf_range_verdict(const struct bf_geo_table *table, const struct bf_config *cfg,
				 uint16_t country, uint8_t source)
{
	bool local =
		source < table->nsources && table->sources[source].format == BF_GEO_FORMAT_BUILTIN;

	return bf_config_verdict(cfg, country, local);
}

/*
 * Prefixes are collected in chunks of CHUNK_PREFIXES and each chunk is
 * written with one BPF_MAP_UPDATE_BATCH call; kernels whose LPM tries lack
 * batch operations get one update per prefix. Chunks bound the memory the
 * daemon needs at start to a few MB whatever the size of the data.
 */
#define CHUNK_PREFIXES 65536

struct prefix_writer {
	int map_fd;
	size_t key_size;
	void *keys;
	struct bf_geo_value *values;
	size_t count;	/* prefixes in the current chunk */
	size_t written; /* prefixes written to the map so far */
	struct bf_geo_value current;
};

static int writer_init(struct prefix_writer *w, int map_fd, size_t key_size)
{
	memset(w, 0, sizeof(*w));
	w->map_fd = map_fd;
	w->key_size = key_size;
	w->keys = calloc(CHUNK_PREFIXES, key_size);
	w->values = calloc(CHUNK_PREFIXES, sizeof(*w->values));
	return w->keys && w->values ? 0 : -ENOMEM;
}

static void writer_free(struct prefix_writer *w)
{
	free(w->keys);
	free(w->values);
}

static int writer_flush(struct prefix_writer *w)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 count = w->count;
	size_t i;
	int ret;

	if (!count)
		return 0;
	ret = bpf_map_update_batch(w->map_fd, w->keys, w->values, &count, &opts);
	if (ret == -EINVAL || ret == -524 /* ENOTSUPP */ || ret == -EOPNOTSUPP) {
		for (i = 0, ret = 0; i < w->count && !ret; i++)
			ret = bpf_map_update_elem(w->map_fd, (char *)w->keys + i * w->key_size,
						  &w->values[i], BPF_ANY);
	}
	if (ret)
		return ret;
	w->written += w->count;
	w->count = 0;
	return 0;
}

static int add_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	struct prefix_writer *w = ctx;
	struct bf_geo4_key *key = (struct bf_geo4_key *)w->keys + w->count;
	uint32_t be = htonl(addr);

	key->prefixlen = prefixlen;
	memcpy(key->addr, &be, 4);
	w->values[w->count++] = w->current;
	return w->count == CHUNK_PREFIXES ? writer_flush(w) : 0;
}

static int add_prefix6(const uint8_t addr[16], unsigned int prefixlen, void *ctx)
{
	struct prefix_writer *w = ctx;
	struct bf_geo6_key *key = (struct bf_geo6_key *)w->keys + w->count;

	key->prefixlen = prefixlen;
	memcpy(key->addr, addr, 16);
	w->values[w->count++] = w->current;
	return w->count == CHUNK_PREFIXES ? writer_flush(w) : 0;
}

struct fill_job {
	int trie_fd;
	const struct bf_geo_table *table;
	const struct bf_config *cfg;
	uint16_t generation;
	struct prefix_writer writer;
	double seconds;
	int ret;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *fill_geo4(void *arg)
{
	struct fill_job *job = arg;
	const struct bf_geo_table *table = job->table;
	double t0 = now_s();
	size_t i;

	job->ret = writer_init(&job->writer, job->trie_fd, sizeof(struct bf_geo4_key));
	job->writer.current.generation = job->generation;
	for (i = 0; i < table->n4 && !job->ret; i++) {
		const struct bf_range4 *r = &table->v4[i];

		job->writer.current.country = r->country;
		job->writer.current.source = r->source;
		job->writer.current.verdict =
			bf_range_verdict(table, job->cfg, r->country, r->source);
		job->ret = bf_range4_to_prefixes(r->first, r->last, add_prefix4, &job->writer);
	}
	if (!job->ret)
		job->ret = writer_flush(&job->writer);
	writer_free(&job->writer);
	job->seconds = now_s() - t0;
	return NULL;
}

static void *fill_geo6(void *arg)
{
	struct fill_job *job = arg;
	const struct bf_geo_table *table = job->table;
	double t0 = now_s();
	size_t i;

	job->ret = writer_init(&job->writer, job->trie_fd, sizeof(struct bf_geo6_key));
	job->writer.current.generation = job->generation;
	for (i = 0; i < table->n6 && !job->ret; i++) {
		const struct bf_range6 *r = &table->v6[i];

		job->writer.current.country = r->country;
		job->writer.current.source = r->source;
		job->writer.current.verdict =
			bf_range_verdict(table, job->cfg, r->country, r->source);
		job->ret = bf_range6_to_prefixes(r->first, r->last, add_prefix6, &job->writer);
	}
	if (!job->ret)
		job->ret = writer_flush(&job->writer);
	writer_free(&job->writer);
	job->seconds = now_s() - t0;
	return NULL;
}

int bf_trie_create(int family, size_t prefixes)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	size_t key_size = family == 4 ? sizeof(struct bf_geo4_key) : sizeof(struct bf_geo6_key);
	int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, family == 4 ? "geo4_trie" : "geo6_trie",
				key_size, sizeof(struct bf_geo_value), prefixes + GEO_HEADROOM,
				&opts);

	return fd < 0 ? -errno : fd;
}

/*
 * The tries are separate maps, each with its own lock in the kernel, so
 * IPv6 fills on a second thread while IPv4 fills on this one. Inserting
 * into an LPM trie costs about a microsecond per prefix, which makes this
 * the longest step of a start or a reload.
 */
int bf_trie_fill(int fd4, int fd6, const struct bf_geo_table *table, const struct bf_config *cfg,
		 uint16_t generation, struct bf_trie_fill *out, struct bf_error *err)
{
	struct fill_job job4 = {
		.trie_fd = fd4, .table = table, .cfg = cfg, .generation = generation
	};
	struct fill_job job6 = job4;
	pthread_t thread;
	bool threaded;
	int ret;

	job6.trie_fd = fd6;
	threaded = !pthread_create(&thread, NULL, fill_geo6, &job6);
	(void)fill_geo4(&job4);
	if (threaded)
		pthread_join(thread, NULL);
	else
		(void)fill_geo6(&job6);

	ret = job4.ret ? job4.ret : job6.ret;
	if (ret)
		return bf_error_set(err, ret, "failed to write %s prefixes to the kernel: %s",
				    job4.ret ? "IPv4" : "IPv6", strerror(-ret));
	out->written4 = job4.writer.written;
	out->written6 = job6.writer.written;
	out->seconds4 = job4.seconds;
	out->seconds6 = job6.seconds;
	return 0;
}
