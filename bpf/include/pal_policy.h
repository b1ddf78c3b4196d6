/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * TracingPolicy engine: the map formats user space writes and the event the kernel emits
 * (bpf/runtime/policy.bpf.c). Every struct has a C# twin in
 * agent/Palisade.Runtime/Policies/PolicyAbi.cs, checked against BTF by the layout test.
 *
 * The model. A *point* is one place in the kernel the engine evaluates (the exit of one
 * syscall for one emulated function, an exec, a cgroup connect). Each hook of each policy
 * that lands on a point owns a run of *selector bits* in that point (at most
 * PAL_POL_SELECTORS). Evaluation computes, in a fixed number of map lookups that does not
 * grow with the number of policies, the set of selector bits that fail; the survivors are
 * the matches, and the lowest surviving bit of each hook wins (Tetragon: first selector
 * wins). String operators are LPM-trie lookups (one per dimension), integer operators a
 * short linear list per point.
 */
#ifndef PAL_POLICY_H
#define PAL_POLICY_H

/* Sizes; enums, not #defines, because BTF carries enums to the layout test and C# twins. */
enum pal_pol_sizes {
	PAL_POL_WORDS = 4,                       /* selector mask words */
	PAL_POL_SELECTORS = PAL_POL_WORDS * 64,
	PAL_POL_SLOTS = 6,                       /* extracted arguments per point */
	PAL_POL_DIMS = 12,                       /* string dimensions per point */
	PAL_POL_FILTERS = 48,                    /* integer filter entries per point */
	PAL_POL_FIDS = 64,                       /* integer filters (value groups) per point */
	PAL_POL_STR = 252,                       /* string bytes matched (LPM data max 256 - 4) */
	PAL_POL_STRBUF = 512,                    /* string buffer incl. slack for the verifier */
	PAL_POL_POINTS = 1024,
	PAL_POL_PER_SYSCALL = 8,                 /* points evaluated at one syscall */
	PAL_POL_SYSCALLS = 512,
	PAL_POL_GIDS = 8192,                     /* selectors in the whole engine (counters) */
	PAL_POL_POLICIES = 1024,
	PAL_POL_SCOPES = 65536,                  /* (cgroup, scoped policy) pairs */
};

/* How a slot's value is obtained (pal_pol_slotdef.kind). */
enum pal_pol_xkind {
	PAL_X_NONE = 0,
	PAL_X_INT = 1,          /* syscall register src */
	PAL_X_USTR = 2,         /* NUL-terminated user string at register src */
	PAL_X_FD_PATH = 3,      /* path of the file open at fd = register src */
	PAL_X_RET = 4,          /* syscall return value */
	PAL_X_RET_FD_PATH = 5,  /* path of the file at fd = return value (fd_install) */
	PAL_X_USOCKADDR = 6,    /* struct sockaddr in user memory at register src */
	PAL_X_CTX_SOCK = 7,     /* the socket address of a cgroup connect hook */
	PAL_X_FD_SOCK = 8,      /* the socket at fd = register src */
	PAL_X_RET_FD_SOCK = 9,  /* the socket at fd = return value (accept) */
	PAL_X_EXEC_PATH = 10,   /* the program being executed (sched_process_exec) */
	PAL_X_CRED = 11,        /* the task's current credentials */
	PAL_X_CONST = 12,       /* a constant (pal_pol_slotdef.cval) */
	PAL_X_UBUF = 13,        /* user buffer at register src, size in register size_src */
	PAL_X_NR = 14,          /* the syscall number (raw_syscalls) */
	PAL_X_ARGS = 15,        /* the six syscall arguments (raw_syscalls args[]) */
	PAL_X_TASKCAP = 16,     /* the task's capabilities: src 0 effective, 1 inheritable, 2 permitted */
	/* Kernel pointers in register src (native kprobes). */
	PAL_X_KFILE = 17,       /* struct file *: its path */
	PAL_X_KPATH = 18,       /* struct path *: its path */
	PAL_X_KDENTRY = 19,     /* struct dentry *: its path within the task's root mount */
	PAL_X_KSOCK = 20,       /* struct sock * */
	PAL_X_KCRED = 21,       /* struct cred * */
	PAL_X_KBINPRM = 22,     /* struct linux_binprm *: the executed file's path */
	PAL_X_KSTR = 23,        /* char * in kernel memory */
	PAL_X_KSKB = 24,        /* struct sk_buff *: addresses, ports and protocol from its headers; ival = len */
	PAL_X_KNETDEV = 25,     /* struct net_device *: its name */
	PAL_X_KUSERNS = 26,     /* struct user_namespace *: level, owner uid and gid, inode (ival) */
};

