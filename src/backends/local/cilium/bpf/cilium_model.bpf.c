// SPDX-License-Identifier: GPL-2.0
// Cilium-style policy enforcement, as a model: tc (clsact) programs on each pod's host-side veth in the node
// namespace, an ipcache LPM trie (prefix -> security identity), a per-endpoint policy map (LPM trie keyed by
// identity, direction, protocol, port prefix) reached through a hash-of-maps, and a conntrack LRU hash.
// Not Cilium's code: the same mechanism and the same lookup sequence, small enough to read.
//
// Hooks, seen from the node namespace:
//   tc ingress on the host-side veth = packets FROM the pod -> the pod's EGRESS policy, peer = destination
//   tc egress  on the host-side veth = packets TO the pod   -> the pod's INGRESS policy, peer = source
//
// Per packet, as cilium/cilium bpf/bpf_lxc.c does it (Cilium 1.18):
//   1. ipcache lookup of the peer address for EVERY packet (handle_ipv4_from_lxc looks up ip4->daddr before
//      conntrack; tail_ipv4_to_endpoint resolves the source of host-delivered packets the same way);
//   2. conntrack: a reply (or related) packet skips policy (`case CT_REPLY: case CT_RELATED:` in ipv4_policy and
//      handle_ipv4_from_lxc); NEW and ESTABLISHED packets of the forward direction are looked up in the policy
//      map every time (`case CT_NEW: case CT_ESTABLISHED:` -> policy_can_egress4 / policy_can_ingress4), so a
//      removed allow or a lockdown cuts established flows too;
//   3. the policy lookup of __policy_can_access (bpf/lib/policy.h): an L3 lookup with the peer identity, then
//      (unless that hit is a deny) an L4-only lookup with identity 0; precedence: a deny wins, else the L4-only
//      entry if the L3 lookup missed or its protocol/port prefix is longer, else the L3 entry.
// The datapath has no "is this direction enforced" switch: the agent writes an allow-all entry (identity 0,
// any protocol) for a direction no policy isolates (pkg/policy mapstate allowAllIdentities), so an endpoint
// whose map is empty denies everything.
//
// Policy map key (struct policy_key), compared by the LPM trie byte by byte after prefixlen:
//   identity (u32, host byte order; always inside the prefix, so its byte order never matters for matching)
//   direction (u8: 0 ingress, 1 egress)
//   protocol (u8: IPPROTO_*)
//   dport (be16, network order so that port prefixes are bit prefixes of the port number)
// prefixlen: 40 = identity+direction (any protocol, any port: a rule without ports)
//            48 = + protocol (every port of that protocol)
//            48+k = + the top k bits of the port (k = 16: one port; k < 16: an aligned block of 2^(16-k)
//            ports, so a range [lo, hi] becomes its minimal set of power-of-two aligned blocks, as in
//            Cilium 1.16+).
// The value carries the protocol+port prefix length (0..24, Cilium's lpm_prefix_length) for the precedence
// rule, and allow/deny (deny entries come from the endpoint lockdown on policy-map overflow).
// ICMP has no ports: dport 0, so only prefix-40 entries (and identity 0) can allow it.

#include "prelude.bpf.h"

#define DIR_INGRESS 0
#define DIR_EGRESS 1

#define IDENTITY_ANY 0
#define IDENTITY_WORLD 2

#define EP_F_INGRESS_ENFORCED 1
#define EP_F_EGRESS_ENFORCED 2

#define POLICY_F_ALLOW 1
#define POLICY_F_DENY 2
#define POLICY_FULL_PREFIX 64

enum counter {
	CNT_PACKETS = 0,      // every packet seen on an endpoint hook
	CNT_POLICY_LOOKUPS,   // policy map lookups (2 per forward packet, 1 when the L3 hit is a deny)
	CNT_CT_HITS,          // packets that found a conntrack entry (established forward or reply)
	CNT_CT_NEW,           // new flows inserted into conntrack
	CNT_ALLOWED,          // forward packets allowed by a policy map entry
	CNT_DROPS,            // packets dropped by policy
	CNT_CT_REPLIES,       // reply packets: policy skipped
	CNT_NOT_IPV4,         // ARP, IPv6...: passed untouched
	CNT_MAX,
};

struct ipcache_key {
	__u32 prefixlen;
	__be32 addr;
};

struct ipcache_value {
	__u32 identity;
};

struct endpoint_info {
	__u32 endpoint_id;
	__u32 flags;
};

struct policy_key {
	__u32 prefixlen;
	__u32 identity;
	__u8 direction;
	__u8 protocol;
	__be16 dport;
};

struct policy_entry {
	__u8 flags;             // POLICY_F_ALLOW | POLICY_F_DENY
	__u8 lpm_prefix_length; // protocol + port prefix bits of the entry's key (0, 8, 8+k)
	__u16 pad;
};

// Direction and endpoint are part of the tuple: a flow between two pods on one node crosses two endpoints'
// hooks, and each must make its own decision.
struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 direction;
	__u16 endpoint_id;
};

