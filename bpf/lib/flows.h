/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow observability: exact per-CPU aggregates in weft_flows (never lossy: no
 * ring buffer involved) and one weft_flow_event per new flow or drop in the
 * ring buffer weft_flow_ev, whose losses are counted in weft_ev_stats. */
#ifndef WEFT_BPF_LIB_FLOWS_H
#define WEFT_BPF_LIB_FLOWS_H

#include "lib/common.h"
#include "lib/ct.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct weft_flow_key);
	__type(value, struct weft_flow_val);
	__uint(max_entries, WEFT_DEFAULT_MAX_FLOW_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_flow_ev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, WEFT_EVSTAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_ev_stats SEC(".maps");

/* A flow as the aggregates and events name it: client -> server. */
struct weft_flow {
	__u32 src_identity;
	__u32 dst_identity;
	__u32 policy_id;
	__u16 dport;   /* host byte order */
	__u8  verdict;
	__u8  reason;
	__u8  dir;     /* enum weft_direction, relative to the local endpoint */
};

static __always_inline void weft_ev_stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&weft_ev_stats, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* new_conn: this packet opens the flow (counts one connection). */
static __always_inline void weft_flow_account(const struct weft_flow *f, __u8 proto, __u32 bytes,
					      int new_conn)
{
	struct weft_flow_key key = {
		.src_identity = f->src_identity,
		.dst_identity = f->dst_identity,
		.dport = f->dport,
		.proto = proto,
		.verdict = f->verdict,
		.reason = f->reason,
		.direction = f->dir,
		.policy_id = f->policy_id,
	};
	struct weft_flow_val *v = bpf_map_lookup_elem(&weft_flows, &key);

	if (!v) {
		struct weft_flow_val zero = {};

		/* -EEXIST: another CPU raced us in; the lookup below finds it.
		 * -E2BIG (map full) is the one way to miss: sized for identity
		 * pairs, not for connections. */
		bpf_map_update_elem(&weft_flows, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&weft_flows, &key);
		if (!v)
			return;
	}
	if (new_conn)
		__sync_fetch_and_add(&v->connections, 1);
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, bytes);
}

/* A real (noinline) subprogram on purpose: its BTF signature carries struct
 * weft_flow_event into the object's BTF, so tools and the ABI test see the
 * event layout even though a ring buffer map has no value type. */
static __noinline int weft_flow_ev_send(struct weft_flow_event *ev)
{
	if (!ev)
		return -1;
	return bpf_ringbuf_output(&weft_flow_ev, ev, sizeof(*ev), 0);
}

static __always_inline void weft_flow_emit(const struct weft_flow *f, const struct weft_pkt *p)
{
	struct weft_flow_event ev = {
		.ts_ns = bpf_ktime_get_ns(),
		.sport = p->sport,
		.dport = p->dport,
		.src_identity = f->src_identity,
		.dst_identity = f->dst_identity,
		.policy_id = f->policy_id,
		.proto = p->proto,
		.verdict = f->verdict,
		.reason = f->reason,
		.direction = f->dir,
	};

	weft_addr_store(ev.saddr, &p->saddr);
	weft_addr_store(ev.daddr, &p->daddr);
	if (weft_flow_ev_send(&ev) == 0)
		weft_ev_stat_inc(WEFT_EVSTAT_SENT);
	else
		weft_ev_stat_inc(WEFT_EVSTAT_LOST);
}

#endif /* WEFT_BPF_LIB_FLOWS_H */
