// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "borderflow.skel.h"
#include "log.h"
#include "lib/apps.h"
#include "monitor.h"

#include "../maps/geo.h"
#include "../maps/proc.h"

/* Room above the loaded data, so that a reload with a few more prefixes fits. */
#define GEO_HEADROOM 4096

/* Mounts the BPF file system on /sys/fs/bpf when the pin folder is below it and nothing is. */
static int mount_bpffs(const char *pin_dir, struct bf_error *err)
{
	struct statfs st;

	if (strncmp(pin_dir, "/sys/fs/bpf/", 12))
		return 0;
	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return bf_error_set(
			err, -errno,
			"failed to mount the BPF file system on /sys/fs/bpf for [daemon] "
			"pin '%s': %s",
			pin_dir, strerror(errno));
	log_notice("mounted the BPF file system on /sys/fs/bpf");
	return 0;
}

/*
 * Creates and locks the pin folder, and points the maps to keep there at
 * it. The lock (flock(2) on the folder) keeps a second daemon from adding
 * its counts into the same maps.
 */
static int prepare_pins(struct bf_monitor *mon, const char *pin_dir, struct bf_error *err)
{
	struct bpf_map *maps[] = { mon->skel->maps.totals, mon->skel->maps.stats,
				   mon->skel->maps.app_names, mon->skel->maps.alert_counts };
	struct statfs st;
	char path[4200];
	size_t i;
	int ret;

	ret = mount_bpffs(pin_dir, err);
	if (ret)
		return ret;
	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		return bf_error_set(err, -errno, "failed to create [daemon] pin folder '%s': %s",
				    pin_dir, strerror(errno));
	mon->pin_fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mon->pin_fd < 0)
		return bf_error_set(err, -errno, "failed to open [daemon] pin folder '%s': %s",
				    pin_dir, strerror(errno));
	if (fstatfs(mon->pin_fd, &st) || st.f_type != BPF_FS_MAGIC)
		return bf_error_set(err, -EINVAL,
				    "[daemon] pin folder '%s' is not on a BPF file system; use a "
				    "folder below /sys/fs/bpf",
				    pin_dir);
	if (flock(mon->pin_fd, LOCK_EX | LOCK_NB))
		return bf_error_set(err, -EBUSY,
				    "another borderflowd uses the pinned maps in '%s'; stop it, or "
				    "give this one another [daemon] pin folder",
				    pin_dir);
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(maps[i]));
		ret = bpf_map__set_pin_path(maps[i], path);
		if (ret)
			return bf_error_set(err, ret, "failed to set pin path '%s': %s", path,
					    strerror(-ret));
	}
	return 0;
}

int bf_monitor_load(struct bf_monitor *mon, const struct bf_config *cfg, struct bf_error *err)
{
	int ret;

	memset(mon, 0, sizeof(*mon));
	mon->cgroup_fd = -1;
	mon->pin_fd = -1;

	mon->skel = borderflow_bpf__open();
	if (!mon->skel)
		return bf_error_set(err, -errno, "failed to open BPF object: %s", strerror(errno));

	mon->skel->rodata->alert_repeat_ns = cfg->alerts_repeat_s * 1000000000ull;
	if (cfg->pin_dir[0]) {
		ret = prepare_pins(mon, cfg->pin_dir, err);
		if (ret)
			return ret;
	}

	ret = borderflow_bpf__load(mon->skel);
	if (ret && cfg->pin_dir[0])
		return bf_error_set(
			err, ret,
			"failed to load BPF programs: %s; if libbpf reports a pinned map "
			"it cannot reuse, it is from an incompatible version: remove '%s' "
			"to start new counters",
			strerror(-ret), cfg->pin_dir);
	if (ret)
		return bf_error_set(
			err, ret,
			"failed to load BPF programs: %s (run with -v for the verifier log)",
			strerror(-ret));
	return bf_registry_load(&mon->registry, bpf_map__fd(mon->skel->maps.app_names), cfg, err);
}

static enum bf_verdict range_verdict(const struct bf_geo_table *table, const struct bf_config *cfg,
				     uint16_t country, uint8_t source)
{
	bool local =
		source < table->nsources && table->sources[source].format == BF_GEO_FORMAT_BUILTIN;

	return bf_config_verdict(cfg, country, local);
}

