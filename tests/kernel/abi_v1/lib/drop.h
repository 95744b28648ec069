/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every drop goes through weft_drop(): it counts the reason (enum
 * weft_drop_reason, append-only), records the flow aggregate and an event,
 * and drops. A denied TCP SYN is answered instead of dropped, so the client
 * fails fast (ECONNREFUSED) rather than retransmitting into a black hole (and
 * a denied segment of an established connection likewise, with a bare RST:
 * the connection fails fast with ECONNRESET; see weft_tcp_reset):
 * the SYN is rewritten in place into a RST|ACK to its sender (MACs, addresses
 * and ports swapped, seq 0, ack = seq + 1, no options, checksums computed from
 * scratch) and bpf_redirect()ed back:
 *   - pod egress (host veth ingress): out of the host veth, into the pod;
 *   - pod ingress (host veth egress): into the host veth's ingress, as if the
 *     server pod had sent it, so the node routes it to the client.
 * Our own RSTs then meet the programs again; a RST without a conntrack entry
 * is passed untouched (see tc_policy.bpf.c).
 * Checksums are written in full. Known limits of the in-place rewrite: a
 * CHECKSUM_PARTIAL SYN (sent by a local socket, e.g. a pod) stays PARTIAL,
 * fine for veth/local delivery (PARTIAL counts as verified) but a NIC doing
 * TX offload would re-sum it; a CHECKSUM_COMPLETE SYN (from a NIC) keeps a
 * stale skb->csum, fine when forwarded (ip_forward drops COMPLETE). Both
 * cases met in tests (pod to pod over veth) are covered; a node-external
 * client is not yet tested. (BPF_F_RECOMPUTE_CSUM on the stores made them
 * fail under BPF_PROG_TEST_RUN; not investigated for lack of time.) */
#ifndef WEFT_BPF_LIB_DROP_H
#define WEFT_BPF_LIB_DROP_H

#include <linux/pkt_cls.h>

#include "lib/common.h"
#include "lib/ct.h"
#include "lib/flows.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, WEFT_DROP_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_drop_stats SEC(".maps");