struct ct_entry {
	__u64 created_ns;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 512000);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65535);
	__type(key, __u32); // host-side ifindex in the node namespace
	__type(value, struct endpoint_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} endpoints SEC(".maps");

// Inner template; the loader sets max_entries to the policy-map capacity (bpf.policyMapMax).
struct policy_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	// Sizes, not __type(): clang emits the types of an inner-map template only as forward declarations.
	__uint(key_size, sizeof(struct policy_key));
	__uint(value_size, sizeof(struct policy_entry));
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 65535);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); // endpoint id
	__array(values, struct policy_map);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Index 0: policy-map capacity, written by the loader so `fill` creates inner maps of the loaded size.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

static __always_inline __u32 peer_identity(__be32 addr)
{
	struct ipcache_key k = { .prefixlen = 32, .addr = addr };
	struct ipcache_value *v = bpf_map_lookup_elem(&ipcache, &k);
	return v ? v->identity : IDENTITY_WORLD;
}

// __policy_can_access (bpf/lib/policy.h): L3 lookup, then the L4-only (identity 0) lookup unless the first hit
// is a deny; a deny wins; the L4-only entry is chosen when the L3 lookup missed or its prefix is longer.
static __always_inline int policy_allows(__u32 endpoint_id, __u32 identity, __u8 direction, __u8 protocol, __be16 dport)
{
	void *pmap = bpf_map_lookup_elem(&policy, &endpoint_id);
	if (!pmap)
		return 0;
	struct policy_key k = {
		.prefixlen = POLICY_FULL_PREFIX,
		.identity = identity,
		.direction = direction,
		.protocol = protocol,
		.dport = dport,
	};
	struct policy_entry *l3, *l4;
	count(CNT_POLICY_LOOKUPS);
	l3 = bpf_map_lookup_elem(pmap, &k);
	if (l3 && (l3->flags & POLICY_F_DENY))
		return 0;
	k.identity = IDENTITY_ANY;
	count(CNT_POLICY_LOOKUPS);
	l4 = bpf_map_lookup_elem(pmap, &k);
	if (l4 && ((l4->flags & POLICY_F_DENY) || !l3 || l4->lpm_prefix_length > l3->lpm_prefix_length))
		return !(l4->flags & POLICY_F_DENY) && (l4->flags & POLICY_F_ALLOW);
	return l3 && (l3->flags & POLICY_F_ALLOW);
}

static __always_inline int handle(struct __sk_buff *skb, __u8 direction)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoints, &ifindex);
	if (!ep)
		return TC_ACT_OK; // not an endpoint this node manages

	count(CNT_PACKETS);
	if (skb->protocol != bpf_htons(ETH_P_IP)) {
		count(CNT_NOT_IPV4);
		return TC_ACT_OK;
	}

	struct ip4_hdr ip;
	__be16 sport, dport;
	if (parse_ip4(skb, &ip, &sport, &dport) < 0)
		return TC_ACT_SHOT;

	// Every packet: the peer's identity from the ipcache (see the header).
	__u32 identity = peer_identity(direction == DIR_INGRESS ? ip.saddr : ip.daddr);

	__u16 endpoint_id = (__u16)ep->endpoint_id;
	struct ct_key fwd = {
		.saddr = ip.saddr, .daddr = ip.daddr, .sport = sport, .dport = dport,
		.protocol = ip.protocol, .direction = direction, .endpoint_id = endpoint_id,
	};
	struct ct_key rev = {
		.saddr = ip.daddr, .daddr = ip.saddr, .sport = dport, .dport = sport,
		.protocol = ip.protocol, .direction = direction ^ 1, .endpoint_id = endpoint_id,
	};
	struct ct_entry *ce = bpf_map_lookup_elem(&ct, &rev);
	if (ce) {
		// CT_REPLY: return traffic skips policy.
		__sync_fetch_and_add(&ce->packets, 1);
		count(CNT_CT_HITS);
		count(CNT_CT_REPLIES);
		return TC_ACT_OK;
	}
	ce = bpf_map_lookup_elem(&ct, &fwd);
	if (ce)
		count(CNT_CT_HITS); // CT_ESTABLISHED: looked up in the policy map like a new flow

	__be16 policy_port = ip.protocol == IPPROTO_ICMP ? 0 : dport;
	if (!policy_allows(ep->endpoint_id, identity, direction, ip.protocol, policy_port)) {
		count(CNT_DROPS);
		return TC_ACT_SHOT;
	}
	count(CNT_ALLOWED);
	if (ce) {
		__sync_fetch_and_add(&ce->packets, 1);
		return TC_ACT_OK;
	}

	// CT_NEW: tracked so that its replies pass the other hook without a policy lookup.
	struct ct_entry entry = { .created_ns = bpf_ktime_get_ns(), .packets = 1 };
	bpf_map_update_elem(&ct, &fwd, &entry, BPF_NOEXIST);
	count(CNT_CT_NEW);
	return TC_ACT_OK;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	return handle(skb, DIR_EGRESS);
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	return handle(skb, DIR_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