struct bf_geo_value bf_monitor_geo_value(const struct bf_geo_table *table,
					 const struct bf_config *cfg, int family,
					 const uint8_t addr[16])
{
	struct bf_geo_value value = { .country = BF_CC_NONE,
				      .verdict = BF_VERDICT_UNKNOWN,
				      .source = BF_GEO_SOURCE_NONE };
	uint16_t country;
	uint8_t source;

	if (family == 4) {
		uint32_t host;
		const struct bf_range4 *r;

		memcpy(&host, addr, 4);
		r = bf_geo_lookup4(table, ntohl(host));
		if (!r)
			return value;
		country = r->country;
		source = r->source;
	} else {
		const struct bf_range6 *r = bf_geo_lookup6(table, addr);

		if (!r)
			return value;
		country = r->country;
		source = r->source;
	}
	value.country = country;
	value.source = source;
	value.verdict = range_verdict(table, cfg, country, source);
	return value;
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
	int trie_fd; /* the new trie, not in place yet */
	const struct bf_geo_table *table;
	const struct bf_config *cfg;
	uint16_t generation;
	struct prefix_writer writer;
	int ret;
};

static void *fill_geo4(void *arg)
{
	struct fill_job *job = arg;
	const struct bf_geo_table *table = job->table;
	size_t i;

	job->ret = writer_init(&job->writer, job->trie_fd, sizeof(struct bf_geo4_key));
	job->writer.current.generation = job->generation;
	for (i = 0; i < table->n4 && !job->ret; i++) {
		const struct bf_range4 *r = &table->v4[i];

		job->writer.current.country = r->country;
		job->writer.current.source = r->source;
		job->writer.current.verdict = range_verdict(table, job->cfg, r->country, r->source);
		job->ret = bf_range4_to_prefixes(r->first, r->last, add_prefix4, &job->writer);
	}
	if (!job->ret)
		job->ret = writer_flush(&job->writer);
	writer_free(&job->writer);
	return NULL;
}

static void *fill_geo6(void *arg)
{
	struct fill_job *job = arg;
	const struct bf_geo_table *table = job->table;
	size_t i;

	job->ret = writer_init(&job->writer, job->trie_fd, sizeof(struct bf_geo6_key));
	job->writer.current.generation = job->generation;
	for (i = 0; i < table->n6 && !job->ret; i++) {
		const struct bf_range6 *r = &table->v6[i];

		job->writer.current.country = r->country;
		job->writer.current.source = r->source;
		job->writer.current.verdict = range_verdict(table, job->cfg, r->country, r->source);
		job->ret = bf_range6_to_prefixes(r->first, r->last, add_prefix6, &job->writer);
	}
	if (!job->ret)
		job->ret = writer_flush(&job->writer);
	writer_free(&job->writer);
	return NULL;
}

static int create_trie(const char *name, size_t key_size, size_t prefixes)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, name, key_size, sizeof(struct bf_geo_value),
				prefixes + GEO_HEADROOM, &opts);

	return fd < 0 ? -errno : fd;
}

/*
 * Puts a filled trie in slot 0 of its array of maps. The update replaces
 * the old trie in one step: a lookup runs on the old or on the new one,
 * and the kernel frees the old one when the last lookup on it is done.
 */
static int put_in_place(struct bpf_map *outer, int trie_fd)
{
	__u32 slot = 0;

	return bpf_map_update_elem(bpf_map__fd(outer), &slot, &trie_fd, BPF_ANY);
}

/*
 * The new tries fill aside, while the ones in force keep answering, and go
 * in place only when both are complete. They are separate maps, each with
 * its own lock in the kernel, so IPv6 fills on a second thread while IPv4
 * fills on this one. Inserting into an LPM trie costs about a microsecond
 * per prefix, which makes this the longest step of a start or a reload.
 */
