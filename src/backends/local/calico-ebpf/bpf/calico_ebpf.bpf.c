// SPDX-License-Identifier: GPL-2.0
// Calico-eBPF-style enforcement, as a model: the fixed part of the data plane. Felix attaches a compiled C
// program at tc on each workload's host-side interface; it parses the packet, consults its own BPF conntrack and,
// for a new flow (or a TCP SYN, whatever the conntrack says), tail-calls the endpoint's *generated* policy
// program, which walks the rules in order and tail-calls back into "allow" or "deny". This file is that fixed
// part; the policy programs are emitted as raw BPF instructions by src/backends/local/calico-ebpf/compile.ts and
// loaded by cb-cebpf. Not Felix's code; the conntrack follows felix/bpf-gpl/conntrack.h and tc.c (v3.30).
//
// Hooks, seen from the node namespace:
//   tc ingress on the host-side veth (cali_from_wl) = packets FROM the pod -> the pod's egress policy
//   tc egress  on the host-side veth (cali_to_wl)   = packets TO the pod   -> the pod's ingress policy
//
// State handed to the policy program (struct cali_state, per-CPU, key 0), offsets the compiler relies on:
//   0 ip_src (be32)  4 ip_dst (be32)  8 sport (u16 host order)  10 dport (u16 host order)  12 ip_proto (u8)
//   16 pol_rc (u32)  20 ifindex (u32)  24 flags (u32)  28 ct_dport (u16)  32 rules_hit (u32)  40 rule_ids[32] (u64)
// IP sets (cali_v4_ip_sets, LPM trie), keyed as Felix keys them (felix/bpf/ipsets/map.go):
//   prefixlen (u32 host) | set id (u64 big-endian) | addr (be32) | port (u16 host) | proto (u8) | pad (u8)
// A member a.b.c.d/n of set S has prefixlen 64+n; a lookup uses the full key (prefixlen 128).

#include "prelude.bpf.h"

// Policy jump map layout (must match install.ts): the head program of endpoint-direction slot s (1..255) sits at
// index s; its 23 sub-programs (Felix's MaxSubPrograms = 24 per chain) in one of two buffers, so a whole chain is
// swapped by one update of index s. An index >= POL_SLOTS is out of the map: a tail call to it fails.
#define POL_STRIDE 256
#define POL_SLOTS (POL_STRIDE * 47)
#define STATIC_ALLOW 0
#define STATIC_DENY 1

#define POL_ALLOW 1
#define POL_DENY 2
// Rule ids a policy walk records with BPFPolicyDebugEnabled (felix/bpf/state/map.go MaxRuleIDs).
#define MAX_RULE_IDS 32

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

// Felix's default conntrack timeouts (felix/config/config_params.go BPFConntrackTimeouts; TCPFinsSeen=Auto reads
// nf_conntrack_tcp_timeout_time_wait, 120 s on Linux by default), in ns.
#define SEC_NS 1000000000ull
#define CT_TCP_SYN_SENT (20 * SEC_NS)
#define CT_TCP_ESTABLISHED (3600 * SEC_NS)
#define CT_TCP_FINS_SEEN (120 * SEC_NS)
#define CT_TCP_RESET_SEEN (40 * SEC_NS)
#define CT_UDP (60 * SEC_NS)
#define CT_ICMP (5 * SEC_NS)
#define CT_GENERIC (600 * SEC_NS)

