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
 * Decide, then act: weft_decide() makes the whole decision without a side
 * effect (map lookups only) and returns the verdict, its reason and stage, and
 * what applying it records (enum weft_act); weft_act() is the one place it
 * takes effect (conntrack, counters, flow aggregates, events, drops and
 * RSTs). Trace mode (weftctl trace, BPF_PROG_TEST_RUN): skb->mark ==
 * WEFT_TRACE_MARK and cb[0] == WEFT_TRACE_MAGIC: the same decision is reported
 * instead (weft_trace_out: into cb[], bpf_abi.h) and the program returns
 * TC_ACT_OK or TC_ACT_SHOT, never REDIRECT; nothing is created, updated,
 * counted or sent.
 * Logic lives in lib/{identity,policy,ct,flows,drop,source}.h. */
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

/* What to do with a packet, as weft_decide() answers and weft_act() does it. */
enum weft_act {
	WEFT_ACT_PASS = 0, /* pass; nothing recorded */
	WEFT_ACT_DROP,     /* weft_drop(): counter, flow aggregate, event, a RST where it applies */
	WEFT_ACT_KNOWN,    /* a current conntrack entry: its slot counted, its close tracked */
	WEFT_ACT_RENEW,    /* an entry evaluated again and still allowed: it takes the revision, peer,
			    * policy and slot, then as KNOWN */
	WEFT_ACT_CUT,      /* an entry evaluated again and now denied: it becomes a DENY tombstone,
			    * then as DROP */
	WEFT_ACT_NEW,      /* a new flow, allowed: a conntrack entry, the flow aggregate (a
			    * connection where it opens), an event */
};

/* The decision about one packet: the verdict, its reason and where it came
 * from (what trace mode reports), and what applying it records. */
struct weft_decision {
	struct weft_flow f;     /* the flow as recorded (DROP, CUT, RENEW, NEW) */
	struct weft_ct_val *ct; /* the conntrack entry the packet matched, or NULL */
	__u32 policy_id;        /* of the deciding policy entry (0: none) */
	__u32 peer;             /* the peer's identity (0: not looked up) */
	__u32 ep_id;            /* of the endpoint (0: not ours) */
	__u16 rev;              /* weft_policy_rev the decision was made under */
	__u8  action;           /* enum weft_act */
	__u8  verdict;          /* enum weft_verdict */
	__u8  reason;           /* enum weft_drop_reason */
	__u8  stage;            /* enum weft_trace_stage */
	__u8  is_reply;         /* the packet matched its entry's reversed tuple */
	__u8  opens;            /* NEW: the packet opens a connection (counted once) */
};

static __always_inline void weft_flow_init(struct weft_flow *f, __u8 dir, __u32 src, __u32 dst, __u16 dport)
{
	f->src_identity = src;
	f->dst_identity = dst;
	f->policy_id = 0;
	f->dport = dport;
	f->verdict = WEFT_VERDICT_NONE;
	f->reason = WEFT_DROP_NONE;
	f->dir = dir;
}

/* Decides, without any side effect: map lookups only (nothing created,
 * refreshed, counted or sent). The packet is parsed into p and a matching
 * conntrack entry's key left in ct_key. trace: also look up what only a
 * trace reports (the peer of a RST without an entry). */
static __always_inline void weft_decide(struct __sk_buff *skb, __u8 dir, int trace, struct weft_pkt *p,
					struct weft_ct_key *ct_key, struct weft_decision *d)
{
	const struct weft_endpoint *ep = weft_endpoint_of(skb->ifindex);
	struct weft_policy_res res;
	const struct weft_addr *peer_addr;
	struct weft_ct_val *ct;
	__u32 ep_identity;
	__u8 enforce, flow_dir;
	int parsed, syn;

	d->action = WEFT_ACT_PASS;
	d->verdict = WEFT_VERDICT_ALLOW;
	d->reason = WEFT_DROP_NONE;
	d->policy_id = 0;
	d->peer = 0;
	d->ct = NULL;
	if (!ep) {
		d->stage = WEFT_TRACE_STAGE_NO_ENDPOINT;
		d->ep_id = 0;
		return;
	}
	d->ep_id = ep->ep_id;
	ep_identity = ep->identity;
	/* Leaving the pod: its own source address first, whatever policy
	 * applies. A forged source is counted as the pod's flow (its
	 * endpoint's identity is who really sent it) towards the destination's
	 * identity, and dropped (never answered with a RST: that would go to
	 * the forged address). */
	if (dir == WEFT_DIR_EGRESS && weft_src_forged(skb, ep, p)) {
		d->peer = weft_identity_of(&p->daddr);
		weft_flow_init(&d->f, WEFT_DIR_EGRESS, ep_identity, d->peer, bpf_ntohs(p->dport));
		d->f.verdict = WEFT_VERDICT_DENY;
		d->action = WEFT_ACT_DROP;
		d->verdict = WEFT_VERDICT_DENY;
		d->reason = WEFT_DROP_SOURCE;
		d->stage = WEFT_TRACE_STAGE_SOURCE;
		return;
	}
	if (!ep->enforce_ingress && !ep->enforce_egress) {
		d->stage = WEFT_TRACE_STAGE_NOT_ENFORCED;
		return;
	}
	enforce = dir == WEFT_DIR_INGRESS ? ep->enforce_ingress : ep->enforce_egress;

