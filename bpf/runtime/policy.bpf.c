// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * TracingPolicy engine. Generic programs evaluate the selectors user space compiled into
 * maps (see pal_policy.h for the model) and act in the kernel: post an event, send
 * SIGKILL or another signal, or refuse a connect. Nothing here waits for user space.
 *
 * Hook points, all available without kprobes, fentry or BPF-LSM:
 *   tp_btf/sys_exit      syscall points (args from pt_regs, return value, fds resolved)
 *   tp_btf/sys_enter     points that must run before the call (execve, raw_syscalls)
 *   raw_tp/sched_process_exec   exec points; also keeps the per-process binary map
 *   cgroup/connect4|6    connect points; can refuse the call (EPERM)
 *   raw_tp/<tracepoint>  kernel tracepoints that stand for kernel functions (socket states,
 *                        capability checks, packet transmit and drop)
 *   cgroup_skb/ingress|egress   packets of local sockets; can drop the packet
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"
#include "pal_helpers.h"
#include "pal_task.h"

#define PATH_DEPTH 64

/* A kernel address as a typed, read-only pointer: fields are then plain loads (the JIT
 * guards them against faults; a bad address reads as 0) instead of one helper call per
 * read, which is what a hooked call mostly costs. The kfunc is a register move once JITed
 * and exists in every program type. */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym;
#define KPTR(type, p) ((type *)bpf_rdonly_cast((const void *)(p), bpf_core_type_id_kernel(type)))

/* The process sensor's ring buffer (shared by user space): a policy event follows the exec of
 * its process in one ordered stream, so user space never waits for one to name the other. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} pal_process_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PAL_POL_POINTS);
	__type(key, __u32);
	__type(value, struct pal_pol_point);
} pal_pol_points SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_POL_GIDS);
	__type(key, __u32); /* point * PAL_POL_SELECTORS + bit */
	__type(value, struct pal_pol_selector);
} pal_pol_sels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_POL_POLICIES);
	__type(key, __u32);
	__type(value, struct pal_pol_state);
} pal_pol_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_POL_SCOPES);
	__type(key, struct pal_pol_scope_key);
	__type(value, __u8);
} pal_pol_scope SEC(".maps");

/* Syscall exit points by number; entry PAL_POL_SYSCALLS - 1 lists points for every syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PAL_POL_SYSCALLS);
	__type(key, __u32);
	__type(value, struct pal_pol_sysent);
} pal_pol_sys_exit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PAL_POL_SYSCALLS);
	__type(key, __u32);
	__type(value, struct pal_pol_sysent);
} pal_pol_sys_enter SEC(".maps");

/* Points of the non-syscall places, keyed by enum pal_pol_other_key. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PAL_O_COUNT);
	__type(key, __u32);
	__type(value, struct pal_pol_sysent);
} pal_pol_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pal_pol_strkey);
	__type(value, struct pal_pol_mask);
} pal_pol_strings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_POL_GIDS);
	__type(key, __u32);
	__type(value, struct pal_pol_counters);
} pal_pol_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_POL_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pal_pol_stats SEC(".maps");

/* The process table, kept by the process sensor (shared by user space): the identity an event
 * names, and the image, capabilities and namespaces at exec that selectors match on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pal_proc);
} pal_procs SEC(".maps");

struct rate_key {
	__u32 gid;
	__u32 scope;
	__u64 hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rate_key);
	__type(value, __u64);
} pal_pol_rate SEC(".maps");

/* Signals a cgroup hook decided on, delivered at the syscall's exit (cgroup programs
 * cannot send signals themselves). Keyed by thread id. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} pal_pol_pending SEC(".maps");

/* TrackSock: kernel socket address -> the tgid that owns it. Events whose socket is here
 * name that process, also when the kernel handles the socket in another task's context. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, __u32);
} pal_pol_socks SEC(".maps");

/* Everything one evaluation needs; too large for the stack. */
struct scratch {
	struct pal_pol_strkey key;
	char key_slack[PAL_POL_STRBUF - PAL_POL_STR];
	char path[PAL_POL_STRBUF];
	__u64 comp[PATH_DEPTH];        /* dentry names collected leaf-first */
	__u32 comp_len[PATH_DEPTH];    /* and their lengths */
	__u64 args[8];                 /* six registers; indexed with & 7 */
	__s64 ret;
	__u64 task;
	__u64 fail[PAL_POL_WORDS];
	__u64 match[PAL_POL_WORDS];
	__u64 passed;                  /* fids with a passing entry */
	__u32 point;
	__u32 nr;
	__u32 ncomp;
	__u32 pathlen;
	__u32 last_hook;
	__u32 deny;                    /* connect: refuse the call (a cgroup hook can only say EPERM) */
	__u32 cgroup;                  /* 1: running in a cgroup program (no signals) */
	__u32 notask;                  /* 1: interrupt context: "current" is not the caller, no signals */
	__u32 list_sig;                /* eval_list's result so far (see there) */
	struct pal_pol_sock ctxsock;
	struct pal_proc proc;          /* the current process's entry, or an empty one (need_proc) */
	__u32 proc_ready;              /* proc is loaded for this evaluation */
	struct pal_pol_event ev;
	char ev_slack[2 * sizeof(struct pal_pol_value) + PAL_POL_STRBUF]; /* value_at() indexes up to 7 */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct scratch);
} pal_pol_scratch SEC(".maps");

/* Scratch entries: a program in a softirq can interrupt one in a task's call on the same CPU
 * (packets, socket states), so each context has its own; programs of one context do not nest. */
#define SCRATCH_TASK 0
#define SCRATCH_SOFTIRQ 1

#define stat_inc(stat) pal_count(&pal_pol_stats, stat)

static __always_inline struct scratch *get_scratch(__u32 which)
{
	return bpf_map_lookup_elem(&pal_pol_scratch, &which);
}

#define PAL_THREAD_SIZE 16384 /* x86-64 and arm64 kernel stacks (without KASAN) */

/*
 * Whether the program runs on the current task's own kernel stack, i.e. in the task's own
 * call. Hard and soft interrupts run on the CPU's interrupt stack (ksoftirqd is a kernel
 * thread, which the kernel never signals), and there "current" is whichever task the CPU
 * interrupted: nobody may be signalled on its behalf. `on_stack` is an address on the
 * kernel stack the hook runs on: a raw tracepoint's argument array (the program itself may
 * run on a private per-CPU stack), a local variable of a cgroup program.
 * (__preempt_count would say it directly, but a kernel without data symbols in kallsyms
 * does not let a program find it.)
 */
static __always_inline int in_task_ctx(void *on_stack)
{
	__u64 slot = (__u64)on_stack, sp = 0;
	bpf_probe_read_kernel(&sp, sizeof(sp), &slot); /* the address as a number */
	__u64 base = (__u64)KPTR(struct task_struct, bpf_get_current_task())->stack;
	return sp - base < PAL_THREAD_SIZE;
}

/* Starts an evaluation on behalf of `task`, in its own call, with nothing decided yet. */
static __always_inline void begin_eval(struct scratch *s, __u64 task, __u32 nr, __s64 ret, __u32 cgroup)
{
	s->task = task;
	s->cgroup = cgroup;
	s->notask = 0;
	s->nr = nr;
	s->ret = ret;
	s->deny = 0;
	s->proc_ready = 0;
}

/* Register i of the call (0 past the sixth). */
static __always_inline __u64 arg_at(struct scratch *s, __u32 i)
{
	return i < 6 ? s->args[i & 7] : 0;
}

