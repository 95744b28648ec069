/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Who is who: the local endpoints (keyed by host-side veth ifindex) and the
 * identity cache (LPM trie over 16-byte, IPv4-mapped addresses). */
#ifndef WEFT_BPF_LIB_IDENTITY_H
#define WEFT_BPF_LIB_IDENTITY_H

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct weft_ipcache_key);
	__type(value, struct weft_ipcache_val);
	__uint(max_entries, WEFT_DEFAULT_MAX_IDENTITY_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_identity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* host-side veth ifindex */
	__type(value, struct weft_endpoint);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* an entry rewritten under a reader is never reused */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_endpoints SEC(".maps");

static __always_inline const struct weft_endpoint *weft_endpoint_of(__u32 ifindex)
{
	return bpf_map_lookup_elem(&weft_endpoints, &ifindex);
}

/* The identity of an address; WEFT_IDENTITY_UNKNOWN on a miss. */
static __always_inline __u32 weft_identity_of(const struct weft_addr *a)
{
	struct weft_ipcache_key key = { .prefixlen = 128 };
	struct weft_ipcache_val *v;

	weft_addr_store(key.addr, a);
	v = bpf_map_lookup_elem(&weft_identity, &key);
	return v ? v->identity : WEFT_IDENTITY_UNKNOWN;
}

#endif /* WEFT_BPF_LIB_IDENTITY_H */