static __always_inline void weft_drop_stat_inc(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&weft_drop_stats, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u16 weft_csum_fold(__s64 sum)
{
	__u64 c = (__u64)sum & 0xffffffffULL;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

struct weft_pseudo4 {
	__be32 saddr;
	__be32 daddr;
	__u8   zero;
	__u8   proto;
	__be16 len;
};

struct weft_pseudo6 {
	__u8   saddr[16];
	__u8   daddr[16];
	__be32 len;
	__u8   zero[3];
	__u8   nexthdr;
};

/* Rewrites a TCP segment into the RST that answers it (RFC 793 reset
 * generation): a SYN (no ACK) gets RST|ACK with seq 0, ack = seq + 1; a
 * segment with ACK (an established connection cut by a policy change) gets a
 * bare RST with seq = its ack_seq, the sender's rcv_nxt, which the sender
 * accepts. 0 on success. */
static __always_inline int weft_tcp_reset(struct __sk_buff *skb, const struct weft_pkt *p)
{
	struct ethhdr eth, old_eth;
	struct tcphdr th = {};
	__u32 l3_len = p->is_v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	__s64 sum;

	if (bpf_skb_load_bytes(skb, 0, &old_eth, sizeof(old_eth)) < 0)
		return -1;
	__builtin_memcpy(eth.h_dest, old_eth.h_source, ETH_ALEN);
	__builtin_memcpy(eth.h_source, old_eth.h_dest, ETH_ALEN);
	eth.h_proto = old_eth.h_proto;

	th.source = p->dport;
	th.dest = p->sport;
	th.doff = 5;
	th.rst = 1;
	if (p->tcp_flags & WEFT_TCP_ACK) {
		th.seq = p->tcp_ack_seq;
	} else {
		th.seq = 0;
		th.ack_seq = bpf_htonl(bpf_ntohl(p->tcp_seq) + 1);
		th.ack = 1;
	}

	if (bpf_skb_change_tail(skb, ETH_HLEN + l3_len + sizeof(th), 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0)
		return -1;

	if (p->is_v6) {
		struct ipv6hdr ip6 = {};
		struct weft_pseudo6 ph = {};

		ip6.version = 6;
		ip6.payload_len = bpf_htons(sizeof(th));
		ip6.nexthdr = IPPROTO_TCP;
		ip6.hop_limit = 64;
		__builtin_memcpy(&ip6.saddr, p->daddr.w, 16);
		__builtin_memcpy(&ip6.daddr, p->saddr.w, 16);
		__builtin_memcpy(ph.saddr, p->daddr.w, 16);
		__builtin_memcpy(ph.daddr, p->saddr.w, 16);
		ph.len = bpf_htonl(sizeof(th));
		ph.nexthdr = IPPROTO_TCP;
		sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
		sum = bpf_csum_diff(0, 0, (__be32 *)&th, sizeof(th), (__u32)sum);
		th.check = weft_csum_fold(sum);
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0) < 0)
			return -1;
	} else {
		struct iphdr ip = {};
		struct weft_pseudo4 ph = {};

		ip.version = 4;
		ip.ihl = 5;
		ip.tot_len = bpf_htons(sizeof(ip) + sizeof(th));
		ip.frag_off = bpf_htons(0x4000); /* DF */
		ip.ttl = 64;
		ip.protocol = IPPROTO_TCP;
		ip.saddr = p->daddr.w[3];
		ip.daddr = p->saddr.w[3];
		sum = bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0);
		ip.check = weft_csum_fold(sum);
		ph.saddr = ip.saddr;
		ph.daddr = ip.daddr;
		ph.proto = IPPROTO_TCP;
		ph.len = bpf_htons(sizeof(th));
		sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
		sum = bpf_csum_diff(0, 0, (__be32 *)&th, sizeof(th), (__u32)sum);
		th.check = weft_csum_fold(sum);
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0)
			return -1;
	}
	if (bpf_skb_store_bytes(skb, ETH_HLEN + l3_len, &th, sizeof(th), 0) < 0)
		return -1;
	return 0;
}

/* The one way to drop. f describes the flow (verdict, reason, identities);
 * p may be only partly parsed for WEFT_DROP_MALFORMED. prog_dir is the
 * direction of the program that runs (where the packet came from). Returns
 * TC_ACT_SHOT, or TC_ACT_REDIRECT for a SYN answered with a RST. */
static __always_inline int weft_drop(struct __sk_buff *skb, __u8 reason, struct weft_flow *f,
				     const struct weft_pkt *p, __u8 prog_dir)
{
	int opens = p->proto != IPPROTO_TCP ||
		    (p->tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK)) == WEFT_TCP_SYN;

	f->reason = reason;
	if (f->verdict == WEFT_VERDICT_NONE || f->verdict == WEFT_VERDICT_ALLOW)
		f->verdict = WEFT_VERDICT_DENY;
	weft_drop_stat_inc(reason);
	weft_flow_account(f, p->proto, p->len, opens);
	weft_flow_emit(f, p);

	/* Answered with a RST: a pure SYN (refused connect) and any segment
	 * carrying an ACK but no SYN/RST (a connection cut by a policy change,
	 * or picked up without conntrack and denied). A SYN|ACK is just dropped:
	 * its sender is the server, which retransmits and times out. */
	if (reason != WEFT_DROP_MALFORMED && p->proto == IPPROTO_TCP &&
	    ((p->tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK | WEFT_TCP_RST)) == WEFT_TCP_SYN ||
	     (p->tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK | WEFT_TCP_RST)) == WEFT_TCP_ACK) &&
	    weft_tcp_reset(skb, p) == 0)
		return bpf_redirect(skb->ifindex, prog_dir == WEFT_DIR_EGRESS ? 0 : BPF_F_INGRESS);
	return TC_ACT_SHOT;
}

#endif /* WEFT_BPF_LIB_DROP_H */
