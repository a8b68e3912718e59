// SPDX-License-Identifier: GPL-2.0
// Cilium's kube-proxy replacement at the socket, as a model: cgroup sock_addr programs that translate a
// ClusterIP:port to a backend when the socket connects (TCP, connected UDP) or sends (unconnected UDP), so the
// packets leave the pod already addressed to the backend and no per-packet NAT runs on their path. The lookup
// follows cilium/cilium bpf/bpf_sock.c (__sock4_xlate_fwd) and bpf/lib/lb.h (Cilium 1.18):
//   1. service map, key (ClusterIP, port, backend_slot 0, protocol, scope): the frontend ("master") entry, whose
//      count is the number of backend slots;
//   2. slot = (random % count) + 1 for TCP (sock_select_slot: get_prandom_u32), the socket cookie for UDP, so one
//      UDP socket keeps its backend; service map, key (..., backend_slot = slot) → backend_id;
//   3. backend map, backend_id → (address, port); rewrite the socket's destination;
//   4. remember (socket cookie, backend) → (ClusterIP, port) in the reverse map, so recvmsg4 and getpeername4
//      show the application the address it connected to (sock4_update_revnat / __sock4_xlate_rev).
// A frontend with no backend slot rejects the connect with EHOSTUNREACH, as __sock4_xlate_fwd's "no backend" path
// makes cil_sock4_connect do. Not modelled: session affinity, NodePort/HostPort wildcard lookups, the health-check
// path, Maglev, local-redirect policies, IPv6.
#include "prelude.bpf.h"

#define SYS_REJECT 0
#define SYS_PROCEED 1
#ifndef EHOSTUNREACH
#define EHOSTUNREACH 113
#endif

// struct lb4_key, bpf/lib/lb.h
struct lb4_key {
	__be32 address;
	__be16 dport;
	__u16 backend_slot; // 0: the frontend entry
	__u8 proto;
	__u8 scope; // LB_LOOKUP_SCOPE_EXT; the internal scope serves externalTrafficPolicy=Local only
	__u8 pad[2];
};

// struct lb4_service: the frontend entry carries count; a slot entry carries backend_id.
struct lb4_service {
	__u32 backend_id;
	__u16 count;
	__u16 rev_nat_index;
	__u8 flags;
	__u8 flags2;
	__u16 qcount;
};

// struct lb4_backend
struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;
	__u16 cluster_id;
	__u8 zone;
	__u8 pad;
};

// struct ipv4_revnat_tuple / ipv4_revnat_entry
struct revnat_key {
	__u64 cookie;
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct revnat_value {
	__be32 address;
	__be16 port;
	__u16 rev_nat_index;
};

enum counter {
	CNT_LOOKUPS = 0,   // sock_addr calls that looked a destination up
	CNT_XLATED,        // translated to a backend
	CNT_NO_SERVICE,    // destination is no Service: left alone
	CNT_NO_BACKEND,    // a Service without backends: connect rejected
	CNT_REVNAT,        // recvmsg/getpeername answers rewritten back to the ClusterIP
	CNT_MAX,
};

// cilium_lb4_services_v2 (hash, bpf.lbMapMax = 65536 by default; the loader sets the size)
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_services SEC(".maps");

// cilium_lb4_backends_v3
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_backend);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_backends SEC(".maps");

// cilium_lb4_reverse_sk
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct revnat_key);
	__type(value, struct revnat_value);
	__uint(max_entries, 65536);
} lb4_reverse_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_MAX);
} sock_counters SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&sock_counters, &c);
	if (v)
		*v += 1;
}

static __always_inline __be16 ctx_dst_port(const struct bpf_sock_addr *ctx)
{
	volatile __u32 dport = ctx->user_port; // narrow loads of user_port are not allowed on every kernel
	return (__be16)dport;
}

static __always_inline struct lb4_service *lookup_service(struct lb4_key *key)
{
	struct lb4_service *svc = bpf_map_lookup_elem(&lb4_services, key);
	if (!svc && key->proto) {
		// Frontends written without protocol differentiation carry proto 0 (ANY).
		key->proto = 0;
		svc = bpf_map_lookup_elem(&lb4_services, key);
	}
	return svc;
}

// 0: translated or not a Service; -EHOSTUNREACH: a Service without backends.
static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx)
{
	struct lb4_key key = {
		.address = ctx->user_ip4,
		.dport = ctx_dst_port(ctx),
		.proto = (__u8)ctx->protocol,
	};
	__be32 orig_address = key.address;
	__be16 orig_port = key.dport;

	count(CNT_LOOKUPS);
	struct lb4_service *svc = lookup_service(&key);
	if (!svc) {
		count(CNT_NO_SERVICE);
		return 0;
	}
	if (svc->count == 0) {
		count(CNT_NO_BACKEND);
		return -EHOSTUNREACH;
	}
	__u64 cookie = bpf_get_socket_cookie(ctx);
	// sock_select_slot: random for TCP, the socket cookie for UDP (one UDP socket keeps its backend).
	__u32 sel = ctx->protocol == IPPROTO_TCP ? bpf_get_prandom_u32() : (__u32)cookie;
	__u16 rev_nat_index = svc->rev_nat_index;
	key.backend_slot = (sel % svc->count) + 1;
	struct lb4_service *slot = bpf_map_lookup_elem(&lb4_services, &key);
	if (!slot) {
		count(CNT_NO_BACKEND);
		return -EHOSTUNREACH;
	}
	__u32 backend_id = slot->backend_id;
	struct lb4_backend *backend = bpf_map_lookup_elem(&lb4_backends, &backend_id);
	if (!backend) {
		count(CNT_NO_BACKEND);
		return -EHOSTUNREACH;
	}
	struct revnat_key rk = { .cookie = cookie, .address = backend->address, .port = backend->port };
	struct revnat_value rv = { .address = orig_address, .port = orig_port, .rev_nat_index = rev_nat_index };
	bpf_map_update_elem(&lb4_reverse_sk, &rk, &rv, BPF_ANY);
	ctx->user_ip4 = backend->address;
	ctx->user_port = (__u32)backend->port;
	count(CNT_XLATED);
	return 0;
}

SEC("cgroup/connect4")
int cil_sock4_connect(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx);
	if (err) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

SEC("cgroup/sendmsg4")
int cil_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx);
	if (err) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

// __sock4_xlate_rev: an answer from the backend is shown as coming from the Service the socket talked to.
static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct revnat_key rk = { .cookie = bpf_get_socket_cookie(ctx), .address = ctx->user_ip4, .port = ctx_dst_port(ctx) };
	struct revnat_value *rv = bpf_map_lookup_elem(&lb4_reverse_sk, &rk);
	if (!rv)
		return;
	ctx->user_ip4 = rv->address;
	ctx->user_port = (__u32)rv->port;
	count(CNT_REVNAT);
}

SEC("cgroup/recvmsg4")
int cil_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int cil_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

char _license[] SEC("license") = "GPL";
