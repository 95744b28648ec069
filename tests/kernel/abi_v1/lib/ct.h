/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing (Ethernet, IPv4/IPv6, TCP/UDP ports) and connection tracking.
 *
 * weft_ct is keyed by the flow as seen leaving the client plus the direction
 * (relative to the endpoint that tracks it). A packet matches either its own
 * tuple (a known flow) or the reversed tuple with the opposite direction (a
 * reply). Parsing copies headers with bpf_skb_load_bytes: bounded, no packet
 * pointers to re-validate. No IPv6 extension headers: an unknown next header
 * is "not TCP/UDP" and passes; a non-first IPv4 fragment carries no ports and
 * passes too. */
#ifndef WEFT_BPF_LIB_CT_H
#define WEFT_BPF_LIB_CT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/common.h"

#define WEFT_TCP_FIN 0x01
#define WEFT_TCP_SYN 0x02
#define WEFT_TCP_RST 0x04
#define WEFT_TCP_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_ct_key);
	__type(value, struct weft_ct_val);
	__uint(max_entries, WEFT_DEFAULT_MAX_CT_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_ct SEC(".maps");

struct weft_pkt {
	struct weft_addr saddr;
	struct weft_addr daddr;
	__u16 sport;     /* network byte order */
	__u16 dport;     /* network byte order */
	__u32 tcp_seq;   /* network byte order */
	__u32 tcp_ack_seq; /* network byte order */
	__u32 l4_off;
	__u32 len;       /* skb->len */
	__u8  proto;
	__u8  tcp_flags;
	__u8  is_v6;
	__u8  pad;
};

enum weft_parse {
	WEFT_PARSE_OK = 0,        /* TCP or UDP with ports */
	WEFT_PARSE_PASS = 1,      /* not IP, or not TCP/UDP: no policy */
	WEFT_PARSE_MALFORMED = 2, /* too short to hold what it claims */
};

static __always_inline int weft_parse_l4(struct __sk_buff *skb, struct weft_pkt *p)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, p->l4_off, &th, sizeof(th)) < 0)
			return WEFT_PARSE_MALFORMED;
		if (th.doff < 5)
			return WEFT_PARSE_MALFORMED;
		p->sport = th.source;
		p->dport = th.dest;
		p->tcp_seq = th.seq;
		p->tcp_ack_seq = th.ack_seq;
		p->tcp_flags = ((__u8 *)&th)[13];
		return WEFT_PARSE_OK;
	}
	if (p->proto == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, p->l4_off, &uh, sizeof(uh)) < 0)
			return WEFT_PARSE_MALFORMED;
		p->sport = uh.source;
		p->dport = uh.dest;
		return WEFT_PARSE_OK;
	}
	return WEFT_PARSE_PASS;
}

/* The general parser: bpf_skb_load_bytes copies, any layout of the skb. */
static __always_inline int weft_parse_copy(struct __sk_buff *skb, struct weft_pkt *p)
{
	struct ethhdr eth;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return WEFT_PARSE_MALFORMED;

	if (eth.h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
			return WEFT_PARSE_MALFORMED;
		if (ip.version != 4 || ip.ihl < 5)
			return WEFT_PARSE_MALFORMED;
		if (ip.frag_off & bpf_htons(0x1fff))
			return WEFT_PARSE_PASS; /* non-first fragment: no ports */
		weft_addr_set_v4(&p->saddr, ip.saddr);
		weft_addr_set_v4(&p->daddr, ip.daddr);
		p->proto = ip.protocol;
		p->l4_off = ETH_HLEN + ip.ihl * 4;
		p->is_v6 = 0;
		return weft_parse_l4(skb, p);
	}
	if (eth.h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
			return WEFT_PARSE_MALFORMED;
		if (ip6.version != 6)
			return WEFT_PARSE_MALFORMED;
		__builtin_memcpy(p->saddr.w, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr.w, &ip6.daddr, 16);
		p->proto = ip6.nexthdr;
		p->l4_off = ETH_HLEN + sizeof(ip6);
		p->is_v6 = 1;
		return weft_parse_l4(skb, p);
	}
	return WEFT_PARSE_PASS;
}

#define WEFT_PARSE_SLOW (-1)

/* The fast parser: direct packet access to headers in the skb's linear part,
 * where a pod's packets carry them. WEFT_PARSE_SLOW when a header it needs
 * is not all there (weft_parse_copy decides, also what is truncated); every
 * other answer is the one weft_parse_copy gives. */
