/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Identity policy: the documented lookup order of include/weft/bpf_abi.h,
 * (peer, port) -> (peer, ANY) -> (ANY, port) -> (ANY, ANY); first entry wins. */
#ifndef WEFT_BPF_LIB_POLICY_H
#define WEFT_BPF_LIB_POLICY_H

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_policy_key);
	__type(value, struct weft_policy_val);
	__uint(max_entries, WEFT_DEFAULT_MAX_POLICY_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_policy SEC(".maps");

/* The policy revision (include/weft/bpf_abi.h): bumped by the agent after
 * every policy change; conntrack entries of another revision are evaluated
 * again. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_policy_rev SEC(".maps");

static __always_inline __u16 weft_policy_rev_now(void)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&weft_policy_rev, &zero);

	return v ? (__u16)*v : 0;
}

/* The outcome of a policy evaluation for a new flow. */
struct weft_policy_res {
	__u32 policy_id;
	__u8  verdict; /* enum weft_verdict */
	__u8  reason;  /* enum weft_drop_reason when not allowed */
};

static __always_inline const struct weft_policy_val *
weft_policy_try(struct weft_policy_key *key, __u32 peer, __u16 port)
{
	key->peer_identity = peer;
	key->port = port;
	return bpf_map_lookup_elem(&weft_policy, key);
}

/* port: destination port, host byte order. */
static __always_inline void weft_policy_eval(__u32 ep_id, __u32 peer, __u16 port, __u8 proto,
					     __u8 dir, struct weft_policy_res *res)
{
	struct weft_policy_key key = { .ep_id = ep_id, .proto = proto, .direction = dir };
	const struct weft_policy_val *v;

	v = weft_policy_try(&key, peer, port);
	if (!v)
		v = weft_policy_try(&key, peer, 0);
	if (!v)
		v = weft_policy_try(&key, WEFT_IDENTITY_ANY, port);
	if (!v)
		v = weft_policy_try(&key, WEFT_IDENTITY_ANY, 0);

	if (!v) {
		/* Default deny: the endpoint enforces this direction. */
		res->verdict = WEFT_VERDICT_DENY;
		res->policy_id = 0;
		res->reason = peer == WEFT_IDENTITY_UNKNOWN ? WEFT_DROP_NO_IDENTITY
							    : WEFT_DROP_POLICY_DEFAULT;
		return;
	}
	res->policy_id = v->policy_id;
	/* STEER (reserved) passes like ALLOW until the node proxy exists; it is
	 * still recorded as STEER in flows. Anything unknown denies. */
	if (v->verdict == WEFT_VERDICT_ALLOW || v->verdict == WEFT_VERDICT_STEER) {
		res->verdict = v->verdict;
		res->reason = WEFT_DROP_NONE;
	} else {
		res->verdict = WEFT_VERDICT_DENY;
		res->reason = v->reason ? v->reason : WEFT_DROP_POLICY_DENIED;
	}
}

#endif /* WEFT_BPF_LIB_POLICY_H */
