// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Labelling of the inet sockets that processes already had open when the
 * daemon started. The socket hooks never ran for them, so without a label
 * their traffic would count as unattributed for as long as they stay open,
 * which for a client restarted under a running daemon can be days.
 *
 * The daemon takes a duplicate of each socket with pidfd_getfd(2) and writes
 * its owner into socks under its cookie (SO_COOKIE). BPF_NOEXIST keeps a
 * label that the hooks wrote meanwhile, and the first process found wins for
 * a socket that several processes share.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>

#include "borderflow.skel.h"
#include "log.h"
#include "monitor.h"

#include "../maps/flow.h"
#include "../maps/proc.h"

struct process_info {
	__u32 pid;
	__u32 uid;
	__u32 app;
	__u64 cgroup_id;
	char comm[16];
};

static void read_status(struct process_info *proc)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/status", proc->pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %u", &proc->uid) == 1)
			continue;
		if (!strncmp(line, "Name:\t", 6)) {
			size_t n = strcspn(line + 6, "\n");

			/* The kernel keeps 15 characters of a name: so does the label. */
			if (n > sizeof(proc->comm) - 1)
				n = sizeof(proc->comm) - 1;
			memcpy(proc->comm, line + 6, n);
			proc->comm[n] = '\0';
		}
	}
	fclose(f);
}

/*
 * Reads the cgroup v2 folder of a process into folder, and its id, the
 * inode number of the folder. Returns false when /proc does not tell it.
 */
static bool read_cgroup(struct process_info *proc, const char *cgroup_root, char *folder,
			size_t size)
{
	char path[64], line[4096];
	bool found = false;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", proc->pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(folder, size, "%s%s", cgroup_root, strcmp(line + 3, "/") ? line + 3 : "");
		if (!stat(folder, &st))
			proc->cgroup_id = st.st_ino;
		found = true;
		break;
	}
	fclose(f);
	return found;
}

/* True when folder is the cgroup folder top or one below it. */
static bool in_cgroup(const char *folder, const char *top)
{
	size_t n = strlen(top);

	while (n > 1 && top[n - 1] == '/')
		n--;
	return !strncmp(folder, top, n) && (folder[n] == '\0' || folder[n] == '/');
}

/* Fills the connected peer of fd, if any, and its geolocation as the kernel table has it. */
static void read_peer(int fd, struct bf_sock *sock, const struct bf_geo_table *table,
		      const struct bf_config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint8_t addr[16] = {};
	uint16_t port;
	int family;

	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return; /* not connected: unconnected UDP, a listener */
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		memcpy(addr, &sin->sin_addr, 4);
		port = ntohs(sin->sin_port);
		family = 4;
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(addr, &sin6->sin6_addr.s6_addr[12], 4);
			family = 4;
		} else {
			memcpy(addr, &sin6->sin6_addr, 16);
			family = 6;
		}
	} else {
		return;
	}
	memcpy(sock->peer, addr, 16);
	sock->peer_port = port;
	sock->peer_geo = bf_monitor_geo_value(table, cfg, family, addr);
	sock->peer_family = family;
}

/* Returns the transport of an inet TCP or UDP socket, else 0. */
static int counted_protocol(int fd)
{
	int domain, protocol;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) ||
	    (domain != AF_INET && domain != AF_INET6))
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len))
		return 0;
	return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP ? protocol : 0;
}

/* Labels the sockets of one process. Returns how many were labelled. */
static int label_process(struct bf_monitor *mon, const struct process_info *proc,
			 const struct bf_geo_table *table, const struct bf_config *cfg)
{
	int map_fd = bpf_map__fd(mon->skel->maps.socks);
	char folder[64], link[320], target[64];
	struct dirent *entry;
	int pidfd, labelled = 0;
	struct timespec now;
	uint64_t now_ns;
	DIR *dir;

	snprintf(folder, sizeof(folder), "/proc/%u/fd", proc->pid);
	dir = opendir(folder);
	if (!dir)
		return 0;
	pidfd = pidfd_open(proc->pid, 0);
	if (pidfd < 0) {
		closedir(dir);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	now_ns = (uint64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	while ((entry = readdir(dir))) {
		struct bf_sock sock = {};
		socklen_t len = sizeof(__u64);
		__u64 cookie;
		ssize_t n;
		int fd, proto;

		if (!isdigit((unsigned char)entry->d_name[0]))
			continue;
		snprintf(link, sizeof(link), "%s/%s", folder, entry->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:[", 8))
			continue;
		fd = pidfd_getfd(pidfd, atoi(entry->d_name), 0);
		if (fd < 0)
			continue;
		proto = counted_protocol(fd);
		if (proto && !getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len)) {
			sock.owner.tgid = proc->pid;
			sock.owner.uid = proc->uid;
			sock.owner.app = proc->app;
			sock.owner.cgroup_id = proc->cgroup_id;
			memcpy(sock.owner.comm, proc->comm, sizeof(sock.owner.comm));
			sock.proto = proto;
			/*
			 * The socket may belong to another cgroup than its process,
			 * and then no sock_release reaches the programs: as an
			 * adopted entry it goes when idle.
			 */
			sock.flags = BF_SOCK_ADOPTED;
			sock.flow.last_ns = now_ns;
			read_peer(fd, &sock, table, cfg);
			if (!bpf_map_update_elem(map_fd, &cookie, &sock, BPF_NOEXIST))
				labelled++;
		}
		close(fd);
	}
	close(pidfd);
	closedir(dir);
	return labelled;
}

int bf_monitor_seed_sockets(struct bf_monitor *mon, const struct bf_geo_table *table,
			    const struct bf_config *cfg)
{
	int procs_fd = bpf_map__fd(mon->skel->maps.procs);
	char cgroup_root[4096] = "", attached[PATH_MAX], folder[8192];
	struct dirent *entry;
	int labelled = 0;
	DIR *dir;

	(void)bf_find_cgroup2_root(cgroup_root, sizeof(cgroup_root), NULL);
	/* The attach folder as the kernel names it, to compare with /proc/PID/cgroup. */
	if (!realpath(mon->cgroup_path, attached))
		snprintf(attached, sizeof(attached), "%s", mon->cgroup_path);
	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((entry = readdir(dir))) {
		struct process_info proc = {};
		struct bf_proc_value value;
		char *end;
		unsigned long pid = strtoul(entry->d_name, &end, 10);

		if (!isdigit((unsigned char)entry->d_name[0]) || *end || !pid || pid > UINT32_MAX ||
		    pid == (unsigned long)getpid())
			continue;
		proc.pid = pid;
		proc.app = BF_APP_OTHER;
		if (!bpf_map_lookup_elem(procs_fd, &proc.pid, &value))
			proc.app = value.app;
		/*
		 * No sock_release reaches the programs for sockets outside the
		 * attach folder, so their labels would stay in socks for good.
		 */
		if (!read_cgroup(&proc, cgroup_root, folder, sizeof(folder)) ||
		    !in_cgroup(folder, attached))
			continue;
		read_status(&proc);
		labelled += label_process(mon, &proc, table, cfg);
	}
	closedir(dir);
	return labelled;
}
