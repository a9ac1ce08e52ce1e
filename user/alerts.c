// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "alerts.h"
#include "lib/stack.h"
#include "lib/text.h"
#include "log.h"

#include "../maps/proc.h"

/* Bounds the repeat-suppression tree; past it the tree is cleared and repeats may alert again. */
#define MAX_RECENT 65536

/* A destination and its country: a destination placed in another country alerts again. */
struct recent_key {
	uint8_t peer[16];
	uint32_t app;
	uint16_t port;
	uint8_t family;
	uint8_t proto;
	uint16_t country;
	uint16_t pad;
	uint64_t alerted_s;
};

static int compare_recent(const void *a, const void *b)
{
	return memcmp(a, b, offsetof(struct recent_key, alerted_s));
}

void bf_format_addr(uint8_t family, const uint8_t addr[16], char *out, size_t size)
{
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, out, size))
		snprintf(out, size, "?");
}

static void load_counts(struct bf_alerts *alerts);

/*
 * Opens the alerts file for appending. It must be a regular file: a FIFO
 * would block the daemon, and a device is surely a mistake. Its folder is
 * created when missing.
 */
static int open_alerts_file(struct bf_alerts *alerts, struct bf_error *err)
{
	const char *path = alerts->cfg->alerts_file;
	char folder[4096], *slash;
	struct stat st;
	int fd;

	snprintf(folder, sizeof(folder), "%s", path);
	slash = strrchr(folder, '/');
	if (slash && slash != folder) {
		*slash = '\0';
		if (mkdir(folder, 0750) && errno != EEXIST)
			return bf_error_set(err, -errno,
					    "failed to create the folder of alerts file "
					    "'%s': %s",
					    path, strerror(errno));
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW, 0640);
	if (fd < 0 && errno == ENXIO) /* a FIFO without a reader, opened non-blocking */
		return bf_error_set(
			err, -EINVAL,
			"alerts file '%s' is not a regular file; set [alerts] file to a "
			"file path",
			path);
	if (fd < 0)
		return bf_error_set(err, -errno, "failed to open alerts file '%s': %s", path,
				    strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return bf_error_set(
			err, -EINVAL,
			"alerts file '%s' is not a regular file; set [alerts] file to a "
			"file path",
			path);
	}
	if (alerts->fd >= 0)
		close(alerts->fd);
	alerts->fd = fd;
	return 0;
}

void bf_alerts_reopen(struct bf_alerts *alerts)
{
	struct bf_error err = {};

	if (!alerts->cfg->alerts_file[0])
		return;
	if (open_alerts_file(alerts, &err))
		log_err("%s; alerts keep going to the file open before", err.msg);
	alerts->write_errors = 0;
}

int bf_alerts_open(struct bf_alerts *alerts, const struct bf_config *cfg,
		   const struct bf_geo_generation *history, const struct bf_registry *registry,
		   int procs_fd, int counts_fd, struct bf_error *err)
{
	memset(alerts, 0, sizeof(*alerts));
	alerts->counts_fd = counts_fd;
	load_counts(alerts);
	alerts->registry = registry;
	alerts->procs_fd = procs_fd;
	alerts->cfg = cfg;
	alerts->history = history;
	alerts->fd = -1;
	if (!cfg->alerts_file[0])
		return 0;
	return open_alerts_file(alerts, err);
}

/* Finds or adds the in-memory count of an application, country and rule. */
static struct bf_alert_count *find_count(struct bf_alerts *alerts, uint32_t app, uint16_t country,
					 uint8_t rule)
{
	struct bf_alert_count *c;
	size_t i;

	for (i = 0; i < alerts->ncounts; i++) {
		c = &alerts->counts[i];
		if (c->app == app && c->country == country && c->rule == rule)
			return c;
	}
	if (alerts->ncounts == alerts->capcounts) {
		size_t cap = alerts->capcounts ? alerts->capcounts * 2 : 64;

		c = realloc(alerts->counts, cap * sizeof(*c));
		if (!c)
			return NULL;
		alerts->counts = c;
		alerts->capcounts = cap;
	}
	c = &alerts->counts[alerts->ncounts++];
	*c = (struct bf_alert_count){ .app = app, .country = country, .rule = rule };
	return c;
}

/* Counts an alert in memory and in the pinned alert_counts map. */
static void count_alert(struct bf_alerts *alerts, uint32_t app, uint16_t country, uint8_t rule)
{
	struct bf_alert_count_key key = { .app = app, .country = country, .rule = rule };
	struct bf_alert_count *c = find_count(alerts, app, country, rule);

	if (!c)
		return;
	c->count++;
	if (alerts->counts_fd >= 0 &&
	    bpf_map_update_elem(alerts->counts_fd, &key, &c->count, BPF_ANY) &&
	    !alerts->count_errors++)
		log_err("failed to record an alert count in the alert_counts map: %s; the count "
			"restarts from this value at the next start",
			strerror(errno));
}

