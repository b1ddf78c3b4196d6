// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The pod datapath: two tc programs on the host side of every pod's veth (clsact).
 *
 *  pal_from_endpoint  (host veth ingress: packets leaving the pod)
 *    - ARP, NDP, link-local and multicast: left to the host stack.
 *    - source address not the endpoint's: DROP_INVALID_SIP (132), as Cilium's bpf_lxc.
 *    - destination a local endpoint: MACs rewritten, TTL decremented, bpf_redirect_peer to
 *      the destination's host veth, which hands the packet straight to the peer's eth0
 *      ingress inside the other pod (no second pass through the host stack or its veth).
 *    - anything else (host, gateway, remote nodes by native routing, world): TC_ACT_OK.
 *  pal_to_endpoint    (host veth egress: the host stack delivering to the pod)
 *    - observed and forwarded.
 *
 * Network policy (pal_netpol.h): leaving an endpoint, its egress policy decides and, when the
 * destination is a local endpoint (redirected, its pal_to_endpoint will not run), also the
 * destination's ingress policy; entering an endpoint from the stack, its ingress policy. The
 * remote identity comes from pal_endpoints or the ipcache (world when unknown). Conntrack
 * (pal_ct) makes it stateful: replies, established connections and related ICMP errors pass
 * without a policy lookup; a new connection is looked up and, when it passes, tracked. An
 * endpoint without policy (both modes OFF) costs one byte compare per packet, no lookups.
 *
 * One program serves every endpoint: it finds its endpoint by the device it runs on
 * (pal_endpoints_by_ifindex), so an ADD writes map entries and attaches, never compiles.
 *
 * Flows are aggregated per connection, local endpoint and side (leaving / entering it) in
 * pal_flows: a record on the first packet, on TCP flags not seen before (SYN, FIN, RST),
 * on drops (at most one per drop_report_interval_ns unless the reason changes), and again
 * when a connection carries on for report_interval_ns without any of those (Cilium's
 * monitor-aggregation-interval); the packets between are counted into the entry and
 * reported with the next record.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"
#include "pal_flow.h"
#include "pal_net.h"
#include "pal_netpol.h"
#include "pal_helpers.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define PAL_IPPROTO_HOPOPTS 0
#define PAL_IPPROTO_ICMP 1
#define PAL_IPPROTO_TCP 6
#define PAL_IPPROTO_UDP 17
#define PAL_IPPROTO_ROUTING 43
#define PAL_IPPROTO_FRAGMENT 44
#define PAL_IPPROTO_ICMPV6 58
#define PAL_IPPROTO_SCTP 132
#define PAL_IPPROTO_DSTOPTS 60
#define PAL_TC_ACT_REDIRECT 7

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
/* ICMP errors that quote the packet they are about (related to its connection). */
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4

#define NS_PER_S 1000000000ULL

/* IPv6 extension headers walked before giving up on finding the L4 header. */
#define IPV6_EXT_MAX 4

/* Drop records of one flow at most this often, unless the reason changes: a flood of
 * spoofed packets must not flood the ring buffer. Set before load. */
const volatile __u64 drop_report_interval_ns = 1000000000ULL;
/* A connection with traffic but nothing new is reported again after this long (0: never). Set before load. */
const volatile __u64 report_interval_ns = 5000000000ULL;
/* 0: no flow records at all (counters still count); pod networking is unchanged. Set before load. */
const volatile __u32 flow_records = 1;
/* As process.bpf.c: wake the reader once this many bytes wait (0: every record). */
const volatile __u32 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_NET_ENDPOINTS);
	__type(key, struct pal_endpoint_key);
	__type(value, struct pal_endpoint_info);
} pal_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_NET_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct pal_endpoint_info);
} pal_endpoints_by_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_NET_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pal_ipcache_key);
	__type(value, struct pal_ipcache_value);
} pal_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_NET_FLOWS);
	__type(key, struct pal_flow_key);
	__type(value, struct pal_flow_state);
} pal_flows SEC(".maps");

/* One endpoint's policy (pal_netpol.h); user space creates one per endpoint, sized to it
 * (an LPM trie's max_entries may differ from this template's). Sizes, not BTF types: the
 * inner maps user space makes carry no BTF, and the template only needs to match them. */
struct pal_netpol_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_NETPOL_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct pal_netpol_key));
	__uint(value_size, sizeof(struct pal_netpol_value));
};

/* Endpoint id -> its policy map. Replaced per endpoint by one update (atomic for packets). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, PAL_NET_ENDPOINTS);
	__type(key, __u32);
	__array(values, struct pal_netpol_inner);
} pal_netpol SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_NET_CT);
	__type(key, struct pal_ct_key);
	__type(value, struct pal_ct_entry);
} pal_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_NET_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pal_net_stats SEC(".maps");

/* Filled by bpf/net/sock.bpf.c; shared with it by ReuseFrom or by its pin. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_NET_SOCK_OWNERS);
	__type(key, struct pal_sock_key);
	__type(value, struct pal_sock_owner);
} pal_sock_owners SEC(".maps");

/* Exactly bpf/runtime/process.bpf.c's definition, so the agent can share the process
 * sensor's ring buffer (ReuseFrom): a flow then comes after its process's exec. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} pal_process_events SEC(".maps");

#define stat_inc(stat) pal_count(&pal_net_stats, stat)

/* What the parser found. Addresses as in the packet (network order), ports host order. */
struct pal_pkt {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u16 tcp_flags;
	__u8 proto;
	__u8 family;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 ttl;
	__u8 fragment; /* a non-first fragment: no L4 header */
	__u8 l4_known;
	__u8 link_local; /* ARP/NDP/link-local/multicast: for the host stack, not routed */
	__u16 l4_off;    /* offset of the L4 header in the frame */
	__u32 len;
};