static __always_inline struct pal_pol_value *value_at(struct scratch *s, __u32 i)
{
	if (i >= PAL_POL_SLOTS)
		return 0;
	i &= 7;
	if (i >= PAL_POL_SLOTS)
		return 0;
	return &s->ev.values[i];
}

/* ---------------------------------------------------------------- paths ---- */

struct walk {
	struct scratch *s;
	char *dst;                 /* the value's string: written in place (slack follows) */
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *mnt_root;   /* root of the current mount, read once per mount */
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	int done;
};

static int collect_step(__u32 i, struct walk *w)
{
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt)
		goto done;
	if (dentry == w->mnt_root) {
		struct mount *mnt = w->mnt;
		struct mount *parent = mnt->mnt_parent;
		if (parent == mnt)
			goto done;
		w->dentry = mnt->mnt_mountpoint;
		w->mnt = parent;
		/* &parent->mnt: the pointer's value, then typed again (no arithmetic on it). */
		struct vfsmount *next = KPTR(struct vfsmount, (__u64)parent + bpf_core_field_offset(struct mount, mnt));
		w->vfsmnt = next;
		w->mnt_root = next->mnt_root;
		return 0;
	}
	struct dentry *up = dentry->d_parent;
	if (up == dentry || !up)
		goto done;
	struct scratch *s = w->s;
	__u32 n = s->ncomp;
	if (n >= PATH_DEPTH)
		return 1;
	s->comp[n & (PATH_DEPTH - 1)] = (__u64)dentry->d_name.name;
	s->comp_len[n & (PATH_DEPTH - 1)] = dentry->d_name.len;
	s->ncomp = n + 1;
	w->dentry = up;
	return 0;
done:
	w->done = 1;
	return 1;
}

static int emit_step(__u32 i, struct walk *w)
{
	struct scratch *s = w->s;
	__u32 n = s->ncomp;
	if (i >= n)
		return 1;
	__u32 off = s->pathlen;
	if (off >= PAL_POL_STR)
		return 1;
	w->dst[off & 255] = '/';
	off++;
	__u32 k = (n - 1 - i) & (PATH_DEPTH - 1);
	const char *name = (const char *)s->comp[k];
	/* The length is known: a word-wise copy, not a byte-wise string read. */
	__u32 len = s->comp_len[k];
	if (len == 0 || len > 255 || bpf_probe_read_kernel(&w->dst[off & 255], len & 255, name) != 0)
		return 1;
	s->pathlen = off + len;
	return 0;
}

/* Writes the absolute path of (dentry, mnt) into v->s, as the task's root sees it. */
static __always_inline void resolve_path(struct scratch *s, struct pal_pol_value *v, struct dentry *dentry,
					 struct vfsmount *vfsmnt)
{
	struct fs_struct *fs = KPTR(struct task_struct, s->task)->fs;
	vfsmnt = KPTR(struct vfsmount, vfsmnt);
	struct walk w = {
		.s = s,
		.dst = v->s,
		.dentry = KPTR(struct dentry, dentry),
		.vfsmnt = vfsmnt,
		.mnt = KPTR(struct mount, (__u64)vfsmnt - bpf_core_field_offset(struct mount, mnt)),
		.mnt_root = vfsmnt->mnt_root,
		.root_dentry = fs->root.dentry,
		.root_mnt = fs->root.mnt,
	};
	/* Tetragon's permission: the file's type and mode bits, from the inode the path ends at. */
	v->mode = w.dentry->d_inode->i_mode;
	s->ncomp = 0;
	s->pathlen = 0;
	bpf_loop(PATH_DEPTH, collect_step, &w, 0);
	if (!w.done)
		v->flags |= PAL_V_TRUNC;
	if (s->ncomp == 0) {
		v->s[0] = '/';
		s->pathlen = 1;
	} else {
		bpf_loop(s->ncomp, emit_step, &w, 0);
	}
	__u32 len = s->pathlen;
	if (len >= PAL_POL_STR) {
		len = PAL_POL_STR - 1;
		v->flags |= PAL_V_TRUNC;
		stat_inc(PAL_POL_STAT_PATH_TRUNC);
	}
	v->s[len & 255] = 0;
	v->len = len;
}

/* The path of an open file (resolve_path of its f_path). */
static __always_inline void file_path(struct scratch *s, struct pal_pol_value *v, struct file *file)
{
	struct file *f = KPTR(struct file, file);
	resolve_path(s, v, f->f_path.dentry, f->f_path.mnt);
}

static __always_inline struct file *fd_file(struct task_struct *task, __u64 fd)
{
	struct fdtable *fdt = KPTR(struct task_struct, task)->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	struct file **arr = fdt->fd;
	struct file *file = 0;
	bpf_probe_read_kernel(&file, sizeof(file), &arr[fd]);
	return file;
}

/* ---------------------------------------------------------------- sockets -- */

static __always_inline void sock_from_sk(struct pal_pol_sock *o, struct sock *sk)
{
	o->cookie = (__u64)sk;
	o->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	o->type = BPF_CORE_READ(sk, sk_type);
	o->protocol = BPF_CORE_READ(sk, sk_protocol);
	o->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	o->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	o->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (o->family == 2 /* AF_INET */) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(o->saddr, &a, 4);
		a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(o->daddr, &a, 4);
	} else if (o->family == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&o->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&o->daddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline int sock_from_fd(struct scratch *s, struct pal_pol_sock *o, __u64 fd)
{
	struct file *file = fd_file((struct task_struct *)s->task, fd);
	if (!file)
		return -1;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & 0170000) != 0140000)
		return -1; /* not a socket */
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return -1;
	sock_from_sk(o, sk);
	return 0;
}

/* A packet: addresses, protocol and ports from its network and transport headers. */
static __always_inline int sock_from_skb(struct pal_pol_sock *o, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u8 h[40];
	__u32 l4;
	o->cookie = (__u64)BPF_CORE_READ(skb, sk);
	if (nh == 0xffff || bpf_probe_read_kernel(h, sizeof(h), head + nh) != 0)
		return -1;
	if ((h[0] >> 4) == 4) {
		o->family = 2;
		o->protocol = h[9];
		__builtin_memcpy(o->saddr, &h[12], 4);
		__builtin_memcpy(o->daddr, &h[16], 4);
		l4 = (h[0] & 15) * 4;
		if ((h[6] & 0x1f) || h[7])
			return 0; /* a later fragment: no ports */
	} else if ((h[0] >> 4) == 6) {
		o->family = 10;
		o->protocol = h[6];
		__builtin_memcpy(o->saddr, &h[8], 16);
		__builtin_memcpy(o->daddr, &h[24], 16);
		l4 = 40;
	} else {
		return -1;
	}
	o->type = o->protocol == 6 ? 1 /* SOCK_STREAM */ : o->protocol == 17 ? 2 /* SOCK_DGRAM */ : 0;
	if (o->protocol == 6 || o->protocol == 17 || o->protocol == 132) {
		__u16 ports[2];
		if (bpf_probe_read_kernel(ports, sizeof(ports), head + nh + (l4 & 63)) == 0) {
			o->sport = bpf_ntohs(ports[0]);
			o->dport = bpf_ntohs(ports[1]);
		}
	}
	return 0;
}