/* Reads the counts that earlier runs left in the pinned map. */
static void load_counts(struct bf_alerts *alerts)
{
	struct bf_alert_count_key key, next, *prev = NULL;
	struct bf_alert_count *c;
	__u64 value;

	while (alerts->counts_fd >= 0 && !bpf_map_get_next_key(alerts->counts_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(alerts->counts_fd, &key, &value))
			continue;
		c = find_count(alerts, key.app, key.country, key.rule);
		if (c)
			c->count = value;
	}
}

/* True when the destination alerted within the repeat interval; else records it now. */
static bool recently_alerted(struct bf_alerts *alerts, const struct bf_event *event, uint64_t now_s)
{
	struct recent_key *key = calloc(1, sizeof(*key)), **found;

	if (!key)
		return false;
	memcpy(key->peer, event->key.peer, 16);
	key->app = event->flow.app;
	key->port = event->key.peer_port;
	key->family = event->key.family;
	key->proto = event->key.proto;
	key->country = event->flow.country;
	key->alerted_s = now_s;

	if (alerts->nrecent >= MAX_RECENT) {
		tdestroy(alerts->recent, free);
		alerts->recent = NULL;
		alerts->nrecent = 0;
	}
	found = tsearch(key, &alerts->recent, compare_recent);
	if (!found) {
		free(key);
		return false;
	}
	if (*found == key) {
		alerts->nrecent++;
		return false;
	}
	free(key);
	if (now_s - (*found)->alerted_s < alerts->cfg->alerts_repeat_s)
		return true;
	(*found)->alerted_s = now_s;
	return false;
}

/*
 * Finds the executable of a process: /proc while the process runs, else the
 * path that the exec program recorded, which stays a minute after the exit.
 */
static void find_executable(const struct bf_alerts *alerts, uint32_t tgid, char *exe, size_t size)
{
	struct bf_proc_value value;
	char link[64];
	ssize_t len;

	snprintf(link, sizeof(link), "/proc/%u/exe", tgid);
	len = readlink(link, exe, size - 1);
	if (len > 0) {
		exe[len] = '\0';
		return;
	}
	if (alerts->procs_fd >= 0 && !bpf_map_lookup_elem(alerts->procs_fd, &tgid, &value)) {
		value.exe[sizeof(value.exe) - 1] = '\0';
		snprintf(exe, size, "%s", value.exe);
		return;
	}
	exe[0] = '\0';
}

/*
 * Allows at most LOG_ALERTS_PER_S alert log lines a second; the alerts file
 * gets every alert. The number left out is logged with the next line.
 */
#define LOG_ALERTS_PER_S 20

static bool log_allowed(struct bf_alerts *alerts, uint64_t now_s)
{
	if (now_s != alerts->log_second) {
		if (alerts->log_suppressed)
			log_warn("%" PRIu64 " alert log lines left out in the last seconds; the "
				 "alerts file has every alert",
				 alerts->log_suppressed);
		alerts->log_second = now_s;
		alerts->log_lines = 0;
		alerts->log_suppressed = 0;
	}
	if (alerts->log_lines++ < LOG_ALERTS_PER_S)
		return true;
	alerts->log_suppressed++;
	return false;
}

