/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Network policy: the per-endpoint policy map user space writes and the tc programs read.
 * (pal_policy.h is the TracingPolicy engine's.) The compiler that fills it is
 * policies/Palisade.Policies/Network/Compilation; the enums' C# twins are in its
 * PolicyMapAbi.cs, the structs' in agent/Palisade.Datapath/Abi/NetPolicyAbi.cs.
 *
 * The model follows Cilium's bpf/lib/policy.h. One LPM trie per endpoint. A key is
 * (remote identity, direction, protocol, destination port); the identity and the direction
 * are always given in full (PAL_NETPOL_PREFIX_FIXED bits), then the protocol (8 bits) and the
 * port (16 bits) may be wildcarded from the end: protocol only if the whole port is, the port
 * by a CIDR-like prefix, so an endPort range is a few prefixes. Identity 0 is the wildcard
 * identity, which LPM cannot express: the datapath looks up twice.
 *
 * Lookup, for a packet with remote identity R, protocol P, destination port D (ICMP: the
 * type as D), key prefixlen PAL_NETPOL_PREFIX_FULL:
 *   a = lookup(R, dir, P, D); b = lookup(0, dir, P, D)
 *   1. a or b is a deny without AUDIT       -> drop, POLICY_DENY (a's rule if both)
 *   2. a or b is a deny with AUDIT          -> pass, verdict AUDIT (a's rule if both)
 *   3. a or b is an allow                   -> pass; the longer l4_prefix wins, a on a tie
 *   4. neither                              -> the direction's mode: ENFORCE drops
 *                                              (POLICY_DENIED), AUDIT passes with AUDIT
 * The compiler writes the entries so that this gives deny-over-allow (an allow under a
 * deny of the same identity is not written) and the union of policies. OFF: no lookup.
 */
#ifndef PAL_NETPOL_H
#define PAL_NETPOL_H

enum pal_netpol_sizes {
	PAL_NETPOL_PREFIX_FIXED = 40,  /* identity (32) and the direction byte (8) */
	PAL_NETPOL_PROTO_BITS = 8,
	PAL_NETPOL_PORT_BITS = 16,
	PAL_NETPOL_PREFIX_FULL = 64,   /* FIXED + PROTO_BITS + PORT_BITS */
	PAL_NETPOL_ENTRIES = 16384,    /* default max_entries of one endpoint's map (Cilium's default) */
};

/* pal_netpol_key.direction */
enum pal_netpol_dir {
	PAL_NETPOL_INGRESS = 0,
	PAL_NETPOL_EGRESS = 1,
};

/* pal_netpol_value.flags */
enum pal_netpol_flags {
	PAL_NETPOL_F_DENY = 1 << 0,    /* drop: an ingressDeny/egressDeny rule */
	PAL_NETPOL_F_AUDIT = 1 << 1,   /* with DENY: pass and report AUDIT (audit mode) */
};

/* What a direction of an endpoint does (kept with the endpoint, not in the policy map). */
enum pal_netpol_mode {
	PAL_NETPOL_OFF = 0,            /* no policy: no lookup, everything passes */
	PAL_NETPOL_ENFORCE = 1,        /* no entry: drop */
	PAL_NETPOL_AUDIT = 2,          /* no entry: pass, verdict AUDIT */
};

struct pal_netpol_key {
	__u32 prefixlen;     /* PAL_NETPOL_PREFIX_FIXED + pal_netpol_value.l4_prefix */
	__u32 identity;      /* remote security identity; 0: any */
	__u8 direction;      /* enum pal_netpol_dir */
	__u8 protocol;       /* IPPROTO_*; 0 when wildcarded */
	__be16 dport;        /* network order; ICMP: the type */
};

struct pal_netpol_value {
	__u8 flags;          /* enum pal_netpol_flags */
	__u8 l4_prefix;      /* bits of protocol+port the key specifies (0, 8, 8..24) */
	__be16 proxy_port;   /* unused: no L7 proxy yet */
	__u32 rule;          /* index into the agent's rule table (policy, file, rule); 0: none */
};

#endif /* PAL_NETPOL_H */