static __always_inline int sock_from_user(struct pal_pol_sock *o, const void *uaddr)
{
	struct {
		__u16 family;
		__u16 port;
		__u32 flow_or_addr;
		__u8 addr6[16];
	} sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), uaddr) != 0 &&
	    bpf_probe_read_user(&sa, 8, uaddr) != 0)
		return -1;
	o->family = sa.family;
	o->dport = bpf_ntohs(sa.port);
	if (sa.family == 2)
		__builtin_memcpy(o->daddr, &sa.flow_or_addr, 4);
	else if (sa.family == 10)
		__builtin_memcpy(o->daddr, sa.addr6, 16);
	return 0;
}

/* ---------------------------------------------------------------- values --- */

/* Credentials in a value: struct pal_task_creds, the layout the agent decodes. */
static __always_inline void read_creds(const struct cred *cred, struct pal_pol_value *v)
{
	struct pal_task_creds *c = (struct pal_task_creds *)v->s;
	pal_cred_read(cred, c);
	v->len = sizeof(*c);
	v->ival = ((__u64)c->euid << 32) | c->uid;
}

/* A capability set by its pseudo slot. */
static __always_inline __u64 task_cap(struct task_struct *task, __u32 which)
{
	return pal_task_cap(task, which == PAL_PS_CAP_EFF ? 0 : which == PAL_PS_CAP_INH ? 1 : 2);
}

/* A NUL-terminated string in kernel memory, at most max bytes with the NUL. */
static __always_inline void kernel_string(struct pal_pol_value *v, const void *p, __u32 max)
{
	long n = p ? bpf_probe_read_kernel_str(v->s, max, p) : 0;
	if (n <= 0) {
		v->flags |= PAL_V_ERROR;
		v->s[0] = 0;
		return;
	}
	v->len = n - 1;
}

/* The current process's entry, loaded on first use: most calls are decided without it. */
static __always_inline void need_proc(struct scratch *s)
{
	if (s->proc_ready)
		return;
	s->proc_ready = 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pal_proc *p = bpf_map_lookup_elem(&pal_procs, &tgid);
	if (p) {
		s->proc = *p;
	} else {
		s->proc.ppid = 0;
		s->proc.bin_len = 0;
		s->proc.bin[0] = 0;
		s->proc.cap_eff = 0;
		s->proc.nspid = 0;
		for (int k = 0; k < PAL_NS_COUNT; k++)
			s->proc.ns[k] = 0;
	}
}

/* Values of the call itself: registers, the return value, constants, user memory. */
static __always_inline void extract_call(struct scratch *s, struct pal_pol_slotdef *d, struct pal_pol_value *v)
{
	__u8 src = d->src;
	__u64 arg = arg_at(s, src);
	long n;

	switch (d->kind) {
	case PAL_X_INT:
		v->ival = arg;
		break;
	case PAL_X_RET:
		v->ival = s->ret;
		break;
	case PAL_X_CONST:
		v->ival = d->cval;
		break;
	case PAL_X_NR:
		v->ival = s->nr;
		break;
	case PAL_X_USTR:
		v->ival = arg;
		n = bpf_probe_read_user_str(v->s, PAL_POL_STR, (const void *)arg);
		if (n <= 0) {
			v->flags |= PAL_V_ERROR;
			v->s[0] = 0;
			break;
		}
		v->len = n - 1;
		if (n == PAL_POL_STR)
			v->flags |= PAL_V_TRUNC;
		break;
	case PAL_X_UBUF: {
		__u64 size = d->size_src < 6 ? arg_at(s, d->size_src) : d->cval ? d->cval : PAL_POL_STR;
		v->ival = size;
		if (size > PAL_POL_STR) {
			size = PAL_POL_STR;
			v->flags |= PAL_V_TRUNC;
		}
		if (size && bpf_probe_read_user(v->s, size & 255, (const void *)arg) != 0)
			v->flags |= PAL_V_ERROR;
		else
			v->len = size;
		break;
	}
	case PAL_X_USOCKADDR:
		__builtin_memset(&v->sock, 0, sizeof(v->sock));
		if (sock_from_user(&v->sock, (const void *)arg) != 0)
			v->flags |= PAL_V_ERROR;
		break;
	case PAL_X_ARGS:
		__builtin_memcpy(v->s, s->args, sizeof(s->args));
		v->len = sizeof(s->args);
		break;
	}
}

/* Values reached through the calling task: its open files and sockets, its image, its credentials. */
static __always_inline void extract_task(struct scratch *s, struct pal_pol_slotdef *d, struct pal_pol_value *v)
{
	struct task_struct *task = (struct task_struct *)s->task;
	__u8 src = d->src;
	__u64 arg = arg_at(s, src);
	struct file *file;

	switch (d->kind) {
	case PAL_X_FD_PATH:
	case PAL_X_RET_FD_PATH: {
		__u64 fd = d->kind == PAL_X_FD_PATH ? arg : (__u64)s->ret;
		v->ival = fd;
		file = ((__s64)fd < 0) ? 0 : fd_file(task, fd);
		if (!file) {
			v->flags |= PAL_V_ERROR;
			break;
		}
		file_path(s, v, file);
		break;
	}
	case PAL_X_EXEC_PATH:
		need_proc(s);
		bpf_probe_read_kernel(v->s, sizeof(s->proc.bin), s->proc.bin);
		v->len = s->proc.bin_len;
		v->mode = BPF_CORE_READ(task, mm, exe_file, f_inode, i_mode);
		break;
	case PAL_X_CTX_SOCK:
		v->sock = s->ctxsock;
		break;
	case PAL_X_FD_SOCK:
	case PAL_X_RET_FD_SOCK: {
		__u64 fd = d->kind == PAL_X_FD_SOCK ? arg : (__u64)s->ret;
		v->ival = fd;
		__builtin_memset(&v->sock, 0, sizeof(v->sock));
		if ((__s64)fd < 0 || sock_from_fd(s, &v->sock, fd) != 0)
			v->flags |= PAL_V_ERROR;
		break;
	}
	case PAL_X_CRED:
		read_creds(BPF_CORE_READ(task, real_cred), v);
		break;
	case PAL_X_TASKCAP:
		v->ival = task_cap(task, src == 0 ? PAL_PS_CAP_EFF : src == 1 ? PAL_PS_CAP_INH : PAL_PS_CAP_PERM);
		break;
	}
}