enum parse_result { PARSE_OK, PARSE_NOT_IP, PARSE_MALFORMED };

static __always_inline void parse_l4(struct __sk_buff *skb, struct pal_pkt *p, __u32 off)
{
	__u8 l4[14];

	if (p->fragment)
		return;
	p->l4_off = off;
	if (p->proto == PAL_IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, off, l4, 14) < 0)
			return;
		p->sport = ((__u16)l4[0] << 8) | l4[1];
		p->dport = ((__u16)l4[2] << 8) | l4[3];
		p->tcp_flags = ((__u16)(l4[12] & 1) << 8) | l4[13];
		p->l4_known = 1;
	} else if (p->proto == PAL_IPPROTO_UDP || p->proto == PAL_IPPROTO_SCTP) {
		if (bpf_skb_load_bytes(skb, off, l4, 4) < 0)
			return;
		p->sport = ((__u16)l4[0] << 8) | l4[1];
		p->dport = ((__u16)l4[2] << 8) | l4[3];
		p->l4_known = 1;
	} else if (p->proto == PAL_IPPROTO_ICMP || p->proto == PAL_IPPROTO_ICMPV6) {
		if (bpf_skb_load_bytes(skb, off, l4, 8) < 0)
			return;
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		p->l4_known = 1;
		/* Echoes carry an identifier: as ports it keeps request and reply on one connection. */
		if (l4[0] == ICMP_ECHO || l4[0] == ICMP_ECHOREPLY ||
		    l4[0] == ICMPV6_ECHO_REQUEST || l4[0] == ICMPV6_ECHO_REPLY) {
			p->sport = ((__u16)l4[4] << 8) | l4[5];
			p->dport = p->sport;
		}
		/* NDP (router/neighbour solicitation and advertisement, redirect) is link business. */
		if (p->proto == PAL_IPPROTO_ICMPV6 && l4[0] >= 133 && l4[0] <= 137)
			p->link_local = 1;
	}
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pal_pkt *p)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return PARSE_MALFORMED;
	if (ip.version != 4 || ip.ihl < 5)
		return PARSE_MALFORMED;
	p->family = PAL_AF_INET;
	p->saddr[0] = ip.saddr;
	p->daddr[0] = ip.daddr;
	p->proto = ip.protocol;
	p->ttl = ip.ttl;
	/* Offset bits non-zero: a later fragment, without the L4 header. */
	p->fragment = (bpf_ntohs(ip.frag_off) & 0x1fff) != 0;
	__u32 d = bpf_ntohl(ip.daddr);
	if ((d >> 28) == 0xe || d == 0xffffffff)
		p->link_local = 1;
	parse_l4(skb, p, ETH_HLEN + ip.ihl * 4);
	return PARSE_OK;
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct pal_pkt *p)
{
	struct ipv6hdr ip;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return PARSE_MALFORMED;
	if (ip.version != 6)
		return PARSE_MALFORMED;
	p->family = PAL_AF_INET6;
	__builtin_memcpy(p->saddr, &ip.saddr, 16);
	__builtin_memcpy(p->daddr, &ip.daddr, 16);
	p->ttl = ip.hop_limit;
	/* Multicast (ff00::/8), link-local (fe80::/10) and unspecified sources stay on the link. */
	__u8 d0 = ((__u8 *)&ip.daddr)[0], s0 = ((__u8 *)&ip.saddr)[0], s1 = ((__u8 *)&ip.saddr)[1];
	__u8 d1 = ((__u8 *)&ip.daddr)[1];
	if (d0 == 0xff || (d0 == 0xfe && (d1 & 0xc0) == 0x80) || (s0 == 0xfe && (s1 & 0xc0) == 0x80) ||
	    (p->saddr[0] | p->saddr[1] | p->saddr[2] | p->saddr[3]) == 0)
		p->link_local = 1;

	__u8 next = ip.nexthdr;
	__u32 off = ETH_HLEN + sizeof(ip);
#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		__u8 ext[8];
		if (next != PAL_IPPROTO_HOPOPTS && next != PAL_IPPROTO_ROUTING &&
		    next != PAL_IPPROTO_DSTOPTS && next != PAL_IPPROTO_FRAGMENT)
			break;
		if (bpf_skb_load_bytes(skb, off, ext, 8) < 0)
			return PARSE_MALFORMED;
		if (next == PAL_IPPROTO_FRAGMENT) {
			p->fragment = ((((__u16)ext[2] << 8) | ext[3]) & 0xfff8) != 0;
			off += 8;
		} else {
			off += ((__u32)ext[1] + 1) * 8;
		}
		next = ext[0];
	}
	p->proto = next;
	parse_l4(skb, p, off);
	return PARSE_OK;
}

static __always_inline int parse(struct __sk_buff *skb, struct pal_pkt *p)
{
	p->len = skb->len;
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return parse_ipv4(skb, p);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(skb, p);
	return PARSE_NOT_IP;
}

static __always_inline struct pal_endpoint_info *endpoint_by_addr(const __u32 *addr, __u8 family)
{
	struct pal_endpoint_key key = { .family = family };

	if (family == PAL_AF_INET)
		key.addr[0] = addr[0];
	else
		__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&pal_endpoints, &key);
}

