// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc_policy: identity-based L3/L4 policy on a pod's host-side veth (clsact).
 *
 *   weft_tc_from_pod  host veth INGRESS = leaving the pod  = pod EGRESS
 *   weft_tc_to_pod    host veth EGRESS  = entering the pod = pod INGRESS
 *
 * Per packet: endpoint by skb->ifindex (miss: not ours, pass; enforcing
 * neither direction: pass, nothing tracked) -> parse (not TCP/UDP: pass;
 * truncated: drop MALFORMED) -> conntrack (own tuple: known flow; reversed
 * tuple, other direction: reply; both pass and count in the flow aggregate)
 * -> new flow: peer identity from the LPM ipcache, policy in the documented
 * order if the endpoint enforces this direction (else allowed, tracked so its
 * replies pass the other, enforced, direction); ALLOW creates the conntrack
 * entry, anything else goes through weft_drop().
 *
 * TCP: a SYN opens a flow (also over an existing entry: tuple reuse). A non-SYN packet without an entry (agent restart,
 * LRU eviction) is evaluated like a new flow and, if allowed, re-creates the
 * entry: established connections survive. A RST without an entry passes
 * untouched: it cannot open anything, and it is how weft_drop() refuses a
 * denied SYN.
 * Logic lives in lib/{identity,policy,ct,flows,drop}.h. */
#include "lib/common.h"
#include "lib/identity.h"
#include "lib/policy.h"
#include "lib/ct.h"
#include "lib/flows.h"
#include "lib/drop.h"

static __always_inline int weft_tc_policy(struct __sk_buff *skb, __u8 dir)
{
	const struct weft_endpoint *ep = weft_endpoint_of(skb->ifindex);
	struct weft_pkt p = {};
	struct weft_flow f = {};
	struct weft_policy_res res = {};
	struct weft_ct_val *ct;
	const struct weft_addr *peer_addr;
	__u32 ep_id, ep_identity, peer;
	__u8 enforce, flow_dir;
	int parsed, is_reply;

	if (!ep)
		return TC_ACT_OK;
	if (!ep->enforce_ingress && !ep->enforce_egress)
		return TC_ACT_OK;
	ep_id = ep->ep_id;
	ep_identity = ep->identity;
	enforce = dir == WEFT_DIR_INGRESS ? ep->enforce_ingress : ep->enforce_egress;

	parsed = weft_parse(skb, &p);
	if (parsed == WEFT_PARSE_PASS)
		return TC_ACT_OK;
	if (parsed == WEFT_PARSE_MALFORMED) {
		if (!enforce)
			return TC_ACT_OK;
		f.dir = dir;
		f.src_identity = dir == WEFT_DIR_EGRESS ? ep_identity : WEFT_IDENTITY_UNKNOWN;
		f.dst_identity = dir == WEFT_DIR_EGRESS ? WEFT_IDENTITY_UNKNOWN : ep_identity;
		return weft_drop(skb, WEFT_DROP_MALFORMED, &f, &p, dir);
	}

	/* The peer is the other side: the destination leaving the pod, the
	 * source entering it. */
	peer_addr = dir == WEFT_DIR_EGRESS ? &p.daddr : &p.saddr;
	peer = weft_identity_of(peer_addr);

	ct = weft_ct_lookup(&p, dir, &is_reply);
	/* A pure SYN on an existing forward entry is a new connection reusing
	 * the tuple: evaluate it again (the policy may have changed) and count
	 * it. (A retransmitted SYN is therefore counted twice.) */
	if (ct && !is_reply && p.proto == IPPROTO_TCP &&
	    (p.tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK)) == WEFT_TCP_SYN)
		ct = NULL;
	if (ct) {
		/* The flow's own direction: a reply travels against it. */
		flow_dir = is_reply ? (dir == WEFT_DIR_EGRESS ? WEFT_DIR_INGRESS : WEFT_DIR_EGRESS) : dir;
		f.dir = flow_dir;
		f.src_identity = flow_dir == WEFT_DIR_EGRESS ? ep_identity : peer;
		f.dst_identity = flow_dir == WEFT_DIR_EGRESS ? peer : ep_identity;
		f.dport = bpf_ntohs(is_reply ? p.sport : p.dport);
		f.verdict = ct->verdict;
		f.policy_id = ct->policy_id;
		weft_flow_account(&f, p.proto, p.len, 0);
		return TC_ACT_OK;
	}

	if (p.proto == IPPROTO_TCP && (p.tcp_flags & WEFT_TCP_RST))
		return TC_ACT_OK;

	f.dir = dir;
	f.src_identity = dir == WEFT_DIR_EGRESS ? ep_identity : peer;
	f.dst_identity = dir == WEFT_DIR_EGRESS ? peer : ep_identity;
	f.dport = bpf_ntohs(p.dport);

	if (enforce) {
		weft_policy_eval(ep_id, peer, f.dport, p.proto, dir, &res);
	} else {
		res.verdict = WEFT_VERDICT_ALLOW;
		res.policy_id = 0;
		res.reason = WEFT_DROP_NONE;
	}
	f.verdict = res.verdict;
	f.policy_id = res.policy_id;

	if (res.verdict == WEFT_VERDICT_DENY)
		return weft_drop(skb, res.reason, &f, &p, dir);

	weft_ct_create(&p, dir, res.policy_id, res.verdict);
	weft_flow_account(&f, p.proto, p.len, 1);
	weft_flow_emit(&f, &p);
	return TC_ACT_OK;
}

SEC("tc")
int weft_tc_from_pod(struct __sk_buff *skb)
{
	return weft_tc_policy(skb, WEFT_DIR_EGRESS);
}

SEC("tc")
int weft_tc_to_pod(struct __sk_buff *skb)
{
	return weft_tc_policy(skb, WEFT_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
