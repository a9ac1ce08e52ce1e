// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <microhttpd.h>

#include "borderflow.skel.h"
#include "daemon.h"
#include "lib/stack.h"
#include "log.h"
#include "metrics.h"

/*
 * Limits of the HTTP endpoint. Two threads serve it, so a slow scrape on
 * one does not delay the requests of the other. A client that connects and
 * sends nothing keeps one of HTTP_CONNECTION_LIMIT connections for at most
 * HTTP_TIMEOUT_S. The event loop waits for a scrape only while the scrape
 * holds d->lock to copy the alert counts and the geolocation sources.
 */
#define HTTP_THREADS		 2
#define HTTP_CONNECTION_LIMIT	 64
#define HTTP_TIMEOUT_S		 10
#define HTTP_CONNECTION_MEMORY	 (32u << 10)
#define HTTP_LISTEN_BACKLOG	 64
#define RENDER_ERROR_LOG_EVERY_S 60

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT    "text/plain; charset=utf-8"

/* Keys (and values) read per bpf_map_lookup_batch() call. */
#define MAP_BATCH 1024

static size_t round_up_8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int64_t monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* --- kernel counters ----------------------------------------------------------------- */

static void add_total(struct bf_total_value *sum, const struct bf_total_value *v)
{
	sum->transmit_bytes += v->transmit_bytes;
	sum->receive_bytes += v->receive_bytes;
	sum->transmit_packets += v->transmit_packets;
	sum->receive_packets += v->receive_packets;
	sum->flows += v->flows;
}

int bf_totals_foreach(int fd, bf_totals_fn fn, void *ctx)
{
	int ncpus = libbpf_num_possible_cpus();
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bf_total_value *values = NULL;
	struct bf_total_key *keys = NULL;
	bool first = true;
	__u64 batch = 0;
	int ret = 0;

	if (ncpus <= 0)
		return -EINVAL;
	keys = calloc(MAP_BATCH, sizeof(*keys));
	/* A per-CPU value is one 8-byte aligned struct per possible CPU. */
	values = calloc((size_t)MAP_BATCH * ncpus, sizeof(*values));
	if (!keys || !values) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = MAP_BATCH, i;
		int err = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, values,
					       &count, &opts);
		int cpu;

		if (err && err != -ENOENT) {
			ret = err;
			break;
		}
		first = false;
		for (i = 0; i < count && !ret; i++) {
			struct bf_total_value sum = {};

			for (cpu = 0; cpu < ncpus; cpu++)
				add_total(&sum, &values[(size_t)i * ncpus + cpu]);
			ret = fn(&keys[i], &sum, ctx);
		}
		if (ret || err) /* -ENOENT: the whole map was read */
			break;
	}
out:
	free(keys);
	free(values);
	return ret;
}

int bf_stat_read(int fd, __u32 index, uint64_t *sum)
{
	int ncpus = libbpf_num_possible_cpus(), cpu;
	__u64 *values;
	int ret;

	*sum = 0;
	if (ncpus <= 0)
		return -EINVAL;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return -ENOMEM;
	ret = bpf_map_lookup_elem(fd, &index, values);
	for (cpu = 0; !ret && cpu < ncpus; cpu++)
		*sum += values[cpu];
	free(values);
	return ret;
}

/*
 * Counts the entries of a hash map by reading it in batches. Unlike a walk
 * with bpf_map_get_next_key(), a batch walk does not start over when its
 * current key is deleted meanwhile, which the daemon's flow expiry and LRU
 * eviction do at any time. flows, when not NULL, is set to the number of
 * socks entries that contain a flow.
 */
static int count_entries(const struct bpf_map *map, uint64_t *entries, uint64_t *flows)
{
	enum bpf_map_type type = bpf_map__type(map);
	size_t key_size = bpf_map__key_size(map), value_size = bpf_map__value_size(map);
	int fd = bpf_map__fd(map), ncpus = libbpf_num_possible_cpus();
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys, *values;
	bool first = true;
	__u64 batch = 0;
	int ret = 0;

	*entries = 0;
	if (flows)
		*flows = 0;
	if (ncpus <= 0)
		return -EINVAL;
	if (type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH)
		value_size = round_up_8(value_size) * ncpus;
	keys = calloc(MAP_BATCH, key_size);
	values = calloc(MAP_BATCH, value_size);
	while (keys && values) {
		__u32 count = MAP_BATCH;
		int err = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, values,
					       &count, &opts);

		if (err && err != -ENOENT) {
			ret = err;
			break;
		}
		first = false;
		*entries += count;
		for (__u32 i = 0; flows && i < count; i++) {
			const struct bf_sock *sock = (const void *)((char *)values + i * value_size);

			*flows += (sock->flags & BF_SOCK_FLOW) != 0;
		}
		if (err)
			break;
	}
	if (!keys || !values)
		ret = -ENOMEM;
	free(keys);
	free(values);
	return ret;
}