int bf_monitor_fill_geo(struct bf_monitor *mon, const struct bf_geo_table *table,
			const struct bf_config *cfg, uint16_t generation, struct bf_error *err)
{
	struct fill_job job4 = { .table = table, .cfg = cfg, .generation = generation };
	struct fill_job job6 = job4;
	size_t n4 = 0, n6 = 0;
	pthread_t thread;
	bool threaded;
	int ret;

	ret = bf_geo_count_prefixes(table, &n4, &n6);
	if (ret)
		return bf_error_set(err, ret, "failed to count geolocation prefixes: %s",
				    strerror(-ret));
	job4.trie_fd = create_trie("geo4_trie", sizeof(struct bf_geo4_key), n4);
	job6.trie_fd = create_trie("geo6_trie", sizeof(struct bf_geo6_key), n6);
	if (job4.trie_fd < 0 || job6.trie_fd < 0) {
		ret = job4.trie_fd < 0 ? job4.trie_fd : job6.trie_fd;
		bf_error_set(err, ret,
			     "failed to create geolocation tries for %zu and %zu prefixes: %s", n4,
			     n6, strerror(-ret));
		goto out;
	}

	threaded = !pthread_create(&thread, NULL, fill_geo6, &job6);
	(void)fill_geo4(&job4);
	if (threaded)
		pthread_join(thread, NULL);
	else
		(void)fill_geo6(&job6);

	ret = job4.ret ? job4.ret : job6.ret;
	if (ret) {
		bf_error_set(err, ret, "failed to write %s prefixes to the kernel: %s",
			     job4.ret ? "IPv4" : "IPv6", strerror(-ret));
		goto out;
	}
	ret = put_in_place(mon->skel->maps.geo4, job4.trie_fd);
	if (!ret)
		ret = put_in_place(mon->skel->maps.geo6, job6.trie_fd);
	if (ret) {
		bf_error_set(err, ret, "failed to put the geolocation tries in place: %s",
			     strerror(-ret));
		goto out;
	}
	mon->prefixes4 = job4.writer.written;
	mon->prefixes6 = job6.writer.written;
out:
	/* The arrays of maps hold their own references to tries in place. */
	if (job4.trie_fd >= 0)
		close(job4.trie_fd);
	if (job6.trie_fd >= 0)
		close(job6.trie_fd);
	return ret;
}

static int add_inode(int map_fd, const struct stat *st, __u32 app, const char *path,
		     struct bf_error *err)
{
	struct bf_inode_key key = {};
	int ret;

	key.ino = st->st_ino;
	key.dev = bf_kernel_dev(st->st_dev);
	ret = bpf_map_update_elem(map_fd, &key, &app, BPF_ANY);
	if (ret)
		return bf_error_set(err, ret, "failed to watch '%s': %s", path, strerror(-ret));
	return 0;
}

int bf_monitor_fill_apps(struct bf_monitor *mon, const struct bf_config *cfg, struct bf_error *err)
{
	int inodes_fd = bpf_map__fd(mon->skel->maps.app_inodes);
	int dirs_fd = bpf_map__fd(mon->skel->maps.app_dirs);
	int comms_fd = bpf_map__fd(mon->skel->maps.app_comms);
	size_t i, j;
	int ret;

	for (i = 0; i < cfg->napps; i++) {
		const struct bf_app_config *app = &cfg->apps[i];
		__u32 id = mon->registry.ids[i];

		for (j = 0; j < app->npaths; j++) {
			const char *path = app->paths[j];
			bool folder = path[strlen(path) - 1] == '/';

			struct stat st;

			ret = bf_app_path_check(cfg, app, path, &st, err);
			if (ret == -ENOENT) {
				log_warn(
					"[app %s] path '%s' does not exist; it is watched from the "
					"next start after it is created, ignoring it",
					app->name, path);
				mon->missing_paths++;
				continue;
			}
			if (!ret)
				ret = add_inode(folder ? dirs_fd : inodes_fd, &st, id, path, err);
			if (ret)
				return ret;
		}
		for (j = 0; j < app->ncomms; j++) {
			struct bf_comm_key key = {};

			snprintf(key.comm, sizeof(key.comm), "%s", app->comms[j]);
			ret = bpf_map_update_elem(comms_fd, &key, &id, BPF_ANY);
			if (ret)
				return bf_error_set(err, ret,
						    "failed to watch process name '%s': %s",
						    app->comms[j], strerror(-ret));
		}
	}
	return 0;
}

