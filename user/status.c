// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "borderflow.skel.h"
#include "lib/stack.h"
#include "metrics.h"
#include "status.h"

struct counters {
	uint64_t transmit_bytes, receive_bytes, transmit_packets, receive_packets, flows;
};

/* One row of the status: an application, a country and a verdict, split per transport. */
struct row {
	uint32_t app;
	uint16_t country;
	uint8_t verdict;
	struct counters all, tcp, udp;
};

struct rows {
	struct row *items;
	size_t n, cap;
};

static struct row *find_row(struct rows *rows, uint32_t app, uint16_t country, uint8_t verdict)
{
	struct row *r;
	size_t i;

	for (i = 0; i < rows->n; i++) {
		r = &rows->items[i];
		if (r->app == app && r->country == country && r->verdict == verdict)
			return r;
	}
	if (rows->n == rows->cap) {
		size_t cap = rows->cap ? rows->cap * 2 : 256;

		r = realloc(rows->items, cap * sizeof(*r));
		if (!r)
			return NULL;
		rows->items = r;
		rows->cap = cap;
	}
	r = &rows->items[rows->n++];
	memset(r, 0, sizeof(*r));
	r->app = app;
	r->country = country;
	r->verdict = verdict;
	return r;
}

static void add_counters(struct counters *c, const struct bf_total_value *v)
{
	c->transmit_bytes += v->transmit_bytes;
	c->receive_bytes += v->receive_bytes;
	c->transmit_packets += v->transmit_packets;
	c->receive_packets += v->receive_packets;
	c->flows += v->flows;
}

static int add_total_row(const struct bf_total_key *key, const struct bf_total_value *sum,
			 void *ctx)
{
	struct row *r = find_row(ctx, key->app, key->country, key->verdict);

	if (!r)
		return -ENOMEM;
	add_counters(&r->all, sum);
	if (key->proto == BF_PROTO_TCP)
		add_counters(&r->tcp, sum);
	else if (key->proto == BF_PROTO_UDP)
		add_counters(&r->udp, sum);
	return 0;
}

/* Sums the per-CPU totals into rows. The map is only read: totals are monotonic. */
static int read_totals(struct bf_monitor *mon, struct rows *rows)
{
	return bf_totals_foreach(bpf_map__fd(mon->skel->maps.totals), add_total_row, rows);
}

static int read_stat(struct bf_monitor *mon, __u32 index, uint64_t *sum)
{
	return bf_stat_read(bpf_map__fd(mon->skel->maps.stats), index, sum);
}

static void add_u64(json_object *obj, const char *name, uint64_t value)
{
	json_object_object_add(obj, name, json_object_new_uint64(value));
}

static void add_counter_fields(json_object *obj, const struct counters *c)
{
	add_u64(obj, "transmit_bytes", c->transmit_bytes);
	add_u64(obj, "receive_bytes", c->receive_bytes);
	add_u64(obj, "transmit_packets", c->transmit_packets);
	add_u64(obj, "receive_packets", c->receive_packets);
	add_u64(obj, "flows", c->flows);
}

static json_object *build_destination(const struct row *r)
{
	json_object *dest = json_object_new_object(), *tcp, *udp;
	char country[3];

	bf_country_format(r->country, country);
	json_object_object_add(dest, "country", json_object_new_string(country));
	json_object_object_add(dest, "verdict",
			       json_object_new_string(bf_verdict_name(r->verdict)));
	add_counter_fields(dest, &r->all);
	tcp = json_object_new_object();
	add_counter_fields(tcp, &r->tcp);
	json_object_object_add(dest, "tcp", tcp);
	udp = json_object_new_object();
	add_counter_fields(udp, &r->udp);
	json_object_object_add(dest, "udp", udp);
	return dest;
}

static int compare_rows(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	uint64_t bx = x->all.transmit_bytes + x->all.receive_bytes;
	uint64_t by = y->all.transmit_bytes + y->all.receive_bytes;

	if (x->app != y->app)
		return x->app < y->app ? -1 : 1;
	return bx > by ? -1 : bx < by;
}

static bool has_rows(const struct rows *rows, uint32_t app)
{
	size_t i;

	for (i = 0; i < rows->n; i++)
		if (rows->items[i].app == app)
			return true;
	return false;
}

/*
 * Applications in config order, then applications no longer in the config
 * whose pinned counters have counts, then other, then unattributed.
 */
static json_object *build_apps(const struct bf_config *cfg, const struct bf_registry *registry,
			       struct rows *rows, uint64_t *unattributed_bytes)
{
	json_object *apps = json_object_new_array();
	uint32_t ids[2 * BF_MAX_APPS + 2], id;
	size_t nids = 0, i, j;

	for (i = 0; i < cfg->napps; i++)
		ids[nids++] = registry->ids[i];
	for (id = 1; id <= BF_MAX_APPS; id++) {
		bool configured = false;

		for (i = 0; i < cfg->napps; i++)
			configured |= registry->ids[i] == id;
		if (!configured && registry->names[id][0] && has_rows(rows, id))
			ids[nids++] = id;
	}
	ids[nids++] = BF_APP_OTHER;
	ids[nids++] = BF_APP_UNATTRIBUTED;
	qsort(rows->items, rows->n, sizeof(*rows->items), compare_rows);