static __always_inline struct pal_ipcache_value *ipcache_lookup(const __u32 *addr, __u8 family)
{
	struct pal_ipcache_key key = { .family = family };

	if (family == PAL_AF_INET) {
		key.prefixlen = PAL_NET_ADDR_PREFIX + 32;
		key.addr[0] = addr[0];
	} else {
		key.prefixlen = PAL_NET_ADDR_PREFIX + 128;
		__builtin_memcpy(key.addr, addr, 16);
	}
	return bpf_map_lookup_elem(&pal_ipcache, &key);
}

/* The other side of a flow: its endpoint id and identity, from the endpoints or the ipcache. */
struct peer {
	__u32 ep_id;
	__u32 identity;
	__u32 flags; /* pal_flow_flags to add */
};

static __always_inline void resolve_peer(struct peer *peer, const __u32 *addr, __u8 family,
					 const struct pal_endpoint_info *local_peer)
{
	if (local_peer) {
		peer->ep_id = local_peer->ep_id;
		peer->identity = local_peer->identity;
		return;
	}
	struct pal_ipcache_value *ipc = ipcache_lookup(addr, family);
	if (!ipc) {
		peer->identity = PAL_ID_WORLD;
		return;
	}
	peer->identity = ipc->identity;
	if (ipc->flags & PAL_IPC_F_REMOTE_NODE)
		peer->flags |= PAL_FLOW_F_REMOTE_NODE;
}

/* One flow decision to aggregate and maybe report. */
struct decision {
	const struct pal_endpoint_info *local; /* the endpoint observing (key of the entry) */
	__u8 side;      /* PAL_OBS_FROM_ENDPOINT: leaving local; PAL_OBS_TO_ENDPOINT: entering */
	__u8 obs_point; /* reported observation point */
	__u8 verdict;
	__u32 drop_reason;
	__u32 ifindex;
	struct peer src;
	struct peer dst;
	__u32 policy_rule;  /* pal_flow_event.policy_rule */
	__u8 policy_dir;    /* pal_flow_event.policy_dir */
	__u8 policy_match;  /* pal_flow_event.policy_match */
};

static __always_inline void reverse_key(struct pal_flow_key *rev, const struct pal_flow_key *key)
{
	__builtin_memcpy(rev->saddr, key->daddr, 16);
	__builtin_memcpy(rev->daddr, key->saddr, 16);
	rev->sport = key->dport;
	rev->dport = key->sport;
	rev->proto = key->proto;
	rev->family = key->family;
	rev->obs_point = key->obs_point == PAL_OBS_FROM_ENDPOINT ? PAL_OBS_TO_ENDPOINT : PAL_OBS_FROM_ENDPOINT;
	rev->pad = 0;
	rev->ep_id = key->ep_id;
}

/* Is the first packet of this direction a reply? TCP and ICMP echo say so themselves;
 * otherwise it is when the opposite direction was seen first at the same endpoint. */
static __always_inline int first_is_reply(const struct pal_pkt *p, const struct pal_flow_key *key)
{
	if (p->proto == PAL_IPPROTO_TCP && p->l4_known && (p->tcp_flags & TCP_SYN))
		return (p->tcp_flags & TCP_ACK) != 0;
	if ((p->proto == PAL_IPPROTO_ICMP || p->proto == PAL_IPPROTO_ICMPV6) && p->l4_known) {
		if (p->icmp_type == ICMP_ECHO || p->icmp_type == ICMPV6_ECHO_REQUEST)
			return 0;
		if (p->icmp_type == ICMP_ECHOREPLY || p->icmp_type == ICMPV6_ECHO_REPLY)
			return 1;
	}
	struct pal_flow_key rev;
	reverse_key(&rev, key);
	struct pal_flow_state *other = bpf_map_lookup_elem(&pal_flows, &rev);
	return other && !(other->flags & PAL_FLOW_ST_REPLY);
}

static __always_inline void emit(const struct pal_pkt *p, const struct decision *d, __u32 report,
				 __u64 packets, __u64 bytes, __u64 now)
{
	struct pal_flow_event *e = bpf_ringbuf_reserve(&pal_process_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(PAL_NET_STAT_RINGBUF_FULL);
		return;
	}
	e->hdr.type = PAL_EVENT_FLOW;
	e->hdr.size = sizeof(*e);
	e->hdr.ktime_ns = now;
	e->hdr.pid = 0;
	e->hdr.tid = 0;
	e->hdr.cgroup_id = 0;
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	e->sport = p->sport;
	e->dport = p->dport;
	e->proto = p->proto;
	e->verdict = d->verdict;
	e->obs_point = d->obs_point;
	int reply = (report & PAL_REPORT_REPLY) != 0;
	int leaving = d->side == PAL_OBS_FROM_ENDPOINT;
	/* The connection's direction as the local endpoint sees it (Hubble's rule). */
	e->direction = leaving != reply ? PAL_DIR_EGRESS : PAL_DIR_INGRESS;
	e->tcp_flags = p->tcp_flags;
	e->icmp_type = p->icmp_type;
	e->icmp_code = p->icmp_code;
	e->report = report;
	e->flags = (p->family == PAL_AF_INET6 ? PAL_FLOW_F_IPV6 : 0) | d->src.flags | d->dst.flags;
	e->drop_reason = d->drop_reason;
	e->ifindex = d->ifindex;
	e->src_ep = d->src.ep_id;
	e->dst_ep = d->dst.ep_id;
	e->src_identity = d->src.identity;
	e->dst_identity = d->dst.identity;
	e->owner_tgid = 0;
	e->owner_ktime = 0;
	if (p->l4_known && (p->proto == PAL_IPPROTO_TCP || p->proto == PAL_IPPROTO_UDP)) {
		struct pal_sock_key sk = {
			.netns = d->local->netns,
			.port = leaving ? p->sport : p->dport,
			.proto = p->proto,
			.family = p->family,
		};
		struct pal_sock_owner *owner = bpf_map_lookup_elem(&pal_sock_owners, &sk);
		if (!owner && p->family == PAL_AF_INET) {
			/* A dual-stack IPv6 socket serving an IPv4 peer. */
			sk.family = PAL_AF_INET6;
			owner = bpf_map_lookup_elem(&pal_sock_owners, &sk);
		}
		if (owner) {
			e->flags |= PAL_FLOW_F_OWNER;
			e->owner_tgid = owner->tgid;
			e->owner_ktime = owner->ktime;
		}
	}
	e->packets = packets;
	e->bytes = bytes;
	e->policy_rule = d->policy_rule;
	e->policy_dir = d->policy_dir;
	e->policy_match = d->policy_match;
	e->pad[0] = 0;
	e->pad[1] = 0;
	__u64 flag = wakeup_bytes == 0 || bpf_ringbuf_query(&pal_process_events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
		? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flag);
	stat_inc(PAL_NET_STAT_FLOW_RECORDS);
}

