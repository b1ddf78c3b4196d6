// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Process lifecycle sensor: exec, fork and exit, on raw tracepoints only (no kprobes),
 * so it runs on any kernel from 4.17 with BTF. Keeps the in-kernel process map that
 * gives every later event its exec identity without asking user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "palisade.h"
#include "pal_helpers.h"

/* Bytes of argv copied per exec; set before load (validated in user space). */
const volatile __u32 args_max = 4096;

/* Records are queued without waking the reader until this many bytes wait; the reader
 * also polls on a timer, so a quiet node still delivers within the poll interval. One
 * wakeup per record cost an exec storm measurable throughput; enforcement never waits
 * for user space, so only event latency (bounded) is traded. 0 wakes on every record. */
const volatile __u32 wakeup_bytes = 65536;

static __always_inline __u64 wakeup_flag(void *ringbuf)
{
	return bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#define PATH_MAX_DEPTH 64
#define NAME_MAX_LEN 256
#define PATH_BYTES_MAX 4096

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} pal_process_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pal_proc);
} pal_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pal_process_stats SEC(".maps");

/* Scratch space: an exec event is far larger than the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pal_exec_event);
} pal_exec_scratch SEC(".maps");

#define stat_inc(stat) pal_count(&pal_process_stats, stat)

/* The walk's cursor lives in map memory, not on the stack: the verifier does not track
 * ranges there, so every loop iteration verifies as the same state. */
struct walk_cursor {
	__u32 off;
	__u32 start;
	__u32 n;
	__u32 done;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_cursor);
} pal_walk_cursor SEC(".maps");

struct walk_ctx {
	struct pal_exec_event *e;
	struct walk_cursor *cur;
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
};

/* One step up the tree: a component, or a hop from a mount's root to its mount point. */
static int walk_step(__u32 index, struct walk_ctx *c)
{
	struct dentry *dentry = c->dentry;
	struct vfsmount *vfsmnt = c->vfsmnt;
	struct mount *mnt = c->mnt;

	if (dentry == c->root_dentry && vfsmnt == c->root_mnt)
		goto done;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
		if (parent == mnt)
			goto done; /* the root of the mount tree */
		c->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = parent;
		c->vfsmnt = __builtin_preserve_access_index(&parent->mnt);
		return 0;
	}
	struct dentry *up = BPF_CORE_READ(dentry, d_parent);
	if (up == dentry)
		goto done;
	struct walk_cursor *cur = c->cur;
	__u32 off = cur->off;
	if (off - cur->start > PATH_BYTES_MAX - NAME_MAX_LEN)
		return 1; /* too long: leave done unset so the path is flagged truncated */
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	long len = bpf_probe_read_kernel_str(&c->e->data[off & (PAL_EXEC_DATA - 1)], NAME_MAX_LEN, name);
	if (len <= 0)
		return 1;
	cur->off = off + len;
	cur->n++;
	c->dentry = up;
	return 0;
done:
	c->cur->done = 1;
	return 1;
}

/*
 * Writes the path of (dentry, vfsmnt) leaf-first into data[off..], one NUL-terminated
 * component each, stopping at the task's root (so container paths are as the container
 * sees them). Crosses mount points through struct mount. Returns (components << 16) |
 * bytes written; sets PAL_EXEC_F_TRUNC_PATH when the walk was cut short.
 */
static __always_inline __u32 walk_path(struct pal_exec_event *e, __u32 off, struct dentry *dentry,
				       struct vfsmount *vfsmnt, struct fs_struct *fs)
{
	__u32 zero = 0;
	struct walk_cursor *cur = bpf_map_lookup_elem(&pal_walk_cursor, &zero);
	if (!cur)
		return 0;
	cur->off = off;
	cur->start = off;
	cur->n = 0;
	cur->done = 0;
	struct walk_ctx c = {
		.e = e,
		.cur = cur,
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.mnt = container_of(vfsmnt, struct mount, mnt),
		.root_dentry = BPF_CORE_READ(fs, root.dentry),
		.root_mnt = BPF_CORE_READ(fs, root.mnt),
	};
	bpf_loop(PATH_MAX_DEPTH, walk_step, &c, 0);
	if (!cur->done)
		e->flags |= PAL_EXEC_F_TRUNC_PATH;
	return (cur->n << 16) | ((cur->off - off) & 0xffff);
}

