/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Maps of the pod datapath (bpf/net/endpoint.bpf.c): local endpoints, the ipcache, the
 * flow-aggregation table and the datapath counters. Every struct has a C# twin in
 * agent/Palisade.Datapath/Abi/NetAbi.cs ([BpfStruct]) and every enum a checked twin
 * ([BpfEnum]); see palisade.h for the layout rules.
 */
#ifndef PAL_NET_H
#define PAL_NET_H

#include "palisade.h"
#include "pal_flow.h"

/* Reserved security identities, numbered as Cilium's (pkg/identity/numericidentity.go). */
enum pal_identity {
	PAL_ID_UNKNOWN = 0,
	PAL_ID_HOST = 1,
	PAL_ID_WORLD = 2,
	PAL_ID_UNMANAGED = 3,
	PAL_ID_HEALTH = 4,
	PAL_ID_INIT = 5,
	PAL_ID_REMOTE_NODE = 6,
	PAL_ID_KUBE_APISERVER = 7,
	PAL_ID_FIRST_LOCAL = 256, /* first identity of labels (below: reserved) */
};

/* Cilium's drop reasons (bpf/lib/common.h DROP_*, Hubble's DropReason) that we emit. */
enum pal_drop_reason {
	PAL_DROP_INVALID_SIP = 132, /* source address is not the endpoint's */
	PAL_DROP_POLICY_DENIED = 133, /* POLICY_DENIED: no policy entry allows it (default deny) */
	PAL_DROP_INVALID = 134,     /* malformed packet (truncated header) */
	PAL_DROP_WRITE_ERROR = 141, /* rewriting the packet failed */
	PAL_DROP_POLICY_DENY = 181, /* POLICY_DENY: an explicit deny rule (ingressDeny/egressDeny) */
};

enum pal_net_sizes {
	PAL_NET_ENDPOINTS = 65536,      /* endpoint ids are 1..65535 */
	PAL_NET_IPCACHE = 512000,       /* Cilium's default ipcache size */
	PAL_NET_FLOWS = 65536,          /* default flow-aggregation entries (settable before load) */
	PAL_NET_SOCK_OWNERS = 65536,    /* pal_sock_owners of bpf/net/sock.bpf.c */
	PAL_NET_ADDR_PREFIX = 32,       /* bits of ipcache key before addr (family + pad) */
	PAL_NET_CT = 262144,            /* default conntrack entries (settable before load) */
};

/* Address family of the keys (AF_INET/AF_INET6 values, so user space passes them through). */
enum pal_net_family {
	PAL_AF_INET = 2,
	PAL_AF_INET6 = 10,
};

/* pal_endpoint_info.flags */
enum pal_endpoint_flags {
	PAL_EP_F_IPV4 = 1 << 0, /* ipv4 is set */
	PAL_EP_F_IPV6 = 1 << 1, /* ipv6 is set */
};

/* Key of pal_endpoints: one of the endpoint's addresses. IPv4 in addr[0], network order. */
struct pal_endpoint_key {
	__u32 addr[4];
	__u8 family;   /* enum pal_net_family */
	__u8 pad[3];
};

/*
 * A local endpoint, the value of both pal_endpoints (by address) and pal_endpoints_by_ifindex
 * (by host veth ifindex: the tc programs know their device, not their endpoint).
 */
struct pal_endpoint_info {
	__u32 ep_id;       /* node-local endpoint id */
	__u32 ifindex;     /* host side of the veth */
	__u32 identity;    /* security identity */
	__u32 netns;       /* inode of the pod's network namespace (socket-owner key) */
	__u8 pod_mac[6];   /* MAC of the pod's eth0 */
	__u8 host_mac[6];  /* MAC of the host veth (the pod's gateway neighbour) */
	__u32 flags;       /* enum pal_endpoint_flags */
	__u32 ipv4;        /* network order */
	__u32 ipv6[4];
	__u8 ingress_mode; /* enum pal_netpol_mode (pal_netpol.h) of the endpoint's ingress */
	__u8 egress_mode;  /* enum pal_netpol_mode of its egress */
	__u8 pad[2];
};

/* ipcache key: an LPM trie key; prefixlen counts PAL_NET_ADDR_PREFIX bits of family + pad first. */
struct pal_ipcache_key {
	__u32 prefixlen;
	__u8 family;   /* enum pal_net_family */
	__u8 pad[3];
	__u32 addr[4];
};

/* pal_ipcache_value.flags */
enum pal_ipcache_flags {
	PAL_IPC_F_REMOTE_NODE = 1 << 0, /* the prefix is another node or its pod CIDR */
	PAL_IPC_F_HOST = 1 << 1,        /* an address of this node */
	PAL_IPC_F_LOCAL_EP = 1 << 2,    /* a local endpoint (also in pal_endpoints) */
};

struct pal_ipcache_value {
	__u32 identity;
	__u32 flags;     /* enum pal_ipcache_flags */
	__u32 node_ip;   /* IPv4 of the node hosting the prefix (remote nodes), network order */
	__u32 pad;
};

/*
 * Flow-aggregation key: the packet's 5-tuple as seen, the local endpoint observing it and
 * whether the packet leaves (FROM_ENDPOINT) or enters (TO_ENDPOINT) that endpoint. A
 * pod-to-pod packet on the node has two entries: the sender's and the receiver's.
 */
struct pal_flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;    /* enum pal_net_family */
	__u8 obs_point; /* enum pal_flow_obs: PAL_OBS_FROM_ENDPOINT or PAL_OBS_TO_ENDPOINT */
	__u8 pad;
	__u32 ep_id;    /* the local endpoint */
};

