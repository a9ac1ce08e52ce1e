// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "borderflow.skel.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "status.h"

#include "../maps/proc.h"

#define TICK_S	       1
#define EXPIRE_EVERY_S 5

/*
 * Flow expiry. A connected socket's flow is in its socks entry. It ends at
 * sock_release, but the entry stays until it has been idle for
 * ENDED_LINGER_NS, because data still queued at close(2) and the FIN
 * exchange follow the release. The kernel counts such late packets into
 * the entry, never into a new one, and always into totals. An entry that
 * sock_create did not make may see no release (BF_SOCK_ADOPTED): it goes
 * when idle for TCP_IDLE_NS. The flows map contains the rest. A flow
 * that a connect() to another peer ended lingers as an ended one.
 * Unconnected UDP flows never see a release for their peer, so they end
 * when idle for UDP_IDLE_NS. TCP flows idle for TCP_IDLE_NS are taken as
 * gone: keepalive of live connections is far more frequent in practice.
 */
#define ENDED_LINGER_NS (10ull * 1000000000)
#define UDP_IDLE_NS	(180ull * 1000000000)
#define TCP_IDLE_NS	(6ull * 3600 * 1000000000)
#define EXPIRE_BATCH	4096

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct bf_daemon *d = ctx;
	const struct bf_event *event = data;

	if (size < sizeof(*event))
		return 0;
	pthread_mutex_lock(&d->lock);
	switch (event->type) {
	case BF_EVENT_FLOW_START:
		d->flows_started++;
		break;
	case BF_EVENT_FLOW_END:
		d->flows_ended++;
		break;
	case BF_EVENT_OUT_OF_REGION:
		(void)bf_alerts_handle(&d->alerts, event, monotonic_ns() / 1000000000);
		break;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/*
 * Reads a hash map in batches of EXPIRE_BATCH and calls fn for each entry,
 * which returns true to list the key as expired. The keys listed in a batch
 * go to drop before the next batch is read, so one pass removes any number
 * of entries. The batch walk goes bucket by bucket, and deleting entries of
 * buckets already read does not disturb it.
 */
static void scan_map(int fd, size_t key_size, size_t value_size,
		     bool (*fn)(const void *key, const void *value, uint64_t now_ns),
		     void (*drop)(struct bf_daemon *d, int fd, const void *keys, size_t n),
		     struct bf_daemon *d, uint64_t now_ns)
{
	void *keys = calloc(EXPIRE_BATCH, key_size), *values = calloc(EXPIRE_BATCH, value_size);
	void *expired = calloc(EXPIRE_BATCH, key_size);
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u64 batch = 0;
	bool first = true;
	size_t n, i;

	while (keys && values && expired) {
		__u32 count = EXPIRE_BATCH;
		int ret = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, values,
					       &count, &opts);

		first = false;
		for (i = 0, n = 0; i < count; i++) {
			const char *key = (const char *)keys + i * key_size;

			if (fn(key, (const char *)values + i * value_size, now_ns))
				memcpy((char *)expired + n++ * key_size, key, key_size);
		}
		drop(d, fd, expired, n);
		if (ret) /* -ENOENT: the whole map was read */
			break;
	}
	free(keys);
	free(values);
	free(expired);
}

static bool flow_expired(const void *k, const void *v, uint64_t now_ns)
{
	const struct bf_flow_key *key = k;
	const struct bf_flow_value *flow = v;
	uint64_t idle = now_ns > flow->last_ns ? now_ns - flow->last_ns : 0;

	if (flow->end_ns)
		return idle > ENDED_LINGER_NS;
	if (key->proto == BF_PROTO_TCP)
		return idle > TCP_IDLE_NS;
	return idle > UDP_IDLE_NS;
}

static bool sock_expired(const void *key, const void *v, uint64_t now_ns)
{
	const struct bf_sock *sock = v;
	uint64_t idle = now_ns > sock->flow.last_ns ? now_ns - sock->flow.last_ns : 0;

	(void)key;
	if ((sock->flags & BF_SOCK_FLOW) && sock->flow.end_ns)
		return idle > ENDED_LINGER_NS;
	/* Any other entry is a live socket's, which sock_release removes, unless adopted. */
	return (sock->flags & BF_SOCK_ADOPTED) && idle > TCP_IDLE_NS;
}

/*
 * Deletes expired flows one by one with lookup-and-delete: a packet that
 * lands between the scan and the delete is in the value returned here, so
 * the final counters are exact.
 */