static __always_inline __u32 ns_inum(void *ns_common_ptr)
{
	struct ns_common *ns = ns_common_ptr;
	return ns ? BPF_CORE_READ(ns, inum) : 0;
}

static __always_inline void read_namespaces(struct task_struct *task, struct pal_exec_event *e)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	if (nsp) {
		e->ns[PAL_NS_UTS] = BPF_CORE_READ(nsp, uts_ns, ns.inum);
		e->ns[PAL_NS_IPC] = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
		e->ns[PAL_NS_MNT] = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
		e->ns[PAL_NS_PID_FOR_CHILDREN] = BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
		e->ns[PAL_NS_NET] = BPF_CORE_READ(nsp, net_ns, ns.inum);
		if (bpf_core_field_exists(nsp->time_ns)) {
			e->ns[PAL_NS_TIME] = BPF_CORE_READ(nsp, time_ns, ns.inum);
			e->ns[PAL_NS_TIME_FOR_CHILDREN] = BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
		}
		e->ns[PAL_NS_CGROUP] = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	}
	e->ns[PAL_NS_USER] = BPF_CORE_READ(task, cred, user_ns, ns.inum);

	/* The task's own pid namespace is the one at its pid's deepest level. */
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	if (pid) {
		unsigned int level = BPF_CORE_READ(pid, level);
		struct upid upid = {};
		bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level & 31]);
		e->nspid = upid.nr;
		e->ns[PAL_NS_PID] = ns_inum(upid.ns ? (void *)__builtin_preserve_access_index(&upid.ns->ns) : 0);
	}
}

static __always_inline void read_creds(struct task_struct *task, struct pal_exec_event *e)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);
	e->uid = BPF_CORE_READ(cred, uid.val);
	e->gid = BPF_CORE_READ(cred, gid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	e->egid = BPF_CORE_READ(cred, egid.val);
	e->suid = BPF_CORE_READ(cred, suid.val);
	e->sgid = BPF_CORE_READ(cred, sgid.val);
	e->fsuid = BPF_CORE_READ(cred, fsuid.val);
	e->fsgid = BPF_CORE_READ(cred, fsgid.val);
	/* kernel_cap_t is one u64 since 6.3 and two u32 before: 8 bytes either way. */
	bpf_core_read(&e->cap_permitted, sizeof(e->cap_permitted), &cred->cap_permitted);
	bpf_core_read(&e->cap_effective, sizeof(e->cap_effective), &cred->cap_effective);
	bpf_core_read(&e->cap_inheritable, sizeof(e->cap_inheritable), &cred->cap_inheritable);
	if (bpf_core_field_exists(task->loginuid))
		e->auid = BPF_CORE_READ(task, loginuid.val);
	else
		e->auid = (__u32)-1;
}