static __always_inline void observe(const struct pal_pkt *p, const struct decision *d)
{
	if (!flow_records)
		return;
	struct pal_flow_key key = {};
	__builtin_memcpy(key.saddr, p->saddr, 16);
	__builtin_memcpy(key.daddr, p->daddr, 16);
	key.sport = p->sport;
	key.dport = p->dport;
	key.proto = p->proto;
	key.family = p->family;
	key.obs_point = d->side;
	key.ep_id = d->local->ep_id;

	__u64 now = bpf_ktime_get_boot_ns();
	__u16 closing = p->proto == PAL_IPPROTO_TCP ? p->tcp_flags & (TCP_FIN | TCP_RST) : 0;
	int dropped = d->verdict == PAL_VERDICT_DROPPED;
	struct pal_flow_state *st = bpf_map_lookup_elem(&pal_flows, &key);
	int reused = 0;
	/* A SYN on a closed entry is a new connection on the same ports: the entry starts over. */
	if (st && (st->flags & PAL_FLOW_ST_CLOSED) && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		st = NULL;
		reused = 1;
	}

	if (!st) {
		__u32 report = PAL_REPORT_FIRST;
		struct pal_flow_state fresh = { .last_report_ns = now, .tcp_flags_seen = p->tcp_flags };
		if (first_is_reply(p, &key)) {
			report |= PAL_REPORT_REPLY;
			fresh.flags |= PAL_FLOW_ST_REPLY;
		}
		if (closing) {
			report |= PAL_REPORT_CLOSE;
			fresh.flags |= PAL_FLOW_ST_CLOSED;
		}
		if (dropped) {
			report |= PAL_REPORT_DROP;
			fresh.last_drop = d->drop_reason;
		}
		/* Created minus live entries is what the LRU evicted, so a reused entry is not counted. */
		if (bpf_map_update_elem(&pal_flows, &key, &fresh, BPF_ANY) != 0)
			stat_inc(PAL_NET_STAT_FLOW_TABLE_FULL);
		else if (!reused)
			stat_inc(PAL_NET_STAT_FLOW_CREATED);
		emit(p, d, report, 1, p->len, now);
		return;
	}

	__u32 report = 0;
	__u16 fresh_flags = p->tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST) & ~st->tcp_flags_seen;
	if (fresh_flags) {
		report |= PAL_REPORT_STATE;
		st->tcp_flags_seen |= p->tcp_flags;
		if (fresh_flags & (TCP_FIN | TCP_RST)) {
			report |= PAL_REPORT_CLOSE;
			st->flags |= PAL_FLOW_ST_CLOSED;
		}
	}
	if (dropped && (st->last_drop != d->drop_reason || now - st->last_report_ns >= drop_report_interval_ns)) {
		report |= PAL_REPORT_DROP;
		st->last_drop = d->drop_reason;
	}
	if (!report && report_interval_ns && now - st->last_report_ns >= report_interval_ns)
		report |= PAL_REPORT_ACTIVE;
	__sync_fetch_and_add(&st->packets, 1);
	__sync_fetch_and_add(&st->bytes, p->len);
	if (!report) {
		stat_inc(PAL_NET_STAT_FLOW_AGGREGATED);
		return;
	}
	if (st->flags & PAL_FLOW_ST_REPLY)
		report |= PAL_REPORT_REPLY;
	st->last_report_ns = now;
	/* Take the counts since the last record; another CPU's packet in between lands in the next. */
	__u64 packets = __sync_lock_test_and_set(&st->packets, 0);
	__u64 bytes = __sync_lock_test_and_set(&st->bytes, 0);
	emit(p, d, report, packets, bytes, now);
}

static __always_inline int drop(const struct pal_pkt *p, struct decision *d, __u32 reason, __u32 stat)
{
	stat_inc(stat);
	d->verdict = PAL_VERDICT_DROPPED;
	d->drop_reason = reason;
	d->obs_point = PAL_OBS_FROM_ENDPOINT;
	observe(p, d);
	return TC_ACT_SHOT;
}