/* --- text exposition format -------------------------------------------------------------- */

struct label {
	const char *name;
	const char *value;
};

static void put_family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes a label value with backslash, double quote and newline escaped. */
static void put_label_value(FILE *out, const char *value)
{
	for (;;) {
		size_t plain = strcspn(value, "\\\"\n");

		fwrite(value, 1, plain, out);
		value += plain;
		switch (*value) {
		case '\0':
			return;
		case '\n':
			fputs("\\n", out);
			break;
		default:
			fputc('\\', out);
			fputc(*value, out);
		}
		value++;
	}
}

/* Writes "name{a="x",b="y"} " up to the value. */
static void put_series(FILE *out, const char *name, const struct label *labels, size_t nlabels)
{
	size_t i;

	fputs(name, out);
	if (nlabels) {
		fputc('{', out);
		for (i = 0; i < nlabels; i++) {
			fprintf(out, "%s%s=\"", i ? "," : "", labels[i].name);
			put_label_value(out, labels[i].value);
			fputc('"', out);
		}
		fputc('}', out);
	}
	fputc(' ', out);
}

static void put_u64(FILE *out, const char *name, const struct label *labels, size_t nlabels,
		    uint64_t value)
{
	put_series(out, name, labels, nlabels);
	fprintf(out, "%" PRIu64 "\n", value);
}

/* --- traffic families, from totals ----------------------------------------------------- */

/*
 * One key of totals with its label values. Two keys can carry the same
 * labels: an id without a name and BF_APP_UNATTRIBUTED are both
 * "unattributed", and any invalid country code is "??". So rows are sorted
 * by label values and equal neighbours are added into one series, because
 * a scrape must not have two samples of one series.
 */
struct total_row {
	const char *app;
	char country[3];
	uint8_t verdict;
	uint8_t proto;
	uint32_t app_id;
	struct bf_total_value sum;
};

struct total_rows {
	const struct bf_registry *registry;
	bool hide_other; /* [metrics] other = hide */
	struct total_row *items;
	size_t n, cap;
};

static int add_total_row(const struct bf_total_key *key, const struct bf_total_value *sum,
			 void *ctx)
{
	struct total_rows *rows = ctx;
	struct total_row *row;

	if (key->app == BF_APP_OTHER && rows->hide_other)
		return 0;
	if (rows->n == rows->cap) {
		size_t cap = rows->cap ? rows->cap * 2 : 256;

		row = realloc(rows->items, cap * sizeof(*row));
		if (!row)
			return -ENOMEM;
		rows->items = row;
		rows->cap = cap;
	}
	row = &rows->items[rows->n++];
	row->app = bf_registry_name(rows->registry, key->app);
	bf_country_format(key->country, row->country);
	row->verdict = key->verdict;
	row->proto = key->proto;
	row->app_id = key->app;
	row->sum = *sum;
	return 0;
}

/* Orders by app, country, verdict, then transport. */
static int compare_total_rows(const void *a, const void *b)
{
	const struct total_row *x = a, *y = b;
	int c = strcmp(x->app, y->app);

	if (!c)
		c = strcmp(x->country, y->country);
	if (!c)
		c = (int)x->verdict - (int)y->verdict;
	if (!c)
		c = (int)x->proto - (int)y->proto;
	return c;
}

static bool same_destination(const struct total_row *x, const struct total_row *y)
{
	return !strcmp(x->app, y->app) && !strcmp(x->country, y->country) &&
	       x->verdict == y->verdict;
}

static const char *verdict_label(uint8_t verdict)
{
	return verdict < BF_VERDICT_COUNT ? bf_verdict_name(verdict) : "unknown";
}

/* "tcp", "udp", or the IP protocol number: 0 for an IPv4 fragment after the first. */
static const char *transport_label(uint8_t proto, char buf[4])
{
	if (proto == BF_PROTO_TCP)
		return "tcp";
	if (proto == BF_PROTO_UDP)
		return "udp";
	snprintf(buf, 4, "%u", proto);
	return buf;
}

