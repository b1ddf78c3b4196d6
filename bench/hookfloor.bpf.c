// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The least any program on the syscall-exit tracepoint can cost: it counts and returns.
 * bench/openat-policies.sh measures it next to the agent, as the floor of what a policy
 * engine hooked there can reach (the tracing slow path every syscall then takes, the
 * tracepoint dispatch, one program run).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 calls;

SEC("tp_btf/sys_exit")
int BPF_PROG(hookfloor, struct pt_regs *regs, long ret)
{
	__sync_fetch_and_add(&calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