static __always_inline int addr_is(const struct pal_pkt *p, const struct pal_endpoint_info *ep)
{
	if (p->family == PAL_AF_INET)
		return (ep->flags & PAL_EP_F_IPV4) && p->saddr[0] == ep->ipv4;
	return (ep->flags & PAL_EP_F_IPV6) && p->saddr[0] == ep->ipv6[0] && p->saddr[1] == ep->ipv6[1] &&
	       p->saddr[2] == ep->ipv6[2] && p->saddr[3] == ep->ipv6[3];
}

/* ---- Network policy and conntrack ---- */

/* What the policy of one endpoint and direction said about a packet. */
struct pol {
	__u8 verdict; /* PAL_VERDICT_FORWARDED, _AUDIT or _DROPPED */
	__u8 dir;     /* enum pal_flow_direction: whose policy decided (0: none) */
	__u8 match;   /* enum pal_flow_policy_match */
	__u32 reason; /* drop reason when DROPPED */
	__u32 rule;   /* pal_netpol_value.rule of the deciding entry, 0: none */
};

static __always_inline int is_icmp(const struct pal_pkt *p)
{
	return p->proto == PAL_IPPROTO_ICMP || p->proto == PAL_IPPROTO_ICMPV6;
}

/* pal_netpol.h's lookup algorithm for one endpoint and direction whose mode is not OFF. */
static __always_inline void policy_decide(struct pol *r, __u32 ep_id, __u8 dir, __u8 mode, __u32 remote,
					  const struct pal_pkt *p)
{
	const __u8 deny = PAL_NETPOL_F_DENY, deny_audit = PAL_NETPOL_F_DENY | PAL_NETPOL_F_AUDIT;
	struct pal_netpol_value *a = NULL, *b = NULL, *hit = NULL;

	r->verdict = PAL_VERDICT_FORWARDED;
	r->dir = dir == PAL_NETPOL_INGRESS ? PAL_DIR_INGRESS : PAL_DIR_EGRESS;
	r->match = PAL_POLICY_RULE;
	r->reason = 0;
	r->rule = 0;
	void *map = bpf_map_lookup_elem(&pal_netpol, &ep_id);
	if (map) {
		struct pal_netpol_key key = {
			.prefixlen = PAL_NETPOL_PREFIX_FULL,
			.identity = remote,
			.direction = dir,
			.protocol = p->proto,
			/* ICMP: the type stands for the port. */
			.dport = bpf_htons(is_icmp(p) ? (__u16)p->icmp_type : p->dport),
		};
		a = bpf_map_lookup_elem(map, &key);
		key.identity = 0;
		b = bpf_map_lookup_elem(map, &key);
	}
	__u8 fa = a ? a->flags : 0, fb = b ? b->flags : 0;
	/* 1. a deny without AUDIT drops (a's rule if both) */
	if (a && (fa & deny_audit) == deny)
		hit = a;
	else if (b && (fb & deny_audit) == deny)
		hit = b;
	if (hit) {
		r->verdict = PAL_VERDICT_DROPPED;
		r->reason = PAL_DROP_POLICY_DENY;
		r->rule = hit->rule;
		return;
	}
	/* 2. a deny with AUDIT passes as AUDIT */
	if (a && (fa & deny_audit) == deny_audit)
		hit = a;
	else if (b && (fb & deny_audit) == deny_audit)
		hit = b;
	if (hit) {
		r->verdict = PAL_VERDICT_AUDIT;
		r->rule = hit->rule;
		return;
	}
	/* 3. an allow passes; the longer l4_prefix wins, a on a tie */
	if (a)
		hit = a;
	if (b && (!hit || b->l4_prefix > hit->l4_prefix))
		hit = b;
	if (hit) {
		r->rule = hit->rule;
		return;
	}
	/* 4. no entry: the direction's mode */
	r->match = PAL_POLICY_DEFAULT;
	if (mode == PAL_NETPOL_AUDIT) {
		r->verdict = PAL_VERDICT_AUDIT;
	} else {
		r->verdict = PAL_VERDICT_DROPPED;
		r->reason = PAL_DROP_POLICY_DENIED;
	}
}

enum ct_state { CT_NEW, CT_ESTABLISHED, CT_REPLY, CT_RELATED };

static __always_inline void ct_reverse(struct pal_ct_key *rev, const struct pal_ct_key *key)
{
	__builtin_memcpy(rev->saddr, key->daddr, 16);
	__builtin_memcpy(rev->daddr, key->saddr, 16);
	rev->sport = key->dport;
	rev->dport = key->sport;
	rev->proto = key->proto;
	rev->family = key->family;
	rev->pad[0] = 0;
	rev->pad[1] = 0;
}

static __always_inline __u64 ct_timeout(__u8 proto, __u16 flags)
{
	if (proto != PAL_IPPROTO_TCP)
		return PAL_CT_OTHER_S * NS_PER_S;
	if (flags & PAL_CT_F_CLOSING)
		return PAL_CT_TCP_CLOSING_S * NS_PER_S;
	if (flags & PAL_CT_F_REPLY_SEEN)
		return PAL_CT_TCP_ESTABLISHED_S * NS_PER_S;
	return PAL_CT_TCP_SYN_S * NS_PER_S;
}

/* A live entry carries this packet: state and expiry move on. */
static __always_inline void ct_touch(struct pal_ct_entry *e, const struct pal_pkt *p, int reply, __u64 now)
{
	__u16 flags = e->flags;
	if (reply)
		flags |= PAL_CT_F_REPLY_SEEN;
	if (p->proto == PAL_IPPROTO_TCP) {
		if (p->tcp_flags & (TCP_FIN | TCP_RST))
			flags |= PAL_CT_F_CLOSING;
		if ((e->tcp_flags | p->tcp_flags) != e->tcp_flags)
			e->tcp_flags |= p->tcp_flags;
	}
	__u64 expires = now + ct_timeout(p->proto, flags);
	/* Written on a state change or at most about once a second: a write per packet would
	 * bounce the entry's cache line between CPUs. */
	if (flags != e->flags || expires > e->expires_ns + NS_PER_S) {
		e->flags = flags;
		e->expires_ns = expires;
	}
}

