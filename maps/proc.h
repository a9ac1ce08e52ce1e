/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Process identity: which executables, folders and process names belong to a
 * watched application, and which running processes do.
 */
#ifndef BORDERFLOW_MAPS_PROC_H
#define BORDERFLOW_MAPS_PROC_H

#include "common.h"

/*
 * Key of app_inodes and app_dirs: an inode as the kernel names it. dev is
 * the kernel's dev_t (major << 20 | minor), not the st_dev that stat(2)
 * returns, so userspace converts with bf_kernel_dev().
 */
struct bf_inode_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* Key of app_comms: a process name as in /proc/PID/comm, NUL-padded. */
struct bf_comm_key {
	char comm[16];
};

/* Length of the executable path kept per process, including the NUL. */
#define BF_EXE_LEN 256

/*
 * Value of procs, keyed by tgid: the application a running process belongs
 * to. An entry outlives its process by a minute (BF_PROC_EXITED), so that
 * alerts raised by its last packets can still name the executable.
 */
struct bf_proc_value {
	__u32 app;
	__u32 flags;	      /* BF_PROC_* */
	__u64 exit_ns;	      /* CLOCK_MONOTONIC of the exit, with BF_PROC_EXITED */
	char exe[BF_EXE_LEN]; /* path passed to execve(2), cut to BF_EXE_LEN - 1 bytes */
};

#define BF_PROC_SEEDED	  1u /* written by the daemon from /proc, not at exec or fork */
#define BF_PROC_INHERITED 2u /* inherited at fork from a watched parent */
#define BF_PROC_EXITED	  4u /* the process has exited; the daemon removes the entry */

/*
 * Value of app_names, indexed by application id: the name of the [app NAME]
 * section that the id belongs to, "" for a free id. The map is pinned with
 * totals, so an id keeps its application across restarts and config edits.
 */
struct bf_app_name {
	char name[64];
};

/* How many ancestor folders of an executable the exec program compares with app_dirs. */
#define BF_MAX_DIR_DEPTH 24

#ifndef __VMLINUX_H__
#include <sys/sysmacros.h>
static inline __u32 bf_kernel_dev(unsigned long long st_dev)
{
	return (__u32)((major(st_dev) << 20) | minor(st_dev));
}
#endif

#endif