/* Values behind kernel pointers a hooked function was handed (native kprobes, tracepoints). */
static __always_inline void extract_kernel(struct scratch *s, struct pal_pol_slotdef *d, struct pal_pol_value *v)
{
	struct task_struct *task = (struct task_struct *)s->task;
	__u64 arg = arg_at(s, d->src);

	switch (d->kind) {
	case PAL_X_KCRED:
		if (arg)
			read_creds((const struct cred *)arg, v);
		else
			v->flags |= PAL_V_ERROR;
		break;
	case PAL_X_KFILE:
	case PAL_X_KBINPRM: {
		struct file *kf = d->kind == PAL_X_KFILE ? (struct file *)arg : BPF_CORE_READ((struct linux_binprm *)arg, file);
		if (!kf) {
			v->flags |= PAL_V_ERROR;
			break;
		}
		file_path(s, v, kf);
		break;
	}
	case PAL_X_KPATH: {
		struct path *kp = (struct path *)arg;
		if (!kp) {
			v->flags |= PAL_V_ERROR;
			break;
		}
		resolve_path(s, v, BPF_CORE_READ(kp, dentry), BPF_CORE_READ(kp, mnt));
		break;
	}
	case PAL_X_KDENTRY: {
		/* A bare dentry has no mount: walk within the mount of the task's cwd. */
		struct fs_struct *fs = BPF_CORE_READ(task, fs);
		if (!arg) {
			v->flags |= PAL_V_ERROR;
			break;
		}
		resolve_path(s, v, (struct dentry *)arg, BPF_CORE_READ(fs, pwd.mnt));
		break;
	}
	case PAL_X_KSOCK:
		__builtin_memset(&v->sock, 0, sizeof(v->sock));
		if (arg)
			sock_from_sk(&v->sock, (struct sock *)arg);
		else
			v->flags |= PAL_V_ERROR;
		break;
	case PAL_X_KSKB:
		__builtin_memset(&v->sock, 0, sizeof(v->sock));
		if (!arg || sock_from_skb(&v->sock, (struct sk_buff *)arg) != 0)
			v->flags |= PAL_V_ERROR;
		if (arg)
			v->ival = BPF_CORE_READ((struct sk_buff *)arg, len);
		break;
	case PAL_X_KNETDEV:
		kernel_string(v, arg ? ((struct net_device *)arg)->name : 0, 16 /* IFNAMSIZ */);
		break;
	case PAL_X_KUSERNS: {
		struct user_namespace *ns = (struct user_namespace *)arg;
		__u32 *u = (__u32 *)v->s;
		if (!ns) {
			v->flags |= PAL_V_ERROR;
			break;
		}
		u[0] = BPF_CORE_READ(ns, level);
		u[1] = BPF_CORE_READ(ns, owner.val);
		u[2] = BPF_CORE_READ(ns, group.val);
		u[3] = BPF_CORE_READ(ns, ns.inum);
		v->ival = u[3];
		v->len = 16;
		break;
	}
	case PAL_X_KSTR:
		kernel_string(v, (const void *)arg, PAL_POL_STR);
		break;
	}
}

/* Fills value v as slot definition d says, from the call being evaluated. */
static __always_inline void extract(struct scratch *s, struct pal_pol_slotdef *d, struct pal_pol_value *v)
{
	v->kind = d->kind;
	v->flags = 0;
	v->len = 0;
	v->mode = 0;
	v->ival = 0;
	v->s[0] = 0;
	switch (d->kind) {
	case PAL_X_INT:
	case PAL_X_RET:
	case PAL_X_CONST:
	case PAL_X_NR:
	case PAL_X_USTR:
	case PAL_X_UBUF:
	case PAL_X_USOCKADDR:
	case PAL_X_ARGS:
		extract_call(s, d, v);
		break;
	case PAL_X_FD_PATH:
	case PAL_X_RET_FD_PATH:
	case PAL_X_EXEC_PATH:
	case PAL_X_CTX_SOCK:
	case PAL_X_FD_SOCK:
	case PAL_X_RET_FD_SOCK:
	case PAL_X_CRED:
	case PAL_X_TASKCAP:
		extract_task(s, d, v);
		break;
	default:
		extract_kernel(s, d, v);
	}
}

/* ---------------------------------------------------------------- matching - */

struct eval {
	struct scratch *s;
	struct pal_pol_point *p;
};

static __always_inline void mask_or(__u64 *dst, const __u64 *src)
{
	for (int i = 0; i < PAL_POL_WORDS; i++)
		dst[i] |= src[i];
}

static int reverse_step(__u32 i, struct eval *e)
{
	struct scratch *s = e->s;
	__u32 n = s->pathlen;
	if (i >= n)
		return 1;
	s->key.s[i & 255] = s->path[(n - 1 - i) & 255];
	return 0;
}

/* The string a dimension looks up: a slot's value or the binary of a process entry. */
static __always_inline int dim_lookup(struct eval *e, struct pal_pol_dim *d, const char *str, __u32 len)
{
	struct scratch *s = e->s;
	__u32 n = len;
	if (d->class == PAL_C_EQ) {
		n = len + 1; /* with its NUL */
		if (n > PAL_POL_STR)
			return 0;
	} else if (n > PAL_POL_STR) {
		n = PAL_POL_STR;
	}
	s->key.point = e->p->id;
	s->key.slot = d->slot;
	s->key.class = d->class;
	if (d->class == PAL_C_POSTFIX) {
		bpf_probe_read_kernel(s->path, n & 255, str);
		s->pathlen = n;
		bpf_loop(n, reverse_step, e, 0);
	} else {
		/* Every source holds PAL_POL_STR bytes; the bytes past n are outside the key's
		 * prefix length, so the whole buffer is copied with plain loads, no helper. */
		__u64 *dst = (__u64 *)s->key.s;
		const __u64 *src = (const __u64 *)str;
#pragma unroll
		for (int k = 0; k < PAL_POL_STR / 8; k++)
			dst[k] = src[k];
		_Static_assert(PAL_POL_STR % 8 == 4, "the copy is words and one u32");
		*(__u32 *)&dst[PAL_POL_STR / 8] = *(const __u32 *)&src[PAL_POL_STR / 8];
		if (d->class == PAL_C_EQ)
			s->key.s[(n - 1) & 255] = 0;
	}
	s->key.prefixlen = 32 + 8 * n;
	struct pal_pol_mask *m = bpf_map_lookup_elem(&pal_pol_strings, &s->key);
	if (!m)
		return 0;
	mask_or(s->match, m->w);
	return 1;
}

static int dim_step(__u32 i, struct eval *e)
{
	struct scratch *s = e->s;
	struct pal_pol_point *p = e->p;
	if (i >= p->ndims || i >= PAL_POL_DIMS)
		return 1;
	struct pal_pol_dim *d = &p->dims[i];
	for (int w = 0; w < PAL_POL_WORDS; w++)
		s->match[w] = 0;

	if (d->slot == PAL_PS_BINARY) {
		need_proc(s);
		dim_lookup(e, d, s->proc.bin, s->proc.bin_len);
		if (d->follow) {
			/* followChildren: the selector also holds for descendants of a match. */
			__u32 parent = s->proc.ppid;
			for (int g = 0; g < 8; g++) {
				if (!parent)
					break;
				struct pal_proc *pp = bpf_map_lookup_elem(&pal_procs, &parent);
				if (!pp)
					break;
				dim_lookup(e, d, pp->bin, pp->bin_len);
				parent = pp->ppid;
			}
		}
	} else if (d->slot < PAL_POL_SLOTS) {
		struct pal_pol_value *v = value_at(s, d->slot);
		if (v && !(v->flags & PAL_V_ERROR))
			dim_lookup(e, d, v->s, v->len);
	}

	for (int w = 0; w < PAL_POL_WORDS; w++) {
		if (d->negate)
			s->fail[w] |= s->match[w];
		else
			s->fail[w] |= d->constrained[w] & ~s->match[w];
	}
	return 0;
}