static __always_inline int icmp_is_error(const struct pal_pkt *p)
{
	if (!p->l4_known)
		return 0;
	if (p->proto == PAL_IPPROTO_ICMP)
		return p->icmp_type == ICMP_DEST_UNREACH || p->icmp_type == ICMP_SOURCE_QUENCH ||
		       p->icmp_type == ICMP_TIME_EXCEEDED || p->icmp_type == ICMP_PARAMETERPROB;
	if (p->proto == PAL_IPPROTO_ICMPV6)
		return p->icmp_type >= ICMPV6_DEST_UNREACH && p->icmp_type <= ICMPV6_PARAMPROB;
	return 0;
}

static __always_inline int ct_live(const struct pal_ct_key *key, __u64 now)
{
	struct pal_ct_entry *e = bpf_map_lookup_elem(&pal_ct, key);
	return e && e->expires_ns > now;
}

/* An ICMP error quoting a packet of a tracked connection (either direction) is related to it. */
static __always_inline int ct_related(struct __sk_buff *skb, const struct pal_pkt *p, __u64 now)
{
	struct pal_ct_key key = { .family = p->family };
	__u32 off = p->l4_off + 8;
	__u8 l4[6];

	if (p->family == PAL_AF_INET) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
			return 0;
		key.saddr[0] = ip.saddr;
		key.daddr[0] = ip.daddr;
		key.proto = ip.protocol;
		off += ip.ihl * 4;
	} else {
		struct ipv6hdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 6)
			return 0;
		__builtin_memcpy(key.saddr, &ip.saddr, 16);
		__builtin_memcpy(key.daddr, &ip.daddr, 16);
		key.proto = ip.nexthdr;
		off += sizeof(ip);
	}
	if (bpf_skb_load_bytes(skb, off, l4, sizeof(l4)) < 0)
		return 0;
	if (key.proto == PAL_IPPROTO_TCP || key.proto == PAL_IPPROTO_UDP || key.proto == PAL_IPPROTO_SCTP) {
		key.sport = ((__u16)l4[0] << 8) | l4[1];
		key.dport = ((__u16)l4[2] << 8) | l4[3];
	} else if (key.proto == PAL_IPPROTO_ICMP || key.proto == PAL_IPPROTO_ICMPV6) {
		if (l4[0] != ICMP_ECHO && l4[0] != ICMP_ECHOREPLY && l4[0] != ICMPV6_ECHO_REQUEST &&
		    l4[0] != ICMPV6_ECHO_REPLY)
			return 0;
		key.sport = ((__u16)l4[4] << 8) | l4[5];
		key.dport = key.sport;
	} else {
		return 0;
	}
	if (ct_live(&key, now))
		return 1;
	struct pal_ct_key rev;
	ct_reverse(&rev, &key);
	return ct_live(&rev, now);
}

/* Where the packet stands in conntrack; *key is its forward tuple. */
static __always_inline int ct_lookup(struct __sk_buff *skb, const struct pal_pkt *p, struct pal_ct_key *key, __u64 now)
{
	__builtin_memcpy(key->saddr, p->saddr, 16);
	__builtin_memcpy(key->daddr, p->daddr, 16);
	key->sport = p->sport;
	key->dport = p->dport;
	key->proto = p->proto;
	key->family = p->family;
	key->pad[0] = 0;
	key->pad[1] = 0;

	struct pal_ct_entry *e = bpf_map_lookup_elem(&pal_ct, key);
	/* Expired counts as gone; a SYN on a closing connection opens a new one on the same ports. */
	if (e && e->expires_ns > now &&
	    !((e->flags & PAL_CT_F_CLOSING) && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)) {
		ct_touch(e, p, 0, now);
		return CT_ESTABLISHED;
	}
	/* An echo request is never a reply (the identifier is both "ports"). */
	if (!(is_icmp(p) && (p->icmp_type == ICMP_ECHO || p->icmp_type == ICMPV6_ECHO_REQUEST))) {
		struct pal_ct_key rev;
		ct_reverse(&rev, key);
		e = bpf_map_lookup_elem(&pal_ct, &rev);
		if (e && e->expires_ns > now) {
			ct_touch(e, p, 1, now);
			return CT_REPLY;
		}
	}
	if (icmp_is_error(p) && ct_related(skb, p, now))
		return CT_RELATED;
	return CT_NEW;
}

static __always_inline void ct_create(const struct pal_ct_key *key, const struct pal_pkt *p, int audit, __u64 now)
{
	struct pal_ct_entry e = {
		.created_s = now / NS_PER_S,
		.flags = audit ? PAL_CT_F_AUDIT : 0,
		.tcp_flags = p->proto == PAL_IPPROTO_TCP ? p->tcp_flags : 0,
	};
	if (p->proto == PAL_IPPROTO_TCP && (p->tcp_flags & (TCP_FIN | TCP_RST)))
		e.flags |= PAL_CT_F_CLOSING;
	e.expires_ns = now + ct_timeout(p->proto, e.flags);
	if (bpf_map_update_elem(&pal_ct, key, &e, BPF_ANY) != 0)
		stat_inc(PAL_NET_STAT_CT_FULL);
	else
		stat_inc(PAL_NET_STAT_CT_CREATED);
}