/* Pseudo slots: values of the task rather than of the call. */
enum pal_pol_pslot {
	PAL_PS_BINARY = 8,      /* string: the process's executable path */
	PAL_PS_PID = 9,
	PAL_PS_NSPID = 10,
	PAL_PS_CAP_EFF = 11,
	PAL_PS_CAP_PERM = 12,
	PAL_PS_CAP_INH = 13,
	PAL_PS_NS_CHANGED = 14, /* bit per enum pal_ns: differs from the namespace at exec */
	PAL_PS_CAP_CHANGED = 15,/* effective capabilities gained since exec */
	PAL_PS_RET = 16,
	PAL_PS_PID_TREE = 17,   /* the process or one of its ancestors (matchPIDs followForks) */
	PAL_PS_NSPID_TREE = 18, /* the same with namespace pids (followForks + isNamespacePID) */
	PAL_PS_NS_BASE = 20,    /* + enum pal_ns: namespace inode */
	PAL_PS_MAX = 32,
};

/* String classes; the class is part of the LPM key, with the point and the slot. */
enum pal_pol_class {
	PAL_C_EQ = 1,      /* key "value\0" */
	PAL_C_PREFIX = 2,  /* key "value" */
	PAL_C_POSTFIX = 3, /* key reversed("value") */
};

/* Integer filter operators (pal_pol_filter.op). */
enum pal_pol_op {
	PAL_OP_EQ = 1,     /* v == a */
	PAL_OP_GT = 2,     /* v > a (signed) */
	PAL_OP_LT = 3,     /* v < a (signed) */
	PAL_OP_MASK = 4,   /* v & a != 0 */
	PAL_OP_RANGE = 5,  /* a <= v <= b (signed) */
	PAL_OP_ADDR4 = 6,  /* IPv4 address & c == a */
	PAL_OP_ADDR6 = 7,  /* IPv6 address & (c,d) == (a,b) */
	PAL_OP_URANGE = 8, /* a <= v <= b (unsigned) */
};

/* Fields of a sock slot (pal_pol_filter.field); 0 = the slot's integer value. */
enum pal_pol_field {
	PAL_F_VALUE = 0, PAL_F_FAMILY = 1, PAL_F_PROTOCOL = 2, PAL_F_SPORT = 3,
	PAL_F_DPORT = 4, PAL_F_SADDR = 5, PAL_F_DADDR = 6, PAL_F_TYPE = 7, PAL_F_STATE = 8,
};

/* Action flags (pal_pol_selector.actions). */
enum pal_pol_action_flags {
	PAL_A_POST = 1 << 0,
	PAL_A_SIGKILL = 1 << 1,
	PAL_A_SIGNAL = 1 << 2,
	PAL_A_OVERRIDE = 1 << 3,   /* refuse the call (cgroup hooks only) */
	PAL_A_USERSPACE = 1 << 4,  /* GetUrl / DnsLookup: done by the agent on the event */
	PAL_A_TRACK = 1 << 5,      /* TrackSock: the socket in slot sock_slot belongs to this process */
	PAL_A_UNTRACK = 1 << 6,    /* UntrackSock: forget the socket in slot sock_slot */
};

/* pal_pol_event.action: what the kernel did. */
enum pal_pol_action {
	PAL_ACT_POST = 1,
	PAL_ACT_SIGKILL = 2,
	PAL_ACT_SIGNAL = 3,
	PAL_ACT_OVERRIDE = 4,
	PAL_ACT_MONITOR = 5,   /* enforcement suppressed: policy in monitor mode */
};

/* Point flags */
enum pal_pol_point_flags {
	PAL_PT_GATE = 1 << 0,     /* evaluate only when register gate_src & gate_mask */
	PAL_PT_RET_OK = 1 << 1,   /* only when the call succeeded (ret >= 0) */
	PAL_PT_TCP = 1 << 2,      /* only when slot 0 is a TCP socket */
	PAL_PT_GATE_EQ = 1 << 3,  /* evaluate only when register gate_src == gate_mask */
	PAL_PT_SOCK = 1 << 4,     /* only when slot 0 is a socket */
};

