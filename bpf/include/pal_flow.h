/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Flow events of the network datapath (bpf/net) and the socket-owner table that names the
 * process behind a flow. Every struct has a C# twin ([BpfStruct]) and every enum a checked
 * twin ([BpfEnum]); see palisade.h for the rules. Numbers of the verdict, observation-point
 * and direction enums are Hubble's (api/v1/flow/flow.proto), so they pass through unchanged.
 */
#ifndef PAL_FLOW_H
#define PAL_FLOW_H

#include "palisade.h"

/* Hubble's Verdict */
enum pal_flow_verdict {
	PAL_VERDICT_UNKNOWN = 0,
	PAL_VERDICT_FORWARDED = 1,
	PAL_VERDICT_DROPPED = 2,
	PAL_VERDICT_ERROR = 3,
	PAL_VERDICT_AUDIT = 4,
	PAL_VERDICT_REDIRECTED = 5,
	PAL_VERDICT_TRACED = 6,
	PAL_VERDICT_TRANSLATED = 7,
};

/* Hubble's TraceObservationPoint: where the datapath saw the packet */
enum pal_flow_obs {
	PAL_OBS_UNKNOWN = 0,
	PAL_OBS_TO_HOST = 2,
	PAL_OBS_TO_STACK = 3,
	PAL_OBS_FROM_ENDPOINT = 5,
	PAL_OBS_FROM_HOST = 7,
	PAL_OBS_FROM_STACK = 8,
	PAL_OBS_FROM_NETWORK = 10,
	PAL_OBS_TO_NETWORK = 11,
	PAL_OBS_TO_ENDPOINT = 101,
};

/* Hubble's TrafficDirection, seen from the local endpoint of the flow */
enum pal_flow_direction {
	PAL_DIR_UNKNOWN = 0,
	PAL_DIR_INGRESS = 1,
	PAL_DIR_EGRESS = 2,
};

/* Why a flow record was written (aggregation: one record per event of a connection, not per packet) */
enum pal_flow_report {
	PAL_REPORT_FIRST = 1 << 0,  /* first packet of a connection in this direction */
	PAL_REPORT_STATE = 1 << 1,  /* TCP flags not seen before on this connection (SYN-ACK, FIN, RST) */
	PAL_REPORT_CLOSE = 1 << 2,  /* FIN or RST: the connection ends */
	PAL_REPORT_DROP = 1 << 3,   /* a drop (drops are reported per distinct reason, rate-limited) */
	PAL_REPORT_REPLY = 1 << 4,  /* the packet goes in the reply direction of its connection */
	PAL_REPORT_ACTIVE = 1 << 5, /* nothing new, but report_interval_ns passed: the connection is still active */
};

/* pal_flow_event.policy_match: how the network policy decided the packet */
enum pal_flow_policy_match {
	PAL_POLICY_NONE = 0,        /* no policy applies (both directions off) */
	PAL_POLICY_RULE = 1,        /* a policy map entry (policy_rule names it) */
	PAL_POLICY_DEFAULT = 2,     /* no entry: the direction's mode (ENFORCE drops, AUDIT passes) */
	PAL_POLICY_CT_REPLY = 3,    /* a reply of a tracked connection */
	PAL_POLICY_CT_ESTABLISHED = 4, /* a tracked connection, allowed when it started */
	PAL_POLICY_CT_RELATED = 5,  /* an ICMP error about a tracked connection */
};

/* pal_flow_event.flags */
enum pal_flow_flags {
	PAL_FLOW_F_IPV6 = 1 << 0,
	PAL_FLOW_F_OWNER = 1 << 1,      /* owner_tgid/owner_ktime name the local process */
	PAL_FLOW_F_REMOTE_NODE = 1 << 2, /* the peer is on another node (native routing) */
};

/*
 * One flow record (PAL_EVENT_FLOW). hdr.pid/tid are 0 (a packet has no current task);
 * the process is owner_tgid/owner_ktime, resolved by the socket-owner table.
 * Addresses: IPv4 in addr[0] (network byte order), IPv6 in all four words.
 * Ports in host byte order. Counters cover the packets since the previous record of the
 * same connection and direction.
 */
struct pal_flow_event {
	struct pal_event_header hdr;
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;          /* IPPROTO_* */
	__u8 verdict;        /* enum pal_flow_verdict */
	__u8 obs_point;      /* enum pal_flow_obs */
	__u8 direction;      /* enum pal_flow_direction */
	__u16 tcp_flags;     /* TCP header flags of this packet (FIN=1 ... CWR=0x80, NS=0x100) */
	__u8 icmp_type;
	__u8 icmp_code;
	__u32 report;        /* enum pal_flow_report */
	__u32 flags;         /* enum pal_flow_flags */
	__u32 drop_reason;   /* Cilium's drop reason code (DropReason), 0 unless dropped */
	__u32 ifindex;       /* where it was observed */
	__u32 src_ep;        /* local endpoint id of the source, 0 when not local */
	__u32 dst_ep;
	__u32 src_identity;  /* security identity of the source */
	__u32 dst_identity;
	__u32 owner_tgid;    /* local process owning the socket (PAL_FLOW_F_OWNER) */
	__u64 owner_ktime;   /* its pal_proc.ktime: with owner_tgid, the exec_id */
	__u64 packets;       /* since the previous record of this connection and direction */
	__u64 bytes;
	__u32 policy_rule;   /* pal_netpol_value.rule of the entry that decided (0: none) */
	__u8 policy_dir;     /* enum pal_flow_direction: whose policy decided, the local endpoint's ingress or egress (0: none) */
	__u8 policy_match;   /* enum pal_flow_policy_match: how it was decided */
	__u8 pad[2];
};

/*
 * The socket-owner table (bpf/net/sock.bpf.c fills it, the tc programs read it): which
 * process owns the local socket of a flow. Keyed by the network namespace of the local
 * side (pod netns inode from the endpoint map), the local port and the socket's family, so
 * sockets bound to a wildcard address resolve too, and an IPv4 and an IPv6 socket on the same
 * port (nginx's two listeners) keep their own owners. A dual-stack IPv6 socket also serves
 * IPv4 peers: readers of an IPv4 flow fall back to the PAL_AF_INET6 entry.
 */
struct pal_sock_key {
	__u32 netns;   /* network namespace inode */
	__u16 port;    /* local port, host byte order */
	__u8 proto;    /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 family;   /* the socket's AF_INET (2) or AF_INET6 (10), as PAL_AF_* */
};

struct pal_sock_owner {
	__u32 tgid;
	__u32 pad;
	__u64 ktime;   /* pal_proc.ktime of the owner when the socket was made */
	__u64 cookie;  /* socket cookie, for sock_arg.cookie and to tell sockets apart */
};

/* Per-CPU counters of bpf/net/sock.bpf.c (pal_sock_stats), indexed by this enum. */
enum pal_sock_stat {
	PAL_SOCK_STAT_OWNED = 0,      /* entries written (new sockets, or a port taken over) */
	PAL_SOCK_STAT_RELEASED = 1,   /* entries removed when their socket closed */
	PAL_SOCK_STAT_TABLE_FULL = 2, /* an entry could not be written: the table is full */
	PAL_SOCK_STAT_PROC_MISS = 3,  /* the owner was not in the process table (ktime 0) */
	PAL_SOCK_STAT_COUNT = 4,
};

#endif /* PAL_FLOW_H */