	parsed = weft_parse(skb, p);
	if (parsed == WEFT_PARSE_PASS) {
		d->stage = WEFT_TRACE_STAGE_NOT_L4;
		return;
	}
	if (parsed == WEFT_PARSE_MALFORMED) {
		if (!enforce) {
			d->stage = WEFT_TRACE_STAGE_UNENFORCED_DIR;
			return;
		}
		weft_flow_init(&d->f, dir, dir == WEFT_DIR_EGRESS ? ep_identity : WEFT_IDENTITY_UNKNOWN,
			       dir == WEFT_DIR_EGRESS ? WEFT_IDENTITY_UNKNOWN : ep_identity, 0);
		d->action = WEFT_ACT_DROP;
		d->verdict = WEFT_VERDICT_DENY;
		d->reason = WEFT_DROP_MALFORMED;
		d->stage = WEFT_TRACE_STAGE_MALFORMED;
		return;
	}

	/* The peer is the other side: the destination leaving the pod, the
	 * source entering it. */
	peer_addr = dir == WEFT_DIR_EGRESS ? &p->daddr : &p->saddr;
	d->rev = weft_policy_rev_now();

	/* A pure SYN opens a new connection: evaluated as a new flow in its own
	 * direction, without a conntrack lookup (an entry of its tuple is a
	 * reused tuple, and a SYN is no reply: a simultaneous open meets the
	 * policy like any other). It is counted (a retransmitted SYN twice).
	 * Other packets: replies travel against the enforced direction, so an
	 * endpoint that enforces one direction looks for replies first in the
	 * other (the same answer, one lookup fewer per reply). */
	syn = p->proto == IPPROTO_TCP && (p->tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK)) == WEFT_TCP_SYN;
	if (syn) {
		ct = NULL;
		d->is_reply = 0;
	} else {
		int reply_first = dir == WEFT_DIR_EGRESS ? ep->enforce_ingress && !ep->enforce_egress
							 : ep->enforce_egress && !ep->enforce_ingress;
		int is_reply;

		ct = weft_ct_lookup(p, dir, &is_reply, reply_first, ct_key);
		d->is_reply = is_reply;
	}
	if (ct) {
		/* A current entry knows the peer's identity (identity-cache
		 * changes bump the revision); a stale one asks the cache. */
		int current = ct->policy_rev == d->rev && ct->verdict != WEFT_VERDICT_DENY;

		d->ct = ct;
		d->peer = current ? ct->peer_identity : weft_identity_of(peer_addr);
		d->stage = WEFT_TRACE_STAGE_CT;
		/* RSTs pass: they only close (and are how we answer). */
		if (p->proto == IPPROTO_TCP && (p->tcp_flags & WEFT_TCP_RST)) {
			d->policy_id = ct->policy_id;
			return;
		}
		if (current) {
			/* The hot path: its slot is all the packet needs. */
			d->action = WEFT_ACT_KNOWN;
			d->verdict = ct->verdict;
			d->policy_id = ct->policy_id;
			return;
		}
		/* Evaluated under another policy revision, or cut: again, in the
		 * flow's own direction (a reply travels against it). Only here is
		 * the flow described. */
		flow_dir = d->is_reply ? (dir == WEFT_DIR_EGRESS ? WEFT_DIR_INGRESS : WEFT_DIR_EGRESS) : dir;
		weft_flow_init(&d->f, flow_dir, flow_dir == WEFT_DIR_EGRESS ? ep_identity : d->peer,
			       flow_dir == WEFT_DIR_EGRESS ? d->peer : ep_identity,
			       bpf_ntohs(d->is_reply ? p->sport : p->dport));
		weft_flow_eval(ep, d->peer, d->f.dport, p->proto, flow_dir, &res);
		d->f.verdict = res.verdict;
		d->f.policy_id = res.policy_id;
		d->policy_id = res.policy_id;
		d->verdict = res.verdict;
		if (res.verdict == WEFT_VERDICT_DENY) {
			d->action = WEFT_ACT_CUT;
			d->reason = res.reason;
			d->stage = WEFT_TRACE_STAGE_POLICY;
		} else {
			d->action = WEFT_ACT_RENEW;
		}
		return;
	}

	if (p->proto == IPPROTO_TCP && (p->tcp_flags & WEFT_TCP_RST)) {
		d->stage = enforce ? WEFT_TRACE_STAGE_NONE : WEFT_TRACE_STAGE_UNENFORCED_DIR;
		if (trace)
			d->peer = weft_identity_of(peer_addr);
		return;
	}

	d->peer = weft_identity_of(peer_addr);
	weft_flow_init(&d->f, dir, dir == WEFT_DIR_EGRESS ? ep_identity : d->peer,
		       dir == WEFT_DIR_EGRESS ? d->peer : ep_identity, bpf_ntohs(p->dport));
	weft_flow_eval(ep, d->peer, d->f.dport, p->proto, dir, &res);
	d->f.verdict = res.verdict;
	d->f.policy_id = res.policy_id;
	d->policy_id = res.policy_id;
	d->verdict = res.verdict;
	d->reason = res.reason;
	d->stage = enforce ? WEFT_TRACE_STAGE_POLICY : WEFT_TRACE_STAGE_UNENFORCED_DIR;
	d->action = res.verdict == WEFT_VERDICT_DENY ? WEFT_ACT_DROP : WEFT_ACT_NEW;
	/* A connection is counted where it opens (a SYN; any new UDP flow), as
	 * weft_drop() does: a TCP segment picked up without an entry (after a
	 * restart, an eviction, or a close's stray ACK) is a flow again but not
	 * another connection. */
	d->opens = p->proto != IPPROTO_TCP || syn;
}

