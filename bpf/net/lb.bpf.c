// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Socket-LB: services translated where the socket is made, not per packet. connect4/6 and
 * (for unconnected UDP) sendmsg4/6 rewrite a frontend address (ClusterIP, NodePort on a node
 * address, external or load-balancer IP) to a backend once, so every packet of the
 * connection carries the backend address from the start and no packet needs NAT. recvmsg4/6
 * and getpeername4/6 show the frontend again, so a UDP client sees the service address as the
 * reply source and getpeername(2) names the service. A frontend with no backend refuses the
 * connect at once (ECONNREFUSED), as a service with no ready endpoint must.
 *
 * Maps and their update order: bpf/include/pal_lb.h. Loaded by
 * agent/Palisade.Datapath/Services/ServiceDatapath.cs, attached to a cgroup v2 directory
 * (the hierarchy's root in the agent, so every socket of the node is served).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"
#include "pal_lb.h"
#include "pal_helpers.h"

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define PAL_AFF_CLIENT 0
#define PAL_AFF_SOCKET 1

/* Entries of a frontend's Maglev table (a prime Maglev.Sizes allows); the table map's value size follows it. */
const volatile __u32 maglev_size = 16381;

#define PAL_LB_HASH(name, k, v, entries)                  \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_HASH);          \
		__uint(max_entries, entries);             \
		__uint(map_flags, BPF_F_NO_PREALLOC);     \
		__type(key, k);                           \
		__type(value, v);                         \
	} name SEC(".maps")

PAL_LB_HASH(pal_lb4_services, struct pal_lb4_key, struct pal_lb_service, PAL_LB_SLOTS);
PAL_LB_HASH(pal_lb6_services, struct pal_lb6_key, struct pal_lb_service, PAL_LB_SLOTS);
PAL_LB_HASH(pal_lb4_backends, __u32, struct pal_lb4_backend, PAL_LB_BACKENDS);
PAL_LB_HASH(pal_lb6_backends, __u32, struct pal_lb6_backend, PAL_LB_BACKENDS);
PAL_LB_HASH(pal_lb4_revnat, __u16, struct pal_lb4_revnat, PAL_LB_FRONTENDS);
PAL_LB_HASH(pal_lb6_revnat, __u16, struct pal_lb6_revnat, PAL_LB_FRONTENDS);

/* rev_nat_index -> backend ids; the value size is set to 4 * maglev_size before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_LB_MAGLEV_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32[251]);
} pal_lb_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_LB_SOCK_REVNAT);
	__type(key, struct pal_lb4_sock_key);
	__type(value, struct pal_lb_sock_value);
} pal_lb4_sock_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_LB_SOCK_REVNAT);
	__type(key, struct pal_lb6_sock_key);
	__type(value, struct pal_lb_sock_value);
} pal_lb6_sock_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_LB_AFFINITY);
	__type(key, struct pal_lb_affinity_key);
	__type(value, struct pal_lb_affinity_value);
} pal_lb_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_LB_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pal_lb_stats SEC(".maps");

/* Per frontend: [2 * rev_nat_index] connections translated, [2 * rev_nat_index + 1] refused. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * PAL_LB_FRONTENDS);
	__type(key, __u32);
	__type(value, __u64);
} pal_lb_frontend_stats SEC(".maps");

#define stat_inc(stat) pal_count(&pal_lb_stats, stat)

static __always_inline void frontend_count(__u16 rev_nat_index, __u32 refused)
{
	pal_count(&pal_lb_frontend_stats, 2 * (__u32)rev_nat_index + refused);
}

/* The transport of the socket, or 0 when services do not apply to it. */
static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ? (__u8)proto : 0;
}

/* A 64-bit mix (splitmix64's finalizer): the Maglev hash of a socket. */
static __always_inline __u64 mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* A backend id remembered for (client, frontend), if it has not expired. */
static __always_inline __u32 affinity_get(__u64 client, __u16 rev_nat_index, __u8 kind, __u32 timeout_s, __u64 now)
{
	struct pal_lb_affinity_key key = { .client = client, .rev_nat_index = rev_nat_index, .kind = kind };
	struct pal_lb_affinity_value *v = bpf_map_lookup_elem(&pal_lb_affinity, &key);
	if (!v)
		return 0;
	if (timeout_s && v->last_used + (__u64)timeout_s * 1000000000ULL < now)
		return 0;
	return v->backend_id;
}

