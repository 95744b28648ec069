/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow observability: exact per-CPU aggregates (weft_flows -> slot ->
 * weft_flow_ctr; never lossy: no ring buffer involved) and one
 * weft_flow_event per new flow or drop in the ring buffer weft_flow_ev, whose
 * losses are counted in weft_ev_stats. A new flow finds (or allocates) its
 * key's slot once; its conntrack entry keeps the slot, so each later packet
 * adds to a per-CPU array element: no hash lookup, no atomic. */
#ifndef WEFT_BPF_LIB_FLOWS_H
#define WEFT_BPF_LIB_FLOWS_H

#include "lib/common.h"
#include "lib/ct.h"

/* The aggregates (include/weft/bpf_abi.h): key -> slot, slot -> per-CPU
 * counters, and the slot allocator. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_flow_key);
	__type(value, struct weft_flow_slot);
	__uint(max_entries, WEFT_DEFAULT_MAX_FLOW_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_flow_val);
	__uint(max_entries, WEFT_DEFAULT_MAX_FLOW_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_flow_ctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_flow_next SEC(".maps");

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

/* Slot numbers stop being handed out well before __u32 wraps. */
#define WEFT_FLOW_SLOT_LIMIT (1U << 30)

/* The slot of a flow's aggregate key, allocated the first time the key is
 * seen; WEFT_FLOW_SLOT_NONE (counted as WEFT_EVSTAT_FLOWS_FULL) when the
 * table is full. */
static __always_inline __u32 weft_flow_slot_of(const struct weft_flow *f, __u8 proto)
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
	struct weft_flow_slot *s = bpf_map_lookup_elem(&weft_flows, &key);
	struct weft_flow_slot fresh;
	__u32 zero = 0, *next;

	if (s)
		return s->slot;
	next = bpf_map_lookup_elem(&weft_flow_next, &zero);
	if (!next || *next >= WEFT_FLOW_SLOT_LIMIT)
		goto full;
	fresh.slot = __sync_fetch_and_add(next, 1);
	/* A slot past weft_flow_ctr's end would never count: refuse it. */
	if (!bpf_map_lookup_elem(&weft_flow_ctr, &fresh.slot))
		goto full;
	if (bpf_map_update_elem(&weft_flows, &key, &fresh, BPF_NOEXIST) == 0)
		return fresh.slot;
	/* -EEXIST: another CPU got the key in first; its slot counts (ours is
	 * never referenced). -E2BIG: the key table is full. */
	s = bpf_map_lookup_elem(&weft_flows, &key);
	if (s)
		return s->slot;
full:
	weft_ev_stat_inc(WEFT_EVSTAT_FLOWS_FULL);
	return WEFT_FLOW_SLOT_NONE;
}

/* Adds one packet (and, new_conn, one connection) to a slot's counters. tc
 * programs run with bottom halves disabled: nothing else on this CPU touches
 * this CPU's element meanwhile, so plain adds are exact. */
static __always_inline void weft_flow_count(__u32 slot, __u32 bytes, int new_conn)
{
	struct weft_flow_val *v = bpf_map_lookup_elem(&weft_flow_ctr, &slot);

	if (!v)
		return;
	v->connections += new_conn ? 1 : 0;
	v->packets += 1;
	v->bytes += bytes;
}

/* new_conn: this packet opens the flow (counts one connection). Returns the
 * flow's slot, for its conntrack entry. */
static __always_inline __u32 weft_flow_account(const struct weft_flow *f, __u8 proto, __u32 bytes,
					       int new_conn)
{
	__u32 slot = weft_flow_slot_of(f, proto);

	weft_flow_count(slot, bytes, new_conn);
	return slot;
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