static uint64_t total_field(const struct bf_total_value *v, size_t offset)
{
	uint64_t value;

	memcpy(&value, (const char *)v + offset, sizeof(value));
	return value;
}

/* One counter family per application, country and verdict, summed over the transports. */
static void put_totals_family(FILE *out, const struct total_rows *rows, const char *name,
			      const char *help, size_t offset)
{
	size_t i = 0;

	put_family(out, name, "counter", help);
	while (i < rows->n) {
		const struct total_row *first = &rows->items[i];
		uint64_t sum = 0;
		struct label labels[] = {
			{ "app", first->app },
			{ "country", first->country },
			{ "verdict", verdict_label(first->verdict) },
		};

		for (; i < rows->n && same_destination(first, &rows->items[i]); i++)
			sum += total_field(&rows->items[i].sum, offset);
		put_u64(out, name, labels, 3, sum);
	}
}

static void put_flows_family(FILE *out, const struct total_rows *rows)
{
	const char *name = "borderflow_flows_total";
	size_t i = 0;

	put_family(out, name, "counter",
		   "Flows counted at their first packet: sockets, and peers of unconnected UDP "
		   "sockets, per application, destination country, verdict and transport (tcp, "
		   "udp, or the IP protocol number).");
	while (i < rows->n) {
		const struct total_row *first = &rows->items[i];
		uint64_t sum = 0;
		char proto[4];
		struct label labels[] = {
			{ "app", first->app },
			{ "country", first->country },
			{ "verdict", verdict_label(first->verdict) },
			{ "transport", transport_label(first->proto, proto) },
		};

		for (; i < rows->n && same_destination(first, &rows->items[i]) &&
		       rows->items[i].proto == first->proto;
		     i++)
			sum += rows->items[i].sum.flows;
		put_u64(out, name, labels, 4, sum);
	}
}

static void put_traffic(FILE *out, const struct total_rows *rows)
{
	uint64_t unattributed = 0, ungeolocated = 0;
	size_t i;

	put_totals_family(out, rows, "borderflow_transmit_bytes_total",
			  "IP bytes sent, headers included, per application, destination country "
			  "and verdict.",
			  offsetof(struct bf_total_value, transmit_bytes));
	put_totals_family(out, rows, "borderflow_receive_bytes_total",
			  "IP bytes received, headers included, per application, peer country and "
			  "verdict.",
			  offsetof(struct bf_total_value, receive_bytes));
	put_totals_family(out, rows, "borderflow_transmit_packets_total",
			  "IP packets sent per application, destination country and verdict.",
			  offsetof(struct bf_total_value, transmit_packets));
	put_totals_family(out, rows, "borderflow_receive_packets_total",
			  "IP packets received per application, peer country and verdict.",
			  offsetof(struct bf_total_value, receive_packets));
	put_flows_family(out, rows);

	for (i = 0; i < rows->n; i++) {
		const struct total_row *r = &rows->items[i];
		uint64_t bytes = r->sum.transmit_bytes + r->sum.receive_bytes;

		/* The same rule as unattributed_bytes of the status document. */
		if (r->app_id == BF_APP_UNATTRIBUTED)
			unattributed += bytes;
		if (!strcmp(r->country, "??") && r->verdict == BF_VERDICT_UNKNOWN)
			ungeolocated += bytes;
	}
	put_family(out, "borderflow_unattributed_bytes_total", "counter",
		   "IP bytes sent and received by sockets without a recorded owner (application "
		   "unattributed).");
	put_u64(out, "borderflow_unattributed_bytes_total", NULL, 0, unattributed);
	put_family(out, "borderflow_ungeolocated_bytes_total", "counter",
		   "IP bytes sent and received, all applications, to or from addresses that no "
		   "geolocation range covers (country ?? and verdict unknown).");
	put_u64(out, "borderflow_ungeolocated_bytes_total", NULL, 0, ungeolocated);
}

/* --- health families: stats and map fill ---------------------------------------------- */