static __always_inline void affinity_put(__u64 client, __u16 rev_nat_index, __u8 kind, __u32 backend_id, __u64 now)
{
	struct pal_lb_affinity_key key = { .client = client, .rev_nat_index = rev_nat_index, .kind = kind };
	struct pal_lb_affinity_value v = { .last_used = now, .backend_id = backend_id };
	bpf_map_update_elem(&pal_lb_affinity, &key, &v, BPF_ANY);
}

/* The Maglev table's backend id for a hash; 0 when the frontend has none. */
static __always_inline __u32 maglev_pick(__u16 rev_nat_index, __u64 hash)
{
	__u32 key = rev_nat_index;
	__u32 *table = bpf_map_lookup_elem(&pal_lb_maglev, &key);
	if (!table)
		return 0;
	__u64 size = maglev_size;
	__u64 i = hash % size;
	/* The compiler knows i < size and would drop the check the verifier needs (it does not
	 * track bounds through a modulo): hide i from it; the 64-bit compare bounds the index. */
	asm volatile("" : "+r"(i));
	if (i >= size)
		return 0;
	return table[i];
}

static __always_inline int refuse(const struct pal_lb_service *master, int err)
{
	stat_inc(PAL_LB_STAT_NO_BACKEND);
	frontend_count(master->rev_nat_index, 1);
	bpf_set_retval(-err);
	return 0;
}

/*
 * What a translation decided: the backend id and the address and port to write. The family
 * specific parts (key, backend map) are given by the caller; the order of choices is one:
 *  1. an unconnected UDP socket keeps the backend it had (per socket, not per datagram),
 *     even a terminating one: its flow exists;
 *  2. sessionAffinity ClientIP: the client's backend while it is not expired or terminating;
 *  3. the Maglev table, or a random slot.
 */
struct pal_lb_choice {
	__u32 id;
	__u8 terminating;
	__u8 found;
};

/* Looks up a backend id in the family's backend map; sets choice on success. */
#define LB_TRY_BACKEND(backends, backend_id, choice, out) ({                         \
	typeof(out) __b = (backend_id) ? bpf_map_lookup_elem(backends, &(__u32){ backend_id }) : NULL; \
	if (__b) {                                                                    \
		(choice).id = (backend_id);                                           \
		(choice).terminating = __b->flags & PAL_LB_BACKEND_F_TERMINATING;     \
		(choice).found = 1;                                                   \
		out = __b;                                                            \
	}                                                                             \
	__b != NULL;                                                                  \
})

/*
 * Translates the socket of ctx for the frontend whose master entry is master. key is the
 * frontend's service key (the slot is set here), services and backends the family's maps,
 * addr/port where the backend's address and port are read. Returns the program's verdict.
 */
#define LB_XLATE(ctx, key, master, services, backends, per_socket, backend_t, on_backend) ({ \
	int __verdict = 1;                                                                \
	__u64 __now = bpf_ktime_get_ns();                                                 \
	__u64 __cookie = bpf_get_socket_cookie(ctx);                                      \
	__u16 __rnat = (master)->rev_nat_index;                                           \
	struct pal_lb_choice __c = {};                                                    \
	backend_t *__be = NULL;                                                           \
	if ((master)->count == 0) {                                                       \
		__verdict = refuse(master, ECONNREFUSED);                                 \
	} else {                                                                          \
		if (per_socket)                                                           \
			LB_TRY_BACKEND(backends, affinity_get(__cookie, __rnat, PAL_AFF_SOCKET, 0, __now), __c, __be); \
		if (!__be && ((master)->flags & PAL_LB_F_AFFINITY)) {                     \
			__u64 __client = bpf_get_netns_cookie(ctx);                       \
			if (LB_TRY_BACKEND(backends, affinity_get(__client, __rnat, PAL_AFF_CLIENT, (master)->affinity_timeout, __now), __c, __be)) { \
				if (__c.terminating)                                      \
					__be = NULL;                                      \
				else                                                      \
					stat_inc(PAL_LB_STAT_AFFINITY_HIT);               \
			}                                                                 \
		}                                                                         \
		if (!__be && ((master)->flags & PAL_LB_F_MAGLEV))                         \
			LB_TRY_BACKEND(backends, maglev_pick(__rnat, mix64(__cookie ^ bpf_get_netns_cookie(ctx))), __c, __be); \
		if (!__be) {                                                              \
			(key)->backend_slot = (__u16)(bpf_get_prandom_u32() % (master)->count) + 1; \
			struct pal_lb_service *__slot = bpf_map_lookup_elem(services, key);      \
			if (__slot)                                                       \
				LB_TRY_BACKEND(backends, __slot->backend_id, __c, __be);  \
		}                                                                         \
		if (!__be) {                                                              \
			stat_inc(PAL_LB_STAT_BACKEND_MISS);                               \
			__verdict = refuse(master, EHOSTUNREACH);                         \
		} else {                                                                  \
			if ((master)->flags & PAL_LB_F_AFFINITY)                          \
				affinity_put(bpf_get_netns_cookie(ctx), __rnat, PAL_AFF_CLIENT, __c.id, __now); \
			if (per_socket)                                                   \
				affinity_put(__cookie, __rnat, PAL_AFF_SOCKET, __c.id, __now); \
			on_backend(ctx, __be, __cookie, __rnat, __c.id);                  \
			stat_inc(PAL_LB_STAT_TRANSLATED);                                 \
			frontend_count(__rnat, 0);                                        \
		}                                                                         \
	}                                                                                 \
	__verdict;                                                                        \
})

