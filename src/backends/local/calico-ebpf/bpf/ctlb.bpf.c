// SPDX-License-Identifier: GPL-2.0
// Calico eBPF data plane's connect-time load balancer (CTLB), as a model: cgroup sock_addr programs that look a
// destination up in Felix's NAT front-end map and pick a backend from its NAT back-end map when a socket connects
// (TCP, connected UDP) or sends (unconnected UDP), following projectcalico/calico v3.30.3
// felix/bpf-gpl/connect_balancer.c, connect.h (do_nat_common) and nat_lookup.h (calico_nat_lookup):
//   1. front end, an LPM trie keyed (prefixlen, dst addr, dst port host order, protocol, src addr): the lookup key
//      carries the full prefix with src 0.0.0.0 (VOID_IP: at connect time the source is not known yet); a
//      ClusterIP's entry matches any source (prefix 56 = dst+port+proto). Value: service id and backend count;
//   2. back end, a hash keyed (id, ordinal = random % count) → (addr, port);
//   3. rewrite the socket's destination; record (cookie, backend) → (ClusterIP, port) in cali_v4_ct_nats, which
//      the tc programs read to apply policy to the pre-DNAT destination, and for UDP in cali_v4_srmsg, which
//      recvmsg4 reads to show replies as coming from the ClusterIP.
// A front end with count 0 fails the connect (do_nat_common's NAT_NO_BACKEND → connect returns 0: EPERM).
// Not modelled: NodePort (the route-map lookup for host addresses), affinity, the LB-source-range drop entry,
// the "exclude" flag, IPv6, and the ctlb_progs jump map Felix loads these programs through.
#include "prelude.bpf.h"

#define SOCK_STREAM 1
#define SOCK_DGRAM 2

struct __attribute__((__packed__)) calico_nat_key {
	__u32 prefixlen;
	__be32 addr;
	__u16 port; // host byte order
	__u8 protocol;
	__be32 saddr;
	__u8 pad;
};

// dst addr + port + protocol + src addr, in bits
#define NAT_PREFIX_LEN_WITH_SRC_MATCH_IN_BITS 88

struct calico_nat_value {
	__u32 id;
	__u32 count;
	__u32 local;
	__u32 affinity_timeo;
	__u32 flags;
};

struct calico_nat_secondary_key {
	__u32 id;
	__u32 ordinal;
};

struct calico_nat_dest {
	__be32 addr;
	__u16 port; // host byte order
	__u8 pad[2];
};

struct sendrec_key {
	__u64 cookie;
	__be32 ip;
	__u32 port; // as bpf_sock_addr holds it
};

struct sendrec_val {
	__be32 ip;
	__u32 port;
};

struct ct_nats_key {
	__u64 cookie;
	__be32 ip;
	__u32 port;
	__u8 proto;
	__u8 pad[7];
};

enum counter {
	CNT_LOOKUPS = 0,
	CNT_XLATED,
	CNT_NO_SERVICE,
	CNT_NO_BACKEND,
	CNT_REVNAT,
	CNT_MAX,
};

// cali_v4_nat_fe: 64K entries, no prealloc (felix/bpf-gpl/nat_types.h)
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct calico_nat_key);
	__type(value, struct calico_nat_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cali_v4_nat_fe SEC(".maps");

// cali_v4_nat_be: 256K entries
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct calico_nat_secondary_key);
	__type(value, struct calico_nat_dest);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cali_v4_nat_be SEC(".maps");

// cali_v4_ct_nats (sendrecv.h)
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_nats_key);
	__type(value, struct sendrec_val);
	__uint(max_entries, 10000);
} cali_v4_ct_nats SEC(".maps");

// cali_v4_srmsg
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sendrec_key);
	__type(value, struct sendrec_val);
	__uint(max_entries, 510000);
} cali_v4_srmsg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_MAX);
} ctlb_counters SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&ctlb_counters, &c);
	if (v)
		*v += 1;
}

static __always_inline __u16 ctx_port_to_host(__u32 port)
{
	return bpf_ntohl(port) >> 16;
}

static __always_inline __u32 host_to_ctx_port(__u16 port)
{
	return bpf_htonl(((__u32)port) << 16);
}

// do_nat_common: 0 ok (translated or no Service), -1 a Service without backends.
static __always_inline int do_nat_common(struct bpf_sock_addr *ctx, __u8 proto)
{
	struct calico_nat_key key = {
		.prefixlen = NAT_PREFIX_LEN_WITH_SRC_MATCH_IN_BITS,
		.addr = ctx->user_ip4,
		.port = ctx_port_to_host(ctx->user_port),
		.protocol = proto,
		.saddr = 0,
	};
	count(CNT_LOOKUPS);
	struct calico_nat_value *fe = bpf_map_lookup_elem(&cali_v4_nat_fe, &key);
	if (!fe) {
		count(CNT_NO_SERVICE);
		return 0;
	}
	__u32 n = fe->count;
	if (n == 0) {
		count(CNT_NO_BACKEND);
		return -1;
	}
	struct calico_nat_secondary_key bek = { .id = fe->id, .ordinal = bpf_get_prandom_u32() % n };
	struct calico_nat_dest *be = bpf_map_lookup_elem(&cali_v4_nat_be, &bek);
	if (!be) {
		count(CNT_NO_BACKEND);
		return -1;
	}
	__u32 dport_ctx = host_to_ctx_port(be->port);
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct sendrec_val orig = { .ip = ctx->user_ip4, .port = ctx->user_port };
	struct ct_nats_key natk = { .cookie = cookie, .ip = be->addr, .port = dport_ctx, .proto = proto };
	bpf_map_update_elem(&cali_v4_ct_nats, &natk, &orig, 0);
	if (proto != IPPROTO_TCP) {
		struct sendrec_key srk = { .cookie = cookie, .ip = be->addr, .port = dport_ctx };
		bpf_map_update_elem(&cali_v4_srmsg, &srk, &orig, 0);
	}
	ctx->user_ip4 = be->addr;
	ctx->user_port = dport_ctx;
	count(CNT_XLATED);
	return 0;
}

SEC("cgroup/connect4")
int calico_connect_v4(struct bpf_sock_addr *ctx)
{
	__u8 proto;
	if (ctx->type == SOCK_STREAM)
		proto = IPPROTO_TCP;
	else if (ctx->type == SOCK_DGRAM)
		proto = IPPROTO_UDP;
	else
		return 1;
	return do_nat_common(ctx, proto) == 0 ? 1 : 0;
}

SEC("cgroup/sendmsg4")
int calico_sendmsg_v4(struct bpf_sock_addr *ctx)
{
	if (ctx->type == SOCK_DGRAM)
		do_nat_common(ctx, IPPROTO_UDP);
	return 1;
}

SEC("cgroup/recvmsg4")
int calico_recvmsg_v4(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_DGRAM)
		return 1;
	struct sendrec_key key = { .cookie = bpf_get_socket_cookie(ctx), .ip = ctx->user_ip4, .port = ctx->user_port };
	struct sendrec_val *rev = bpf_map_lookup_elem(&cali_v4_srmsg, &key);
	if (rev) {
		ctx->user_ip4 = rev->ip;
		ctx->user_port = rev->port;
		count(CNT_REVNAT);
	}
	return 1;
}

char _license[] SEC("license") = "GPL";
