// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* Maps of each kind the typed map API must handle; no program is attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "palisade.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct pal_event_header);
} test_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} test_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} test_percpu SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int maps_noop(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