enum enforce_result { ENFORCE_PASS, ENFORCE_DROP_EGRESS, ENFORCE_DROP_INGRESS };

/*
 * The policy step of a packet going from src (a local endpoint, or NULL) to dst (a local
 * endpoint it is delivered to without another program, or NULL): conntrack first, then the
 * egress policy of src and the ingress policy of dst. Every connection of an endpoint is
 * tracked, policy or not (as Cilium does): a policy that arrives later then keeps the
 * connections already open and governs only new ones, instead of cutting them mid-stream.
 */
static __always_inline int enforce(struct __sk_buff *skb, const struct pal_pkt *p,
				   const struct pal_endpoint_info *src, __u32 src_identity,
				   const struct pal_endpoint_info *dst, __u32 dst_identity,
				   struct pol *eg, struct pol *in)
{
	__u8 egress_mode = src ? src->egress_mode : PAL_NETPOL_OFF;
	__u8 ingress_mode = dst ? dst->ingress_mode : PAL_NETPOL_OFF;
	/* Whether either end has policy at all: only then is a conntrack hit what let the packet
	 * through (counted, and named in the flow's policy match). */
	__u8 any = (src ? src->egress_mode | src->ingress_mode : 0) | (dst ? dst->egress_mode | dst->ingress_mode : 0);

	__u64 now = bpf_ktime_get_boot_ns();
	struct pal_ct_key key;
	int state = ct_lookup(skb, p, &key, now);
	if (state != CT_NEW) {
		if (!any)
			return ENFORCE_PASS;
		__u8 match = PAL_POLICY_CT_ESTABLISHED;
		if (state == CT_REPLY) {
			match = PAL_POLICY_CT_REPLY;
			stat_inc(PAL_NET_STAT_CT_REPLY);
		} else if (state == CT_RELATED) {
			match = PAL_POLICY_CT_RELATED;
			stat_inc(PAL_NET_STAT_CT_RELATED);
		} else {
			stat_inc(PAL_NET_STAT_CT_ESTABLISHED);
		}
		eg->match = match;
		in->match = match;
		return ENFORCE_PASS;
	}
	if (egress_mode != PAL_NETPOL_OFF) {
		policy_decide(eg, src->ep_id, PAL_NETPOL_EGRESS, egress_mode, dst_identity, p);
		if (eg->verdict == PAL_VERDICT_DROPPED)
			return ENFORCE_DROP_EGRESS;
	}
	if (ingress_mode != PAL_NETPOL_OFF) {
		policy_decide(in, dst->ep_id, PAL_NETPOL_INGRESS, ingress_mode, src_identity, p);
		if (in->verdict == PAL_VERDICT_DROPPED)
			return ENFORCE_DROP_INGRESS;
	}
	int audit = eg->verdict == PAL_VERDICT_AUDIT || in->verdict == PAL_VERDICT_AUDIT;
	if (audit)
		stat_inc(PAL_NET_STAT_POLICY_AUDIT);
	else if (eg->match == PAL_POLICY_RULE || in->match == PAL_POLICY_RULE)
		stat_inc(PAL_NET_STAT_POLICY_ALLOWED);
	/* An ICMP error has no connection of its own. */
	if (!icmp_is_error(p))
		ct_create(&key, p, audit, now);
	return ENFORCE_PASS;
}

/* The flow fields of a policy result; a pass keeps its verdict (FORWARDED or AUDIT). */
static __always_inline void apply_policy(struct decision *d, const struct pol *r)
{
	d->verdict = r->verdict == PAL_VERDICT_AUDIT ? PAL_VERDICT_AUDIT : PAL_VERDICT_FORWARDED;
	d->policy_rule = r->rule;
	d->policy_dir = r->dir;
	d->policy_match = r->match;
}

/* A policy drop: always a drop record (rate-limited per flow as every drop). */
static __always_inline int policy_drop(const struct pal_pkt *p, struct decision *d, const struct pol *r)
{
	stat_inc(r->reason == PAL_DROP_POLICY_DENY ? PAL_NET_STAT_POLICY_DENY : PAL_NET_STAT_POLICY_DENIED);
	d->verdict = PAL_VERDICT_DROPPED;
	d->drop_reason = r->reason;
	d->policy_rule = r->rule;
	d->policy_dir = r->dir;
	d->policy_match = r->match;
	observe(p, d);
	return TC_ACT_SHOT;
}