static int put_stats(FILE *out, struct bf_monitor *mon)
{
	static const struct {
		const char *name;
		__u32 index;
		const char *help;
	} stats[] = {
		{ "borderflow_lost_events_total", BF_STAT_EVENTS_LOST,
		  "Flow events dropped because the ring buffer was full; their bytes are still "
		  "counted." },
		{ "borderflow_alerts_lost_total", BF_STAT_ALERTS_LOST,
		  "Out-of-region events dropped because the alert ring buffer was full; the "
		  "flow's next packet sends the event again." },
	};
	int fd = bpf_map__fd(mon->skel->maps.stats);
	uint64_t value;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		ret = bf_stat_read(fd, stats[i].index, &value);
		if (ret)
			return ret;
		put_family(out, stats[i].name, "counter", stats[i].help);
		put_u64(out, stats[i].name, NULL, 0, value);
	}
	return 0;
}

static int put_maps(FILE *out, struct bf_monitor *mon, uint64_t totals_entries)
{
	const struct {
		const char *label;
		const struct bpf_map *map;
	} maps[] = {
		{ "flows", mon->skel->maps.flows },	    { "socks", mon->skel->maps.socks },
		{ "totals", mon->skel->maps.totals },	    { "procs", mon->skel->maps.procs },
		{ "alerted", mon->skel->maps.alerted },	    { "closed", mon->skel->maps.closed },
		{ "listeners", mon->skel->maps.listeners },
	};
	const size_t nmaps = sizeof(maps) / sizeof(maps[0]);
	uint64_t entries[sizeof(maps) / sizeof(maps[0])], socket_flows = 0;
	size_t i;
	int ret;

	for (i = 0; i < nmaps; i++) {
		/* The totals were just read whole: their row count is their entry count. */
		if (maps[i].map == mon->skel->maps.totals) {
			entries[i] = totals_entries;
			continue;
		}
		ret = count_entries(maps[i].map, &entries[i],
				    maps[i].map == mon->skel->maps.socks ? &socket_flows : NULL);
		if (ret)
			return ret;
	}

	put_family(out, "borderflow_active_flows", "gauge",
		   "Flows of watched applications not yet removed after their end or idle "
		   "time: the entries of the flows map and the socks entries that contain a flow.");
	put_u64(out, "borderflow_active_flows", NULL, 0, entries[0] + socket_flows);
	put_family(out, "borderflow_map_entries", "gauge",
		   "Entries in a BPF map, counted by reading its keys at scrape time.");
	for (i = 0; i < nmaps; i++) {
		struct label label = { "map", maps[i].label };

		put_u64(out, "borderflow_map_entries", &label, 1, entries[i]);
	}
	put_family(out, "borderflow_map_capacity", "gauge", "Maximum entries of a BPF map.");
	for (i = 0; i < nmaps; i++) {
		struct label label = { "map", maps[i].label };

		put_u64(out, "borderflow_map_capacity", &label, 1,
			bpf_map__max_entries(maps[i].map));
	}
	return 0;
}

/* --- families of the daemon's state: alerts and geolocation ---------------------------- */

struct alert_row {
	const char *app;
	char country[3];
	const char *rule;
	uint64_t count;
};

static int compare_alert_rows(const void *a, const void *b)
{
	const struct alert_row *x = a, *y = b;
	int c = strcmp(x->app, y->app);

	if (!c)
		c = strcmp(x->country, y->country);
	if (!c)
		c = strcmp(x->rule, y->rule);
	return c;
}

static void put_alerts(FILE *out, struct alert_row *rows, size_t n)
{
	const char *name = "borderflow_alerts_total";
	size_t i = 0;

	qsort(rows, n, sizeof(*rows), compare_alert_rows);
	put_family(out, name, "counter",
		   "Alerts raised per application, destination country and rule, kept in the "
		   "pinned alert_counts map across restarts of the daemon.");
	while (i < n) {
		const struct alert_row *first = &rows[i];
		uint64_t sum = 0;
		struct label labels[] = {
			{ "app", first->app },
			{ "country", first->country },
			{ "rule", first->rule },
		};

		for (; i < n && !compare_alert_rows(first, &rows[i]); i++)
			sum += rows[i].count;
		put_u64(out, name, labels, 3, sum);
	}
}

static bool same_source(const struct bf_geo_source *a, const struct bf_geo_source *b)
{
	return !strcmp(a->path, b->path) && a->format == b->format && !strcmp(a->date, b->date) &&
	       !strcmp(a->sha256, b->sha256);
}