struct pal_pol_slotdef {
	__u8 kind;      /* enum pal_pol_xkind */
	__u8 src;       /* register index (0..5) */
	__u8 size_src;  /* PAL_X_UBUF: register holding the size, 0xff: cval bytes (or the maximum) */
	__u8 pad;
	__u32 cval;     /* PAL_X_CONST */
};

/* One string dimension: a (slot, class) looked up once. */
struct pal_pol_dim {
	__u8 slot;      /* 0..5 or PAL_PS_BINARY */
	__u8 class;     /* enum pal_pol_class */
	__u8 negate;    /* Not* operator: a hit fails the selector */
	__u8 follow;    /* matchBinaries followChildren: ancestors also count */
	__u32 pad;
	__u64 constrained[PAL_POL_WORDS]; /* selectors with this positive dimension */
};

struct pal_pol_filter {
	__u8 slot;      /* 0..5 or enum pal_pol_pslot */
	__u8 field;     /* enum pal_pol_field */
	__u8 op;        /* enum pal_pol_op */
	__u8 negate;    /* a pass fails the selector */
	__u8 fid;       /* filter id: entries with one fid are ORed values */
	__u8 sel;       /* selector bit */
	__u16 pad;
	__u32 pad2;
	__u64 a, b, c, d;
};

struct pal_pol_point {
	__u64 all[PAL_POL_WORDS];       /* selector bits in use and enabled */
	__u64 fid_positive;             /* fids that need one passing entry */
	__u64 gate_mask;
	struct pal_pol_slotdef slots[PAL_POL_SLOTS];
	struct pal_pol_dim dims[PAL_POL_DIMS];
	struct pal_pol_filter filters[PAL_POL_FILTERS];
	__u8 fid_sel[PAL_POL_FIDS];     /* fid -> selector bit */
	__u16 id;
	__u8 ndims;
	__u8 nfilters;
	__u8 flags;                     /* PAL_PT_* */
	__u8 gate_src;
	__u16 pad;
};

/* What a matching selector does. Key: point id * PAL_POL_SELECTORS + bit. */
struct pal_pol_selector {
	__u32 hook_id;       /* global hook id: user space knows its policy and hook */
	__u32 policy_id;     /* index into the policy state map */
	__u32 gid;           /* global selector id: counters */
	__u16 index;         /* selector index within the hook */
	__u16 actions;       /* PAL_A_* */
	__u32 signal;        /* PAL_A_SIGNAL */
	__s32 error;         /* PAL_A_OVERRIDE: argError; cgroup connect hooks refuse with EPERM whatever it is */
	__u64 rate_ns;       /* rateLimit window; 0: none */
	__u8 rate_scope;     /* 0 thread, 1 process, 2 global */
	__u8 sock_slot;      /* PAL_A_TRACK / PAL_A_UNTRACK: the slot holding the socket */
	__u8 pad[6];
};

/* Policy state, keyed by policy id. Absent: the policy is gone, its selectors do nothing. */
struct pal_pol_state {
	__u32 enabled;
	__u32 monitor;       /* 1: policy-mode monitor, enforcement is only counted */
	__u32 scoped;        /* 1: applies only in the cgroups pal_pol_scope lists for it */
	__u32 pad;
};

/*
 * Pod scoping (TracingPolicyNamespaced, podSelector, containerSelector): the cgroups a
 * scoped policy applies in. User space keeps the set in step with the pods it watches; the
 * kernel looks the task's cgroup up only when a selector of a scoped policy has matched.
 */
struct pal_pol_scope_key {
	__u64 cgroup_id;
	__u32 policy_id;
	__u32 pad;
};

/*
 * Keys of pal_pol_other: the non-syscall places points are listed at. Kernel tracepoints
 * (raw_tp) put the tracepoint's arguments in the registers of the emulated function's
 * order; cgroup skb hooks put (socket, packet, direction) there.
 */
