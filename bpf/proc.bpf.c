// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Process identity. At exec a new image is matched to a watched application
 * by its inode, then by a watched folder among its ancestors, then by its
 * process name. A process keeps the application it inherited at fork when
 * its new image matches nothing, so a watched client's helper that runs
 * /bin/sh is still counted as the client.
 *
 * An entry outlives its process by a minute, marked exited, so that alerts
 * for its last packets still name the executable; the daemon removes it.
 *
 * These are BTF raw tracepoints (tp_btf): they need the kernel's BTF but not
 * tracefs, kprobes or ftrace.
 */
#include "maps.bpf.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

static __always_inline __u32 lookup_inode(void *map, struct inode *inode)
{
	struct bf_inode_key key = {};
	__u32 *app;

	if (!inode)
		return 0;
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	app = bpf_map_lookup_elem(map, &key);
	return app ? *app : 0;
}

/*
 * Walks the folders above the executable, crossing mount points, and returns
 * the application of the first watched one.
 */
static __always_inline __u32 match_dirs(struct file *file)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	__u32 app;
	int i;

	for (i = 0; i < BF_MAX_DIR_DEPTH; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent;

		if (dentry == mnt_root) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

			if (mnt_parent == mnt)
				return 0;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = &mnt->mnt;
			continue;
		}
		parent = BPF_CORE_READ(dentry, d_parent);
		if (!parent || parent == dentry)
			return 0;
		app = lookup_inode(&app_dirs, BPF_CORE_READ(parent, d_inode));
		if (app)
			return app;
		dentry = parent;
	}
	return 0;
}

static __always_inline __u32 match_comm(void)
{
	struct bf_comm_key key = {};
	__u32 *app;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	app = bpf_map_lookup_elem(&app_comms, &key);
	return app ? *app : 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(bf_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct file *file = BPF_CORE_READ(bprm, file);
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct bf_proc_value *value, *known;
	__u32 zero = 0, app;

	app = lookup_inode(&app_inodes, BPF_CORE_READ(file, f_inode));
	if (!app)
		app = match_dirs(file);
	if (!app)
		app = match_comm();
	known = bpf_map_lookup_elem(&procs, &tgid);
	if (!app && (!known || (known->flags & BF_PROC_EXITED)))
		return 0;

	value = bpf_map_lookup_elem(&proc_scratch, &zero);
	if (!value)
		return 0;
	/* A new image that matches nothing keeps the inherited application. */
	value->app = app ? app : known->app;
	value->flags = app ? 0 : BF_PROC_INHERITED;
	value->exit_ns = 0;
	if (bpf_probe_read_kernel_str(value->exe, sizeof(value->exe),
				      BPF_CORE_READ(bprm, filename)) < 0)
		value->exe[0] = '\0';
	if (bpf_map_update_elem(&procs, &tgid, value, BPF_ANY))
		bf_stat_add(BF_STAT_PROCS_FULL, 1);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(bf_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	struct bf_proc_value *found, *value;
	__u32 zero = 0;

	if (parent_tgid == child_tgid)
		return 0; /* a new thread */
	found = bpf_map_lookup_elem(&procs, &parent_tgid);
	if (!found || (found->flags & BF_PROC_EXITED))
		return 0;
	value = bpf_map_lookup_elem(&proc_scratch, &zero);
	if (!value)
		return 0;

	*value = *found;
	value->flags = BF_PROC_INHERITED;
	value->exit_ns = 0;
	if (bpf_map_update_elem(&procs, &child_tgid, value, BPF_ANY))
		bf_stat_add(BF_STAT_PROCS_FULL, 1);
	return 0;
}

/* The entry is marked when the last thread of the process exits, not its leader. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(bf_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct bf_proc_value *found;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	found = bpf_map_lookup_elem(&procs, &tgid);
	if (!found)
		return 0;
	found->exit_ns = bpf_ktime_get_ns();
	found->flags |= BF_PROC_EXITED;
	return 0;
}