/* Writes the geolocation families. Runs under d->lock, which a reload takes to swap the table. */
static void put_geo(FILE *out, const struct bf_daemon *d)
{
	const struct bf_geo_table *table = &d->table;
	size_t i, j;

	put_family(out, "borderflow_geo_info", "gauge",
		   "Geolocation sources in force, always 1: path, format, build date stated in "
		   "the file and SHA-256 of its content.");
	for (i = 0; i < table->nsources; i++) {
		const struct bf_geo_source *src = &table->sources[i];
		bool seen = false;
		struct label labels[] = {
			{ "source", src->path },
			{ "format", bf_geo_format_name(src->format) },
			{ "date", src->date },
			{ "sha256", src->sha256 },
		};

		/* A file named twice in [geo] data is one series. */
		for (j = 0; j < i && !seen; j++)
			seen = same_source(&table->sources[j], src);
		if (!seen)
			put_u64(out, "borderflow_geo_info", labels, 4, 1);
	}

	put_family(out, "borderflow_geo_prefixes", "gauge",
		   "Prefixes of the geolocation data in force, per address family.");
	put_u64(out, "borderflow_geo_prefixes", &(struct label){ "family", "ipv4" }, 1,
		d->mon.prefixes4);
	put_u64(out, "borderflow_geo_prefixes", &(struct label){ "family", "ipv6" }, 1,
		d->mon.prefixes6);
	put_family(out, "borderflow_geo_generation", "gauge",
		   "Generation of the geolocation data in force: 1 at start, one more with each "
		   "successful reload.");
	put_u64(out, "borderflow_geo_generation", NULL, 0, d->generation);
	put_family(out, "borderflow_geo_reload_failures_total", "counter",
		   "Reloads that failed and kept the geolocation data in force.");
	put_u64(out, "borderflow_geo_reload_failures_total", NULL, 0, d->reload_failures);
	put_family(out, "borderflow_geo_reload_failed", "gauge",
		   "1 when the last reload failed, so the config or data on disk is not in force.");
	put_u64(out, "borderflow_geo_reload_failed", NULL, 0, d->reload_failed);
}

static int put_daemon_state(FILE *out, struct bf_daemon *d)
{
	struct alert_row *rows = NULL;
	size_t n, i;

	pthread_mutex_lock(&d->lock);
	n = d->alerts.ncounts;
	if (n) {
		rows = calloc(n, sizeof(*rows));
		if (!rows) {
			pthread_mutex_unlock(&d->lock);
			return -ENOMEM;
		}
	}
	for (i = 0; i < n; i++) {
		const struct bf_alert_count *c = &d->alerts.counts[i];

		rows[i].app = bf_registry_name(&d->mon.registry, c->app);
		bf_country_format(c->country, rows[i].country);
		rows[i].rule = c->rule ? BF_RULE_UNKNOWN : BF_RULE_FOREIGN;
		rows[i].count = c->count;
	}
	put_geo(out, d);
	pthread_mutex_unlock(&d->lock);

	put_alerts(out, rows, n);
	free(rows);
	return 0;
}

/* --- build and BPF program families ---------------------------------------------------- */

struct prog_stats {
	const char *name;
	uint64_t run_time_ns, run_count;
};

static void put_programs(FILE *out, struct bpf_object *obj)
{
	struct prog_stats progs[64];
	struct bpf_program *prog;
	size_t n = 0, i;

	bpf_object__for_each_program(prog, obj)
	{
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || n == sizeof(progs) / sizeof(progs[0]))
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		progs[n].name = bpf_program__name(prog);
		progs[n].run_time_ns = info.run_time_ns;
		progs[n].run_count = info.run_cnt;
		n++;
	}

	put_family(out, "borderflow_bpf_run_time_seconds_total", "counter",
		   "Time spent running a BPF program since the daemon loaded it. The kernel "
		   "counts it only while the sysctl kernel.bpf_stats_enabled is 1, so it stays 0 "
		   "by default.");
	for (i = 0; i < n; i++) {
		struct label label = { "program", progs[i].name };

		put_series(out, "borderflow_bpf_run_time_seconds_total", &label, 1);
		fprintf(out, "%" PRIu64 ".%09" PRIu64 "\n", progs[i].run_time_ns / 1000000000,
			progs[i].run_time_ns % 1000000000);
	}
	put_family(out, "borderflow_bpf_run_count_total", "counter",
		   "Runs of a BPF program since the daemon loaded it. The kernel counts them "
		   "only while the sysctl kernel.bpf_stats_enabled is 1, so it stays 0 by "
		   "default.");
	for (i = 0; i < n; i++) {
		struct label label = { "program", progs[i].name };

		put_u64(out, "borderflow_bpf_run_count_total", &label, 1, progs[i].run_count);
	}
}

