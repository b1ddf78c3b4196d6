/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Types that cross the kernel/user boundary, shared by every Palisade BPF object.
 * Each struct here has a C# twin marked [BpfStruct("name")]; the layout test in
 * tests/Palisade.Tests compares both against the BTF of bpf/layout/layout.bpf.c, so a
 * field added here and not in C# fails the build's tests.
 *
 * Rules: fixed-width types only, explicit padding fields, 8-byte alignment of every
 * 64-bit member, no bitfields.
 */
#ifndef PALISADE_H
#define PALISADE_H

/* Event types written to the ring buffers; the first field of every record. */
enum pal_event_type {
	PAL_EVENT_INVALID = 0,
	PAL_EVENT_TEST = 1, /* emitted only by test programs */
	PAL_EVENT_EXEC = 2,
	PAL_EVENT_EXIT = 3,
	PAL_EVENT_FORK = 4,
	PAL_EVENT_POLICY = 5, /* a TracingPolicy selector matched (pal_policy.h) */
	PAL_EVENT_FLOW = 6,   /* a network flow record (pal_flow.h) */
	PAL_EVENT_TYPE_MAX = 8,
};

/* Header at the start of every ring-buffer record. */
struct pal_event_header {
	__u32 type;       /* enum pal_event_type */
	__u32 size;       /* bytes of the whole record, header included */
	__u64 ktime_ns;   /* bpf_ktime_get_boot_ns() when the event happened */
	__u32 pid;        /* thread-group id as the root pid namespace sees it */
	__u32 tid;        /* thread id as the root pid namespace sees it */
	__u64 cgroup_id;  /* cgroup v2 id of the task */
};

/*
 * Sizes and flag sets C# mirrors are enums rather than #defines: BTF carries enums, so the
 * layout test can compare them with their C# twins.
 */

/* Record emitted by the test programs that prove the ring-buffer path end to end. */
enum pal_test_sizes { PAL_TEST_PAYLOAD_LEN = 32 };
struct pal_test_event {
	struct pal_event_header hdr;
	__u64 cookie;                       /* value the test wrote to a map beforehand */
	char comm[16];                      /* task comm */
	char payload[PAL_TEST_PAYLOAD_LEN]; /* bytes read from user memory */
};

/* ---- process lifecycle (bpf/runtime/process.bpf.c) ---- */

/* pal_exec_event.flags and pal_proc.flags */
enum pal_exec_flags {
	PAL_EXEC_F_EXEC = 1 << 0,       /* identity comes from an exec we saw */
	PAL_EXEC_F_CLONE = 1 << 1,      /* identity comes from a fork we saw */
	PAL_EXEC_F_PROCFS = 1 << 2,     /* identity read from /proc at start-up */
	PAL_EXEC_F_TRUNC_ARGS = 1 << 3, /* arguments longer than the configured maximum */
	PAL_EXEC_F_TRUNC_PATH = 1 << 4, /* a path had more components or bytes than we walk */
	PAL_EXEC_F_SCRIPT = 1 << 5,     /* binfmt handler changed the interpreter (#! script) */
	PAL_EXEC_F_SETUID = 1 << 6,     /* executed file has the set-user-ID bit */
	PAL_EXEC_F_SETGID = 1 << 7,     /* executed file has the set-group-ID bit */
	PAL_EXEC_F_DELETED = 1 << 8,    /* executed file had no links left */
	PAL_EXEC_F_ERROR_ARGS = 1 << 9, /* arguments could not be read */
	PAL_EXEC_F_PARENT_MISS = 1 << 10, /* parent identity was not in the process map */
	PAL_EXEC_F_REPLACED = 1 << 11,    /* exec replaced an exec'd image in the same process */
};

/* Namespace slots of pal_exec_event.ns */
enum pal_ns {
	PAL_NS_UTS, PAL_NS_IPC, PAL_NS_MNT, PAL_NS_PID, PAL_NS_PID_FOR_CHILDREN, PAL_NS_NET,
	PAL_NS_TIME, PAL_NS_TIME_FOR_CHILDREN, PAL_NS_CGROUP, PAL_NS_USER, PAL_NS_COUNT,
};

