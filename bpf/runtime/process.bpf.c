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
#include "pal_task.h"

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

/*
 * The policy engine's exec evaluation, tail-called at the end of pal_exec once the process
 * table has the new image: one program on the tracepoint, the table written before any
 * policy reads it. Empty while no engine runs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} pal_exec_tail SEC(".maps");

/* A process table entry being built; the slack lets bin be written at masked offsets. */
struct proc_scratch {
	struct pal_proc proc;
	char slack[512];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proc_scratch);
} pal_proc_scratch SEC(".maps");

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
	__u32 comp[PATH_MAX_DEPTH]; /* offset of each component written */
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
	cur->comp[cur->n & (PATH_MAX_DEPTH - 1)] = off;
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

struct bin_ctx {
	struct pal_exec_event *e;
	struct walk_cursor *cur;
	struct pal_proc *proc;
	__u32 pos;
};

/* One component of the table's bin, root first, from the leaf-first walk in data[]. */
static int bin_step(__u32 i, struct bin_ctx *b)
{
	struct walk_cursor *cur = b->cur;
	__u32 n = cur->n;
	if (i >= n || n > PATH_MAX_DEPTH)
		return 1;
	__u32 k = n - 1 - i;
	__u32 start = cur->comp[k & (PATH_MAX_DEPTH - 1)];
	__u32 stop = k + 1 < n ? cur->comp[(k + 1) & (PATH_MAX_DEPTH - 1)] : cur->off;
	__u32 len = stop - start - 1; /* without its NUL */
	__u32 pos = b->pos;
	if (len > NAME_MAX_LEN || pos + 1 + len > PAL_PROC_BIN - 1) {
		b->proc->flags |= PAL_EXEC_F_TRUNC_PATH;
		return 1;
	}
	b->proc->bin[pos & 255] = '/';
	bpf_probe_read_kernel(&b->proc->bin[(pos + 1) & 255], len & 255, &b->e->data[start & (PAL_EXEC_DATA - 1)]);
	b->pos = pos + 1 + len;
	return 0;
}

/* The executable's path for the process table, right after walk_path wrote it leaf-first. */
static __always_inline void table_bin(struct pal_exec_event *e, struct pal_proc *proc)
{
	__u32 zero = 0;
	struct walk_cursor *cur = bpf_map_lookup_elem(&pal_walk_cursor, &zero);
	if (!cur)
		return;
	struct bin_ctx b = { .e = e, .cur = cur, .proc = proc, .pos = 0 };
	if (cur->n == 0) {
		proc->bin[0] = '/';
		b.pos = 1;
	} else {
		bpf_loop(PATH_MAX_DEPTH, bin_step, &b, 0);
	}
	if (!cur->done)
		proc->flags |= PAL_EXEC_F_TRUNC_PATH;
	__u32 len = b.pos < PAL_PROC_BIN ? b.pos : PAL_PROC_BIN - 1;
	proc->bin[len & 255] = 0;
	proc->bin_len = len;
}

static __always_inline void read_creds(struct task_struct *task, struct pal_exec_event *e)
{
	struct pal_task_creds c;
	pal_task_creds(task, &c);
	e->uid = c.uid;
	e->gid = c.gid;
	e->euid = c.euid;
	e->egid = c.egid;
	e->suid = c.suid;
	e->sgid = c.sgid;
	e->fsuid = c.fsuid;
	e->fsgid = c.fsgid;
	e->cap_permitted = c.cap_permitted;
	e->cap_effective = c.cap_effective;
	e->cap_inheritable = c.cap_inheritable;
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
	pal_task_namespaces(task, e->ns);
	e->nspid = pal_task_nspid(task);
	read_cgroup(task, e);

	struct proc_scratch *ps = bpf_map_lookup_elem(&pal_proc_scratch, &zero);
	if (!ps)
		return 0;
	struct pal_proc *proc = &ps->proc;
	proc->flags = PAL_EXEC_F_EXEC;

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
	table_bin(e, proc);

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

	proc->ktime = e->hdr.ktime_ns;
	proc->parent_ktime = e->parent_ktime;
	proc->parent_pid = e->parent_pid;
	proc->ppid = BPF_CORE_READ(task, real_parent, tgid);
	proc->cap_eff = e->cap_effective;
	for (int k = 0; k < PAL_NS_COUNT; k++)
		proc->ns[k] = e->ns[k];
	proc->nspid = e->nspid;
	proc->pad = 0;
	if (bpf_map_update_elem(&pal_procs, &tgid, proc, BPF_ANY) != 0)
		stat_inc(PAL_STAT_PROC_MAP_FULL);

	__u32 size = offsetof(struct pal_exec_event, data) + off;
	if (size > sizeof(*e))
		size = sizeof(*e);
	e->hdr.size = size;
	stat_inc(PAL_STAT_EXEC);
	if (bpf_ringbuf_output(&pal_process_events, e, size, wakeup_flag(&pal_process_events)) != 0)
		stat_inc(PAL_STAT_LOST_EXEC);
	/* The policy engine's exec points, when it runs: the new image never runs an instruction first. */
	bpf_tail_call(ctx, &pal_exec_tail, 0);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(pal_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	if (parent_tgid == child_tgid)
		return 0; /* a new thread, not a new process */

	__u32 zero = 0;
	struct proc_scratch *ps = bpf_map_lookup_elem(&pal_proc_scratch, &zero);
	if (!ps)
		return 0;
	struct pal_proc *proc = &ps->proc;
	/* The child runs its parent's image until it execs: it inherits the image's entry. */
	struct pal_proc *p = bpf_map_lookup_elem(&pal_procs, &parent_tgid);
	if (p) {
		*proc = *p;
	} else {
		proc->cap_eff = pal_task_cap(child, 0);
		pal_task_namespaces(child, proc->ns);
		proc->bin_len = 0;
		proc->bin[0] = 0;
		proc->flags = 0;
	}
	proc->ktime = bpf_ktime_get_boot_ns();
	proc->parent_pid = parent_tgid;
	proc->parent_ktime = p ? p->ktime : 0;
	proc->flags = PAL_EXEC_F_CLONE | (proc->flags & PAL_EXEC_F_TRUNC_PATH);
	proc->ppid = parent_tgid;
	proc->nspid = pal_task_nspid(child);
	proc->pad = 0;
	if (bpf_map_update_elem(&pal_procs, &child_tgid, proc, BPF_ANY) != 0)
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
	e->hdr.ktime_ns = proc->ktime;
	e->parent_pid = parent_tgid;
	e->parent_ktime = proc->parent_ktime;
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