static void put_build(FILE *out, const char *version)
{
	struct label label = { "version", version };

	put_family(out, "borderflow_build_info", "gauge", "Version of borderflowd, always 1.");
	put_u64(out, "borderflow_build_info", &label, 1, 1);
}

int bf_metrics_render(struct bf_metrics *m, char **text, size_t *size)
{
	struct bf_daemon *d = m->daemon;
	struct total_rows rows = { .registry = &d->mon.registry,
				   .hide_other = !d->cfg.metrics_other };
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	int ret;

	*text = NULL;
	*size = 0;
	ret = bf_totals_foreach(bpf_map__fd(d->mon.skel->maps.totals), add_total_row, &rows);
	if (ret)
		goto out;
	qsort(rows.items, rows.n, sizeof(*rows.items), compare_total_rows);

	out = open_memstream(&buf, &len);
	if (!out) {
		ret = -errno;
		goto out;
	}
	/* Only this thread writes to the stream, so stdio need not lock it for every call. */
	__fsetlocking(out, FSETLOCKING_BYCALLER);
	put_traffic(out, &rows);
	ret = put_stats(out, &d->mon);
	if (!ret)
		ret = put_maps(out, &d->mon, rows.n);
	if (!ret)
		ret = put_daemon_state(out, d);
	if (!ret) {
		put_programs(out, d->mon.skel->obj);
		put_build(out, m->version);
	}
	if (!ret && ferror(out))
		ret = -ENOMEM;
	if (fclose(out) && !ret)
		ret = -errno;
	if (ret) {
		free(buf);
		goto out;
	}
	*text = buf;
	*size = len;
out:
	free(rows.items);
	return ret;
}

/* --- HTTP endpoint ----------------------------------------------------------------------- */

/* True when every BPF link of the daemon still exists and its cgroup links still hold a cgroup. */
static bool programs_attached(const struct bf_monitor *mon)
{
	size_t i;

	if (!mon->nlinks)
		return false;
	for (i = 0; i < mon->nlinks; i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_link__fd(mon->links[i]), &info, &len))
			return false;
		/* A detached cgroup link reports cgroup id 0. */
		if (info.type == BPF_LINK_TYPE_CGROUP && !info.cgroup.cgroup_id)
			return false;
	}
	return true;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
			     struct MHD_Response *response, const char *content_type)
{
	enum MHD_Result ret;

	if (!response)
		return MHD_NO;
	if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) !=
	    MHD_YES) {
		MHD_destroy_response(response);
		return MHD_NO;
	}
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) {
		MHD_destroy_response(response);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, response);
	MHD_destroy_response(response);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status,
				  const char *text)
{
	return reply(
		conn, status,
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT),
		CONTENT_TYPE_TEXT);
}

