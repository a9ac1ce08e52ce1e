// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Seeding of procs from /proc: processes of watched applications that were
 * already running when the daemon started. The exec program has not seen
 * them, so each is matched here the same way (executable inode, watched
 * folder among the executable's ancestors, process name), and a process
 * whose ancestor matches inherits its application, as it would at fork.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "borderflow.skel.h"
#include "log.h"
#include "monitor.h"

#include "../maps/proc.h"

#define SEED_MAX_PROCS	  65536
#define SEED_MAX_ANCESTRY 64

struct seed_proc {
	__u32 pid;
	__u32 ppid;
	__u32 app; /* 0 until matched */
};

/* Matches an executable path against the folder matchers of cfg, by canonical path prefix. */
static __u32 match_folder(const struct bf_monitor *mon, const struct bf_config *cfg,
			  const char *exe)
{
	char folder[4096];
	size_t i, j, len;

	for (i = 0; i < cfg->napps; i++) {
		for (j = 0; j < cfg->apps[i].npaths; j++) {
			const char *path = cfg->apps[i].paths[j];

			len = strlen(path);
			if (!len || path[len - 1] != '/' || !realpath(path, folder))
				continue;
			len = strlen(folder);
			if (!strncmp(exe, folder, len) && exe[len] == '/')
				return mon->registry.ids[i];
		}
	}
	return 0;
}

static __u32 match_inode_or_comm(struct bf_monitor *mon, const struct bf_config *cfg, __u32 pid)
{
	char path[64], comm[32] = "";
	struct bf_inode_key key = {};
	struct bf_comm_key comm_key = {};
	struct stat st;
	__u32 app = 0;
	FILE *f;
	size_t i, j;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (!stat(path, &st)) {
		key.ino = st.st_ino;
		key.dev = bf_kernel_dev(st.st_dev);
		if (!bpf_map_lookup_elem(bpf_map__fd(mon->skel->maps.app_inodes), &key, &app) &&
		    app)
			return app;
	}

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(comm_key.comm, sizeof(comm_key.comm), "%s", comm);
	for (i = 0; i < cfg->napps; i++)
		for (j = 0; j < cfg->apps[i].ncomms; j++)
			if (!strcmp(cfg->apps[i].comms[j], comm_key.comm))
				return mon->registry.ids[i];
	return 0;
}

static __u32 match_process(struct bf_monitor *mon, const struct bf_config *cfg, __u32 pid)
{
	char link[64], exe[4096];
	ssize_t len;
	__u32 app;

	snprintf(link, sizeof(link), "/proc/%u/exe", pid);
	len = readlink(link, exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = '\0';
		app = match_folder(mon, cfg, exe);
		if (app)
			return app;
	}
	return match_inode_or_comm(mon, cfg, pid);
}

static int read_ppid(__u32 pid, __u32 *ppid)
{
	char path[64], line[256];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "PPid: %u", ppid) == 1) {
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

static int compare_pid(const void *a, const void *b)
{
	const struct seed_proc *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static struct seed_proc *find_proc(struct seed_proc *procs, size_t n, __u32 pid)
{
	struct seed_proc key = { .pid = pid };

	return bsearch(&key, procs, n, sizeof(*procs), compare_pid);
}

/* Reads every process of /proc (threads are not listed there) into a pid-sorted array. */
static size_t list_processes(struct bf_monitor *mon, const struct bf_config *cfg,
			     struct seed_proc *procs)
{
	struct dirent *entry;
	size_t n = 0;
	DIR *dir = opendir("/proc");

	if (!dir)
		return 0;
	while ((entry = readdir(dir)) && n < SEED_MAX_PROCS) {
		char *end;
		unsigned long pid = strtoul(entry->d_name, &end, 10);

		if (!isdigit((unsigned char)entry->d_name[0]) || *end || !pid || pid > UINT32_MAX)
			continue;
		procs[n].pid = pid;
		if (read_ppid(pid, &procs[n].ppid))
			continue; /* exited meanwhile */
		procs[n].app = match_process(mon, cfg, pid);
		n++;
	}
	closedir(dir);
	qsort(procs, n, sizeof(*procs), compare_pid);
	return n;
}

int bf_monitor_seed_procs(struct bf_monitor *mon, const struct bf_config *cfg)
{
	int procs_fd = bpf_map__fd(mon->skel->maps.procs);
	struct seed_proc *procs = calloc(SEED_MAX_PROCS, sizeof(*procs));
	size_t n, i;
	int seeded = 0;

	if (!procs)
		return -ENOMEM;
	n = list_processes(mon, cfg, procs);

	for (i = 0; i < n; i++) {
		struct bf_proc_value value = { .flags = BF_PROC_SEEDED };
		struct seed_proc *p = &procs[i];
		char link[64];
		ssize_t len;
		int depth;

		value.app = p->app;
		for (depth = 0; !value.app && depth < SEED_MAX_ANCESTRY && p->ppid; depth++) {
			p = find_proc(procs, n, p->ppid);
			if (!p)
				break;
			value.app = p->app;
			value.flags = BF_PROC_SEEDED | BF_PROC_INHERITED;
		}
		if (!value.app)
			continue;
		snprintf(link, sizeof(link), "/proc/%u/exe", procs[i].pid);
		len = readlink(link, value.exe, sizeof(value.exe) - 1);
		value.exe[len > 0 ? len : 0] = '\0';
		/* BPF_NOEXIST: an entry that exec or fork wrote meanwhile is more recent. */
		if (!bpf_map_update_elem(procs_fd, &procs[i].pid, &value, BPF_NOEXIST))
			seeded++;
	}
	free(procs);
	return seeded;
}
