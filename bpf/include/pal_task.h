/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The one reader of each task field Palisade reports or matches on, shared by every BPF
 * object (process.bpf.c, policy.bpf.c), so the process table, the exec event and the
 * policy selectors cannot disagree about a process.
 *
 * Which field is read, and why:
 *  - credentials and capabilities: task->real_cred, the objective credentials that
 *    /proc/PID/status shows and that others use to act on the task. (task->cred differs
 *    only while the kernel temporarily overrides credentials inside a call.)
 *  - the user namespace: real_cred->user_ns, what /proc/PID/ns/user names. Tetragon reads
 *    mm->user_ns, which is the same at exec, but stays behind after unshare(CLONE_NEWUSER).
 *  - the pid namespace and the namespace pid: the deepest level of the thread-group
 *    leader's struct pid, i.e. the NSpid /proc/PID/status shows for the process (Tetragon's
 *    nspid is the same number at exec, where the caller has become the leader).
 *  - the other namespaces: task->nsproxy, as /proc/PID/ns shows them.
 */
#ifndef PAL_TASK_H
#define PAL_TASK_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Credentials as the process table, the exec event and policy values carry them. */
struct pal_task_creds {
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u32 securebits;
	__u32 user_ns;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
};

/* Reads a struct cred (a task's, or one a hooked kernel function was handed). */
static __always_inline void pal_cred_read(const struct cred *cred, struct pal_task_creds *o)
{
	o->uid = BPF_CORE_READ(cred, uid.val);
	o->gid = BPF_CORE_READ(cred, gid.val);
	o->euid = BPF_CORE_READ(cred, euid.val);
	o->egid = BPF_CORE_READ(cred, egid.val);
	o->suid = BPF_CORE_READ(cred, suid.val);
	o->sgid = BPF_CORE_READ(cred, sgid.val);
	o->fsuid = BPF_CORE_READ(cred, fsuid.val);
	o->fsgid = BPF_CORE_READ(cred, fsgid.val);
	o->securebits = BPF_CORE_READ(cred, securebits);
	o->user_ns = BPF_CORE_READ(cred, user_ns, ns.inum);
	/* kernel_cap_t is one u64 since 6.3 and two u32 before: 8 bytes either way. */
	bpf_core_read(&o->cap_permitted, 8, &cred->cap_permitted);
	bpf_core_read(&o->cap_effective, 8, &cred->cap_effective);
	bpf_core_read(&o->cap_inheritable, 8, &cred->cap_inheritable);
}

static __always_inline void pal_task_creds(struct task_struct *task, struct pal_task_creds *o)
{
	pal_cred_read(BPF_CORE_READ(task, real_cred), o);
}

/* One capability set of the task: 0 effective, 1 inheritable, 2 permitted. */
static __always_inline __u64 pal_task_cap(struct task_struct *task, __u32 which)
{
	const struct cred *cred = BPF_CORE_READ(task, real_cred);
	__u64 caps = 0;
	if (which == 0)
		bpf_core_read(&caps, 8, &cred->cap_effective);
	else if (which == 1)
		bpf_core_read(&caps, 8, &cred->cap_inheritable);
	else
		bpf_core_read(&caps, 8, &cred->cap_permitted);
	return caps;
}

/* The deepest level of the process's (its leader's) struct pid: its own pid namespace. */
static __always_inline void pal_task_upid(struct task_struct *task, struct upid *upid)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	upid->nr = 0;
	upid->ns = 0;
	if (!pid)
		return;
	unsigned int level = BPF_CORE_READ(pid, level);
	bpf_probe_read_kernel(upid, sizeof(*upid), &pid->numbers[level & 31]);
}

/* The process's pid in its own pid namespace. */
static __always_inline __u32 pal_task_nspid(struct task_struct *task)
{
	struct upid upid;
	pal_task_upid(task, &upid);
	return upid.nr;
}

/* One namespace of the task (enum pal_ns) through its nsproxy, already read; 0 if it has none. */
static __always_inline __u32 pal_nsproxy_ns(struct task_struct *task, struct nsproxy *nsp, __u32 which)
{
	switch (which) {
	case PAL_NS_UTS: return BPF_CORE_READ(nsp, uts_ns, ns.inum);
	case PAL_NS_IPC: return BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	case PAL_NS_MNT: return BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	case PAL_NS_PID_FOR_CHILDREN: return BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	case PAL_NS_NET: return BPF_CORE_READ(nsp, net_ns, ns.inum);
	case PAL_NS_TIME: return bpf_core_field_exists(nsp->time_ns) ? BPF_CORE_READ(nsp, time_ns, ns.inum) : 0;
	case PAL_NS_TIME_FOR_CHILDREN:
		return bpf_core_field_exists(nsp->time_ns_for_children) ? BPF_CORE_READ(nsp, time_ns_for_children, ns.inum) : 0;
	case PAL_NS_CGROUP: return BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	case PAL_NS_USER: return BPF_CORE_READ(task, real_cred, user_ns, ns.inum);
	case PAL_NS_PID: {
		struct upid upid;
		pal_task_upid(task, &upid);
		return upid.ns ? BPF_CORE_READ(upid.ns, ns.inum) : 0;
	}
	}
	return 0;
}

/* The inode of one of the task's namespaces (enum pal_ns), 0 if it has none. */
static __always_inline __u32 pal_task_ns(struct task_struct *task, __u32 which)
{
	return pal_nsproxy_ns(task, BPF_CORE_READ(task, nsproxy), which);
}

/* Every namespace of the task, indexed by enum pal_ns: the nsproxy is read once. */
static __always_inline void pal_task_namespaces(struct task_struct *task, __u32 *ns)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	for (int k = 0; k < PAL_NS_COUNT; k++)
		ns[k] = pal_nsproxy_ns(task, nsp, k);
}

#endif /* PAL_TASK_H */