static void log_render_error(struct bf_metrics *m, int err)
{
	int64_t now = monotonic_s();
	int64_t last = __atomic_load_n(&m->render_error_logged_s, __ATOMIC_RELAXED);
	uint64_t errors = __atomic_add_fetch(&m->render_errors, 1, __ATOMIC_RELAXED);

	if (last && now - last < RENDER_ERROR_LOG_EVERY_S)
		return;
	if (!__atomic_compare_exchange_n(&m->render_error_logged_s, &last, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	log_err("failed to read the metrics from the kernel maps: %s (%" PRIu64 " failures so "
		"far; logged at most once a minute)",
		strerror(-err), errors);
}

static enum MHD_Result reply_metrics(struct bf_metrics *m, struct MHD_Connection *conn)
{
	struct MHD_Response *response;
	size_t size;
	char *text;
	int ret;

	ret = bf_metrics_render(m, &text, &size);
	if (ret) {
		log_render_error(m, ret);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "failed to read the counters from the kernel maps; see the "
				  "daemon's log\n");
	}
	response = MHD_create_response_from_buffer_with_free_callback(size, text, free);
	if (!response) {
		free(text);
		return MHD_NO;
	}
	return reply(conn, MHD_HTTP_OK, response, CONTENT_TYPE_METRICS);
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **req_cls)
{
	struct bf_metrics *m = cls;

	/* Rejected before any body is read: MHD closes the connection if a body follows. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "method not allowed; use GET\n");
	if (!strcmp(url, "/metrics"))
		return reply_metrics(m, conn);
	if (!strcmp(url, "/healthz")) {
		if (programs_attached(&m->daemon->mon))
			return reply_text(conn, MHD_HTTP_OK, "ok\n");
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "BPF programs not attached\n");
	}
	return reply_text(conn, MHD_HTTP_NOT_FOUND,
			  "not found; the paths are /metrics and /healthz\n");
}

static void log_httpd(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t len;

	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	log_warn("metrics endpoint: %s", line);
}

/* Parses "IPv4:port" or "[IPv6]:port", the forms that config.c accepts for [metrics] listen. */
static int parse_listen(const char *text, struct sockaddr_storage *addr, socklen_t *addr_len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
	struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
	char host[INET6_ADDRSTRLEN];
	const char *end, *port_text;
	unsigned long port;
	char *port_end;
	size_t len;

	memset(addr, 0, sizeof(*addr));
	if (text[0] == '[') {
		end = strchr(text, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		len = end - (text + 1);
		port_text = end + 2;
		text++;
	} else {
		end = strrchr(text, ':');
		if (!end)
			return -EINVAL;
		len = end - text;
		port_text = end + 1;
	}
	if (len >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, len);
	host[len] = '\0';
	errno = 0;
	port = strtoul(port_text, &port_end, 10);
	if (errno || port_end == port_text || *port_end || port == 0 || port > 65535)
		return -EINVAL;

	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*addr_len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*addr_len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static int open_listen_socket(const char *listen_text, struct bf_error *err)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int fd, one = 1, ret;

	ret = parse_listen(listen_text, &addr, &addr_len);
	if (ret)
		return bf_error_set(err, ret,
				    "invalid [metrics] listen '%s'; use address:port or [IPv6 "
				    "address]:port, such as 127.0.0.1:9782",
				    listen_text);
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return bf_error_set(err, -errno,
				    "failed to create a socket for [metrics] listen "
				    "%s: %s",
				    listen_text, strerror(errno));
	/* SO_REUSEADDR lets a restart bind while old connections are in TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (addr.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&addr, addr_len) || listen(fd, HTTP_LISTEN_BACKLOG)) {
		ret = -errno;
		close(fd);
		return bf_error_set(err, ret,
				    "failed to listen on %s for [metrics] listen: %s; stop the "
				    "program that uses that address or set another [metrics] "
				    "listen",
				    listen_text, strerror(-ret));
	}
	return fd;
}

static int start_httpd(struct bf_metrics *m, const char *listen_text, struct bf_error *err)
{
	const unsigned int flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem limits[] = {
		{ MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	int fd = open_listen_socket(listen_text, err);

	if (fd < 0)
		return fd;
	/* The logger comes first, so that MHD's start-up messages go through it too. */
	m->httpd = MHD_start_daemon(
		flags, 0, NULL, NULL, handle_request, m, MHD_OPTION_EXTERNAL_LOGGER, log_httpd, m,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_ARRAY, limits, MHD_OPTION_END);
	if (!m->httpd) {
		close(fd);
		return bf_error_set(err, -EIO,
				    "failed to start the HTTP server of [metrics] listen %s; see "
				    "the messages of libmicrohttpd above",
				    listen_text);
	}
	return 0;
}

/* --- textfile for node_exporter ----------------------------------------------------------- */

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= n;
	}
	return 0;
}

/*
 * Writes DIR/.borderflow.prom.tmp, flushes it to disk and renames it to
 * DIR/borderflow.prom, so node_exporter never reads a partly written file.
 * Its name does not end in .prom, so the textfile collector skips it.
 */
static int write_textfile(struct bf_metrics *m, struct bf_error *err)
{
	char path[4200], tmp[4200];
	size_t size;
	char *text;
	int fd, ret;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", m->textfile_dir,
			     BF_METRICS_TEXTFILE_NAME) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", m->textfile_dir,
			     BF_METRICS_TEXTFILE_NAME) >= sizeof(tmp))
		return bf_error_set(err, -ENAMETOOLONG, "--textfile-dir '%s' is too long",
				    m->textfile_dir);
	ret = bf_metrics_render(m, &text, &size);
	if (ret)
		return bf_error_set(err, ret, "failed to read the metrics for '%s': %s", path,
				    strerror(-ret));

	/*
	 * A new file every time, never one found there: the folder may be
	 * writable by node_exporter's user, who must not redirect this write
	 * through a link.
	 */
	if (unlink(tmp) && errno != ENOENT) {
		ret = -errno;
		free(text);
		return bf_error_set(err, ret, "failed to remove '%s' for --textfile-dir: %s", tmp,
				    strerror(-ret));
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		ret = -errno;
		free(text);
		return bf_error_set(err, ret, "failed to write '%s' for --textfile-dir: %s", tmp,
				    strerror(-ret));
	}
	ret = write_all(fd, text, size);
	free(text);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		(void)unlink(tmp);
		return bf_error_set(err, ret, "failed to write '%s' for --textfile-dir: %s", path,
				    strerror(-ret));
	}

	/* The rename itself is durable once the folder is flushed. */
	fd = open(m->textfile_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	return 0;
}