	*unattributed_bytes = 0;
	for (i = 0; i < nids; i++) {
		json_object *app = json_object_new_object(), *dests = json_object_new_array();

		json_object_object_add(app, "app",
				       json_object_new_string(bf_registry_name(registry, ids[i])));
		for (j = 0; j < rows->n; j++) {
			const struct row *r = &rows->items[j];

			if (r->app != ids[i])
				continue;
			json_object_array_add(dests, build_destination(r));
			if (r->app == BF_APP_UNATTRIBUTED)
				*unattributed_bytes += r->all.transmit_bytes + r->all.receive_bytes;
		}
		json_object_object_add(app, "destinations", dests);
		json_object_array_add(apps, app);
	}
	return apps;
}

/* Returns the descriptions of all sources of the stack, joined by "; ", or "none". */
static json_object *describe_stack(const struct bf_geo_table *table)
{
	char text[4200], *joined = NULL;
	size_t len = 0, i;
	json_object *out;

	for (i = 0; i < table->nsources; i++) {
		size_t length;
		char *grown;

		bf_geo_source_describe(table, i, text, sizeof(text));
		length = strlen(text);
		grown = realloc(joined, len + length + 3);
		if (!grown)
			break;
		joined = grown;
		if (len) {
			memcpy(joined + len, "; ", 2);
			len += 2;
		}
		memcpy(joined + len, text, length + 1);
		len += length;
	}
	out = json_object_new_string(joined ? joined : "none");
	free(joined);
	return out;
}

static json_object *build_geo(struct bf_monitor *mon, const struct bf_geo_table *table,
			      uint16_t generation)
{
	json_object *geo = json_object_new_object(), *sources = json_object_new_array();
	char text[4200];
	size_t i;

	for (i = 0; i < table->nsources; i++) {
		const struct bf_geo_source *src = &table->sources[i];
		json_object *obj = json_object_new_object();

		json_object_object_add(obj, "path", json_object_new_string(src->path));
		bf_geo_source_describe(table, i, text, sizeof(text));
		json_object_object_add(obj, "description", json_object_new_string(text));
		json_object_object_add(obj, "date", json_object_new_string(src->date));
		add_u64(obj, "ranges_ipv4", src->count4);
		add_u64(obj, "ranges_ipv6", src->count6);
		json_object_array_add(sources, obj);
	}
	json_object_object_add(geo, "sources", sources);
	json_object_object_add(geo, "source", describe_stack(table));
	json_object_object_add(
		geo, "date", json_object_new_string(table->nsources ? table->sources[0].date : ""));
	add_u64(geo, "prefixes_ipv4", mon->prefixes4);
	add_u64(geo, "generation", generation);
	add_u64(geo, "prefixes_ipv6", mon->prefixes6);
	return geo;
}

static json_object *build_alert_counts(const struct bf_registry *registry,
				       const struct bf_alerts *alerts)
{
	json_object *list = json_object_new_array();
	size_t i;

	for (i = 0; i < alerts->ncounts; i++) {
		const struct bf_alert_count *c = &alerts->counts[i];
		json_object *obj = json_object_new_object();
		char country[3];

		bf_country_format(c->country, country);
		json_object_object_add(obj, "app",
				       json_object_new_string(bf_registry_name(registry, c->app)));
		json_object_object_add(obj, "country", json_object_new_string(country));
		json_object_object_add(
			obj, "rule",
			json_object_new_string(c->rule ? BF_RULE_UNKNOWN : BF_RULE_FOREIGN));
		add_u64(obj, "count", c->count);
		json_object_array_add(list, obj);
	}
	return list;
}

json_object *bf_status_build(struct bf_monitor *mon, const struct bf_config *cfg,
			     const struct bf_geo_table *table, uint16_t generation,
			     const struct bf_alerts *alerts)
{
	static const struct {
		const char *name;
		__u32 index;
	} stats[] = {
		{ "lost_events", BF_STAT_EVENTS_LOST },
		{ "flows_untracked", BF_STAT_FLOWS_FULL },
		{ "totals_full", BF_STAT_TOTALS_FULL },
		{ "overflow_bytes", BF_STAT_OVERFLOW_BYTES },
		{ "unparsed_packets", BF_STAT_UNPARSED_PACKETS },
		{ "procs_full", BF_STAT_PROCS_FULL },
		{ "alerts_lost", BF_STAT_ALERTS_LOST },
	};
	struct rows rows = {};
	uint64_t unattributed = 0, value;
	json_object *root;
	size_t i;
	int ret;

	ret = read_totals(mon, &rows);
	if (ret) {
		free(rows.items);
		errno = -ret;
		return NULL;
	}
	root = json_object_new_object();
	json_object_object_add(root, "apps", build_apps(cfg, &mon->registry, &rows, &unattributed));
	add_u64(root, "unattributed_bytes", unattributed);
	for (i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		if (read_stat(mon, stats[i].index, &value))
			value = 0;
		add_u64(root, stats[i].name, value);
	}
	json_object_object_add(root, "alerts", build_alert_counts(&mon->registry, alerts));
	json_object_object_add(root, "geo", build_geo(mon, table, generation));
	json_object_object_add(root, "cgroup", json_object_new_string(mon->cgroup_path));
	free(rows.items);
	return root;
}
