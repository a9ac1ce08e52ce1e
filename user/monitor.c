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
#include "lib/geomap.h"
#include "monitor.h"

#include "../maps/geo.h"
#include "../maps/proc.h"

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
	ret = bpf_map__set_max_entries(mon->skel->maps.socks, cfg->sockets);
	if (ret)
		return bf_error_set(err, ret, "failed to set the size of the socks map to %u: %s",
				    cfg->sockets, strerror(-ret));
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
	value.verdict = bf_range_verdict(table, cfg, country, source);
	return value;
}

/*
 * Puts a filled table in slot 0 of its array of maps. The update replaces
 * the old table in one step: a lookup runs on the old or on the new one,
 * and the kernel frees the old one when the last lookup on it is done.
 */
static int put_in_place(struct bpf_map *outer, int table_fd)
{
	__u32 slot = 0;

	return bpf_map_update_elem(bpf_map__fd(outer), &slot, &table_fd, BPF_ANY);
}

/* Returns an fd of the table in slot 0 of outer, or a negative errno when there is none. */
static int table_in_place(struct bpf_map *outer)
{
	__u32 slot = 0, id;
	int fd;

	if (bpf_map_lookup_elem(bpf_map__fd(outer), &slot, &id))
		return -errno;
	fd = bpf_map_get_fd_by_id(id);
	return fd < 0 ? -errno : fd;
}

/*
 * The new tables fill aside, while the ones in force keep serving lookups,
 * and go in place only when both are complete.
 */
int bf_monitor_fill_geo(struct bf_monitor *mon, const struct bf_geo_table *table,
			const struct bf_config *cfg, uint16_t generation, struct bf_error *err)
{
	struct bf_geo_map_fill filled = { 0 };
	size_t n4 = 0, n6 = 0, prefixes4 = 0, prefixes6 = 0;
	int fd4, fd6, old4 = -1, ret;

	ret = bf_geo_map_count(table, &n4, &n6);
	if (!ret)
		ret = bf_geo_count_prefixes(table, &prefixes4, &prefixes6);
	if (ret)
		return bf_error_set(err, ret, "failed to count geolocation ranges: %s",
				    strerror(-ret));
	fd4 = bf_geo_map_create(4, n4);
	fd6 = bf_geo_map_create(6, n6);
	if (fd4 < 0 || fd6 < 0) {
		ret = fd4 < 0 ? fd4 : fd6;
		bf_error_set(err, ret,
			     "failed to create geolocation tables for %zu and %zu ranges: %s", n4,
			     n6, strerror(-ret));
		goto out;
	}
	ret = bf_geo_map_fill(fd4, fd6, table, cfg, generation, &filled, err);
	if (ret)
		goto out;
	old4 = table_in_place(mon->skel->maps.geo4);
	ret = put_in_place(mon->skel->maps.geo4, fd4);
	if (!ret) {
		ret = put_in_place(mon->skel->maps.geo6, fd6);
		/* The IPv4 table of the data in force goes back, so both stay of one generation. */
		if (ret && old4 >= 0 && put_in_place(mon->skel->maps.geo4, old4))
			log_err("failed to put the previous IPv4 geolocation table back: IPv4 "
				"uses the new data and IPv6 the previous data");
	}
	if (ret) {
		bf_error_set(err, ret, "failed to put the geolocation tables in place: %s",
			     strerror(-ret));
		goto out;
	}
	mon->prefixes4 = prefixes4;
	mon->prefixes6 = prefixes6;
out:
	/* The arrays of maps hold their own references to tables in place. */
	if (fd4 >= 0)
		close(fd4);
	if (fd6 >= 0)
		close(fd6);
	if (old4 >= 0)
		close(old4);
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
				log_warn("[app %s] path '%s' does not exist, so it is not watched; "
					 "restart the daemon once it exists",
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
