/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counters: per-service, per-backend and global reason codes (enum
 * weft_lb_stat, append-only). Every outcome goes through one helper here. */
#ifndef WEFT_BPF_LIB_STATS_H
#define WEFT_BPF_LIB_STATS_H

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_svc_stats);
	__uint(max_entries, WEFT_DEFAULT_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_backend_stats);
	__uint(max_entries, WEFT_DEFAULT_MAX_BACKENDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_be_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, WEFT_STAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_lb_stats SEC(".maps");

/* Atomic adds even on per-CPU slots: cgroup programs run under
 * migrate_disable() only, so on a PREEMPT kernel two of them can interleave on
 * one CPU and a plain ++ could lose a count. */
static __always_inline void weft_stat_inc(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&weft_lb_stats, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void weft_svc_stat_connect(__u32 svc_id)
{
	struct weft_svc_stats *s = bpf_map_lookup_elem(&weft_svc_stats, &svc_id);

	if (s)
		__sync_fetch_and_add(&s->connects, 1);
}

static __always_inline void weft_svc_stat_no_backend(__u32 svc_id)
{
	struct weft_svc_stats *s = bpf_map_lookup_elem(&weft_svc_stats, &svc_id);

	if (s)
		__sync_fetch_and_add(&s->no_backend, 1);
	weft_stat_inc(WEFT_STAT_NO_BACKEND);
}

static __always_inline void weft_backend_stat_connect(__u32 backend_id)
{
	struct weft_backend_stats *s = bpf_map_lookup_elem(&weft_be_stats, &backend_id);

	if (s)
		__sync_fetch_and_add(&s->connects, 1);
}

#endif /* WEFT_BPF_LIB_STATS_H */