static void drop_flows(struct bf_daemon *d, int fd, const void *keys, size_t n)
{
	const struct bf_flow_key *expired = keys;
	struct bf_flow_value flow;
	size_t i;

	for (i = 0; i < n; i++)
		if (!bpf_map_lookup_and_delete_elem(fd, &expired[i], &flow))
			__atomic_add_fetch(&d->flows_expired, 1, __ATOMIC_RELAXED);
}

/* As drop_flows, for the socks entries of ended flows. */
static void drop_socks(struct bf_daemon *d, int fd, const void *keys, size_t n)
{
	const __u64 *expired = keys;
	struct bf_sock sock;
	size_t i;

	for (i = 0; i < n; i++)
		if (!bpf_map_lookup_and_delete_elem(fd, &expired[i], &sock))
			__atomic_add_fetch(&d->flows_expired, 1, __ATOMIC_RELAXED);
}

void bf_daemon_expire_flows(struct bf_daemon *d, uint64_t now_ns)
{
	scan_map(bpf_map__fd(d->mon.skel->maps.socks), sizeof(__u64), sizeof(struct bf_sock),
		 sock_expired, drop_socks, d, now_ns);
	scan_map(bpf_map__fd(d->mon.skel->maps.flows), sizeof(struct bf_flow_key),
		 sizeof(struct bf_flow_value), flow_expired, drop_flows, d, now_ns);
}

/* Exited processes keep their entry this long, for alerts that name their executable. */
#define EXITED_LINGER_NS (60ull * 1000000000)

static bool proc_expired(const void *key, const void *v, uint64_t now_ns)
{
	const struct bf_proc_value *value = v;

	return (value->flags & BF_PROC_EXITED) && now_ns - value->exit_ns > EXITED_LINGER_NS;
}

static void drop_procs(struct bf_daemon *d, int fd, const void *keys, size_t n)
{
	const __u32 *expired = keys;
	struct bf_proc_value value;
	size_t i;

	for (i = 0; i < n; i++) {
		/* Recheck: the pid may have been reused by a watched process meanwhile. */
		if (!bpf_map_lookup_elem(fd, &expired[i], &value) && (value.flags & BF_PROC_EXITED))
			(void)bpf_map_delete_elem(fd, &expired[i]);
	}
}

void bf_daemon_expire_procs(struct bf_daemon *d, uint64_t now_ns)
{
	scan_map(bpf_map__fd(d->mon.skel->maps.procs), sizeof(__u32), sizeof(struct bf_proc_value),
		 proc_expired, drop_procs, d, now_ns);
}

/*
 * Logs a warning when flows filled up since the last check: the flows it
 * could not take still count in totals, but have no flow record or end event.
 */
static void warn_flows_full(struct bf_daemon *d)
{
	struct bpf_map *flows = d->mon.skel->maps.flows;
	uint64_t full;

	if (bf_stat_read(bpf_map__fd(d->mon.skel->maps.stats), BF_STAT_FLOWS_FULL, &full) ||
	    full <= d->flows_full_logged)
		return;
	log_warn("flows map full (%u entries): %llu more flows of watched applications counted "
		 "in totals only, without flow records",
		 bpf_map__max_entries(flows), (unsigned long long)(full - d->flows_full_logged));
	d->flows_full_logged = full;
}