/* Remembers, per socket and IPv4 backend, which frontend it stands for (the way back). */
static __always_inline void remember4(const struct pal_lb4_backend *be, __u64 cookie, __u16 rnat, __u32 id)
{
	struct pal_lb4_sock_key sk = { .cookie = cookie, .address = be->address, .port = be->port };
	struct pal_lb_sock_value sv = { .rev_nat_index = rnat, .backend_id = id };
	if (bpf_map_update_elem(&pal_lb4_sock_revnat, &sk, &sv, BPF_ANY))
		stat_inc(PAL_LB_STAT_REVNAT_FULL);
}

/* IPv4 backend into an IPv4 socket address. */
static __always_inline void write4(struct bpf_sock_addr *ctx, const struct pal_lb4_backend *be, __u64 cookie, __u16 rnat, __u32 id)
{
	remember4(be, cookie, rnat, id);
	ctx->user_ip4 = be->address;
	ctx->user_port = (__u32)be->port;
}

/* IPv4 backend into an IPv6 socket's v4-mapped address (::ffff:a.b.c.d). */
static __always_inline void write4_mapped(struct bpf_sock_addr *ctx, const struct pal_lb4_backend *be, __u64 cookie, __u16 rnat, __u32 id)
{
	remember4(be, cookie, rnat, id);
	ctx->user_ip6[3] = be->address;
	ctx->user_port = (__u32)be->port;
}

static __always_inline void write6(struct bpf_sock_addr *ctx, const struct pal_lb6_backend *be, __u64 cookie, __u16 rnat, __u32 id)
{
	struct pal_lb6_sock_key sk = { .cookie = cookie, .port = be->port };
	__builtin_memcpy(sk.address, be->address, 16);
	struct pal_lb_sock_value sv = { .rev_nat_index = rnat, .backend_id = id };
	if (bpf_map_update_elem(&pal_lb6_sock_revnat, &sk, &sv, BPF_ANY))
		stat_inc(PAL_LB_STAT_REVNAT_FULL);
	const __u32 *a = (const __u32 *)be->address;
	ctx->user_ip6[0] = a[0];
	ctx->user_ip6[1] = a[1];
	ctx->user_ip6[2] = a[2];
	ctx->user_ip6[3] = a[3];
	ctx->user_port = (__u32)be->port;
}

static __always_inline int xlate4(struct bpf_sock_addr *ctx, __be32 address, int per_socket, int mapped)
{
	__u8 proto = sock_proto(ctx);
	if (!proto)
		return 1;
	struct pal_lb4_key key = { .address = address, .dport = (__be16)ctx->user_port, .proto = proto };
	struct pal_lb_service *master = bpf_map_lookup_elem(&pal_lb4_services, &key);
	if (!master)
		return 1;
	if (mapped)
		return LB_XLATE(ctx, &key, master, &pal_lb4_services, &pal_lb4_backends, per_socket, struct pal_lb4_backend, write4_mapped);
	return LB_XLATE(ctx, &key, master, &pal_lb4_services, &pal_lb4_backends, per_socket, struct pal_lb4_backend, write4);
}