static int add_link(struct bf_monitor *mon, struct bpf_link *link, const char *what,
		    struct bf_error *err)
{
	if (!link)
		return bf_error_set(err, -errno, "failed to attach %s: %s", what, strerror(errno));
	if (mon->nlinks == BF_MAX_LINKS) {
		bpf_link__destroy(link);
		return bf_error_set(err, -E2BIG, "too many BPF links");
	}
	mon->links[mon->nlinks++] = link;
	return 0;
}

int bf_monitor_attach_tracepoints(struct bf_monitor *mon, struct bf_error *err)
{
	struct bpf_program *progs[] = {
		mon->skel->progs.bf_exec,
		mon->skel->progs.bf_fork,
		mon->skel->progs.bf_exit,
	};
	size_t i;
	int ret;

	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		ret = add_link(mon, bpf_program__attach(progs[i]), bpf_program__name(progs[i]),
			       err);
		if (ret)
			return ret;
	}
	return 0;
}

int bf_find_cgroup2_root(char *path, size_t size, struct bf_error *err)
{
	char line[4096], mount_point[4096], fstype[64];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int ret = -ENOENT;

	if (!f)
		return bf_error_set(err, -errno, "failed to open /proc/self/mountinfo: %s",
				    strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		/* Fields: id parent major:minor root mount-point options ... - fstype source */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mount_point) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (strcmp(fstype, "cgroup2"))
			continue;
		if (strlen(mount_point) >= size) {
			ret = -ENAMETOOLONG;
			break;
		}
		strcpy(path, mount_point);
		ret = 0;
		break;
	}
	fclose(f);
	if (ret)
		return bf_error_set(
			err, ret,
			"no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo); "
			"mount one, e.g. 'mount -t cgroup2 none /sys/fs/cgroup/unified'");
	return 0;
}

int bf_monitor_attach_cgroup(struct bf_monitor *mon, const char *cgroup_path, struct bf_error *err)
{
	struct bpf_program *progs[] = {
		mon->skel->progs.bf_sock_create, mon->skel->progs.bf_sock_release,
		mon->skel->progs.bf_connect4,	 mon->skel->progs.bf_connect6,
		mon->skel->progs.bf_sendmsg4,	 mon->skel->progs.bf_sendmsg6,
		mon->skel->progs.bf_egress,	 mon->skel->progs.bf_ingress,
	};
	size_t i;
	int ret;

	if (cgroup_path) {
		if (strlen(cgroup_path) >= sizeof(mon->cgroup_path))
			return bf_error_set(err, -ENAMETOOLONG, "cgroup path too long: '%s'",
					    cgroup_path);
		strcpy(mon->cgroup_path, cgroup_path);
	} else {
		ret = bf_find_cgroup2_root(mon->cgroup_path, sizeof(mon->cgroup_path), err);
		if (ret)
			return ret;
	}
	mon->cgroup_fd = open(mon->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mon->cgroup_fd < 0)
		return bf_error_set(err, -errno, "failed to open cgroup '%s': %s", mon->cgroup_path,
				    strerror(errno));

	/* A cgroup link attaches in multi mode, next to other programs on the same hook. */
	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		char what[4400];

		snprintf(what, sizeof(what), "%s to cgroup '%s'", bpf_program__name(progs[i]),
			 mon->cgroup_path);
		ret = add_link(mon, bpf_program__attach_cgroup(progs[i], mon->cgroup_fd), what,
			       err);
		if (ret)
			return ret;
	}
	return 0;
}

void bf_monitor_destroy(struct bf_monitor *mon)
{
	size_t i;

	for (i = mon->nlinks; i > 0; i--)
		bpf_link__destroy(mon->links[i - 1]);
	mon->nlinks = 0;
	if (mon->cgroup_fd >= 0)
		close(mon->cgroup_fd);
	mon->cgroup_fd = -1;
	if (mon->pin_fd >= 0)
		close(mon->pin_fd); /* releases the lock */
	mon->pin_fd = -1;
	borderflow_bpf__destroy(mon->skel);
	mon->skel = NULL;
}