/*
 * The process table: one entry per live process, keyed by tgid, kept by process.bpf.c's
 * exec/fork/exit programs and read by every other object that needs a process (the policy
 * engine reuses the map). exec_id = base64("node:ktime:pid").
 */
#define PAL_PROC_BIN 252 /* bytes of bin kept: what a policy string can match (PAL_POL_STR) */
struct pal_proc {
	__u64 ktime;         /* identity start: boot-time ns of the exec (or fork) */
	__u64 parent_ktime;  /* identity of the parent */
	__u32 parent_pid;
	__u32 flags;         /* PAL_EXEC_F_EXEC | _CLONE | _PROCFS, _TRUNC_PATH for bin */
	__u64 cap_eff;       /* effective capabilities at exec (matchCapabilityChanges) */
	__u32 ns[PAL_NS_COUNT]; /* namespaces at exec (matchNamespaceChanges) */
	__u32 nspid;         /* the process's pid in its own pid namespace */
	__u32 ppid;          /* tgid of the parent process (parent_pid is the previous image after a re-exec) */
	__u16 bin_len;       /* bytes of bin */
	__u16 pad;
	char bin[PAL_PROC_BIN]; /* the executable's absolute path as the task's root sees it */
};

/* Size of the variable data area; a power of two so offsets can be masked for the verifier. */
enum pal_exec_sizes {
	PAL_EXEC_DATA = 16384,
	PAL_EXEC_DATA_SLACK = 4352,
	PAL_CGROUP_NAME = 128,
};

/*
 * One exec. Strings live in data[]: exe path, cwd path, then the script filename (if
 * any), then the arguments. Paths are written leaf-first as NUL-terminated components
 * ("echo\0bin\0usr\0"); user space reverses them. Arguments are NUL-separated as in
 * the process's argv memory. The record is sent with its used size only.
 */
struct pal_exec_event {
	struct pal_event_header hdr;  /* hdr.tid: the thread that called execve (old_pid) */
	__u64 parent_ktime;
	__u64 prev_ktime;             /* identity this exec replaces (a fork or an earlier exec), 0 if none */
	__u64 exe_inode;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
	__u32 parent_pid;
	__u32 flags;
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u32 auid;
	__u32 nspid;                  /* pid in the process's own pid namespace */
	__u32 exe_uid;                /* owner of the executed file (setuid target) */
	__u32 exe_gid;
	__u32 ns[PAL_NS_COUNT];
	__u16 exe_len;                /* bytes of data[] per part */
	__u16 cwd_len;
	__u16 filename_len;
	__u16 args_len;
	__u16 exe_depth;              /* components written */
	__u16 cwd_depth;
	char cgroup_name[PAL_CGROUP_NAME];
	char cgroup_parent_name[PAL_CGROUP_NAME];
	char data[PAL_EXEC_DATA + PAL_EXEC_DATA_SLACK];
};

/* A new process (not a thread): it carries its parent's image until it execs. */
struct pal_fork_event {
	struct pal_event_header hdr;  /* hdr.pid: the child; ktime_ns: its identity */
	__u64 parent_ktime;
	__u32 parent_pid;
	__u32 pad;
};

/* The last thread of a process left. */
struct pal_exit_event {
	struct pal_event_header hdr;  /* hdr.tid: the last thread to exit */
	__u64 ktime;                  /* identity of the exiting process */
	__u32 exit_code;              /* status << 8 | signal, as wait(2) encodes it */
	__u32 flags;                  /* PAL_EXEC_F_DELETED if the image lost its last link */
};

/* Per-CPU counters, indexed by enum pal_stat. */
enum pal_stat {
	PAL_STAT_LOST_EXEC, PAL_STAT_LOST_EXIT, PAL_STAT_LOST_FORK,
	PAL_STAT_PROC_MAP_FULL, PAL_STAT_EXEC, PAL_STAT_EXIT, PAL_STAT_FORK, PAL_STAT_COUNT,
};

#include "pal_policy.h"

#endif /* PALISADE_H */