enum pal_pol_other_key {
	PAL_O_EXEC = 0, PAL_O_CONNECT = 1, PAL_O_SOCK_STATE = 2, PAL_O_CAP_CAPABLE = 3,
	PAL_O_NET_DEV_QUEUE = 4, PAL_O_NET_DEV_XMIT = 5, PAL_O_KFREE_SKB = 6,
	PAL_O_SKB_INGRESS = 7, PAL_O_SKB_EGRESS = 8, PAL_O_COUNT = 16,
};

/* Register 5 of inet_sock_set_state points: which kernel function made the transition. */
enum pal_pol_sock_state_fn {
	PAL_SS_LISTEN = 1 << 0,   /* inet_csk_listen_start: CLOSE -> LISTEN */
	PAL_SS_CHILD = 1 << 1,    /* inet_csk_clone_lock (tcp_create_openreq_child): LISTEN -> SYN_RECV */
	PAL_SS_TCP_SET = 1 << 2,  /* tcp_set_state: every other TCP transition */
};

/* Register 5 of cgroup skb points: which output function the packet went through. */
enum pal_pol_skb_output {
	PAL_SKB_IP = 1 << 0,     /* ip_output: IPv4 unicast */
	PAL_SKB_IP_MC = 1 << 1,  /* ip_mc_output: IPv4 multicast and broadcast */
	PAL_SKB_IP6 = 1 << 2,    /* ip6_output */
};

/* Points evaluated at one syscall, keyed by syscall number. */
struct pal_pol_sysent {
	__u16 points[PAL_POL_PER_SYSCALL];
	__u8 n;
	__u8 flags;          /* PAL_SE_* */
	__u16 pad;
	__u32 pad2;
};
enum pal_pol_sysent_flags {
	PAL_SE_PENDING = 1 << 0,  /* deliver signals a cgroup hook left for this thread */
};

/* LPM key: prefixlen, then the 4-byte header (point, slot, class), then the string. */
struct pal_pol_strkey {
	__u32 prefixlen;
	__u16 point;
	__u8 slot;
	__u8 class;
	char s[PAL_POL_STR];
};

/* Mask value of an LPM entry: the selectors whose value matches the key. */
struct pal_pol_mask {
	__u64 w[PAL_POL_WORDS];
};

/* Per-CPU counters per selector gid. */
struct pal_pol_counters {
	__u64 matched;
	__u64 posted;
	__u64 killed;
	__u64 signalled;
	__u64 overridden;
	__u64 monitored;
	__u64 rate_limited;
	__u64 lost;          /* a post the ring buffer had no room for */
};

/* One extracted value in an event. */
struct pal_pol_sock {
	__u16 family;
	__u16 type;
	__u16 protocol;
	__u16 sport;
	__u16 dport;
	__u8 state;
	__u8 pad;
	__u32 pad2;
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 cookie;        /* the kernel socket's address: its identity for TrackSock (0: none) */
};

enum pal_pol_value_flags {
	PAL_V_TRUNC = 1 << 0,  /* string longer than PAL_POL_STR */
	PAL_V_ERROR = 1 << 1,  /* value could not be read */
};

struct pal_pol_value {
	__u8 kind;           /* enum pal_pol_xkind */
	__u8 flags;          /* PAL_V_* */
	__u16 len;           /* string bytes */
	__u32 mode;          /* for paths and the exec'd file: the inode's i_mode (type and permission bits); 0: unknown */
	__u64 ival;          /* integer value; for paths: fd; for creds: uid<<32|gid */
	struct pal_pol_sock sock;
	char s[PAL_POL_STR + 4];
};

struct pal_pol_event {
	struct pal_event_header hdr;
	__u32 hook_id;
	__u32 policy_id;
	__u16 selector;
	__u8 action;         /* enum pal_pol_action */
	__u8 nslots;
	__u32 signal;
	__s64 ret;
	__u32 syscall;       /* syscall number for syscall points, else ~0 */
	__u32 point;         /* the point evaluated: its slot layout describes values[] */
	__u64 proc_ktime;    /* the process's identity (pal_procs), 0 if unknown */
	struct pal_pol_value values[PAL_POL_SLOTS];
};

enum pal_pol_stat {
	PAL_POL_STAT_EVAL, PAL_POL_STAT_MATCH, PAL_POL_STAT_LOST, PAL_POL_STAT_PATH_TRUNC,
	PAL_POL_STAT_COUNT,
};

#endif /* PAL_POLICY_H */