static __always_inline __u64 filter_value(struct scratch *s, struct pal_pol_filter *f, int *ok)
{
	struct task_struct *task = (struct task_struct *)s->task;
	__u8 slot = f->slot;
	if (slot < PAL_POL_SLOTS) {
		struct pal_pol_value *v = value_at(s, slot);
		if (!v || (v->flags & PAL_V_ERROR)) {
			*ok = 0;
			return 0;
		}
		switch (f->field) {
		case PAL_F_FAMILY: return v->sock.family;
		case PAL_F_PROTOCOL: return v->sock.protocol;
		case PAL_F_SPORT: return v->sock.sport;
		case PAL_F_DPORT: return v->sock.dport;
		case PAL_F_TYPE: return v->sock.type;
		case PAL_F_STATE: return v->sock.state;
		}
		return v->ival;
	}
	switch (slot) {
	case PAL_PS_PID: return bpf_get_current_pid_tgid() >> 32;
	case PAL_PS_NSPID: return pal_task_nspid(task);
	case PAL_PS_CAP_EFF:
	case PAL_PS_CAP_PERM:
	case PAL_PS_CAP_INH:
		return task_cap(task, slot);
	case PAL_PS_CAP_CHANGED:
		need_proc(s);
		return task_cap(task, PAL_PS_CAP_EFF) & ~s->proc.cap_eff;
	case PAL_PS_RET: return s->ret;
	case PAL_PS_NS_CHANGED: {
		__u64 changed = 0;
		need_proc(s);
		struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
		for (int k = 0; k < PAL_NS_COUNT; k++) {
			__u32 now = pal_nsproxy_ns(task, nsp, k);
			if (s->proc.ns[k] && now && now != s->proc.ns[k])
				changed |= 1ULL << k;
		}
		return changed;
	}
	}
	if (slot >= PAL_PS_NS_BASE && slot < PAL_PS_NS_BASE + PAL_NS_COUNT)
		return pal_task_ns(task, slot - PAL_PS_NS_BASE);
	*ok = 0;
	return 0;
}

static __always_inline int addr_match(struct scratch *s, struct pal_pol_filter *f)
{
	if (f->slot >= PAL_POL_SLOTS)
		return 0;
	struct pal_pol_value *v = value_at(s, f->slot);
	if (!v)
		return 0;
	__u8 *addr = f->field == PAL_F_SADDR ? v->sock.saddr : v->sock.daddr;
	if (f->op == PAL_OP_ADDR4) {
		if (v->sock.family != 2)
			return 0;
		__u32 a;
		__builtin_memcpy(&a, addr, 4);
		return (a & (__u32)f->c) == (__u32)f->a;
	}
	if (v->sock.family != 10)
		return 0;
	__u64 hi, lo;
	__builtin_memcpy(&hi, addr, 8);
	__builtin_memcpy(&lo, addr + 8, 8);
	return (hi & f->c) == f->a && (lo & f->d) == f->b;
}

static int filter_step(__u32 i, struct eval *e)
{
	struct scratch *s = e->s;
	struct pal_pol_point *p = e->p;
	if (i >= p->nfilters || i >= PAL_POL_FILTERS)
		return 1;
	struct pal_pol_filter *f = &p->filters[i];
	int ok = 1, hit = 0;
	if (f->op == PAL_OP_ADDR4 || f->op == PAL_OP_ADDR6) {
		hit = addr_match(s, f);
	} else if (f->slot == PAL_PS_PID_TREE || f->slot == PAL_PS_NSPID_TREE) {
		int ns = f->slot == PAL_PS_NSPID_TREE;
		__u32 pid = ns ? (__u32)pal_task_nspid((struct task_struct *)s->task) : bpf_get_current_pid_tgid() >> 32;
		hit = pid == f->a;
		need_proc(s);
		__u32 parent = s->proc.ppid;
		for (int g = 0; g < 8 && !hit && parent; g++) {
			struct pal_proc *pp = bpf_map_lookup_elem(&pal_procs, &parent);
			hit = ns ? (pp && pp->nspid == f->a) : parent == f->a;
			parent = pp ? pp->ppid : 0;
		}
	} else {
		__u64 v = filter_value(s, f, &ok);
		if (ok) {
			switch (f->op) {
			case PAL_OP_EQ: hit = v == f->a; break;
			case PAL_OP_GT: hit = (__s64)v > (__s64)f->a; break;
			case PAL_OP_LT: hit = (__s64)v < (__s64)f->a; break;
			case PAL_OP_MASK: hit = (v & f->a) != 0; break;
			case PAL_OP_RANGE: hit = (__s64)v >= (__s64)f->a && (__s64)v <= (__s64)f->b; break;
			case PAL_OP_URANGE: hit = v >= f->a && v <= f->b; break;
			}
		}
	}
	__u8 sel = f->sel;
	if (f->negate) {
		if (hit)
			s->fail[(sel >> 6) & (PAL_POL_WORDS - 1)] |= 1ULL << (sel & 63);
	} else if (hit) {
		s->passed |= 1ULL << (f->fid & 63);
	}
	return 0;
}

static const __u8 debruijn[64];

/* One failing positive filter per call: iterations = failures, not the filter capacity. */
static int fid_step(__u32 i, struct eval *e)
{
	struct scratch *s = e->s;
	struct pal_pol_point *p = e->p;
	__u64 failing = p->fid_positive & ~s->passed;
	if (!failing)
		return 1;
	__u64 low = failing & -failing;
	__u32 fid = debruijn[((low * 0x03f79d71b4cb0a89ULL) >> 58) & 63];
	__u8 sel = p->fid_sel[fid & (PAL_POL_FIDS - 1)];
	s->fail[(sel >> 6) & (PAL_POL_WORDS - 1)] |= 1ULL << (sel & 63);
	s->passed |= low; /* handled */
	return 0;
}

/* ---------------------------------------------------------------- actions -- */

static __always_inline __u64 values_hash(struct scratch *s)
{
	__u64 h = 14695981039346656037ULL;
	for (int i = 0; i < PAL_POL_SLOTS; i++) {
		struct pal_pol_value *v = &s->ev.values[i];
		if (i >= s->ev.nslots || v->kind == PAL_X_NONE)
			continue; /* not extracted by this call: holds an earlier call's value */
		__u64 first = 0, last = 0;
		__builtin_memcpy(&first, v->s, 8);
		if (v->len >= 8)
			bpf_probe_read_kernel(&last, 8, &v->s[(v->len - 8) & 255]);
		h = (h ^ v->ival) * 1099511628211ULL;
		h = (h ^ first) * 1099511628211ULL;
		h = (h ^ last) * 1099511628211ULL;
		h = (h ^ v->len) * 1099511628211ULL;
		h = (h ^ v->sock.dport ^ ((__u64)v->sock.sport << 16)) * 1099511628211ULL;
	}
	return h;
}

/* Whether a post of this selector is within its rate limit (and records it if so). */
static __always_inline int rate_allows(struct scratch *s, struct pal_pol_selector *sel)
{
	if (!sel->rate_ns)
		return 1;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct rate_key k = {
		.gid = sel->gid,
		.scope = sel->rate_scope == 0 ? (__u32)pid_tgid : sel->rate_scope == 1 ? pid_tgid >> 32 : 0,
		.hash = values_hash(s),
	};
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *last = bpf_map_lookup_elem(&pal_pol_rate, &k);
	if (last && now - *last < sel->rate_ns)
		return 0;
	bpf_map_update_elem(&pal_pol_rate, &k, &now, BPF_ANY);
	return 1;
}

struct owner_ctx {
	struct scratch *s;
	__u32 tgid;
};

/* A tracked socket names its owner (TrackSock), whatever task the kernel runs in. */
static int owner_step(__u32 i, struct owner_ctx *o)
{
	struct pal_pol_value *v = value_at(o->s, i);
	if (!v || i >= o->s->ev.nslots)
		return 1;
	if ((v->kind != PAL_X_KSOCK && v->kind != PAL_X_KSKB && v->kind != PAL_X_FD_SOCK && v->kind != PAL_X_RET_FD_SOCK) || !v->sock.cookie)
		return 0;
	__u64 cookie = v->sock.cookie;
	__u32 *owner = bpf_map_lookup_elem(&pal_pol_socks, &cookie);
	if (!owner)
		return 0;
	o->tgid = *owner;
	return 1;
}

