// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "lib/stack.h"
#include "log.h"
#include "reload.h"

/* A change reloads once the files have been quiet this long, so a copy in steps loads once. */
#define RELOAD_QUIET_NS (1000ull * 1000000)

void bf_geo_history_add(struct bf_geo_generation *history, uint16_t id,
			const struct bf_geo_table *table)
{
	struct bf_geo_generation *slot = &history[id % BF_GEO_GENERATIONS];

	slot->id = id;
	slot->nsources = table->nsources;
	memcpy(slot->sources, table->sources, table->nsources * sizeof(table->sources[0]));
}

void bf_geo_history_describe(const struct bf_geo_generation *history, uint16_t id,
			     unsigned int source, char *out, size_t size)
{
	const struct bf_geo_generation *slot = &history[id % BF_GEO_GENERATIONS];

	if (slot->id != id) {
		snprintf(out, size, "generation %u of the data (no longer kept)", id);
		return;
	}
	if (source >= slot->nsources) {
		snprintf(out, size, "none");
		return;
	}
	bf_geo_source_format(&slot->sources[source], out, size);
}

static void swap_bytes(void *a, void *b, size_t size)
{
	char tmp[sizeof(((struct bf_config *)0)->geo_mmdb_country)];
	char *x = a, *y = b;
	size_t done, n;

	for (done = 0; done < size; done += n) {
		n = size - done < sizeof(tmp) ? size - done : sizeof(tmp);
		memcpy(tmp, x + done, n);
		memcpy(x + done, y + done, n);
		memcpy(y + done, tmp, n);
	}
}

#define SWAP_FIELD(a, b, field) swap_bytes(&(a)->field, &(b)->field, sizeof((a)->field))

/*
 * Exchanges the [policy] and [geo] settings of two configs, with the
 * ownership of their strings, so freeing next frees what was in force.
 */
static void swap_policy_and_geo(struct bf_config *cur, struct bf_config *next)
{
	SWAP_FIELD(cur, next, approved);
	SWAP_FIELD(cur, next, napproved);
	SWAP_FIELD(cur, next, unknown_alert);
	SWAP_FIELD(cur, next, geo_data);
	SWAP_FIELD(cur, next, ngeo_data);
	SWAP_FIELD(cur, next, geo_override);
	SWAP_FIELD(cur, next, ngeo_override);
	SWAP_FIELD(cur, next, geo_lists);
	SWAP_FIELD(cur, next, geo_list_countries);
	SWAP_FIELD(cur, next, ngeo_lists);
	SWAP_FIELD(cur, next, geo_mmdb_country);
	SWAP_FIELD(cur, next, ngeo_mmdb_country);
}

void bf_reload(struct bf_daemon *d, const char *reason)
{
	struct bf_geo_table table, old_table;
	struct bf_config next;
	struct bf_error err = {};
	struct timespec t0, t1;
	uint16_t generation = d->generation + 1 ? d->generation + 1 : 1;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	bf_config_defaults(&next);
	bf_geo_table_init(&table);
	ret = bf_config_load(&next, d->cfg.path, &err);
	if (!ret)
		ret = bf_geo_load_stack(&table, &next, &err);
	if (!ret)
		ret = bf_monitor_fill_geo(&d->mon, &table, &next, generation, &err);
	if (ret) {
		log_err("reload (%s) failed: %s; the geolocation data in force stays (generation "
			"%u)",
			reason, err.msg, d->generation);
		pthread_mutex_lock(&d->lock);
		d->reload_failures++;
		d->reload_failed = true;
		pthread_mutex_unlock(&d->lock);
		goto out;
	}

	pthread_mutex_lock(&d->lock);
	d->reload_failed = false;
	old_table = d->table;
	d->table = table;
	table = old_table;
	swap_policy_and_geo(&d->cfg, &next);
	d->generation = generation;
	bf_geo_history_add(d->history, generation, &d->table);
	pthread_mutex_unlock(&d->lock);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_notice("geolocation data reloaded (%s) in %.3f s: generation %u, prefixes IPv4 %zu and "
		   "IPv6 %zu; [policy] and [geo] re-read, other sections apply at the next start",
		   reason, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, generation,
		   d->mon.prefixes4, d->mon.prefixes6);
	if (bf_reload_watch(d) < 0)
		log_warn("failed to watch the geolocation files for changes: %s, ignoring",
			 strerror(errno));
out:
	bf_geo_table_free(&table);
	bf_config_free(&next);
}

static const char *file_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * Watches the folder that contains path, because editors and installers
 * replace files by rename; a path that is a folder (a GeoIP2 CSV set) is
 * watched itself too, and any change inside it counts.
 */
static void watch_path(struct bf_daemon *d, int fd, const char *path)
{
	const uint32_t events = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE;
	char folder[4096], *slash;
	struct stat st;
	int wd;

	snprintf(folder, sizeof(folder), "%s", path);
	slash = strrchr(folder, '/');
	if (slash)
		*(slash == folder ? slash + 1 : slash) = '\0';
	(void)inotify_add_watch(fd, slash ? folder : ".", events);
	if (!stat(path, &st) && S_ISDIR(st.st_mode) && d->nfolder_wds < BF_MAX_FOLDER_WATCHES) {
		wd = inotify_add_watch(fd, path, events);
		if (wd >= 0)
			d->folder_wds[d->nfolder_wds++] = wd;
	}
}

int bf_reload_watch(struct bf_daemon *d)
{
	const struct bf_config *cfg = &d->cfg;
	size_t i;
	int fd;

	/* A new inotify instance drops the watches of files no longer named. */
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -1;
	d->nfolder_wds = 0;
	watch_path(d, fd, cfg->path);
	for (i = 0; i < cfg->ngeo_data; i++)
		watch_path(d, fd, cfg->geo_data[i]);
	for (i = 0; i < cfg->ngeo_override; i++)
		watch_path(d, fd, cfg->geo_override[i]);
	for (i = 0; i < cfg->ngeo_lists; i++)
		watch_path(d, fd, cfg->geo_lists[i]);

	if (d->inotify_fd >= 0) {
		(void)epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, d->inotify_fd, NULL);
		close(d->inotify_fd);
	}
	d->inotify_fd = fd;
	if (d->epoll_fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BF_SOURCE_INOTIFY };

		(void)epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
	}
	return fd;
}

static bool names_watched_file(const struct bf_config *cfg, const char *name)
{
	size_t i;

	if (!strcmp(file_name(cfg->path), name))
		return true;
	for (i = 0; i < cfg->ngeo_data; i++)
		if (!strcmp(file_name(cfg->geo_data[i]), name))
			return true;
	for (i = 0; i < cfg->ngeo_override; i++)
		if (!strcmp(file_name(cfg->geo_override[i]), name))
			return true;
	for (i = 0; i < cfg->ngeo_lists; i++)
		if (!strcmp(file_name(cfg->geo_lists[i]), name))
			return true;
	return false;
}

static bool is_folder_watch(const struct bf_daemon *d, int wd)
{
	size_t i;

	for (i = 0; i < d->nfolder_wds; i++)
		if (d->folder_wds[i] == wd)
			return true;
	return false;
}

void bf_reload_note_changes(struct bf_daemon *d, uint64_t now_ns)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	while ((len = read(d->inotify_fd, buf, sizeof(buf))) > 0) {
		const struct inotify_event *ev;
		char *p;

		for (p = buf; p < buf + len; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (is_folder_watch(d, ev->wd) ||
			    (ev->len && names_watched_file(&d->cfg, ev->name)))
				d->reload_at_ns = now_ns + RELOAD_QUIET_NS;
		}
	}
}
