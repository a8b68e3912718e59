// SPDX-License-Identifier: GPL-2.0
// Calico-eBPF-style enforcement, as a model: the fixed part of the data plane. Felix attaches a compiled C
// program at tc on each workload's host-side interface; it parses the packet, consults its own BPF conntrack and,
// for a new flow only, tail-calls the endpoint's *generated* policy program, which walks the rules in order and
// tail-calls back into "allow" or "deny". This file is that fixed part; the policy programs are emitted as raw
// BPF instructions by src/backends/local/calico-ebpf/compile.ts and loaded by cb-cebpf. Not Felix's code.
//
// Hooks, seen from the node namespace:
//   tc ingress on the host-side veth (cali_from_wl) = packets FROM the pod -> the pod's egress policy
//   tc egress  on the host-side veth (cali_to_wl)   = packets TO the pod   -> the pod's ingress policy
//
// State handed to the policy program (struct cali_state, per-CPU, key 0), offsets the compiler relies on:
//   0 ip_src (be32)  4 ip_dst (be32)  8 sport (u16 host order)  10 dport (u16 host order)  12 ip_proto (u8)
//   16 pol_rc (u32)  20 ifindex (u32)  24 flags (u32)  28 ct_dport (u16)
// IP sets (cali_v4_ip_sets, LPM trie), keyed as Felix keys them (felix/bpf/ipsets/map.go):
//   prefixlen (u32 host) | set id (u64 big-endian) | addr (be32) | port (u16 host) | proto (u8) | pad (u8)
// A member a.b.c.d/n of set S has prefixlen 64+n; a lookup uses the full key (prefixlen 128).

#include "prelude.bpf.h"

// Policy jump map layout (must match compile.ts): the head program of endpoint-direction slot s (1..255) sits at
// index s; its sub-programs in one of two buffers, so a whole chain is swapped by one update of index s.
#define POL_STRIDE 256
#define POL_SLOTS (POL_STRIDE * 63)
#define STATIC_ALLOW 0
#define STATIC_DENY 1

#define POL_ALLOW 1
#define POL_DENY 2

struct cali_state {
	__be32 ip_src;
	__be32 ip_dst;
	__u16 sport;
	__u16 dport;
	__u8 ip_proto;
	__u8 pad0;
	__u16 pad1;
	__u32 pol_rc;
	__u32 ifindex;
	__u32 flags;
	__u16 ct_dport; // the tuple's real second port (ICMP: echo id), for the conntrack entry
	__u16 pad2;
};

struct ip4_set_key {
	__u32 prefixlen;
	__u8 set_id[8];
	__be32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
} __attribute__((packed));

// Per endpoint (host-side ifindex): the head slot of its ingress and egress policy chains; 0 = no policy
// selects that direction (allowed, as Kubernetes says; Felix gets there through the profile).
struct ep_value {
	__u32 ingress_slot;
	__u32 egress_slot;
};

// One entry per endpoint and flow: a flow between two pods on one node crosses two endpoints, and each leg is
// approved by its own policy, as Felix's conntrack records approval per leg. The tuple is normalised so that
// both directions of a flow find the same entry.
struct ct_key {
	__u32 ifindex;
	__be32 addr_a;
	__be32 addr_b;
	__u16 port_a;
	__u16 port_b;
	__u8 proto;
	__u8 pad[3];
};

struct ct_value {
	__u64 created_ns;
	__u64 packets;
};

enum {
	CNT_PACKETS,
	CNT_CT_HITS,
	CNT_CT_NEW,
	CNT_POLICY_WALKS,
	CNT_ALLOWED,
	CNT_DROPS,
	CNT_UNENFORCED,
	CNT_NOT_IPV4,
	CNT_TAIL_CALL_FAILED,
	CNT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cali_state);
} cali_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024 * 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ip4_set_key);
	__type(value, __u32);
} cali_v4_ip_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ep_value);
} cali_eps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
} cali_v4_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} cali_jump_static SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, POL_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} cali_jump_pol SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cali_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&cali_counters, &which);
	if (c)
		*c += 1;
}

