/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Source validation: a packet leaving a pod must carry one of the pod's own
 * addresses (weft_endpoint.addrs) as its source, whatever policy applies;
 * anything else is a forged address and is dropped (WEFT_DROP_SOURCE) before
 * the policy sees it, so no pod can be authorized as another.
 *
 * Cost on the way out of every pod: the endpoint lookup the program does
 * anyway, then the L3 header (direct packet access; copied only when it is
 * not in the linear part) and at most WEFT_EP_MAX_ADDRS 16-byte compares,
 * the first of which matches for a pod's own traffic. Exemptions are looked
 * at only after a mismatch:
 *   - not IPv4/IPv6 (ARP, ...): passes, nothing to check;
 *   - IPv6 from :: (DAD, MLD before an address) or fe80::/10 (neighbour and
 *     router discovery) and IPv4 from 0.0.0.0 as DHCP (UDP 68 -> 67): the
 *     kernel never forwards these sources (ip6_forward, ip_route_input drop
 *     them), so they reach at most the node itself and claim no pod's
 *     identity (never in the identity cache);
 *   - a truncated IP header: passes here (the stack drops it; an enforcing
 *     endpoint's parser drops it as MALFORMED);
 *   - an endpoint with n_addrs == 0 (migrated from ABI 1, until the agent
 *     rewrites it from its config): not checked. */
#ifndef WEFT_BPF_LIB_SOURCE_H
#define WEFT_BPF_LIB_SOURCE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "lib/common.h"
#include "lib/ct.h"

/* Is `a` one of the endpoint's addresses? */
static __always_inline int weft_ep_has_addr(const struct weft_endpoint *ep, const struct weft_addr *a)
{
	const __u32 n = ep->n_addrs;

#pragma unroll
	for (__u32 i = 0; i < WEFT_EP_MAX_ADDRS; i++) {
		const __u32 *w = (const __u32 *)ep->addrs[i];

		if (i >= n)
			break;
		if (((w[0] ^ a->w[0]) | (w[1] ^ a->w[1]) | (w[2] ^ a->w[2]) | (w[3] ^ a->w[3])) == 0)
			return 1;
	}
	return 0;
}

/* The sources the kernel never forwards (see above). p: addresses and proto
 * filled by weft_src_l3; l4_off: the transport header. */
static __always_inline int weft_src_exempt(struct __sk_buff *skb, const struct weft_pkt *p, int first_frag)
{
	if (p->is_v6) {
		/* fe80::/10 or :: */
		if ((p->saddr.w[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000))
			return 1;
		return (p->saddr.w[0] | p->saddr.w[1] | p->saddr.w[2] | p->saddr.w[3]) == 0;
	}
	if (p->saddr.w[3] == 0 && p->proto == IPPROTO_UDP && first_frag) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, p->l4_off, &uh, sizeof(uh)) < 0)
			return 0;
		return uh.source == bpf_htons(68) && uh.dest == bpf_htons(67);
	}
	return 0;
}

/* The L3 facts of a packet leaving a pod, for the source check and for the
 * drop's flow record: addresses, protocol, transport offset, whether it is a
 * first fragment. 0: IP; 1: not IP (or truncated): nothing to check. */
static __always_inline int weft_src_l3(struct __sk_buff *skb, struct weft_pkt *p, int *first_frag)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	*first_frag = 1;
	if ((void *)(eth + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) <= end) {
			weft_addr_set_v4(&p->saddr, ip->saddr);
			weft_addr_set_v4(&p->daddr, ip->daddr);
			p->proto = ip->protocol;
			p->l4_off = ETH_HLEN + ip->ihl * 4;
			*first_frag = !(ip->frag_off & bpf_htons(0x1fff));
			p->is_v6 = 0;
			return 0;
		}
	} else if ((void *)(eth + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) <= end) {
			__builtin_memcpy(p->saddr.w, &ip6->saddr, 16);
			__builtin_memcpy(p->daddr.w, &ip6->daddr, 16);
			p->proto = ip6->nexthdr;
			p->l4_off = ETH_HLEN + sizeof(*ip6);
			p->is_v6 = 1;
			return 0;
		}
	} else if ((void *)(eth + 1) <= end) {
		return 1; /* ARP and every other non-IP frame */
	}
	/* Headers outside the linear part: copies. */
	{
		struct ethhdr e;

		if (bpf_skb_load_bytes(skb, 0, &e, sizeof(e)) < 0)
			return 1;
		if (e.h_proto == bpf_htons(ETH_P_IP)) {
			struct iphdr ip;

			if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
				return 1;
			weft_addr_set_v4(&p->saddr, ip.saddr);
			weft_addr_set_v4(&p->daddr, ip.daddr);
			p->proto = ip.protocol;
			p->l4_off = ETH_HLEN + ip.ihl * 4;
			*first_frag = !(ip.frag_off & bpf_htons(0x1fff));
			p->is_v6 = 0;
			return 0;
		}
		if (e.h_proto == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr ip6;

			if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
				return 1;
			__builtin_memcpy(p->saddr.w, &ip6.saddr, 16);
			__builtin_memcpy(p->daddr.w, &ip6.daddr, 16);
			p->proto = ip6.nexthdr;
			p->l4_off = ETH_HLEN + sizeof(ip6);
			p->is_v6 = 1;
			return 0;
		}
	}
	return 1;
}

/* 1: the packet leaving the pod carries a source that is not the pod's and
 * must be dropped; then *p holds its addresses, protocol and, for a first
 * TCP/UDP fragment, its ports (for the flow record). */
static __always_inline int weft_src_forged(struct __sk_buff *skb, const struct weft_endpoint *ep,
					   struct weft_pkt *p)
{
	int first_frag;

	if (ep->n_addrs == 0)
		return 0;
	if (weft_src_l3(skb, p, &first_frag) != 0)
		return 0;
	if (weft_ep_has_addr(ep, &p->saddr))
		return 0;
	if (weft_src_exempt(skb, p, first_frag))
		return 0;
	p->len = skb->len;
	if (first_frag && p->l4_off <= ETH_HLEN + 60)
		weft_parse_l4(skb, p); /* ports and TCP flags for the record; a short header leaves them 0 */
	return 1;
}

#endif /* WEFT_BPF_LIB_SOURCE_H */