static __always_inline void post(struct scratch *s, struct pal_pol_selector *sel, __u8 action, __u32 sig,
				 struct pal_pol_counters *cnt, __u32 point)
{
	struct pal_pol_event *ev = &s->ev;
	ev->point = point;
	pal_fill_header(&ev->hdr, PAL_EVENT_POLICY, sizeof(*ev));
	ev->hook_id = sel->hook_id;
	ev->policy_id = sel->policy_id;
	ev->selector = sel->index;
	ev->action = action;
	ev->signal = sig;
	ev->ret = s->ret;
	ev->syscall = s->nr;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct owner_ctx o = { .s = s, .tgid = 0 };
	bpf_loop(PAL_POL_SLOTS, owner_step, &o, 0);
	if (o.tgid) {
		tgid = o.tgid;
		ev->hdr.pid = tgid;
		ev->hdr.tid = tgid;
	}
	struct pal_proc *proc = bpf_map_lookup_elem(&pal_procs, &tgid);
	ev->proc_ktime = proc ? proc->ktime : 0;
	if (bpf_ringbuf_output(&pal_process_events, ev, sizeof(*ev), 0) != 0) {
		stat_inc(PAL_POL_STAT_LOST);
		if (cnt)
			cnt->lost++;
	} else if (cnt) {
		cnt->posted++;
	}
}

static __always_inline int act_bit(struct eval *e, __u32 bit)
{
	struct scratch *s = e->s;
	__u32 key = (__u32)e->p->id * PAL_POL_SELECTORS + bit;
	struct pal_pol_selector *sel = bpf_map_lookup_elem(&pal_pol_sels, &key);
	if (!sel || sel->hook_id == s->last_hook)
		return 0; /* a lower selector of this hook already matched: first match wins */
	s->last_hook = sel->hook_id;
	__u32 policy = sel->policy_id;
	struct pal_pol_state *st = bpf_map_lookup_elem(&pal_pol_states, &policy);
	if (!st || !st->enabled)
		return 0;
	if (st->scoped) {
		struct pal_pol_scope_key sk = { .cgroup_id = bpf_get_current_cgroup_id(), .policy_id = policy };
		if (!bpf_map_lookup_elem(&pal_pol_scope, &sk))
			return 0; /* not a pod the policy selects: the whole hook is out */
	}
	__u32 gid = sel->gid;
	struct pal_pol_counters *cnt = bpf_map_lookup_elem(&pal_pol_counters, &gid);
	if (cnt)
		cnt->matched++;
	stat_inc(PAL_POL_STAT_MATCH);

	__u8 action = PAL_ACT_POST;
	__u32 sig = 0;
	__u16 a = sel->actions;
	if (a & (PAL_A_TRACK | PAL_A_UNTRACK)) {
		struct pal_pol_value *v = value_at(s, sel->sock_slot);
		if (v && v->sock.cookie) {
			__u64 cookie = v->sock.cookie;
			if (a & PAL_A_TRACK) {
				/* Only from a task's own call: in interrupt context "current" does not own the socket. */
				__u32 owner = bpf_get_current_pid_tgid() >> 32;
				if (!s->notask)
					bpf_map_update_elem(&pal_pol_socks, &cookie, &owner, BPF_ANY);
			} else {
				bpf_map_delete_elem(&pal_pol_socks, &cookie);
			}
		}
	}
	if (a & (PAL_A_SIGKILL | PAL_A_SIGNAL | PAL_A_OVERRIDE)) {
		sig = (a & PAL_A_SIGKILL) ? SIGKILL : (a & PAL_A_SIGNAL) ? sel->signal : 0;
		action = (a & PAL_A_SIGKILL) ? PAL_ACT_SIGKILL : (a & PAL_A_SIGNAL) ? PAL_ACT_SIGNAL : PAL_ACT_OVERRIDE;
		if (st->monitor) {
			action = PAL_ACT_MONITOR;
			if (cnt)
				cnt->monitored++;
		} else {
			if (a & PAL_A_OVERRIDE) {
				s->deny = 1;
				if (cnt)
					cnt->overridden++;
			}
			if (sig && s->notask) {
				/* Interrupt context: "current" is not the caller. A cgroup hook still
				 * drops the packet; nobody is signalled. */
				sig = 0;
				if (s->cgroup)
					s->deny = 1;
				action = s->cgroup ? PAL_ACT_OVERRIDE : PAL_ACT_POST;
			}
			if (sig) {
				if (s->cgroup) {
					/* Delivered by the syscall-exit program before the call returns. */
					__u32 tid = (__u32)bpf_get_current_pid_tgid();
					bpf_map_update_elem(&pal_pol_pending, &tid, &sig, BPF_ANY);
					s->deny = 1;
				}
				if (cnt) {
					if (sig == SIGKILL)
						cnt->killed++;
					else
						cnt->signalled++;
				}
			}
		}
	}
	if ((a & PAL_A_POST) && rate_allows(s, sel))
		post(s, sel, action, sig, cnt, e->p->id);
	else if ((a & PAL_A_POST) && cnt)
		cnt->rate_limited++;
	/* The signal goes last: the event is out even if the task dies at once. */
	if (sig && !st->monitor && !s->cgroup && !s->notask)
		return sig;
	return 0;
}

static const __u8 debruijn[64] = {
	0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4,
	62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
	63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
	46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6,
};

struct act_ctx {
	struct eval *e;
	__u32 sig;
};

static int act_step(__u32 i, struct act_ctx *a)
{
	struct scratch *s = a->e->s;
	for (int w = 0; w < PAL_POL_WORDS; w++) {
		__u64 m = s->match[w];
		if (!m)
			continue;
		__u64 low = m & -m;
		s->match[w] = m & ~low;
		__u32 bit = w * 64 + debruijn[((low * 0x03f79d71b4cb0a89ULL) >> 58) & 63];
		__u32 sig = act_bit(a->e, bit);
		if (sig == SIGKILL || (sig && !a->sig))
			a->sig = sig;
		return 0;
	}
	return 1;
}

/* Extracts slot i of the point (one verification of extract() for all slots). */
static int slot_step(__u32 i, struct eval *e)
{
	struct pal_pol_value *v = value_at(e->s, i);
	__u32 k = i & 7;
	if (!v || k >= PAL_POL_SLOTS)
		return 1;
	struct pal_pol_slotdef *d = &e->p->slots[k];
	if (!d->kind) {
		v->kind = PAL_X_NONE;
		return 0;
	}
	extract(e->s, d, v);
	e->s->ev.nslots = i + 1;
	return 0;
}

