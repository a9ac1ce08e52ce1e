// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "borderflow.skel.h"
#include "log.h"
#include "monitor.h"

#include "../maps/geo.h"
#include "../maps/proc.h"

/* Room above the loaded data, so that a reload with a few more prefixes fits. */
#define GEO_HEADROOM 4096

int bf_monitor_load(struct bf_monitor *mon, const struct bf_geo_table *table, struct bf_error *err)
{
	size_t n4 = 0, n6 = 0;
	int ret;

	memset(mon, 0, sizeof(*mon));
	mon->cgroup_fd = -1;

	ret = bf_geo_count_prefixes(table, &n4, &n6);
	if (ret)
		return bf_error_set(err, ret, "failed to count geolocation prefixes: %s", strerror(-ret));

	mon->skel = borderflow_bpf__open();
	if (!mon->skel)
		return bf_error_set(err, -errno, "failed to open BPF object: %s", strerror(errno));

	ret = bpf_map__set_max_entries(mon->skel->maps.geo4, n4 + GEO_HEADROOM);
	if (!ret)
		ret = bpf_map__set_max_entries(mon->skel->maps.geo6, n6 + GEO_HEADROOM);
	if (ret)
		return bf_error_set(err, ret, "failed to size geolocation tries: %s", strerror(-ret));

	ret = borderflow_bpf__load(mon->skel);
	if (ret)
		return bf_error_set(err, ret,
				    "failed to load BPF programs: %s (run with -v for the verifier log)",
				    strerror(-ret));
	return 0;
}

static enum bf_verdict range_verdict(const struct bf_geo_table *table, const struct bf_config *cfg,
				     uint16_t country, uint8_t source)
{
	bool local = source < table->nsources &&
		     table->sources[source].format == BF_GEO_FORMAT_BUILTIN;

	return bf_config_verdict(cfg, country, local);
}

/*
 * Prefixes are collected in arrays and written with one batch call per
 * family. BPF_MAP_UPDATE_BATCH is tried first; kernels whose LPM tries lack
 * batch operations get one update per prefix.
 */
struct prefix_batch {
	void *keys;
	struct bf_geo_value *values;
	size_t count, capacity, key_size;
	struct bf_geo_value current;
};

static int batch_reserve(struct prefix_batch *batch)
{
	size_t capacity;
	void *keys, *values;

	if (batch->count < batch->capacity)
		return 0;
	capacity = batch->capacity ? batch->capacity * 2 : 65536;
	keys = realloc(batch->keys, capacity * batch->key_size);
	if (!keys)
		return -ENOMEM;
	batch->keys = keys;
	values = realloc(batch->values, capacity * sizeof(*batch->values));
	if (!values)
		return -ENOMEM;
	batch->values = values;
	batch->capacity = capacity;
	return 0;
}

static int add_prefix4(uint32_t addr, unsigned int prefixlen, void *ctx)
{
	struct prefix_batch *batch = ctx;
	struct bf_geo4_key *key;
	uint32_t be = htonl(addr);
	int ret = batch_reserve(batch);

	if (ret)
		return ret;
	key = (struct bf_geo4_key *)batch->keys + batch->count;
	key->prefixlen = prefixlen;
	memcpy(key->addr, &be, 4);
	batch->values[batch->count++] = batch->current;
	return 0;
}

static int add_prefix6(const uint8_t addr[16], unsigned int prefixlen, void *ctx)
{
	struct prefix_batch *batch = ctx;
	struct bf_geo6_key *key;
	int ret = batch_reserve(batch);

	if (ret)
		return ret;
	key = (struct bf_geo6_key *)batch->keys + batch->count;
	key->prefixlen = prefixlen;
	memcpy(key->addr, addr, 16);
	batch->values[batch->count++] = batch->current;
	return 0;
}

static int write_batch(int map_fd, struct prefix_batch *batch)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 count = batch->count;
	size_t i;
	int ret;

	if (!count)
		return 0;
	ret = bpf_map_update_batch(map_fd, batch->keys, batch->values, &count, &opts);
	if (!ret)
		return 0;
	if (ret != -EINVAL && ret != -524 /* ENOTSUPP */ && ret != -EOPNOTSUPP)
		return ret;
	for (i = 0; i < batch->count; i++) {
		ret = bpf_map_update_elem(map_fd, (char *)batch->keys + i * batch->key_size,
					  &batch->values[i], BPF_ANY);
		if (ret)
			return ret;
	}
	return 0;
}

