/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service lookup and backend selection for the socket-level load balancer.
 *
 * A service is VIP:port/proto -> {svc_id, gen, slot_count, algo, flags}; a
 * backend is chosen by picking a slot in [0, slot_count) and looking up
 * weft_slots{svc_id, gen, slot} -> backend id -> weft_backends. The agent
 * replaces a backend set by writing a new generation of slots, flipping the
 * service entry, then deleting the old generation, so a reader that sees a
 * slot miss re-reads the service once (see weft_lb_select). */
#ifndef WEFT_BPF_LIB_LB_H
#define WEFT_BPF_LIB_LB_H

#include "lib/common.h"
#include "lib/stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_svc_key);
	__type(value, struct weft_svc_val);
	__uint(max_entries, WEFT_DEFAULT_MAX_SERVICES);
	/* Not preallocated: an update then swaps in a fresh element and frees the
	 * old one after an RCU grace period, so a program holding a pointer to
	 * the old value never sees it overwritten by a later update (a
	 * preallocated element goes straight back to the free list). This is
	 * what makes the gen/slot_count flip atomic for readers. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_slot_key);
	__type(value, __u32);
	__uint(max_entries, WEFT_DEFAULT_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct weft_backend);
	__uint(max_entries, WEFT_DEFAULT_MAX_BACKENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* same reason as weft_services */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_backends SEC(".maps");

enum weft_lb_verdict {
	WEFT_LB_NOT_SERVICE = 0, /* not a VIP: leave the socket call alone */
	WEFT_LB_OK          = 1, /* backend chosen */
	WEFT_LB_NO_BACKEND  = 2, /* the service has no backends: refuse */
	WEFT_LB_SLOT_MISS   = 3, /* slot/backend missing twice (racing update) */
};

/* What the selection produced; copies, never pointers into map values (the
 * agent updates entries in place while we run). */
struct weft_lb_result {
	struct weft_addr be_addr;
	__u16 be_port;
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
};

static __always_inline void weft_svc_key_init(struct weft_svc_key *key, const struct weft_addr *vip,
					      __u16 port_be, __u32 proto)
{
	weft_addr_store(key->addr, vip);
	key->port = port_be;
	key->proto = (__u8)proto;
	key->pad = 0;
}

/* The slot for this call. slot_count must be non-zero.
 *
 * Maglev hashes the client. The client identity is the network namespace
 * cookie of the calling socket: one netns per pod, so one pod keeps one
 * backend for as long as the table maps its slot there. We do not use the
 * source address even when the socket is already bound: at connect time most
 * sockets are not bound yet, and mixing "bound" and "unbound" identities would
 * move a pod between backends depending on how its app opens sockets. The
 * cost: every socket of the host netns is one client. */
static __always_inline __u32 weft_lb_pick_slot(void *ctx, __u8 algo, __u32 slot_count)
{
	if (algo == WEFT_LB_MAGLEV)
		return weft_client_hash(bpf_get_netns_cookie(ctx)) % slot_count;
	return bpf_get_prandom_u32() % slot_count;
}

/* One attempt against the service entry as read now. */
static __always_inline int weft_lb_try(void *ctx, const struct weft_svc_val *svc,
				       struct weft_lb_result *res)
{
	struct weft_slot_key skey = {};
	struct weft_backend *be;
	__u32 slot_count = svc->slot_count;
	__u32 *be_id;
	__u32 id;

	res->svc_id = svc->svc_id;
	if (slot_count == 0)
		return WEFT_LB_NO_BACKEND;

	skey.svc_id = res->svc_id;
	skey.gen = svc->gen;
	skey.slot = (__u16)weft_lb_pick_slot(ctx, svc->algo, slot_count);
	be_id = bpf_map_lookup_elem(&weft_slots, &skey);
	if (!be_id)
		return WEFT_LB_SLOT_MISS;
	id = *be_id;
	be = bpf_map_lookup_elem(&weft_backends, &id);
	if (!be)
		return WEFT_LB_SLOT_MISS;
	weft_addr_load(&res->be_addr, be->addr);
	res->be_port = be->port;
	res->backend_id = id;
	return WEFT_LB_OK;
}

/* Looks the VIP up and picks a backend. Counts nothing: the caller knows the
 * hook and does the accounting (weft_lb_account). */
static __always_inline int weft_lb_select(void *ctx, const struct weft_svc_key *key,
					  struct weft_lb_result *res)
{
	struct weft_svc_val *svc;
	int ret;

	svc = bpf_map_lookup_elem(&weft_services, key);
	if (!svc)
		return WEFT_LB_NOT_SERVICE;
	/* WEFT_SVC_F_STEER_PROXY is reserved: when the L7 proxy lands, a flow of
	 * a flagged service is steered to the node proxy here instead of being
	 * balanced. Until then a flagged service is balanced like any other. */
	if (svc->flags & WEFT_SVC_F_STEER_PROXY) {
		/* later: return weft_lb_steer_proxy(ctx, svc, res); */
	}

	ret = weft_lb_try(ctx, svc, res);
	if (ret != WEFT_LB_SLOT_MISS)
		return ret;

	/* Racing a generation flip: the slots we looked at may just have been
	 * deleted. Re-read the service once and try again. */
	svc = bpf_map_lookup_elem(&weft_services, key);
	if (!svc)
		return WEFT_LB_NOT_SERVICE;
	return weft_lb_try(ctx, svc, res);
}

/* Accounting for a selection outcome. rewritten_reason is
 * WEFT_STAT_CONNECT_REWRITTEN or WEFT_STAT_SENDMSG_REWRITTEN. */
static __always_inline void weft_lb_account(int verdict, const struct weft_lb_result *res,
					    __u32 rewritten_reason)
{
	switch (verdict) {
	case WEFT_LB_OK:
		weft_svc_stat_connect(res->svc_id);
		weft_backend_stat_connect(res->backend_id);
		weft_stat_inc(rewritten_reason);
		break;
	case WEFT_LB_NO_BACKEND:
		weft_svc_stat_no_backend(res->svc_id);
		break;
	case WEFT_LB_SLOT_MISS:
		weft_stat_inc(WEFT_STAT_SLOT_MISS);
		break;
	default:
		break;
	}
}

/* Refuses the socket call the way a closed port would: the app sees
 * ECONNREFUSED from connect()/sendmsg() instead of the default EPERM. */
static __always_inline int weft_lb_refuse(void)
{
	bpf_set_retval(-ECONNREFUSED);
	return WEFT_SOCK_DENY;
}

#endif /* WEFT_BPF_LIB_LB_H */