/* Evaluates one point; returns the signal to send (0: none). */
static __always_inline __u32 eval_point(struct scratch *s, __u32 point)
{
	struct pal_pol_point *p = bpf_map_lookup_elem(&pal_pol_points, &point);
	if (!p)
		return 0;
	__u64 any = 0;
	for (int w = 0; w < PAL_POL_WORDS; w++)
		any |= p->all[w];
	if (!any)
		return 0;
	if ((p->flags & PAL_PT_RET_OK) && s->ret < 0)
		return 0;
	if ((p->flags & PAL_PT_GATE) && !(arg_at(s, p->gate_src) & p->gate_mask))
		return 0;
	if ((p->flags & PAL_PT_GATE_EQ) && arg_at(s, p->gate_src) != p->gate_mask)
		return 0;
	stat_inc(PAL_POL_STAT_EVAL);

	s->ev.nslots = 0;
	struct eval x = { .s = s, .p = p };
	__u32 nslots = 0;
	for (int k = 0; k < PAL_POL_SLOTS; k++)
		if (p->slots[k].kind)
			nslots = k + 1;
	bpf_loop(nslots, slot_step, &x, 0); /* one callback per slot up to the last one used */

	if ((p->flags & PAL_PT_TCP) && (s->ev.values[0].sock.protocol != 6 /* IPPROTO_TCP */ ||
					 (s->ev.values[0].flags & PAL_V_ERROR)))
		return 0;
	if ((p->flags & PAL_PT_SOCK) && (s->ev.values[0].flags & PAL_V_ERROR))
		return 0;

	struct eval e = { .s = s, .p = p };
	for (int w = 0; w < PAL_POL_WORDS; w++)
		s->fail[w] = 0;
	s->passed = 0;
	/* Loop counts are exact where known: every callback is a call (and a return) more. */
	bpf_loop(p->ndims, dim_step, &e, 0);
	bpf_loop(p->nfilters, filter_step, &e, 0);
	if (p->fid_positive & ~s->passed)
		bpf_loop(PAL_POL_FIDS, fid_step, &e, 0);

	any = 0;
	for (int w = 0; w < PAL_POL_WORDS; w++) {
		s->match[w] = p->all[w] & ~s->fail[w];
		any |= s->match[w];
	}
	if (!any)
		return 0;
	struct act_ctx a = { .e = &e, .sig = 0 };
	s->last_hook = ~0U;
	bpf_loop(PAL_POL_SELECTORS, act_step, &a, 0);
	return a.sig;
}


/* The loop's result lives in map memory, not in the context on the stack: the verifier tracks
 * stack scalars precisely, so a result there makes each iteration a new state and the callback
 * (with the whole evaluation under it) is verified again until the values converge. In the map
 * value it is unknown from the start, the second iteration prunes at once, and a syscall program
 * with two lists stays well inside the 1M-instruction budget. */
struct list_ctx {
	struct scratch *s;
	struct pal_pol_sysent *first;
	struct pal_pol_sysent *then;
	__u32 nfirst;
};

static int list_step(__u32 i, struct list_ctx *l)
{
	struct pal_pol_sysent *e = l->first;
	if (i >= l->nfirst) {
		e = l->then;
		i -= l->nfirst;
	}
	if (!e || i >= e->n || i >= PAL_POL_PER_SYSCALL)
		return 1;
	__u32 sig = eval_point(l->s, e->points[i & (PAL_POL_PER_SYSCALL - 1)]);
	if (sig == SIGKILL || (sig && !l->s->list_sig))
		l->s->list_sig = sig;
	return 0;
}

static __always_inline __u32 eval_lists(struct scratch *s, struct pal_pol_sysent *first,
					struct pal_pol_sysent *then, __u32 sig)
{
	__u32 nfirst = first ? first->n : 0;
	__u32 nthen = then ? then->n : 0;
	struct list_ctx l = { .s = s, .first = first, .then = then, .nfirst = nfirst };
	s->list_sig = sig;
	if (nfirst + nthen)
		bpf_loop(nfirst + nthen, list_step, &l, 0);
	return s->list_sig;
}

static __always_inline __u32 eval_list(struct scratch *s, struct pal_pol_sysent *se)
{
	return eval_lists(s, NULL, se, 0);
}

/* The syscall programs are tp_btf: `regs` is a typed kernel pointer, so the registers are
 * plain loads rather than a helper call per read (helper calls are the bulk of a hooked
 * call's cost). pt_regs is the architecture's ABI, not subject to CO-RE. */
static __always_inline void read_regs(struct scratch *s, struct pt_regs *regs)
{
	s->args[0] = regs->di;
	s->args[1] = regs->si;
	s->args[2] = regs->dx;
	s->args[3] = regs->r10;
	s->args[4] = regs->r8;
	s->args[5] = regs->r9;
}