/* pal_flow_state.flags */
enum pal_flow_state_flags {
	PAL_FLOW_ST_REPLY = 1 << 0,  /* this direction is the reply of its connection */
	PAL_FLOW_ST_CLOSED = 1 << 1, /* FIN or RST seen: a later SYN starts a new connection */
};

struct pal_flow_state {
	__u64 last_report_ns; /* bpf_ktime_get_boot_ns() of the last record */
	__u64 packets;        /* since the last record */
	__u64 bytes;
	__u16 tcp_flags_seen; /* union of TCP flags since the connection started */
	__u16 flags;          /* enum pal_flow_state_flags */
	__u32 last_drop;      /* drop reason of the last drop record */
};

/* Per-CPU counters (pal_net_stats), indexed by this enum. */
enum pal_net_stat {
	PAL_NET_STAT_FORWARDED = 0,      /* passed on unchanged (to-endpoint) */
	PAL_NET_STAT_REDIRECTED = 1,     /* bpf_redirect_peer to a local endpoint */
	PAL_NET_STAT_TO_STACK = 2,       /* handed to the host stack (host, remote nodes, world) */
	PAL_NET_STAT_PASSED_L2 = 3,      /* ARP, NDP, link-local and multicast: left to the stack */
	PAL_NET_STAT_DROP_INVALID_SIP = 4,
	PAL_NET_STAT_DROP_INVALID = 5,
	PAL_NET_STAT_DROP_WRITE_ERROR = 6,
	PAL_NET_STAT_FLOW_RECORDS = 7,   /* flow records written to the ring buffer */
	PAL_NET_STAT_FLOW_AGGREGATED = 8, /* packets counted into an entry without a record */
	PAL_NET_STAT_FLOW_CREATED = 9,   /* aggregation entries created (minus live entries: evictions) */
	PAL_NET_STAT_RINGBUF_FULL = 10,  /* a flow record was lost: no room in the ring buffer */
	PAL_NET_STAT_FLOW_TABLE_FULL = 11, /* an entry could not be created */
	PAL_NET_STAT_UNKNOWN_L4 = 12,    /* forwarded, but no TCP/UDP/ICMP header to read */
	PAL_NET_STAT_FRAGMENT = 13,      /* non-first fragments (no L4 header) */
	PAL_NET_STAT_NO_ENDPOINT = 14,   /* a program ran on a device that is no endpoint's: passed */
	PAL_NET_STAT_POLICY_DENIED = 15, /* dropped: no policy entry allows it (default deny) */
	PAL_NET_STAT_POLICY_DENY = 16,   /* dropped by an explicit deny entry */
	PAL_NET_STAT_POLICY_AUDIT = 17,  /* would have been dropped, passed as AUDIT */
	PAL_NET_STAT_POLICY_ALLOWED = 18, /* a new connection an allow entry let through */
	PAL_NET_STAT_CT_CREATED = 19,    /* conntrack entries written (new or re-checked connections) */
	PAL_NET_STAT_CT_FULL = 20,       /* a conntrack entry could not be written */
	PAL_NET_STAT_CT_REPLY = 21,      /* packets passed as replies of a tracked connection */
	PAL_NET_STAT_CT_ESTABLISHED = 22, /* packets passed on an established connection (no lookup) */
	PAL_NET_STAT_CT_RELATED = 23,    /* ICMP errors about a tracked connection, passed */
	PAL_NET_STAT_CT_GC_REMOVED = 24, /* expired entries removed by the agent's GC (user space counts) */
	PAL_NET_STAT_COUNT = 25,
};

/*
 * Conntrack (pal_ct, an LRU hash): one entry per connection, keyed by the 5-tuple of its
 * first packet (the originator's direction). Only packets that meet an endpoint with a
 * policy (a direction mode not OFF) are tracked. A packet whose reverse tuple is tracked is
 * a reply and passes without policy; one whose tuple is tracked passes too (the connection
 * was allowed when it started: a policy change does not cut it). Expired entries count as
 * missing; the agent removes them (EndpointDatapath.CollectConntrack).
 */
struct pal_ct_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;    /* host order; ICMP echo: the identifier */
	__u16 dport;
	__u8 proto;
	__u8 family;    /* enum pal_net_family */
	__u8 pad[2];
};

/* pal_ct_entry.flags */
enum pal_ct_flags {
	PAL_CT_F_REPLY_SEEN = 1 << 0, /* a packet in the reply direction passed */
	PAL_CT_F_CLOSING = 1 << 1,    /* TCP FIN or RST seen: a new SYN starts over */
	PAL_CT_F_AUDIT = 1 << 2,      /* the connection was let through as AUDIT */
};

struct pal_ct_entry {
	__u64 expires_ns;  /* bpf_ktime_get_boot_ns() after which the entry counts as gone */
	__u32 created_s;   /* boot time in seconds at creation (for status) */
	__u16 flags;       /* enum pal_ct_flags */
	__u16 tcp_flags;   /* union of the TCP flags seen (both directions) */
};

/* Conntrack timeouts, Cilium's defaults (seconds). */
enum pal_ct_timeouts {
	PAL_CT_TCP_ESTABLISHED_S = 21600,
	PAL_CT_TCP_SYN_S = 60,
	PAL_CT_TCP_CLOSING_S = 10,
	PAL_CT_OTHER_S = 60,
};

#endif /* PAL_NET_H */
