// SPDX-License-Identifier: GPL-2.0
// What both model data planes' tc programs (cilium/bpf/cilium_model.bpf.c, calico-ebpf/bpf/calico_ebpf.bpf.c)
// start from: the uapi types, libbpf's helpers, and the IPv4 header and ports as they parse them.
#ifndef CB_PRELUDE_BPF_H
#define CB_PRELUDE_BPF_H

#define _LINUX_TYPES_H
// linux/types.h pulls in <asm/types.h>, which clang -target bpf cannot find on multiarch systems without an
// extra -I; these are the only types the uapi headers below need.
typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u16 __le16;
typedef __u32 __le32;
typedef __u64 __le64;
typedef __u16 __sum16;
typedef __u32 __wsum;
typedef unsigned __poll_t;
#define __aligned_u64 __u64 __attribute__((aligned(8)))

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132
#define IP_OFFSET_MASK 0x1fff

struct ip4_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};

// The IPv4 header and the flow's two "ports", in network byte order: TCP/UDP/SCTP ports; for ICMP echo the
// identifier as both (request and reply then share a conntrack tuple); 0 for other protocols and for non-first
// fragments, which carry no L4 header (they match as port 0: a rule without ports still allows them).
// Returns -1 for a packet to drop (truncated, or a bad header length).
static __always_inline int parse_ip4(struct __sk_buff *skb, struct ip4_hdr *ip, __be16 *sport, __be16 *dport)
{
	// bpf_skb_load_bytes copes with non-linear skbs, so no pull is needed.
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(*ip)) < 0)
		return -1;
	__u32 ihl = (ip->ver_ihl & 0x0f) * 4;
	if (ihl < sizeof(*ip))
		return -1;
	*sport = *dport = 0;
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
		return 0;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_SCTP) {
		__be16 ports[2];
		if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl, ports, sizeof(ports)) < 0)
			return -1;
		*sport = ports[0];
		*dport = ports[1];
	} else if (ip->protocol == IPPROTO_ICMP) {
		__u8 icmp[8];
		if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl, icmp, sizeof(icmp)) < 0)
			return -1;
		if (icmp[0] == 8 || icmp[0] == 0)
			*sport = *dport = (__be16)(icmp[4] | (icmp[5] << 8));
	}
	return 0;
}

#endif
