// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* Counts packets and bytes that pass a tc hook, letting every packet through. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "palisade.h"
#include "pal_helpers.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 0: packets, 1: bytes */
	__type(key, __u32);
	__type(value, __u64);
} tc_counts SEC(".maps");

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *packets = bpf_map_lookup_elem(&tc_counts, &key);
	if (packets)
		(*packets)++;
	key = 1;
	__u64 *bytes = bpf_map_lookup_elem(&tc_counts, &key);
	if (bytes)
		*bytes += skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