/* ::ffff:a.b.c.d: an IPv4 peer of a dual-stack IPv6 socket. */
static __always_inline int v4_mapped(const struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == bpf_htonl(0xffff);
}

static __always_inline int xlate6(struct bpf_sock_addr *ctx, int per_socket)
{
	if (v4_mapped(ctx))
		return xlate4(ctx, ctx->user_ip6[3], per_socket, 1);
	__u8 proto = sock_proto(ctx);
	if (!proto)
		return 1;
	struct pal_lb6_key key = { .dport = (__be16)ctx->user_port, .proto = proto };
	__u32 *a = (__u32 *)key.address;
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	struct pal_lb_service *master = bpf_map_lookup_elem(&pal_lb6_services, &key);
	if (!master)
		return 1;
	return LB_XLATE(ctx, &key, master, &pal_lb6_services, &pal_lb6_backends, per_socket, struct pal_lb6_backend, write6);
}

SEC("cgroup/connect4")
int pal_lb_connect4(struct bpf_sock_addr *ctx)
{
	return xlate4(ctx, ctx->user_ip4, 0, 0);
}

SEC("cgroup/connect6")
int pal_lb_connect6(struct bpf_sock_addr *ctx)
{
	return xlate6(ctx, 0);
}

/* Only unconnected UDP reaches sendmsg with a destination; a connected socket was translated at connect. */
SEC("cgroup/sendmsg4")
int pal_lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return xlate4(ctx, ctx->user_ip4, 1, 0);
}

SEC("cgroup/sendmsg6")
int pal_lb_sendmsg6(struct bpf_sock_addr *ctx)
{
	return xlate6(ctx, 1);
}

/* The frontend a socket's peer (a backend) was translated from; writes it into ctx. */
static __always_inline int reverse4(struct bpf_sock_addr *ctx, __be32 address, int mapped)
{
	struct pal_lb4_sock_key sk = { .cookie = bpf_get_socket_cookie(ctx), .address = address, .port = (__be16)ctx->user_port };
	struct pal_lb_sock_value *v = bpf_map_lookup_elem(&pal_lb4_sock_revnat, &sk);
	if (!v)
		return 1;
	__u16 rnat = v->rev_nat_index;
	struct pal_lb4_revnat *r = bpf_map_lookup_elem(&pal_lb4_revnat, &rnat);
	if (!r)
		return 1;
	if (mapped)
		ctx->user_ip6[3] = r->address;
	else
		ctx->user_ip4 = r->address;
	ctx->user_port = (__u32)r->port;
	stat_inc(PAL_LB_STAT_REVERSED);
	return 1;
}

static __always_inline int reverse6(struct bpf_sock_addr *ctx)
{
	if (v4_mapped(ctx))
		return reverse4(ctx, ctx->user_ip6[3], 1);
	struct pal_lb6_sock_key sk = { .cookie = bpf_get_socket_cookie(ctx), .port = (__be16)ctx->user_port };
	__u32 *a = (__u32 *)sk.address;
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	struct pal_lb_sock_value *v = bpf_map_lookup_elem(&pal_lb6_sock_revnat, &sk);
	if (!v)
		return 1;
	__u16 rnat = v->rev_nat_index;
	struct pal_lb6_revnat *r = bpf_map_lookup_elem(&pal_lb6_revnat, &rnat);
	if (!r)
		return 1;
	const __u32 *f = (const __u32 *)r->address;
	ctx->user_ip6[0] = f[0];
	ctx->user_ip6[1] = f[1];
	ctx->user_ip6[2] = f[2];
	ctx->user_ip6[3] = f[3];
	ctx->user_port = (__u32)r->port;
	stat_inc(PAL_LB_STAT_REVERSED);
	return 1;
}

SEC("cgroup/recvmsg4")
int pal_lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	return reverse4(ctx, ctx->user_ip4, 0);
}

SEC("cgroup/recvmsg6")
int pal_lb_recvmsg6(struct bpf_sock_addr *ctx)
{
	return reverse6(ctx);
}

SEC("cgroup/getpeername4")
int pal_lb_getpeername4(struct bpf_sock_addr *ctx)
{
	return reverse4(ctx, ctx->user_ip4, 0);
}

SEC("cgroup/getpeername6")
int pal_lb_getpeername6(struct bpf_sock_addr *ctx)
{
	return reverse6(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
