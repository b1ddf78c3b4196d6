// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * A stand-in for the datapath's tc program, for the flow tests: on egress of an endpoint's
 * interface, each TCP SYN becomes a pal_flow_event on the shared ring buffer, its owner
 * looked up in the socket-owner table by (the endpoint's netns, source port, TCP), exactly
 * as bpf/net/endpoint.bpf.c does for a real endpoint.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"
#include "pal_flow.h"
#include "pal_helpers.h"

/* Set before load: the endpoint this interface belongs to. */
const volatile __u32 endpoint_netns = 0;
const volatile __u32 endpoint_id = 0;
const volatile __u32 endpoint_identity = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} pal_process_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pal_sock_key);
	__type(value, struct pal_sock_owner);
} pal_sock_owners SEC(".maps");

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define TCP_SYN 0x02

SEC("tc")
int flow_emit(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return TC_ACT_OK;
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end)
		return TC_ACT_OK;
	__u8 flags = ((__u8 *)tcp)[13];
	if (!(flags & TCP_SYN))
		return TC_ACT_OK;
	struct pal_flow_event *e = bpf_ringbuf_reserve(&pal_process_events, sizeof(*e), 0);
	if (!e)
		return TC_ACT_OK;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = PAL_EVENT_FLOW;
	e->hdr.size = sizeof(*e);
	e->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	e->saddr[0] = ip->saddr;
	e->daddr[0] = ip->daddr;
	e->sport = bpf_ntohs(tcp->source);
	e->dport = bpf_ntohs(tcp->dest);
	e->proto = IPPROTO_TCP;
	e->verdict = PAL_VERDICT_FORWARDED;
	e->obs_point = PAL_OBS_FROM_ENDPOINT;
	e->direction = PAL_DIR_EGRESS;
	e->tcp_flags = flags;
	e->report = PAL_REPORT_FIRST;
	e->ifindex = skb->ifindex;
	e->src_ep = endpoint_id;
	e->src_identity = endpoint_identity;
	e->dst_identity = 2;
	e->packets = 1;
	e->bytes = skb->len;
	struct pal_sock_key key = { .netns = endpoint_netns, .port = e->sport, .proto = IPPROTO_TCP, .family = 2 /* AF_INET: this program parses IPv4 only */ };
	struct pal_sock_owner *owner = bpf_map_lookup_elem(&pal_sock_owners, &key);
	if (owner) {
		e->flags |= PAL_FLOW_F_OWNER;
		e->owner_tgid = owner->tgid;
		e->owner_ktime = owner->ktime;
	}
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