/* Routes to a local endpoint as a router would (TTL, MACs) and hands it to its pod. */
static __always_inline int redirect_local(struct __sk_buff *skb, const struct pal_pkt *p,
					  const struct pal_endpoint_info *dst, struct decision *d,
					  const struct pol *eg, const struct pol *in_pol)
{
	if (p->family == PAL_AF_INET) {
		/* TTL and protocol share a 16-bit word of the checksum. */
		__u16 old_word = bpf_htons(((__u16)p->ttl << 8) | p->proto);
		__u16 new_word = bpf_htons(((__u16)(p->ttl - 1) << 8) | p->proto);
		__u8 ttl = p->ttl - 1;
		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_word, new_word, 2) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &ttl, 1, 0) < 0)
			return drop(p, d, PAL_DROP_WRITE_ERROR, PAL_NET_STAT_DROP_WRITE_ERROR);
	} else {
		__u8 hops = p->ttl - 1;
		if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, hop_limit), &hops, 1, 0) < 0)
			return drop(p, d, PAL_DROP_WRITE_ERROR, PAL_NET_STAT_DROP_WRITE_ERROR);
	}
	__u8 macs[12];
	__builtin_memcpy(macs, dst->pod_mac, 6);
	__builtin_memcpy(macs + 6, dst->host_mac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return drop(p, d, PAL_DROP_WRITE_ERROR, PAL_NET_STAT_DROP_WRITE_ERROR);

	stat_inc(PAL_NET_STAT_REDIRECTED);
	apply_policy(d, eg);
	d->obs_point = PAL_OBS_FROM_ENDPOINT;
	observe(p, d);
	/* The receiver's side of the same packet: its to-endpoint program will not run. */
	struct decision in = *d;
	in.local = dst;
	in.side = PAL_OBS_TO_ENDPOINT;
	in.obs_point = PAL_OBS_TO_ENDPOINT;
	in.ifindex = dst->ifindex;
	apply_policy(&in, in_pol);
	observe(p, &in);
	return bpf_redirect_peer(dst->ifindex, 0);
}

SEC("tc")
int pal_from_endpoint(struct __sk_buff *skb)
{
	/* At ingress skb_iif is the device the program runs on (and BPF_PROG_RUN can set it). */
	__u32 ifindex = skb->ingress_ifindex;
	struct pal_endpoint_info *local = bpf_map_lookup_elem(&pal_endpoints_by_ifindex, &ifindex);
	if (!local) {
		stat_inc(PAL_NET_STAT_NO_ENDPOINT);
		return TC_ACT_OK;
	}
	struct pal_pkt p = {};
	int parsed = parse(skb, &p);
	if (parsed == PARSE_NOT_IP || (parsed == PARSE_OK && p.link_local)) {
		stat_inc(PAL_NET_STAT_PASSED_L2);
		return TC_ACT_OK;
	}
	struct decision d = {
		.local = local,
		.side = PAL_OBS_FROM_ENDPOINT,
		.ifindex = ifindex,
		.src = { .ep_id = local->ep_id, .identity = local->identity },
	};
	if (parsed == PARSE_MALFORMED)
		return drop(&p, &d, PAL_DROP_INVALID, PAL_NET_STAT_DROP_INVALID);
	if (!p.l4_known)
		stat_inc(p.fragment ? PAL_NET_STAT_FRAGMENT : PAL_NET_STAT_UNKNOWN_L4);

	struct pal_endpoint_info *dst = endpoint_by_addr(p.daddr, p.family);
	resolve_peer(&d.dst, p.daddr, p.family, dst);
	if (!addr_is(&p, local))
		return drop(&p, &d, PAL_DROP_INVALID_SIP, PAL_NET_STAT_DROP_INVALID_SIP);

	/* A TTL about to expire goes to the stack, which answers with ICMP time exceeded (and
	 * the stack's delivery to dst runs dst's pal_to_endpoint, its ingress policy). */
	int local_dst = dst && p.ttl > 1;
	struct pol eg = {}, in = {};
	int verdict = enforce(skb, &p, local, local->identity, local_dst ? dst : NULL, d.dst.identity, &eg, &in);
	if (verdict == ENFORCE_DROP_EGRESS) {
		d.obs_point = PAL_OBS_FROM_ENDPOINT;
		return policy_drop(&p, &d, &eg);
	}
	if (verdict == ENFORCE_DROP_INGRESS && dst) {
		/* Reported where it was refused: entering dst, by dst's ingress policy. */
		struct decision refused = d;
		refused.local = dst;
		refused.side = PAL_OBS_TO_ENDPOINT;
		refused.obs_point = PAL_OBS_TO_ENDPOINT;
		refused.ifindex = dst->ifindex;
		return policy_drop(&p, &refused, &in);
	}
	if (local_dst)
		return redirect_local(skb, &p, dst, &d, &eg, &in);

	stat_inc(PAL_NET_STAT_TO_STACK);
	apply_policy(&d, &eg);
	d.obs_point = PAL_OBS_TO_STACK;
	observe(&p, &d);
	return TC_ACT_OK;
}

SEC("tc")
int pal_to_endpoint(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct pal_endpoint_info *local = bpf_map_lookup_elem(&pal_endpoints_by_ifindex, &ifindex);
	if (!local) {
		stat_inc(PAL_NET_STAT_NO_ENDPOINT);
		return TC_ACT_OK;
	}
	struct pal_pkt p = {};
	if (parse(skb, &p) != PARSE_OK || p.link_local) {
		stat_inc(PAL_NET_STAT_PASSED_L2);
		return TC_ACT_OK;
	}
	if (!p.l4_known)
		stat_inc(p.fragment ? PAL_NET_STAT_FRAGMENT : PAL_NET_STAT_UNKNOWN_L4);
	struct decision d = {
		.local = local,
		.side = PAL_OBS_TO_ENDPOINT,
		.obs_point = PAL_OBS_TO_ENDPOINT,
		.verdict = PAL_VERDICT_FORWARDED,
		.ifindex = ifindex,
		.dst = { .ep_id = local->ep_id, .identity = local->identity },
	};
	resolve_peer(&d.src, p.saddr, p.family, endpoint_by_addr(p.saddr, p.family));
	struct pol eg = {}, in = {};
	if (enforce(skb, &p, NULL, d.src.identity, local, local->identity, &eg, &in) != ENFORCE_PASS)
		return policy_drop(&p, &d, &in);
	stat_inc(PAL_NET_STAT_FORWARDED);
	apply_policy(&d, &in);
	observe(&p, &d);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