static __always_inline void ct_key_of(struct ct_key *k, __u32 ifindex, __be32 src, __be32 dst, __u16 sport, __u16 dport, __u8 proto)
{
	k->ifindex = ifindex;
	k->proto = proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	if (src < dst || (src == dst && sport <= dport)) {
		k->addr_a = src; k->port_a = sport; k->addr_b = dst; k->port_b = dport;
	} else {
		k->addr_a = dst; k->port_a = dport; k->addr_b = src; k->port_b = sport;
	}
}

static __always_inline void ct_create(__u32 ifindex, struct cali_state *st)
{
	struct ct_key k;
	ct_key_of(&k, ifindex, st->ip_src, st->ip_dst, st->sport, st->ct_dport, st->ip_proto);
	struct ct_value v = { .created_ns = bpf_ktime_get_ns(), .packets = 1 };
	bpf_map_update_elem(&cali_v4_ct, &k, &v, BPF_NOEXIST);
	count(CNT_CT_NEW);
}

static __always_inline int handle(struct __sk_buff *skb, int to_wl)
{
	__u32 ifindex = skb->ifindex;
	struct ep_value *ep = bpf_map_lookup_elem(&cali_eps, &ifindex);
	if (!ep)
		return TC_ACT_OK; // not a workload this node manages
	count(CNT_PACKETS);
	if (skb->protocol != bpf_htons(ETH_P_IP)) {
		count(CNT_NOT_IPV4); // ARP must pass; IPv6 is out of the model
		return TC_ACT_OK;
	}
	struct ip4_hdr ip;
	__be16 sport_be, dport_be;
	if (parse_ip4(skb, &ip, &sport_be, &dport_be) < 0)
		return TC_ACT_SHOT;
	// Host order from here: the policy programs compare ports as numbers.
	__u16 sport = bpf_ntohs(sport_be), dport = bpf_ntohs(dport_be);

	struct ct_key k;
	ct_key_of(&k, ifindex, ip.saddr, ip.daddr, sport, dport, ip.protocol);
	struct ct_value *ce = bpf_map_lookup_elem(&cali_v4_ct, &k);
	if (ce) {
		__sync_fetch_and_add(&ce->packets, 1);
		count(CNT_CT_HITS);
		return TC_ACT_OK; // established: policy is not consulted
	}

	__u32 zero = 0;
	struct cali_state *st = bpf_map_lookup_elem(&cali_state, &zero);
	if (!st)
		return TC_ACT_SHOT;
	st->ip_src = ip.saddr;
	st->ip_dst = ip.daddr;
	st->sport = sport;
	// ICMP carries no destination port for policy: only rules without ports can allow it.
	st->dport = ip.protocol == IPPROTO_ICMP ? 0 : dport;
	st->ip_proto = ip.protocol;
	st->pol_rc = 0;
	st->ifindex = ifindex;
	st->flags = to_wl;
	st->ct_dport = dport;

	__u32 slot = to_wl ? ep->ingress_slot : ep->egress_slot;
	if (slot == 0) {
		count(CNT_UNENFORCED);
		// Tracked even when unenforced: the reply must pass this endpoint's other, possibly enforced, hook.
		ct_create(ifindex, st);
		return TC_ACT_OK;
	}
	count(CNT_POLICY_WALKS);
	bpf_tail_call(skb, &cali_jump_pol, slot);
	count(CNT_TAIL_CALL_FAILED);
	return TC_ACT_SHOT; // no policy program in place: fail closed
}

SEC("tc")
int cali_from_wl(struct __sk_buff *skb)
{
	return handle(skb, 0);
}

SEC("tc")
int cali_to_wl(struct __sk_buff *skb)
{
	return handle(skb, 1);
}

// Tail-called by a policy program whose rule allowed the packet.
SEC("tc")
int cali_allow(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct cali_state *st = bpf_map_lookup_elem(&cali_state, &zero);
	if (!st)
		return TC_ACT_SHOT;
	count(CNT_ALLOWED);
	ct_create(skb->ifindex, st);
	return TC_ACT_OK;
}

// Tail-called at the end of the default tier (no rule allowed the packet).
SEC("tc")
int cali_deny(struct __sk_buff *skb)
{
	count(CNT_DROPS);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