static __always_inline int weft_parse_direct(struct __sk_buff *skb, struct weft_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 l4_off;

	if ((void *)(eth + 1) > end)
		return WEFT_PARSE_SLOW;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return WEFT_PARSE_SLOW;
		if (ip->version != 4 || ip->ihl < 5)
			return WEFT_PARSE_MALFORMED;
		if (ip->frag_off & bpf_htons(0x1fff))
			return WEFT_PARSE_PASS;
		weft_addr_set_v4(&p->saddr, ip->saddr);
		weft_addr_set_v4(&p->daddr, ip->daddr);
		p->proto = ip->protocol;
		l4_off = ETH_HLEN + ip->ihl * 4;
		p->is_v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return WEFT_PARSE_SLOW;
		if (ip6->version != 6)
			return WEFT_PARSE_MALFORMED;
		__builtin_memcpy(p->saddr.w, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr.w, &ip6->daddr, 16);
		p->proto = ip6->nexthdr;
		l4_off = ETH_HLEN + sizeof(*ip6);
		p->is_v6 = 1;
	} else {
		return WEFT_PARSE_PASS;
	}
	p->l4_off = l4_off;
	if (l4_off > ETH_HLEN + 60)
		return WEFT_PARSE_SLOW; /* cannot happen; bounds l4_off for the verifier */
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = data + l4_off;

		if ((void *)(th + 1) > end)
			return WEFT_PARSE_SLOW;
		if (th->doff < 5)
			return WEFT_PARSE_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_seq = th->seq;
		p->tcp_ack_seq = th->ack_seq;
		p->tcp_flags = ((__u8 *)th)[13];
		return WEFT_PARSE_OK;
	}
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = data + l4_off;

		if ((void *)(uh + 1) > end)
			return WEFT_PARSE_SLOW;
		p->sport = uh->source;
		p->dport = uh->dest;
		return WEFT_PARSE_OK;
	}
	return WEFT_PARSE_PASS;
}

static __always_inline int weft_parse(struct __sk_buff *skb, struct weft_pkt *p)
{
	int r;

	p->len = skb->len;
	r = weft_parse_direct(skb, p);
	if (r != WEFT_PARSE_SLOW)
		return r;
	return weft_parse_copy(skb, p);
}

static __always_inline void weft_ct_key_fwd(struct weft_ct_key *k, const struct weft_pkt *p, __u8 dir)
{
	weft_addr_store(k->saddr, &p->saddr);
	weft_addr_store(k->daddr, &p->daddr);
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->dir = dir;
	k->pad2 = 0;
}

static __always_inline void weft_ct_key_rev(struct weft_ct_key *k, const struct weft_pkt *p, __u8 dir)
{
	weft_addr_store(k->saddr, &p->daddr);
	weft_addr_store(k->daddr, &p->saddr);
	k->sport = p->dport;
	k->dport = p->sport;
	k->proto = p->proto;
	k->dir = dir;
	k->pad2 = 0;
}

/* Looks up the packet's flow: *is_reply tells which way it matched. NULL: no
 * entry either way. reply_first: try the reversed tuple first (where the
 * caller expects replies): both are tried, only the cost differs. Nothing is
 * written: a packet of a known flow leaves its entry's cache line clean (the
 * LRU needs no timestamps). */
static __always_inline struct weft_ct_val *weft_ct_lookup(const struct weft_pkt *p, __u8 dir,
							  int *is_reply, int reply_first,
							  struct weft_ct_key *key)
{
	const __u8 odir = dir == WEFT_DIR_EGRESS ? WEFT_DIR_INGRESS : WEFT_DIR_EGRESS;
	struct weft_ct_val *v;

	if (reply_first) {
		weft_ct_key_rev(key, p, odir);
		v = bpf_map_lookup_elem(&weft_ct, key);
		*is_reply = 1;
		if (v)
			return v;
		weft_ct_key_fwd(key, p, dir);
		*is_reply = 0;
		return bpf_map_lookup_elem(&weft_ct, key);
	}
	weft_ct_key_fwd(key, p, dir);
	v = bpf_map_lookup_elem(&weft_ct, key);
	*is_reply = 0;
	if (!v) {
		weft_ct_key_rev(key, p, odir);
		v = bpf_map_lookup_elem(&weft_ct, key);
		*is_reply = 1;
	}
	return v;
}

/* TCP close tracking on an allowed entry (include/weft/bpf_abi.h, enum
 * weft_ct_flags): records a FIN per side (one write per FIN, none for other
 * segments); returns 1 for the last ACK, after which the caller deletes the
 * entry (key: the one it matched). */
static __always_inline int weft_ct_tcp_closing(struct weft_ct_val *v, const struct weft_pkt *p, int is_reply)
{
	const __u8 both = WEFT_CT_FIN_FWD | WEFT_CT_FIN_REV;

	if (p->proto != IPPROTO_TCP)
		return 0;
	if (p->tcp_flags & WEFT_TCP_FIN) {
		__u8 bit = is_reply ? WEFT_CT_FIN_REV : WEFT_CT_FIN_FWD;

		if (!(v->flags & bit))
			v->flags |= bit;
		return 0;
	}
	return (v->flags & both) == both && (p->tcp_flags & (WEFT_TCP_ACK | WEFT_TCP_SYN)) == WEFT_TCP_ACK;
}

static __always_inline void weft_ct_create(const struct weft_pkt *p, __u8 dir, __u32 policy_id,
					   __u8 verdict, __u16 rev, __u32 peer_identity, __u32 flow_slot)
{
	struct weft_ct_key key;
	struct weft_ct_val val = {
		.created_ns = bpf_ktime_get_coarse_ns(),
		.policy_id = policy_id,
		.verdict = verdict,
		.policy_rev = rev,
		.peer_identity = peer_identity,
		.flow_slot = flow_slot,
	};

	weft_ct_key_fwd(&key, p, dir);
	/* Failure (only -ENOMEM on an LRU map) leaves the flow untracked: its
	 * next packets are evaluated again, which stays correct. */
	bpf_map_update_elem(&weft_ct, &key, &val, BPF_ANY);
}

#endif /* WEFT_BPF_LIB_CT_H */
