// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Tiny programs the kernel probe loads and attaches one at a time to learn what this
 * kernel really supports. Each returns the "allow / pass" verdict of its hook, so having
 * one attached for a moment changes nothing on the machine.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "palisade.h"
#include "pal_helpers.h"

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx) { return 0; }

SEC("raw_tp/sys_enter")
int probe_raw_tp(void *ctx) { return 0; }

SEC("tp_btf/sched_process_fork")
int BPF_PROG(probe_tp_btf, struct task_struct *parent, struct task_struct *child) { return 0; }

/* Typed reads through any kernel address (Linux 6.2+): the policy engine's path walks. Weak,
 * so a kernel without it fails this program only, not the probe object. */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym __weak;

SEC("raw_tp/sys_enter")
int probe_rdonly_cast(void *ctx)
{
	struct task_struct *task = bpf_rdonly_cast((void *)bpf_get_current_task(), bpf_core_type_id_kernel(struct task_struct));
	return task->pid == 0;
}

SEC("kprobe")
int probe_kprobe(struct pt_regs *ctx) { return 0; }

SEC("kretprobe")
int probe_kretprobe(struct pt_regs *ctx) { return 0; }

SEC("fentry/vfs_read")
int BPF_PROG(probe_fentry) { return 0; }

SEC("fexit/vfs_read")
int BPF_PROG(probe_fexit) { return 0; }

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file) { return 0; }

SEC("uprobe")
int probe_uprobe(struct pt_regs *ctx) { return 0; }

SEC("uretprobe")
int probe_uretprobe(struct pt_regs *ctx) { return 0; }

SEC("tc")
int probe_tc(struct __sk_buff *skb) { return TC_ACT_OK; }

SEC("xdp")
int probe_xdp(struct xdp_md *ctx) { return XDP_PASS; }

/* cgroup sock_addr hooks: 1 lets the call proceed. */
SEC("cgroup/connect4") int probe_connect4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/connect6") int probe_connect6(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/sendmsg4") int probe_sendmsg4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/sendmsg6") int probe_sendmsg6(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/recvmsg4") int probe_recvmsg4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/recvmsg6") int probe_recvmsg6(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/getpeername4") int probe_getpeername4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/getpeername6") int probe_getpeername6(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/getsockname4") int probe_getsockname4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/getsockname6") int probe_getsockname6(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/bind4") int probe_bind4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/bind6") int probe_bind6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup_skb/ingress") int probe_cgroup_skb(struct __sk_buff *skb) { return 1; }
SEC("cgroup/sock_create") int probe_cgroup_sock(struct bpf_sock *sk) { return 1; }
SEC("sockops") int probe_sockops(struct bpf_sock_ops *ctx) { return 1; }

/* Loads only where the kernel has CONFIG_BPF_KPROBE_OVERRIDE. */
SEC("kprobe")
int probe_override_return(struct pt_regs *ctx)
{
	bpf_override_return(ctx, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
