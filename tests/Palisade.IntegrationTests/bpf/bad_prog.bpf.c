// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* Deliberately rejected by the verifier: a map value is used without the NULL check. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bad_map SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int good_program(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_getppid")
int bad_null_deref(void *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&bad_map, &key);
	return *value; /* R0 may be NULL: the verifier must refuse this */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
