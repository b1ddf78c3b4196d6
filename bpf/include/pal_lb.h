/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Services: the maps of bpf/net/lb.bpf.c (socket-LB), written by
 * agent/Palisade.Datapath/Services/ServiceDatapath.cs; C# twins in
 * agent/Palisade.Datapath/Abi/LbAbi.cs.
 *
 * The layout follows Cilium's bpf/lib/lb.h. A frontend (address, port, protocol) has a
 * master entry at backend_slot 0 that carries the number of backends, the frontend's
 * reverse-NAT index, its flags and its affinity timeout; slots 1..count carry one backend
 * id each. A backend id names an address and port in the backend map of its family.
 * Selection picks a slot (random, or the frontend's Maglev table), then looks up the
 * backend. User space changes a frontend so that every intermediate state is one of the old
 * or the new backend sets: new slots first, then the master's count, then the slots past it.
 */
#ifndef PAL_LB_H
#define PAL_LB_H

enum pal_lb_sizes {
	PAL_LB_FRONTENDS = 65536,       /* default max frontends (reverse-NAT indices are 16 bits) */
	PAL_LB_BACKENDS = 65536,        /* default max backends per family */
	PAL_LB_SLOTS = 262144,          /* default entries of a service map: masters + slots */
	PAL_LB_SOCK_REVNAT = 262144,    /* default entries of the socket reverse-NAT LRU */
	PAL_LB_AFFINITY = 65536,        /* default entries of the affinity LRU */
	PAL_LB_MAGLEV_SERVICES = 1024,  /* default frontends with a Maglev table */
};

/* pal_lb_service.flags (master entry) */
enum pal_lb_flags {
	PAL_LB_F_MAGLEV = 1 << 0,       /* the frontend's Maglev table picks the slot */
	PAL_LB_F_AFFINITY = 1 << 1,     /* sessionAffinity ClientIP: affinity_timeout seconds */
	PAL_LB_F_NODEPORT = 1 << 2,     /* a NodePort frontend (metrics and flows tell them apart) */
};

/* pal_lb_backend.flags */
enum pal_lb_backend_flags {
	PAL_LB_BACKEND_F_TERMINATING = 1 << 0,  /* no new connections; kept for those it has */
};

/* Counters of pal_lb_stats (per CPU). */
enum pal_lb_stat {
	PAL_LB_STAT_TRANSLATED = 0,     /* connect/sendmsg given a backend */
	PAL_LB_STAT_NO_BACKEND = 1,     /* refused: the frontend has no backend */
	PAL_LB_STAT_BACKEND_MISS = 2,   /* a slot named a backend id that is not in the map */
	PAL_LB_STAT_REVNAT_FULL = 3,    /* the socket reverse-NAT entry could not be written */
	PAL_LB_STAT_AFFINITY_HIT = 4,   /* the client's affinity entry chose the backend */
	PAL_LB_STAT_REVERSED = 5,       /* recvmsg/getpeername shown the frontend address */
	PAL_LB_STAT_COUNT = 6,
};

struct pal_lb4_key {
	__be32 address;
	__be16 dport;
	__u16 backend_slot;   /* 0: the master entry */
	__u8 proto;           /* IPPROTO_TCP/UDP/SCTP */
	__u8 pad[3];
};

struct pal_lb6_key {
	__u8 address[16];
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 pad[3];
};

/* Value of a service map entry: master (slot 0) or slot. */
struct pal_lb_service {
	__u32 backend_id;       /* slot > 0: the backend; master: 0 */
	__u16 count;            /* master: number of slots; 0 refuses connections */
	__u16 rev_nat_index;    /* master and slots: the frontend's index */
	__u8 flags;             /* master: enum pal_lb_flags */
	__u8 pad[3];
	__u32 affinity_timeout; /* master: seconds, with PAL_LB_F_AFFINITY */
};

struct pal_lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;             /* enum pal_lb_backend_flags */
};

struct pal_lb6_backend {
	__u8 address[16];
	__be16 port;
	__u8 proto;
	__u8 flags;
};

/* Reverse NAT (index -> frontend), for recvmsg and getpeername. */
struct pal_lb4_revnat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct pal_lb6_revnat {
	__u8 address[16];
	__be16 port;
	__u16 pad;
};

/* Socket reverse-NAT LRU: (socket cookie, backend) -> the frontend it was translated from. */
struct pal_lb4_sock_key {
	__u64 cookie;
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct pal_lb6_sock_key {
	__u64 cookie;
	__u8 address[16];
	__be16 port;
	__u16 pad;
	__u32 pad2;
};

struct pal_lb_sock_value {
	__u16 rev_nat_index;
	__u16 pad;
	__u32 backend_id;
};

/*
 * Affinity LRU: (client, frontend) -> backend. The client is its network namespace cookie
 * (at connect time a socket has no source address yet; Cilium's socket-LB does the same);
 * an unconnected UDP socket also keeps its own backend under its socket cookie (per socket,
 * not per datagram).
 */
struct pal_lb_affinity_key {
	__u64 client;           /* netns cookie, or the socket cookie with PAL_LB_AFF_SOCKET */
	__u16 rev_nat_index;
	__u8 kind;              /* 0: ClientIP affinity; 1: an unconnected UDP socket's backend */
	__u8 pad[5];
};

struct pal_lb_affinity_value {
	__u64 last_used;        /* bpf_ktime_get_ns() */
	__u32 backend_id;
	__u32 pad;
};

#endif /* PAL_LB_H */
