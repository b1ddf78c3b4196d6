// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The socket-owner table: which process owns the local socket of a flow. Filled from
 * process context (the connecting, listening, binding or sending task) so the tc programs,
 * which see packets in softirq with no useful current task, can name the process by a
 * lookup of (netns, local port, protocol).
 *
 * Hooks, and why each:
 *  - TCP client: sockops BPF_SOCK_OPS_TCP_CONNECT_CB. tcp_connect() runs it in the
 *    connect(2) caller after the local port is chosen (inet_hash_connect); the SYN_SENT
 *    state change comes before that, with port 0.
 *  - TCP server: inet_sock_set_state to TCP_LISTEN, from listen(2). Accepted sockets share
 *    the listener's port, so their flows resolve to the listener's owner.
 *  - UDP: cgroup sendmsg4/6 (inet_sendmsg autobinds the socket before udp_sendmsg runs the
 *    hook, so the port is known), post_bind4/6 (a server that binds and only receives), and
 *    cgroup_skb egress for connected UDP sockets, whose sends skip the sendmsg hook and
 *    whose connect hook runs before the autobind.
 *  - Removal: TCP on the change to TCP_CLOSE (after FIN/RST handling, so the closing
 *    packets still name their process); UDP on the socket's release. Both compare the
 *    socket cookie, so an accepted child closing never removes its listener's entry.
 *
 * The key's namespace is the socket's own (sk->sk_net), not the current task's: a socket
 * made before setns(2), or handed over a unix socket, keeps its creator's namespace, and
 * that is where the tc programs see its packets.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"
#include "pal_flow.h"
#include "pal_helpers.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
/* include/net/tcp_states.h: a UDP socket in TCP_ESTABLISHED is connected. */
#define PAL_TCP_ESTABLISHED 1
#define PAL_TCP_CLOSE 7
#define PAL_TCP_LISTEN 10

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pal_sock_key);
	__type(value, struct pal_sock_owner);
} pal_sock_owners SEC(".maps");

/* The process table of bpf/runtime/process.bpf.c, shared by ReuseFrom. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pal_proc);
} pal_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_SOCK_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pal_sock_stats SEC(".maps");

#define stat_inc(stat) pal_count(&pal_sock_stats, stat)

static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The verifier allows no arithmetic on a struct bpf_sock *; a read-only cast (6.2+) makes
 * the kernel socket behind it readable. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline __u32 bpf_sock_netns(struct bpf_sock *bsk)
{
	struct sock *sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	return sk->__sk_common.skc_net.net->ns.inum;
}

/* Records the current process as the owner of (netns, port, proto, family). */
static __always_inline void own(__u32 netns, __u16 port, __u8 proto, __u8 family, __u64 cookie)
{
	if (port == 0 || netns == 0)
		return;
	struct pal_sock_key key = { .netns = netns, .port = port, .proto = proto, .family = family };
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pal_sock_owner *old = bpf_map_lookup_elem(&pal_sock_owners, &key);
	if (old && old->cookie == cookie && old->tgid == tgid)
		return; /* the common case of a UDP socket sending again */
	struct pal_sock_owner owner = { .tgid = tgid, .cookie = cookie };
	struct pal_proc *proc = bpf_map_lookup_elem(&pal_procs, &tgid);
	if (proc)
		owner.ktime = proc->ktime;
	else
		stat_inc(PAL_SOCK_STAT_PROC_MISS);
	if (bpf_map_update_elem(&pal_sock_owners, &key, &owner, BPF_ANY) == 0)
		stat_inc(PAL_SOCK_STAT_OWNED);
	else
		stat_inc(PAL_SOCK_STAT_TABLE_FULL);
}

/* Removes the entry of (netns, port, proto, family) if this socket (cookie) made it. */
static __always_inline void disown(__u32 netns, __u16 port, __u8 proto, __u8 family, __u64 cookie)
{
	struct pal_sock_key key = { .netns = netns, .port = port, .proto = proto, .family = family };
	struct pal_sock_owner *old = bpf_map_lookup_elem(&pal_sock_owners, &key);
	if (!old || old->cookie != cookie)
		return;
	if (bpf_map_delete_elem(&pal_sock_owners, &key) == 0)
		stat_inc(PAL_SOCK_STAT_RELEASED);
}

SEC("sockops")
int pal_sock_connect(struct bpf_sock_ops *ctx)
{
	if (ctx->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	struct bpf_sock *bsk = ctx->sk;
	if (!bsk)
		return 1;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 1;
	own(sock_netns((struct sock *)tp), (__u16)ctx->local_port, IPPROTO_TCP, (__u8)ctx->family, bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pal_sock_state, const struct sock *sk, int oldstate, int newstate)
{
	if (newstate != PAL_TCP_LISTEN && newstate != PAL_TCP_CLOSE)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	/* inet_sport, not skc_num: releasing an unlocked port on the way to TCP_CLOSE
	 * (inet_put_port) zeroes skc_num before the state changes. */
	__u16 port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	__u32 netns = sock_netns(sk);
	__u8 family = (__u8)BPF_CORE_READ(sk, __sk_common.skc_family);
	if (newstate == PAL_TCP_LISTEN)
		own(netns, port, IPPROTO_TCP, family, cookie);
	else
		disown(netns, port, IPPROTO_TCP, family, cookie);
	return 0;
}

/* A UDP socket of a sock_addr or cgroup/sock hook: its namespace through the kernel socket. */
static __always_inline void own_udp(struct bpf_sock *bsk, __u64 cookie)
{
	if (!bsk || bsk->protocol != IPPROTO_UDP)
		return;
	own(bpf_sock_netns(bsk), (__u16)bsk->src_port, IPPROTO_UDP, (__u8)bsk->family, cookie);
}

SEC("cgroup/sendmsg4")
int pal_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	own_udp(ctx->sk, bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/sendmsg6")
int pal_sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	own_udp(ctx->sk, bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/post_bind4")
int pal_sock_bind4(struct bpf_sock *ctx)
{
	own_udp(ctx, bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/post_bind6")
int pal_sock_bind6(struct bpf_sock *ctx)
{
	own_udp(ctx, bpf_get_socket_cookie(ctx));
	return 1;
}

/* Connected UDP sockets only: every other packet returns after a few field reads. */
SEC("cgroup_skb/egress")
int pal_sock_egress(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	if (!bsk)
		return 1;
	bsk = bpf_sk_fullsock(bsk);
	if (!bsk || bsk->protocol != IPPROTO_UDP || bsk->state != PAL_TCP_ESTABLISHED)
		return 1;
	own_udp(bsk, bpf_get_socket_cookie(skb));
	return 1;
}

SEC("cgroup/sock_release")
int pal_sock_release(struct bpf_sock *ctx)
{
	if (ctx->protocol != IPPROTO_UDP)
		return 1;
	/* src_port is not in this hook's context (only post_bind's): read the kernel socket. */
	struct sock *sk = bpf_rdonly_cast(ctx, bpf_core_type_id_kernel(struct sock));
	disown(sk->__sk_common.skc_net.net->ns.inum, sk->__sk_common.skc_num, IPPROTO_UDP, (__u8)ctx->family, bpf_get_socket_cookie(ctx));
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