int bf_monitor_fill_geo(struct bf_monitor *mon, const struct bf_geo_table *table,
			const struct bf_config *cfg, struct bf_error *err)
{
	struct prefix_batch b4 = { .key_size = sizeof(struct bf_geo4_key) };
	struct prefix_batch b6 = { .key_size = sizeof(struct bf_geo6_key) };
	size_t i;
	int ret = 0;

	for (i = 0; i < table->n4 && !ret; i++) {
		const struct bf_range4 *r = &table->v4[i];

		b4.current.country = r->country;
		b4.current.source = r->source;
		b4.current.verdict = range_verdict(table, cfg, r->country, r->source);
		ret = bf_range4_to_prefixes(r->first, r->last, add_prefix4, &b4);
	}
	for (i = 0; i < table->n6 && !ret; i++) {
		const struct bf_range6 *r = &table->v6[i];

		b6.current.country = r->country;
		b6.current.source = r->source;
		b6.current.verdict = range_verdict(table, cfg, r->country, r->source);
		ret = bf_range6_to_prefixes(r->first, r->last, add_prefix6, &b6);
	}
	if (ret) {
		bf_error_set(err, ret, "failed to convert geolocation ranges: %s", strerror(-ret));
		goto out;
	}

	ret = write_batch(bpf_map__fd(mon->skel->maps.geo4), &b4);
	if (ret) {
		bf_error_set(err, ret, "failed to write %zu IPv4 prefixes to the kernel: %s", b4.count,
			     strerror(-ret));
		goto out;
	}
	ret = write_batch(bpf_map__fd(mon->skel->maps.geo6), &b6);
	if (ret) {
		bf_error_set(err, ret, "failed to write %zu IPv6 prefixes to the kernel: %s", b6.count,
			     strerror(-ret));
		goto out;
	}
	mon->prefixes4 = b4.count;
	mon->prefixes6 = b6.count;
out:
	free(b4.keys);
	free(b4.values);
	free(b6.keys);
	free(b6.values);
	return ret;
}

static int add_inode(int map_fd, const char *path, bool folder, __u32 app, struct bf_error *err)
{
	struct bf_inode_key key = {};
	struct stat st;
	int ret;

	if (stat(path, &st)) {
		if (errno == ENOENT)
			return -ENOENT; /* the caller decides whether that is an error */
		return bf_error_set(err, -errno, "failed to stat '%s': %s", path, strerror(errno));
	}
	if (folder != !!S_ISDIR(st.st_mode))
		return bf_error_set(err, folder ? -ENOTDIR : -EISDIR, "'%s' is %s", path,
				    folder ? "not a folder (a watched folder path ends in '/')"
					   : "a folder (end the path with '/' to watch it)");
	key.ino = st.st_ino;
	key.dev = bf_kernel_dev(st.st_dev);
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
		__u32 id = i + 1;

		for (j = 0; j < app->npaths; j++) {
			const char *path = app->paths[j];
			bool folder = path[strlen(path) - 1] == '/';

			ret = add_inode(folder ? dirs_fd : inodes_fd, path, folder, id, err);
			if (ret == -ENOENT) {
				log_warn("application '%s': '%s' does not exist, ignoring it until "
					 "the next start",
					 app->name, path);
				continue;
			}
			if (ret)
				return ret;
		}
		for (j = 0; j < app->ncomms; j++) {
			struct bf_comm_key key = {};

			snprintf(key.comm, sizeof(key.comm), "%s", app->comms[j]);
			ret = bpf_map_update_elem(comms_fd, &key, &id, BPF_ANY);
			if (ret)
				return bf_error_set(err, ret, "failed to watch process name '%s': %s",
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
		ret = add_link(mon, bpf_program__attach(progs[i]), bpf_program__name(progs[i]), err);
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
		return bf_error_set(err, ret,
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
		ret = add_link(mon, bpf_program__attach_cgroup(progs[i], mon->cgroup_fd), what, err);
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
	borderflow_bpf__destroy(mon->skel);
	mon->skel = NULL;
}