static __always_inline int syscall_points(struct pt_regs *regs, long ret, void *map, int exit)
{
	long id = regs->orig_ax;
	if (id < 0 || id >= PAL_POL_SYSCALLS - 1)
		return 0;
	__u32 nr = id;
	__u32 all = PAL_POL_SYSCALLS - 1;
	struct pal_pol_sysent *se = bpf_map_lookup_elem(map, &nr);
	struct pal_pol_sysent *any = bpf_map_lookup_elem(map, &all);
	int have = (se && (se->n || se->flags)) || (any && any->n);
	if (!have)
		return 0;
	struct scratch *s = get_scratch(SCRATCH_TASK);
	if (!s)
		return 0;
	__u32 sig = 0;
	if (exit && se && (se->flags & PAL_SE_PENDING)) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		__u32 *pending = bpf_map_lookup_elem(&pal_pol_pending, &tid);
		if (pending) {
			sig = *pending;
			bpf_map_delete_elem(&pal_pol_pending, &tid);
		}
	}
	begin_eval(s, bpf_get_current_task(), nr, ret, 0);
	read_regs(s, regs);
	sig = eval_lists(s, se, any, sig);
	if (sig)
		bpf_send_signal(sig);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(pal_pol_sys_exit_prog, struct pt_regs *regs, long ret)
{
	return syscall_points(regs, ret, &pal_pol_sys_exit, 1);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(pal_pol_sys_enter_prog, struct pt_regs *regs, long id)
{
	return syscall_points(regs, 0, &pal_pol_sys_enter, 0);
}

static __always_inline int probe_point(struct pt_regs *ctx)
{
	struct scratch *s = get_scratch(SCRATCH_TASK);
	if (!s)
		return 0;
	begin_eval(s, bpf_get_current_task(), ~0U, 0, 0);
	s->args[0] = PT_REGS_PARM1(ctx);
	s->args[1] = PT_REGS_PARM2(ctx);
	s->args[2] = PT_REGS_PARM3(ctx);
	s->args[3] = PT_REGS_PARM4(ctx);
	s->args[4] = PT_REGS_PARM5(ctx);
	s->args[5] = BPF_CORE_READ(ctx, r9); /* libbpf 1.1 has no PT_REGS_PARM6 */
	__u32 sig = eval_point(s, (__u32)bpf_get_attach_cookie(ctx));
	if (sig)
		bpf_send_signal(sig);
	return 0;
}

/* A uprobe on a user function, or a kprobe on a kernel function (kernels with kprobes): the
 * point comes from the attachment's cookie, the arguments from the call registers. */
SEC("uprobe")
int pal_pol_uprobe(struct pt_regs *ctx)
{
	return probe_point(ctx);
}

SEC("kprobe")
int pal_pol_kprobe(struct pt_regs *ctx)
{
	return probe_point(ctx);
}

/* ---------------------------------------------------------------- processes */

/*
 * Exec points. Not attached: the process sensor's exec program tail-calls it (pal_exec_tail)
 * once the process table holds the new image, so there is one program on the tracepoint and
 * the entry the selectors read is already the new one.
 */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(pal_pol_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct scratch *s = get_scratch(SCRATCH_TASK);
	if (!s)
		return 0;
	begin_eval(s, (__u64)task, ~0U, 0, 0);
	for (int i = 0; i < 6; i++)
		s->args[i] = 0;
	__u32 key = PAL_O_EXEC;
	__u32 sig = eval_list(s, bpf_map_lookup_elem(&pal_pol_other, &key));
	if (sig)
		bpf_send_signal(sig); /* the new image never runs an instruction */
	return 0;
}

/* ---------------------------------------------------------------- connect -- */

static __always_inline int connect_points(struct bpf_sock_addr *ctx, int v6)
{
	__u32 key = PAL_O_CONNECT;
	struct pal_pol_sysent *se = bpf_map_lookup_elem(&pal_pol_other, &key);
	if (!se || !se->n)
		return 1;
	struct scratch *s = get_scratch(SCRATCH_TASK);
	if (!s)
		return 1;
	begin_eval(s, bpf_get_current_task(), ~0U, 0, 1);
	for (int i = 0; i < 6; i++)
		s->args[i] = 0;
	struct pal_pol_sock *o = &s->ctxsock;
	__builtin_memset(o, 0, sizeof(*o));
	o->family = ctx->user_family;
	o->type = ctx->type;
	o->protocol = ctx->protocol;
	o->dport = bpf_ntohs(ctx->user_port);
	o->state = 2; /* TCP_SYN_SENT: the state tcp_connect leaves the socket in */
	if (!v6) {
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(o->daddr, &a, 4);
	} else {
		__u32 a[4];
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(o->daddr, a, 16);
	}
	eval_list(s, se);
	return s->deny ? 0 : 1;
}

SEC("cgroup/connect4")
int pal_pol_connect4(struct bpf_sock_addr *ctx)
{
	return connect_points(ctx, 0);
}

SEC("cgroup/connect6")
int pal_pol_connect6(struct bpf_sock_addr *ctx)
{
	return connect_points(ctx, 1);
}

/* ------------------------------------------------------ kernel tracepoints -- */


/*
 * Evaluates the points listed under `key` with the emulated function's arguments in
 * registers a0..a5. Returns 1 when a cgroup hook must refuse (drop) the packet.
 */
static __always_inline int other_points(void *on_stack, __u32 key, __u64 a0, __u64 a1, __u64 a2, __u64 a3, __u64 a5, __s64 ret, __u32 cgroup)
{
	struct pal_pol_sysent *se = bpf_map_lookup_elem(&pal_pol_other, &key);
	if (!se || !se->n)
		return 0;
	int task = in_task_ctx(on_stack);
	struct scratch *s = get_scratch(task ? SCRATCH_TASK : SCRATCH_SOFTIRQ);
	if (!s)
		return 0;
	begin_eval(s, bpf_get_current_task(), ~0U, ret, cgroup);
	s->notask = !task;
	s->args[0] = a0;
	s->args[1] = a1;
	s->args[2] = a2;
	s->args[3] = a3;
	s->args[4] = 0;
	s->args[5] = a5;
	__u32 sig = eval_list(s, se);
	if (sig && !cgroup && !s->notask)
		bpf_send_signal(sig);
	return s->deny;
}

/* Socket state changes: tcp_set_state, inet_csk_listen_start and the child socket of
 * tcp_create_openreq_child all pass here; register 5 says which (PAL_SS_*). The tracepoint
 * runs before the new state is stored, so the socket still shows the old one, as a kprobe
 * at the function's entry would see it. */
SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(pal_pol_sock_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 which;
	if (BPF_CORE_READ(sk, sk_protocol) != 6 /* IPPROTO_TCP */)
		return 0;
	if (newstate == 10 /* TCP_LISTEN */)
		which = PAL_SS_LISTEN;
	else if (oldstate == 10 && newstate == 3 /* TCP_SYN_RECV */)
		which = PAL_SS_CHILD;
	else
		which = PAL_SS_TCP_SET;
	other_points(ctx, PAL_O_SOCK_STATE, (__u64)sk, newstate, oldstate, 0, which, 0, 0);
	return 0;
}

/* cap_capable(cred, target_ns, cap, opts): the tracepoint fires at its end with the result. */
SEC("raw_tp/cap_capable")
int BPF_PROG(pal_pol_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	other_points(ctx, PAL_O_CAP_CAPABLE, (__u64)cred, (__u64)target_ns, cap, 0, 0, ret, 0);
	return 0;
}

/* __dev_queue_xmit (dev_queue_xmit): a packet queued to a device. */
SEC("raw_tp/net_dev_queue")
int BPF_PROG(pal_pol_net_dev_queue, struct sk_buff *skb)
{
	other_points(ctx, PAL_O_NET_DEV_QUEUE, (__u64)skb, 0, 0, 0, 0, 0, 0);
	return 0;
}

/* dev_hard_start_xmit(skb, dev, ...): the driver is handed the packet. */
SEC("raw_tp/net_dev_start_xmit")
int BPF_PROG(pal_pol_net_dev_xmit, struct sk_buff *skb, struct net_device *dev)
{
	other_points(ctx, PAL_O_NET_DEV_XMIT, (__u64)skb, (__u64)dev, 0, 0, 0, 0, 0);
	return 0;
}

/* kfree_skb_reason(skb, reason): a packet dropped. */
SEC("raw_tp/kfree_skb")
int BPF_PROG(pal_pol_kfree_skb, struct sk_buff *skb, void *location, int reason, struct sock *rx_sk)
{
	other_points(ctx, PAL_O_KFREE_SKB, (__u64)skb, reason, 0, 0, 0, 0, 0);
	return 0;
}

/* ------------------------------------------------------------ cgroup skb --- */

/*
 * Packets of local sockets, where the kernel runs cgroup skb programs
 * (__cgroup_bpf_run_filter_skb): ingress from sk_filter_trim_cap, egress from
 * ip_finish_output / ip6_finish_output under ip_output, ip_mc_output and ip6_output.
 * Registers: 0 the socket, 1 the packet (the context is the kernel's sk_buff), 2 the
 * direction (BPF_CGROUP_INET_INGRESS 0, EGRESS 1), 5 the output function (PAL_SKB_*).
 * Returns 1 to let the packet pass, 0 to drop it.
 */
static __always_inline int skb_points(struct __sk_buff *ctx, __u32 key, __u32 dir)
{
	struct pal_pol_sysent *se = bpf_map_lookup_elem(&pal_pol_other, &key);
	if (!se || !se->n)
		return 1;
	struct sk_buff *skb = (struct sk_buff *)ctx;
	__u64 which = 0;
	if (ctx->protocol == bpf_htons(0x0800)) {
		__u8 first = 0;
		bpf_skb_load_bytes(ctx, 16, &first, 1);
		which = first >= 224 ? PAL_SKB_IP_MC : PAL_SKB_IP;
	} else if (ctx->protocol == bpf_htons(0x86DD)) {
		which = PAL_SKB_IP6;
	}
	__u64 sk = (__u64)BPF_CORE_READ(skb, sk);
	__u64 marker = 0;
	return other_points(&marker, key, sk, (__u64)skb, dir, 0, which, 0, 1) ? 0 : 1;
}

SEC("cgroup_skb/ingress")
int pal_pol_skb_ingress(struct __sk_buff *ctx)
{
	return skb_points(ctx, PAL_O_SKB_INGRESS, 0);
}

SEC("cgroup_skb/egress")
int pal_pol_skb_egress(struct __sk_buff *ctx)
{
	return skb_points(ctx, PAL_O_SKB_EGRESS, 1);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