static void format_timestamp(uint64_t event_ns, char *out, size_t size)
{
	struct timespec mono, real;
	struct tm tm;
	int64_t ns;
	time_t secs;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	ns = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec -
	     ((int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec - (int64_t)event_ns);
	secs = ns / 1000000000;
	gmtime_r(&secs, &tm);
	char date[32];

	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03dZ", date, (int)(ns % 1000000000 / 1000000));
}

static json_object *object_at(json_object *parent, const char *name)
{
	json_object *child = json_object_new_object();

	json_object_object_add(parent, name, child);
	return child;
}

static void add_string(json_object *obj, const char *name, const char *value)
{
	json_object_object_add(obj, name, json_object_new_string(value));
}

static void add_int(json_object *obj, const char *name, int64_t value)
{
	json_object_object_add(obj, name, json_object_new_int64(value));
}

struct alert_text {
	char timestamp[64];
	char peer[INET6_ADDRSTRLEN];
	char local[INET6_ADDRSTRLEN];
	char country[3];
	char comm[64];	 /* escaped: up to 4 bytes per byte of the 15 of a name */
	char exe[16384]; /* escaped */
	char source[4200];
	char uid[16];
	const char *app, *rule, *verdict, *transport;
};

static json_object *build_alert(const struct bf_event *event, const struct alert_text *t)
{
	json_object *root = json_object_new_object(), *obj, *sub;

	add_string(root, "@timestamp", t->timestamp);
	obj = object_at(root, "event");
	add_string(obj, "kind", "alert");
	sub = json_object_new_array();
	json_object_array_add(sub, json_object_new_string("network"));
	json_object_object_add(obj, "category", sub);
	add_string(obj, "action", "cross-border-transfer");
	add_string(object_at(root, "rule"), "name", t->rule);
	obj = object_at(root, "process");
	add_int(obj, "pid", event->flow.tgid);
	add_string(obj, "name", t->comm);
	add_string(obj, "executable", t->exe);
	add_string(object_at(root, "user"), "id", t->uid);
	obj = object_at(root, "source");
	add_string(obj, "ip", t->local);
	add_int(obj, "port", event->flow.local_port);
	obj = object_at(root, "destination");
	add_string(obj, "ip", t->peer);
	add_int(obj, "port", event->key.peer_port);
	sub = object_at(obj, "geo");
	add_string(sub, "country_iso_code", t->country);
	obj = object_at(root, "network");
	add_string(obj, "transport", t->transport);
	add_string(obj, "type", event->key.family == 4 ? "ipv4" : "ipv6");
	add_int(obj, "bytes", event->packet_bytes);
	obj = object_at(root, "borderflow");
	add_string(obj, "app", t->app);
	add_string(obj, "verdict", t->verdict);
	add_string(obj, "geo_source", t->source);
	return root;
}

static void write_alert(struct bf_alerts *alerts, json_object *root)
{
	const char *line = json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(line);
	char *buf;

	if (alerts->fd < 0)
		return;
	buf = malloc(len + 1);
	if (!buf)
		return;
	memcpy(buf, line, len);
	buf[len] = '\n';
	/* One write(2) of the whole line, so O_APPEND keeps concurrent lines whole. */
	if (write(alerts->fd, buf, len + 1) != (ssize_t)(len + 1)) {
		if (!alerts->write_errors++)
			log_err("failed to write to alerts file '%s': %s", alerts->cfg->alerts_file,
				strerror(errno));
	}
	free(buf);
}

int bf_alerts_handle(struct bf_alerts *alerts, const struct bf_event *event, uint64_t now_s)
{
	const struct bf_flow_value *flow = &event->flow;
	static struct alert_text t; /* 20 KB: not on the stack of the event loop */
	char exe[4096];
	json_object *root;
	bool unknown = flow->verdict == BF_VERDICT_UNKNOWN;

	if (flow->verdict != BF_VERDICT_FOREIGN && !unknown)
		return 0;
	if (unknown && !alerts->cfg->unknown_alert)
		return 0;
	if (recently_alerted(alerts, event, now_s))
		return 0;
	memset(&t, 0, sizeof(t));

	format_timestamp(event->ts_ns, t.timestamp, sizeof(t.timestamp));
	bf_format_addr(event->key.family, event->key.peer, t.peer, sizeof(t.peer));
	bf_format_addr(event->key.family, flow->local, t.local, sizeof(t.local));
	bf_country_format(flow->country, t.country);
	bf_escape_text(flow->comm, sizeof(flow->comm), t.comm, sizeof(t.comm));
	find_executable(alerts, flow->tgid, exe, sizeof(exe));
	bf_escape_text(exe, sizeof(exe), t.exe, sizeof(t.exe));
	bf_geo_history_describe(alerts->history, flow->generation, flow->source, t.source,
				sizeof(t.source));
	snprintf(t.uid, sizeof(t.uid), "%u", flow->uid);
	t.app = bf_registry_name(alerts->registry, flow->app);
	t.rule = unknown ? BF_RULE_UNKNOWN : BF_RULE_FOREIGN;
	t.verdict = bf_verdict_name(flow->verdict);
	t.transport = event->key.proto == BF_PROTO_TCP	 ? "tcp"
		      : event->key.proto == BF_PROTO_UDP ? "udp"
							 : "other";

	root = build_alert(event, &t);
	write_alert(alerts, root);
	json_object_put(root);
	count_alert(alerts, flow->app, flow->country, unknown);

	if (log_allowed(alerts, now_s))
		log_warn("alert %s: app '%s' pid %u (%s) sent %u bytes over %s to %s port %u in %s "
			 "(%s), geolocation source %s",
			 t.rule, t.app, flow->tgid, t.comm, event->packet_bytes, t.transport,
			 t.peer, event->key.peer_port, t.country, t.verdict, t.source);
	return 1;
}

void bf_alerts_close(struct bf_alerts *alerts)
{
	if (alerts->fd >= 0)
		close(alerts->fd);
	alerts->fd = -1;
	tdestroy(alerts->recent, free);
	alerts->recent = NULL;
	free(alerts->counts);
	alerts->counts = NULL;
}