static char *answer_request(const char *request, void *ctx)
{
	struct bf_daemon *d = ctx;
	json_object *status;
	char *text;

	if (strcmp(request, "status")) {
		if (asprintf(&text, "{\"error\":\"unknown request '%.64s'\"}\n", request) < 0)
			return NULL;
		return text;
	}
	pthread_mutex_lock(&d->lock);
	status = bf_status_build(&d->mon, &d->cfg, &d->table, d->generation, &d->alerts);
	if (status) {
		json_object_object_add(status, "flows_started",
				       json_object_new_uint64(d->flows_started));
		json_object_object_add(status, "flows_ended",
				       json_object_new_uint64(d->flows_ended));
		json_object_object_add(status, "flows_expired",
				       json_object_new_uint64(__atomic_load_n(&d->flows_expired,
									      __ATOMIC_RELAXED)));
	}
	pthread_mutex_unlock(&d->lock);
	if (!status) {
		log_err("failed to read status from the kernel maps: %s", strerror(errno));
		return NULL;
	}
	if (asprintf(&text, "%s\n",
		     json_object_to_json_string_ext(
			     status, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		text = NULL;
	json_object_put(status);
	return text;
}

static int add_source(int epoll_fd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int setup_loop(struct bf_daemon *d)
{
	struct itimerspec tick = { .it_interval = { TICK_S, 0 }, .it_value = { TICK_S, 0 } };
	sigset_t mask;
	int ret;

	/* Writes to a closed peer or pipe fail with EPIPE instead of ending the daemon. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (d->signal_fd < 0 || d->timer_fd < 0 || d->epoll_fd < 0)
		return -errno;
	if (timerfd_settime(d->timer_fd, 0, &tick, NULL))
		return -errno;

	d->events = ring_buffer__new(bpf_map__fd(d->mon.skel->maps.events), handle_event, d, NULL);
	if (!d->events)
		return -errno;
	ret = ring_buffer__add(d->events, bpf_map__fd(d->mon.skel->maps.alert_events), handle_event,
			       d);
	if (ret)
		return ret;
	ret = add_source(d->epoll_fd, ring_buffer__epoll_fd(d->events), BF_SOURCE_EVENTS);
	if (!ret)
		ret = add_source(d->epoll_fd, d->signal_fd, BF_SOURCE_SIGNAL);
	if (!ret)
		ret = add_source(d->epoll_fd, d->timer_fd, BF_SOURCE_TIMER);
	if (!ret && bf_reload_watch(d) < 0)
		log_warn("failed to watch the geolocation files for changes: %s; SIGHUP still "
			 "reloads, ignoring",
			 strerror(errno));
	if (!ret)
		ret = bf_control_start(&d->control, answer_request, d);
	return ret;
}

/* Returns true when the daemon should stop. */
static bool handle_signal(struct bf_daemon *d)
{
	struct signalfd_siginfo info;

	while (read(d->signal_fd, &info, sizeof(info)) == sizeof(info)) {
		if (info.ssi_signo == SIGHUP || info.ssi_signo == SIGUSR1) {
			/* The log rotation convention: reopen the file under its name. */
			pthread_mutex_lock(&d->lock);
			bf_alerts_reopen(&d->alerts);
			pthread_mutex_unlock(&d->lock);
			log_notice("signal %s received: alerts file reopened",
				   strsignal(info.ssi_signo));
			if (info.ssi_signo == SIGHUP)
				bf_reload(d, "SIGHUP");
			continue;
		}
		if (info.ssi_signo == SIGUSR2) {
			log_notice("signal %s received, ignoring", strsignal(info.ssi_signo));
			continue;
		}
		log_notice("signal %s received, stopping", strsignal(info.ssi_signo));
		return true;
	}
	return false;
}

int bf_daemon_run(struct bf_daemon *d)
{
	uint64_t ticks = 0, expirations;
	struct epoll_event evs[8];
	int ret, n, i;

	ret = setup_loop(d);
	if (ret) {
		log_err("failed to set up the event loop: %s", strerror(-ret));
		return ret;
	}
	/* stats is pinned: only what fills up from this start on gets a warning. */
	if (bf_stat_read(bpf_map__fd(d->mon.skel->maps.stats), BF_STAT_FLOWS_FULL,
			 &d->flows_full_logged))
		d->flows_full_logged = 0;
	for (;;) {
		n = epoll_wait(d->epoll_fd, evs, sizeof(evs) / sizeof(evs[0]), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			log_err("epoll_wait failed: %s", strerror(errno));
			return ret;
		}
		for (i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case BF_SOURCE_EVENTS:
				ret = ring_buffer__consume(d->events);
				if (ret < 0)
					log_err("failed to read events: %s", strerror(-ret));
				break;
			case BF_SOURCE_INOTIFY:
				bf_reload_note_changes(d, monotonic_ns());
				break;
			case BF_SOURCE_SIGNAL:
				if (handle_signal(d))
					return 0;
				break;
			case BF_SOURCE_TIMER:
				/* Flow events seldom wake the daemon, so read them here too. */
				(void)ring_buffer__consume(d->events);
				if (d->reload_at_ns && monotonic_ns() >= d->reload_at_ns) {
					d->reload_at_ns = 0;
					bf_reload(d, "files changed on disk");
				}
				if (read(d->timer_fd, &expirations, sizeof(expirations)) > 0 &&
				    ++ticks % EXPIRE_EVERY_S == 0) {
					bf_daemon_expire_flows(d, monotonic_ns());
					bf_daemon_expire_procs(d, monotonic_ns());
					warn_flows_full(d);
				}
				break;
			}
		}
	}
}