static __always_inline void read_cgroup(struct task_struct *task, struct pal_exec_event *e)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	if (!kn)
		return;
	bpf_probe_read_kernel_str(e->cgroup_name, sizeof(e->cgroup_name), BPF_CORE_READ(kn, name));
	struct kernfs_node *parent = 0;
	if (bpf_core_field_exists(kn->__parent))
		parent = BPF_CORE_READ(kn, __parent);
	if (parent)
		bpf_probe_read_kernel_str(e->cgroup_parent_name, sizeof(e->cgroup_parent_name), BPF_CORE_READ(parent, name));
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(pal_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct pal_exec_event *e = bpf_map_lookup_elem(&pal_exec_scratch, &zero);
	if (!e)
		return 0;

	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	pal_fill_header(&e->hdr, PAL_EVENT_EXEC, 0);
	e->hdr.tid = old_pid; /* the thread that called execve; after de_thread it owns the tgid */
	e->flags = PAL_EXEC_F_EXEC;
	e->exe_len = e->cwd_len = e->filename_len = e->args_len = 0;
	e->exe_depth = e->cwd_depth = 0;
	e->cgroup_name[0] = 0;
	e->cgroup_parent_name[0] = 0;

	/* Parent: a process that execs again keeps its pid, and its previous image is the
	 * parent; a fresh child's parent is the process that forked it. */
	struct pal_proc *prev = bpf_map_lookup_elem(&pal_procs, &tgid);
	e->prev_ktime = prev ? prev->ktime : 0;
	if (prev && (prev->flags & (PAL_EXEC_F_EXEC | PAL_EXEC_F_PROCFS))) {
		e->parent_pid = tgid;
		e->parent_ktime = prev->ktime;
		e->flags |= PAL_EXEC_F_REPLACED;
	} else if (prev) {
		e->parent_pid = prev->parent_pid;
		e->parent_ktime = prev->parent_ktime;
		e->flags |= PAL_EXEC_F_CLONE;
	} else {
		__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
		struct pal_proc *parent = bpf_map_lookup_elem(&pal_procs, &ppid);
		e->parent_pid = ppid;
		e->parent_ktime = parent ? parent->ktime : 0;
		if (!parent)
			e->flags |= PAL_EXEC_F_PARENT_MISS;
	}

	read_creds(task, e);
	read_namespaces(task, e);
	read_cgroup(task, e);

	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	umode_t mode = BPF_CORE_READ(inode, i_mode);
	e->exe_inode = BPF_CORE_READ(inode, i_ino);
	e->exe_uid = BPF_CORE_READ(inode, i_uid.val);
	e->exe_gid = BPF_CORE_READ(inode, i_gid.val);
	if (mode & 04000)
		e->flags |= PAL_EXEC_F_SETUID;
	if ((mode & 02010) == 02010)
		e->flags |= PAL_EXEC_F_SETGID;
	if (BPF_CORE_READ(inode, __i_nlink) == 0)
		e->flags |= PAL_EXEC_F_DELETED;

	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	__u32 off = 0;
	__u32 walked = walk_path(e, off, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt), fs);
	e->exe_len = walked & 0xffff;
	e->exe_depth = walked >> 16;
	off += e->exe_len;

	walked = walk_path(e, off, BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt), fs);
	e->cwd_len = walked & 0xffff;
	e->cwd_depth = walked >> 16;
	off += e->cwd_len;

	/* A binfmt handler that swaps in an interpreter (#! scripts, binfmt_misc) gives
	 * bprm->interp a string of its own; the script itself is then bprm->filename. */
	const char *filename = BPF_CORE_READ(bprm, filename);
	if (BPF_CORE_READ(bprm, interp) != filename) {
		e->flags |= PAL_EXEC_F_SCRIPT;
		long len = bpf_probe_read_kernel_str(&e->data[off & (PAL_EXEC_DATA - 1)], NAME_MAX_LEN, filename);
		if (len > 0) {
			e->filename_len = len;
			off += len;
		}
	}

	/* Arguments: the new image's argv, straight from its memory. */
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	__u32 want = arg_end > arg_start ? arg_end - arg_start : 0;
	__u32 max = args_max;
	if (want > max) {
		want = max;
		e->flags |= PAL_EXEC_F_TRUNC_ARGS;
	}
	want &= 4095 | 4096; /* <= 8191: what PAL_EXEC_DATA_SLACK leaves room for */
	if (want > 0) {
		if (bpf_probe_read_user(&e->data[off & (PAL_EXEC_DATA - 1)], want & 8191, (void *)arg_start) == 0) {
			e->args_len = want;
			off += want;
		} else {
			e->flags |= PAL_EXEC_F_ERROR_ARGS;
		}
	}

	struct pal_proc proc = {
		.ktime = e->hdr.ktime_ns,
		.parent_ktime = e->parent_ktime,
		.parent_pid = e->parent_pid,
		.flags = PAL_EXEC_F_EXEC,
	};
	if (bpf_map_update_elem(&pal_procs, &tgid, &proc, BPF_ANY) != 0)
		stat_inc(PAL_STAT_PROC_MAP_FULL);

	__u32 size = offsetof(struct pal_exec_event, data) + off;
	if (size > sizeof(*e))
		size = sizeof(*e);
	e->hdr.size = size;
	stat_inc(PAL_STAT_EXEC);
	if (bpf_ringbuf_output(&pal_process_events, e, size, wakeup_flag(&pal_process_events)) != 0)
		stat_inc(PAL_STAT_LOST_EXEC);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(pal_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	if (parent_tgid == child_tgid)
		return 0; /* a new thread, not a new process */

	struct pal_proc *p = bpf_map_lookup_elem(&pal_procs, &parent_tgid);
	struct pal_proc proc = {
		.ktime = bpf_ktime_get_boot_ns(),
		.parent_pid = parent_tgid,
		.parent_ktime = p ? p->ktime : 0,
		.flags = PAL_EXEC_F_CLONE,
	};
	if (bpf_map_update_elem(&pal_procs, &child_tgid, &proc, BPF_ANY) != 0)
		stat_inc(PAL_STAT_PROC_MAP_FULL);

	stat_inc(PAL_STAT_FORK);
	struct pal_fork_event *e = bpf_ringbuf_reserve(&pal_process_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(PAL_STAT_LOST_FORK);
		return 0;
	}
	pal_fill_header(&e->hdr, PAL_EVENT_FORK, sizeof(*e));
	e->hdr.pid = child_tgid;
	e->hdr.tid = BPF_CORE_READ(child, pid);
	e->hdr.ktime_ns = proc.ktime;
	e->parent_pid = parent_tgid;
	e->parent_ktime = proc.parent_ktime;
	e->pad = 0;
	bpf_ringbuf_submit(e, wakeup_flag(&pal_process_events));
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(pal_exit, struct task_struct *task)
{
	/* Fires per thread; the process is gone when its live-thread count reaches zero. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;

	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct pal_proc *p = bpf_map_lookup_elem(&pal_procs, &tgid);
	__u64 ktime = p ? p->ktime : 0;

	stat_inc(PAL_STAT_EXIT);
	struct pal_exit_event *e = bpf_ringbuf_reserve(&pal_process_events, sizeof(*e), 0);
	if (e) {
		pal_fill_header(&e->hdr, PAL_EVENT_EXIT, sizeof(*e));
		e->ktime = ktime;
		/* A group exit (exit_group, fatal signal) records its code on the signal struct. */
		__u32 code = BPF_CORE_READ(task, exit_code);
		unsigned int sflags = BPF_CORE_READ(task, signal, flags);
		if (sflags & 0x00000004 /* SIGNAL_GROUP_EXIT */)
			code = BPF_CORE_READ(task, signal, group_exit_code);
		e->exit_code = code;
		e->flags = 0;
		struct mm_struct *mm = BPF_CORE_READ(task, mm);
		if (mm) {
			struct file *exe = BPF_CORE_READ(mm, exe_file);
			if (exe && BPF_CORE_READ(exe, f_inode, __i_nlink) == 0)
				e->flags |= PAL_EXEC_F_DELETED;
		}
		bpf_ringbuf_submit(e, wakeup_flag(&pal_process_events));
	} else {
		stat_inc(PAL_STAT_LOST_EXIT);
	}
	bpf_map_delete_elem(&pal_procs, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
