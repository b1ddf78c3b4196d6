// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* One counting program per hook kind, used to check the kernel probe against what really
 * happens: the test attaches one, triggers it from its own process, and reads the count. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "palisade.h"
#include "pal_helpers.h"

const volatile __u32 target_tgid = 0;

enum live_slot {
	SLOT_TRACEPOINT, SLOT_RAW_TP, SLOT_TP_BTF, SLOT_KPROBE, SLOT_FENTRY, SLOT_LSM,
	SLOT_UPROBE, SLOT_CONNECT4, SLOT_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} live_counts SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(&live_counts, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
}

static __always_inline int ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int live_tracepoint(void *ctx) { if (ours()) hit(SLOT_TRACEPOINT); return 0; }

SEC("raw_tp/sys_enter")
int live_raw_tp(void *ctx) { if (ours()) hit(SLOT_RAW_TP); return 0; }

SEC("tp_btf/sched_process_fork")
int BPF_PROG(live_tp_btf, struct task_struct *parent, struct task_struct *child)
{
	if (BPF_CORE_READ(parent, tgid) == target_tgid)
		hit(SLOT_TP_BTF);
	return 0;
}

SEC("kprobe/do_sys_openat2")
int live_kprobe(struct pt_regs *ctx) { if (ours()) hit(SLOT_KPROBE); return 0; }

SEC("fentry/do_sys_openat2")
int BPF_PROG(live_fentry) { if (ours()) hit(SLOT_FENTRY); return 0; }

SEC("lsm/file_open")
int BPF_PROG(live_lsm, struct file *file) { if (ours()) hit(SLOT_LSM); return 0; }

SEC("uprobe")
int live_uprobe(struct pt_regs *ctx) { if (ours()) hit(SLOT_UPROBE); return 0; }

SEC("cgroup/connect4")
int live_connect4(struct bpf_sock_addr *ctx) { hit(SLOT_CONNECT4); return 1; }

/* Kills the processes listed in kill_targets the moment they exec: the new program never
 * runs an instruction. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} kill_targets SEC(".maps");

SEC("tp/sched/sched_process_exec")
int live_kill_on_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_map_lookup_elem(&kill_targets, &pid))
		bpf_send_signal(SIGKILL);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