/* Trace mode: the decision into cb[], and the return code it maps to; no
 * side effect. */
static __always_inline int weft_trace_out(struct __sk_buff *skb, const struct weft_decision *d)
{
	skb->cb[WEFT_TRACE_CB_MAGIC] = 0;
	skb->cb[WEFT_TRACE_CB_RESULT] = (__u32)d->verdict | ((__u32)d->reason << 8) | ((__u32)d->stage << 16);
	skb->cb[WEFT_TRACE_CB_POLICY] = d->policy_id;
	skb->cb[WEFT_TRACE_CB_PEER] = d->peer;
	skb->cb[WEFT_TRACE_CB_EP] = d->ep_id;
	return d->verdict == WEFT_VERDICT_DENY ? TC_ACT_SHOT : TC_ACT_OK;
}

/* The one place a decision takes effect. */
static __always_inline int weft_act(struct __sk_buff *skb, __u8 dir, const struct weft_pkt *p,
				    const struct weft_ct_key *ct_key, struct weft_decision *d)
{
	struct weft_ct_val *ct = d->ct;

	switch (d->action) {
	case WEFT_ACT_KNOWN:
	case WEFT_ACT_RENEW:
		if (!ct)
			return TC_ACT_OK;
		if (d->action == WEFT_ACT_RENEW) {
			ct->verdict = d->verdict;
			ct->policy_id = d->policy_id;
			ct->policy_rev = d->rev;
			ct->peer_identity = d->peer;
			/* The aggregate key may have changed (policy id). */
			ct->flow_slot = weft_flow_slot_of(&d->f, p->proto);
		}
		/* One array element, no hash lookup. */
		weft_flow_count(ct->flow_slot, p->len, 0);
		/* A closed TCP connection gives its entry back (its last ACK). */
		if (weft_ct_tcp_closing(ct, p, d->is_reply))
			bpf_map_delete_elem(&weft_ct, ct_key);
		return TC_ACT_OK;
	case WEFT_ACT_CUT:
		if (ct) {
			ct->verdict = WEFT_VERDICT_DENY;
			ct->policy_id = d->policy_id;
			ct->policy_rev = d->rev;
			ct->peer_identity = d->peer;
		}
		/* fall through */
	case WEFT_ACT_DROP:
		return weft_drop(skb, d->reason, &d->f, p, dir);
	case WEFT_ACT_NEW:
		weft_ct_create(p, dir, d->policy_id, d->verdict, d->rev, d->peer,
			       weft_flow_account(&d->f, p->proto, p->len, d->opens));
		weft_flow_emit(&d->f, p);
		return TC_ACT_OK;
	}
	return TC_ACT_OK;
}

static __always_inline int weft_tc_policy(struct __sk_buff *skb, __u8 dir)
{
	int trace = weft_is_trace(skb);
	struct weft_pkt p = {};
	struct weft_ct_key ct_key;
	struct weft_decision d;

	weft_decide(skb, dir, trace, &p, &ct_key, &d);
	if (trace)
		return weft_trace_out(skb, &d);
	return weft_act(skb, dir, &p, &ct_key, &d);
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