/* Writes the textfile; logs the first failure of a run of failures and the recovery. */
static void write_textfile_logged(struct bf_metrics *m)
{
	struct bf_error err = {};

	if (write_textfile(m, &err)) {
		if (!m->textfile_failing)
			log_warn("%s; trying again every %d s", err.msg,
				 BF_METRICS_TEXTFILE_INTERVAL_S);
		m->textfile_failing = true;
		return;
	}
	if (m->textfile_failing)
		log_notice("wrote '%s/%s' again", m->textfile_dir, BF_METRICS_TEXTFILE_NAME);
	m->textfile_failing = false;
}

static void *textfile_thread(void *arg)
{
	struct bf_metrics *m = arg;
	struct pollfd pfd = { .fd = m->textfile_stop_fd, .events = POLLIN };

	for (;;) {
		int n = poll(&pfd, 1, BF_METRICS_TEXTFILE_INTERVAL_S * 1000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("textfile thread: poll failed: %s; '%s/%s' is no longer updated",
				strerror(errno), m->textfile_dir, BF_METRICS_TEXTFILE_NAME);
			return NULL;
		}
		if (n > 0) /* stop requested */
			return NULL;
		write_textfile_logged(m);
	}
}

static int start_textfile(struct bf_metrics *m, struct bf_error *err)
{
	int ret;

	ret = write_textfile(m, err);
	if (ret)
		return ret;
	m->textfile_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->textfile_stop_fd < 0)
		return bf_error_set(err, -errno, "failed to create an eventfd: %s",
				    strerror(errno));
	ret = pthread_create(&m->textfile_thread, NULL, textfile_thread, m);
	if (ret)
		return bf_error_set(err, -ret, "failed to start the textfile thread: %s",
				    strerror(ret));
	m->textfile_running = true;
	return 0;
}

/* --- start and stop ------------------------------------------------------------------------- */

int bf_metrics_start(struct bf_metrics *m, struct bf_daemon *d, const char *version,
		     const char *textfile_dir, struct bf_error *err)
{
	sigset_t all, old;
	int ret;

	memset(m, 0, sizeof(*m));
	m->daemon = d;
	m->version = version;
	m->textfile_dir = textfile_dir;
	m->textfile_stop_fd = -1;

	/*
	 * Threads inherit the signal mask. The event loop blocks the signals it
	 * reads from its signalfd only later, so block them all here, or SIGTERM
	 * could reach one of these threads and end the daemon without its
	 * clean-up.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = start_httpd(m, d->cfg.metrics_listen, err);
	if (!ret && textfile_dir)
		ret = start_textfile(m, err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		bf_metrics_stop(m);
	return ret;
}

void bf_metrics_stop(struct bf_metrics *m)
{
	struct bf_error err = {};
	uint64_t one = 1;

	if (!m->daemon)
		return;
	if (m->httpd) {
		/* Waits for the requests in progress; MHD closes the listening socket. */
		MHD_stop_daemon(m->httpd);
		m->httpd = NULL;
	}
	if (m->textfile_running) {
		if (write(m->textfile_stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(m->textfile_thread, NULL);
		m->textfile_running = false;
		if (write_textfile(m, &err))
			log_warn("%s; the file keeps the values of the previous write", err.msg);
	}
	if (m->textfile_stop_fd >= 0)
		close(m->textfile_stop_fd);
	m->textfile_stop_fd = -1;
	m->daemon = NULL;
}