struct cali_state {
	__be32 ip_src;
	__be32 ip_dst;
	__u16 sport;
	__u16 dport;
	__u8 ip_proto;
	__u8 tcp_flags; // the packet's TCP flags (0 for other protocols), for the conntrack entry it creates
	__u16 pad1;
	__u32 pol_rc;
	__u32 ifindex;
	__u32 flags;
	__u16 ct_dport; // the tuple's real second port (ICMP: echo id), for the conntrack entry
	__u16 pad2;
	__u32 rules_hit; // rule ids recorded by this walk (policy debug); the policy program reads its low byte
	__u32 pad3;
	__u64 rule_ids[MAX_RULE_IDS];
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

// What each direction of the flow has shown, as Felix tracks it per leg (struct calico_ct_leg).
struct ct_leg {
	__u8 syn_seen;
	__u8 ack_seen;
	__u8 fin_seen;
	__u8 rst_seen;
};

struct ct_value {
	__u64 created_ns;
	__u64 last_seen_ns;
	__u64 packets;
	struct ct_leg a_to_b; // from (addr_a, port_a)
	struct ct_leg b_to_a;
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
	CNT_SYNS,       // TCP SYNs (without ACK) at a hook whose direction a policy enforces
	CNT_SYN_WALKS,  // of those, the ones that walked the policy
	CNT_SYN_FORCED, // SYNs that found a live entry and walked the policy anyway ("Forcing policy on SYN")
	CNT_CT_RECYCLED, // SYNs that found an entry closed both ways (FIN or RST each way): entry replaced
	CNT_CT_EXPIRED, // entries found past their timeout: removed, the packet handled as new
	CNT_HOST_SKIPS, // new flows from one of this host's addresses to a workload: allowed without policy
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

// This host's own addresses: the entries of Felix's route map (cali_v4_routes) flagged local host, which the
// programs consult through cali_rt_flags_local_host.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be32);
	__type(value, __u32);
} cali_v4_host SEC(".maps");

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

// Returns 1 when the packet's source is the key's side a (so the packet travels a -> b).
static __always_inline int ct_key_of(struct ct_key *k, __u32 ifindex, __be32 src, __be32 dst, __u16 sport, __u16 dport, __u8 proto)
{
	k->ifindex = ifindex;
	k->proto = proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	if (src < dst || (src == dst && sport <= dport)) {
		k->addr_a = src; k->port_a = sport; k->addr_b = dst; k->port_b = dport;
		return 1;
	}
	k->addr_a = dst; k->port_a = dport; k->addr_b = src; k->port_b = sport;
	return 0;
}

// A new entry, or a fresh one over the old (BPF_ANY, as Felix's conntrack_create writes it): a flow the policy
// allowed again after a forced walk starts its TCP state anew.
static __always_inline void ct_create(__u32 ifindex, struct cali_state *st)
{
	struct ct_key k;
	int a_to_b = ct_key_of(&k, ifindex, st->ip_src, st->ip_dst, st->sport, st->ct_dport, st->ip_proto);
	__u64 now = bpf_ktime_get_ns();
	struct ct_value v = { .created_ns = now, .last_seen_ns = now, .packets = 1 };
	if (st->tcp_flags & TCP_SYN) {
		if (a_to_b)
			v.a_to_b.syn_seen = 1;
		else
			v.b_to_a.syn_seen = 1;
	}
	bpf_map_update_elem(&cali_v4_ct, &k, &v, BPF_ANY);
	count(CNT_CT_NEW);
}

// How long an entry lives without traffic, by protocol and TCP state (felix/bpf-gpl/conntrack_cleanup.c
// calculate_max_age). Felix's cleaner scans every 10 s; the model removes an expired entry when a packet finds it.
static __always_inline __u64 ct_max_age(__u8 proto, const struct ct_value *v)
{
	if (proto == IPPROTO_TCP) {
		if (v->a_to_b.rst_seen || v->b_to_a.rst_seen)
			return CT_TCP_RESET_SEEN;
		if (v->a_to_b.fin_seen && v->b_to_a.fin_seen)
			return CT_TCP_FINS_SEEN;
		if (v->a_to_b.syn_seen && v->a_to_b.ack_seen && v->b_to_a.syn_seen && v->b_to_a.ack_seen)
			return CT_TCP_ESTABLISHED;
		return CT_TCP_SYN_SENT;
	}
	if (proto == IPPROTO_UDP)
		return CT_UDP;
	if (proto == IPPROTO_ICMP)
		return CT_ICMP;
	return CT_GENERIC;
}

// A SYN on a tuple whose flow ended both ways (FIN or RST each way) opens a new flow (conntrack.h tcp_recycled).
static __always_inline int ct_tcp_recycled(const struct ct_value *v)
{
	return (v->a_to_b.fin_seen || v->a_to_b.rst_seen) && (v->b_to_a.fin_seen || v->b_to_a.rst_seen);
}

// The TCP state a packet of a tracked flow adds (conntrack.h ct_tcp_entry_update, without its sequence-number
// checks): FIN and RST per direction, the handshake's SYN-ACK and ACK; traffic after the handshake clears an
// earlier RST (it was spurious).
static __always_inline void ct_tcp_update(struct ct_leg *src, struct ct_leg *dst, __u8 flags)
{
	if (flags & TCP_FIN)
		src->fin_seen = 1;
	if (flags & TCP_RST) {
		src->rst_seen = 1;
		return;
	}
	if ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
		if (dst->syn_seen) {
			src->syn_seen = 1;
			src->ack_seen = 1;
		}
	} else if ((flags & TCP_ACK) && !src->ack_seen && src->syn_seen) {
		if (dst->syn_seen)
			src->ack_seen = 1;
	} else if (dst->ack_seen && !(flags & TCP_FIN)) {
		src->rst_seen = dst->rst_seen = 0;
	}
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
	__u8 tcp_flags = 0;
	if (ip.protocol == IPPROTO_TCP && !(ip.frag_off & bpf_htons(IP_OFFSET_MASK))) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + (ip.ver_ihl & 0x0f) * 4 + 13, &tcp_flags, 1) < 0)
			return TC_ACT_SHOT;
	}
	int syn = (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
	__u32 slot = to_wl ? ep->ingress_slot : ep->egress_slot;
	if (syn && slot)
		count(CNT_SYNS);

	struct ct_key k;
	int a_to_b = ct_key_of(&k, ifindex, ip.saddr, ip.daddr, sport, dport, ip.protocol);
	struct ct_value *ce = bpf_map_lookup_elem(&cali_v4_ct, &k);
	if (ce) {
		__u64 now = bpf_ktime_get_ns();
		if (now - ce->last_seen_ns > ct_max_age(ip.protocol, ce)) {
			bpf_map_delete_elem(&cali_v4_ct, &k);
			count(CNT_CT_EXPIRED);
			ce = NULL;
		} else if (syn && ct_tcp_recycled(ce)) {
			bpf_map_delete_elem(&cali_v4_ct, &k);
			count(CNT_CT_RECYCLED);
			ce = NULL;
		}
	}
	if (ce) {
		__sync_fetch_and_add(&ce->packets, 1);
		ce->last_seen_ns = bpf_ktime_get_ns();
		count(CNT_CT_HITS);
		// A SYN is a new connection whatever the conntrack holds: the client reused a port of a flow still
		// tracked. Felix walks the policy for it (tc.c "Forcing policy on SYN"); everything else of a tracked
		// flow skips policy and updates its TCP state.
		if (!syn) {
			if (ip.protocol == IPPROTO_TCP)
				ct_tcp_update(a_to_b ? &ce->a_to_b : &ce->b_to_a, a_to_b ? &ce->b_to_a : &ce->a_to_b, tcp_flags);
			return TC_ACT_OK;
		}
		count(CNT_SYN_FORCED);
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
	st->tcp_flags = tcp_flags;
	st->pol_rc = 0;
	st->ifindex = ifindex;
	st->flags = to_wl;
	st->ct_dport = dport;
	st->rules_hit = 0;

	// felix/bpf-gpl/tc.c (v3.30.3): "Host to workload traffic always allowed" — a new flow (or a forced SYN) to a
	// workload from one of this host's addresses skips policy; the allowed path still tracks it. (Felix also
	// requires the packet not seen by another of its programs; here only the host's own stack sends from these.)
	if (to_wl && bpf_map_lookup_elem(&cali_v4_host, &ip.saddr)) {
		count(CNT_HOST_SKIPS);
		ct_create(ifindex, st);
		return TC_ACT_OK;
	}
	if (slot == 0) {
		count(CNT_UNENFORCED);
		// Tracked even when unenforced: the reply must pass this endpoint's other, possibly enforced, hook.
		ct_create(ifindex, st);
		return TC_ACT_OK;
	}
	count(CNT_POLICY_WALKS);
	if (syn)
		count(CNT_SYN_WALKS);
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
