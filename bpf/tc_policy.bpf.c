// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc_policy: identity-based L3/L4 policy on a pod's host-side veth (clsact).
 *
 *   weft_tc_from_pod  host veth INGRESS = leaving the pod  = pod EGRESS
 *   weft_tc_to_pod    host veth EGRESS  = entering the pod = pod INGRESS
 *
 * Per packet: endpoint by skb->ifindex (miss: not ours, pass) -> leaving the
 * pod: source validation (lib/source.h: a source that is not one of the pod's
 * addresses is dropped as WEFT_DROP_SOURCE, whatever policy applies; this is
 * all weft_tc_from_pod does on a pod that enforces nothing, the only program
 * such a pod gets) -> enforcing neither direction: pass, nothing tracked ->
 * parse (direct packet access,
 * copies when headers are not linear; not TCP/UDP: pass; truncated: drop
 * MALFORMED) -> conntrack (own tuple: known flow; reversed tuple, other
 * direction: reply; both pass and count in the flow aggregate; the entry
 * holds the peer's identity, so a packet of a known flow never walks the LPM)
 * -> new flow: peer identity from the LPM ipcache, policy in the documented
 * order if the endpoint enforces this direction (else allowed, tracked so its
 * replies pass the other, enforced, direction); ALLOW creates the conntrack
 * entry, anything else goes through weft_drop().
 *
 * TCP: a pure SYN opens a flow (never looked up in conntrack: over an
 * existing entry it is tuple reuse); once a FIN went each way, the last ACK
 * deletes the entry (weft_ct_tcp_closing). A non-SYN packet without an entry (agent restart,
 * LRU eviction) is evaluated like a new flow and, if allowed, re-creates the
 * entry: established connections survive. A RST without an entry passes
 * untouched: it cannot open anything, and it is how weft_drop() refuses a
 * denied SYN. RSTs always pass (also over a tombstone, see below).
 *
 * Policy changes (weft_policy_rev): a conntrack hit whose entry was evaluated
 * under another revision, or that is a DENY tombstone, is evaluated again
 * (the flow's own direction, port and peer). Still allowed: the entry takes
 * the new revision and the packet passes. Now denied: the entry becomes a
 * DENY tombstone (kept, not deleted, so that the peer's next segment cannot
 * be picked up as a new flow of a direction that is not enforced and pass as
 * its "reply") and the packet goes through weft_drop(), which answers TCP
 * with a RST: both ends fail fast on their next segment, as ztunnel closes
 * connections a new policy denies. A new SYN reusing the tuple is evaluated
 * afresh as before.
 *
 * Trace mode (weftctl trace, BPF_PROG_TEST_RUN): skb->mark == WEFT_TRACE_MARK
 * and cb[0] == WEFT_TRACE_MAGIC: the same decision with no side effect at all
 * (no conntrack create/update/refresh, no flow count, no event, no drop
 * counter, no RST or redirect); the result goes into cb[] (bpf_abi.h) and the
 * program returns TC_ACT_OK or TC_ACT_SHOT.
 * Logic lives in lib/{identity,policy,ct,flows,drop}.h. */
#include "lib/common.h"
#include "lib/identity.h"
#include "lib/policy.h"
#include "lib/ct.h"
#include "lib/flows.h"
#include "lib/drop.h"
#include "lib/meta.h"
#include "lib/source.h"

static __always_inline int weft_is_trace(const struct __sk_buff *skb)
{
	return skb->mark == WEFT_TRACE_MARK && skb->cb[WEFT_TRACE_CB_MAGIC] == WEFT_TRACE_MAGIC;
}

/* Trace mode: the decision into cb[], and the return code it maps to. */
static __always_inline int weft_trace_out(struct __sk_buff *skb, __u8 verdict, __u8 reason, __u8 stage,
					  __u32 policy_id, __u32 peer, __u32 ep_id)
{
	skb->cb[WEFT_TRACE_CB_MAGIC] = 0;
	skb->cb[WEFT_TRACE_CB_RESULT] = (__u32)verdict | ((__u32)reason << 8) | ((__u32)stage << 16);
	skb->cb[WEFT_TRACE_CB_POLICY] = policy_id;
	skb->cb[WEFT_TRACE_CB_PEER] = peer;
	skb->cb[WEFT_TRACE_CB_EP] = ep_id;
	return verdict == WEFT_VERDICT_DENY ? TC_ACT_SHOT : TC_ACT_OK;
}

/* Policy of the flow in its own direction: allowed without lookups when the
 * endpoint does not enforce that direction. */
static __always_inline void weft_flow_eval(const struct weft_endpoint *ep, __u32 peer, __u16 dport,
					   __u8 proto, __u8 flow_dir, struct weft_policy_res *res)
{
	__u8 enforce = flow_dir == WEFT_DIR_INGRESS ? ep->enforce_ingress : ep->enforce_egress;

	if (enforce) {
		weft_policy_eval(ep->ep_id, peer, dport, proto, flow_dir, res);
	} else {
		res->verdict = WEFT_VERDICT_ALLOW;
		res->policy_id = 0;
		res->reason = WEFT_DROP_NONE;
	}
}

/* A packet leaving the pod from an address that is not the pod's: counted
 * as the pod's (its endpoint's identity is who really sent it) towards the
 * destination's identity, and dropped (never answered with a RST: that would
 * go to the forged address). */
static __noinline int weft_src_drop(struct __sk_buff *skb, const struct weft_endpoint *ep, struct weft_pkt *p,
				    int trace)
{
	struct weft_flow f = {};
	__u32 peer = weft_identity_of(&p->daddr);

	if (trace)
		return weft_trace_out(skb, WEFT_VERDICT_DENY, WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, 0, peer,
				      ep->ep_id);
	f.dir = WEFT_DIR_EGRESS;
	f.src_identity = ep->identity;
	f.dst_identity = peer;
	f.dport = bpf_ntohs(p->dport);
	f.verdict = WEFT_VERDICT_DENY;
	return weft_drop(skb, WEFT_DROP_SOURCE, &f, p, WEFT_DIR_EGRESS);
}

static __always_inline int weft_tc_policy(struct __sk_buff *skb, __u8 dir)
{
	const struct weft_endpoint *ep = weft_endpoint_of(skb->ifindex);
	int trace = weft_is_trace(skb);
	struct weft_pkt p = {};
	struct weft_flow f = {};
	struct weft_policy_res res = {};
	struct weft_ct_val *ct;
	struct weft_ct_key ct_key;
	const struct weft_addr *peer_addr;
	__u32 ep_id, ep_identity, peer;
	__u8 enforce, flow_dir;
	__u16 rev;
	int parsed, is_reply, syn;

	if (!ep) {
		if (trace)
			return weft_trace_out(skb, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE,
					      WEFT_TRACE_STAGE_NO_ENDPOINT, 0, 0, 0);
		return TC_ACT_OK;
	}
	ep_id = ep->ep_id;
	/* Leaving the pod: its own source address first, whatever policy applies. */
	if (dir == WEFT_DIR_EGRESS && weft_src_forged(skb, ep, &p))
		return weft_src_drop(skb, ep, &p, trace);
	if (!ep->enforce_ingress && !ep->enforce_egress) {
		if (trace)
			return weft_trace_out(skb, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE,
					      WEFT_TRACE_STAGE_NOT_ENFORCED, 0, 0, ep_id);
		return TC_ACT_OK;
	}
	ep_identity = ep->identity;
	enforce = dir == WEFT_DIR_INGRESS ? ep->enforce_ingress : ep->enforce_egress;

	parsed = weft_parse(skb, &p);
	if (parsed == WEFT_PARSE_PASS) {
		if (trace)
			return weft_trace_out(skb, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE,
					      WEFT_TRACE_STAGE_NOT_L4, 0, 0, ep_id);
		return TC_ACT_OK;
	}
	if (parsed == WEFT_PARSE_MALFORMED) {
		if (!enforce) {
			if (trace)
				return weft_trace_out(skb, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE,
						      WEFT_TRACE_STAGE_UNENFORCED_DIR, 0, 0, ep_id);
			return TC_ACT_OK;
		}
		if (trace)
			return weft_trace_out(skb, WEFT_VERDICT_DENY, WEFT_DROP_MALFORMED,
					      WEFT_TRACE_STAGE_MALFORMED, 0, 0, ep_id);
		f.dir = dir;
		f.src_identity = dir == WEFT_DIR_EGRESS ? ep_identity : WEFT_IDENTITY_UNKNOWN;
		f.dst_identity = dir == WEFT_DIR_EGRESS ? WEFT_IDENTITY_UNKNOWN : ep_identity;
		return weft_drop(skb, WEFT_DROP_MALFORMED, &f, &p, dir);
	}

	/* The peer is the other side: the destination leaving the pod, the
	 * source entering it. */
	peer_addr = dir == WEFT_DIR_EGRESS ? &p.daddr : &p.saddr;
	rev = weft_policy_rev_now();

	/* A pure SYN opens a new connection: evaluated as a new flow in its own
	 * direction, without a conntrack lookup (an entry of its tuple is a
	 * reused tuple, and a SYN is no reply: a simultaneous open meets the
	 * policy like any other). It is counted (a retransmitted SYN twice).
	 * Other packets: replies travel against the enforced direction, so an
	 * endpoint that enforces one direction looks for replies first in the
	 * other (the same answer, one lookup fewer per reply). */
	syn = p.proto == IPPROTO_TCP && (p.tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK)) == WEFT_TCP_SYN;
	if (syn) {
		ct = NULL;
		is_reply = 0;
	} else {
		int reply_first = dir == WEFT_DIR_EGRESS ? ep->enforce_ingress && !ep->enforce_egress
							 : ep->enforce_egress && !ep->enforce_ingress;

		ct = weft_ct_lookup(&p, dir, &is_reply, reply_first, &ct_key);
	}
	if (ct) {
		/* A current entry knows the peer's identity (identity-cache
		 * changes bump the revision); a stale one asks the cache. */
		int current = ct->policy_rev == rev && ct->verdict != WEFT_VERDICT_DENY;

		peer = current ? ct->peer_identity : weft_identity_of(peer_addr);
		/* RSTs pass: they only close (and are how we answer). */
		if (p.proto == IPPROTO_TCP && (p.tcp_flags & WEFT_TCP_RST)) {
			if (trace)
				return weft_trace_out(skb, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE,
						      WEFT_TRACE_STAGE_CT, ct->policy_id, peer, ep_id);
			return TC_ACT_OK;
		}
		if (!current) {
			/* Evaluated under another policy revision, or cut: again,
			 * in the flow's own direction (a reply travels against it).
			 * Only here is the flow described: a current entry's packet
			 * needs nothing but its slot. */
			flow_dir = is_reply ? (dir == WEFT_DIR_EGRESS ? WEFT_DIR_INGRESS : WEFT_DIR_EGRESS) : dir;
			f.dir = flow_dir;
			f.src_identity = flow_dir == WEFT_DIR_EGRESS ? ep_identity : peer;
			f.dst_identity = flow_dir == WEFT_DIR_EGRESS ? peer : ep_identity;
			f.dport = bpf_ntohs(is_reply ? p.sport : p.dport);
			weft_flow_eval(ep, peer, f.dport, p.proto, flow_dir, &res);
			f.verdict = res.verdict;
			f.policy_id = res.policy_id;
			if (res.verdict == WEFT_VERDICT_DENY) {
				if (trace)
					return weft_trace_out(skb, WEFT_VERDICT_DENY, res.reason,
							      WEFT_TRACE_STAGE_POLICY, res.policy_id,
							      peer, ep_id);
				ct->verdict = WEFT_VERDICT_DENY;
				ct->policy_id = res.policy_id;
				ct->policy_rev = rev;
				ct->peer_identity = peer;
				return weft_drop(skb, res.reason, &f, &p, dir);
			}
			if (trace)
				return weft_trace_out(skb, res.verdict, WEFT_DROP_NONE, WEFT_TRACE_STAGE_CT,
						      res.policy_id, peer, ep_id);
			ct->verdict = res.verdict;
			ct->policy_id = res.policy_id;
			ct->policy_rev = rev;
			ct->peer_identity = peer;
			/* The aggregate key may have changed (policy id). */
			ct->flow_slot = weft_flow_slot_of(&f, p.proto);
		} else if (trace) {
			return weft_trace_out(skb, ct->verdict, WEFT_DROP_NONE, WEFT_TRACE_STAGE_CT,
					      ct->policy_id, peer, ep_id);
		}
		/* The hot path: one array element, no hash lookup. */
		weft_flow_count(ct->flow_slot, p.len, 0);
		/* A closed TCP connection gives its entry back (its last ACK). */
		if (weft_ct_tcp_closing(ct, &p, is_reply))
			bpf_map_delete_elem(&weft_ct, &ct_key);
		return TC_ACT_OK;
	}

	if (p.proto == IPPROTO_TCP && (p.tcp_flags & WEFT_TCP_RST)) {
		if (trace)
			return weft_trace_out(skb, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE,
					      enforce ? WEFT_TRACE_STAGE_NONE : WEFT_TRACE_STAGE_UNENFORCED_DIR,
					      0, weft_identity_of(peer_addr), ep_id);
		return TC_ACT_OK;
	}

	peer = weft_identity_of(peer_addr);

	f.dir = dir;
	f.src_identity = dir == WEFT_DIR_EGRESS ? ep_identity : peer;
	f.dst_identity = dir == WEFT_DIR_EGRESS ? peer : ep_identity;
	f.dport = bpf_ntohs(p.dport);

	weft_flow_eval(ep, peer, f.dport, p.proto, dir, &res);
	f.verdict = res.verdict;
	f.policy_id = res.policy_id;

	if (trace)
		return weft_trace_out(skb, res.verdict, res.reason,
				      enforce ? WEFT_TRACE_STAGE_POLICY : WEFT_TRACE_STAGE_UNENFORCED_DIR,
				      res.policy_id, peer, ep_id);

	if (res.verdict == WEFT_VERDICT_DENY)
		return weft_drop(skb, res.reason, &f, &p, dir);

	/* A connection is counted where it opens (a SYN; any new UDP flow), as
	 * weft_drop() does: a TCP segment picked up without an entry (after a
	 * restart, an eviction, or a close's stray ACK) is a flow again but not
	 * another connection. */
	weft_ct_create(&p, dir, res.policy_id, res.verdict, rev, peer,
		       weft_flow_account(&f, p.proto, p.len, p.proto != IPPROTO_TCP || syn));
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
