/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reverse NAT state: what the app asked for, so recvmsg/getpeername can show
 * it the VIP instead of the backend.
 *   - connected sockets (connect4/6): weft_sock_rev, socket-local storage that
 *     dies with the socket;
 *   - unconnected UDP (sendmsg4/6): weft_udp_rev, LRU keyed by socket cookie
 *     and backend address/port. */
#ifndef WEFT_BPF_LIB_REVNAT_H
#define WEFT_BPF_LIB_REVNAT_H

#include "lib/common.h"
#include "lib/stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct weft_sock_rev);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_sock_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_udp_rev_key);
	__type(value, struct weft_udp_rev_val);
	__uint(max_entries, WEFT_DEFAULT_UDP_REV);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_udp_rev SEC(".maps");

/* connect: remember VIP and backend on the socket itself. */
static __always_inline void weft_sock_rev_record(struct bpf_sock *sk, const struct weft_addr *vip,
						 __u16 vport, const struct weft_addr *be, __u16 be_port)
{
	struct weft_sock_rev *rev;

	rev = bpf_sk_storage_get(&weft_sock_rev, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!rev) {
		weft_stat_inc(WEFT_STAT_REVNAT_UPDATE_ERR);
		return;
	}
	weft_addr_store(rev->vip, vip);
	weft_addr_store(rev->backend, be);
	rev->vport = vport;
	rev->backend_port = be_port;
	rev->pad = 0;
}

/* If the socket was connected through a VIP and `peer` is its backend, sets
 * the VIP and its port and returns 1. */
static __always_inline int weft_sock_rev_match(struct bpf_sock *sk, const struct weft_addr *peer,
					       __u16 peer_port, struct weft_addr *vip, __u16 *vport)
{
	struct weft_sock_rev *rev;
	struct weft_addr be;

	rev = bpf_sk_storage_get(&weft_sock_rev, sk, 0, 0);
	if (!rev)
		return 0;
	weft_addr_load(&be, rev->backend);
	if (rev->backend_port != peer_port || !weft_addr_eq(&be, peer))
		return 0;
	weft_addr_load(vip, rev->vip);
	*vport = rev->vport;
	return 1;
}

static __always_inline void weft_udp_rev_key_init(struct weft_udp_rev_key *k, __u64 cookie,
						  const struct weft_addr *be, __u16 be_port)
{
	k->cookie = cookie;
	weft_addr_store(k->addr, be);
	k->port = be_port;
	k->pad1 = 0;
	k->pad2 = 0;
}

/* sendmsg: remember (socket, backend) -> VIP; skip the write when the entry
 * is already there (a UDP client sends many datagrams to one backend). */
static __always_inline void weft_udp_rev_record(__u64 cookie, const struct weft_addr *vip, __u16 vport,
						const struct weft_addr *be, __u16 be_port)
{
	struct weft_udp_rev_key k;
	struct weft_udp_rev_val v = {};
	struct weft_udp_rev_val *cur;
	struct weft_addr cur_vip;

	weft_udp_rev_key_init(&k, cookie, be, be_port);
	cur = bpf_map_lookup_elem(&weft_udp_rev, &k);
	if (cur) {
		weft_addr_load(&cur_vip, cur->vip);
		if (cur->vport == vport && weft_addr_eq(&cur_vip, vip))
			return;
	}
	weft_addr_store(v.vip, vip);
	v.vport = vport;
	if (bpf_map_update_elem(&weft_udp_rev, &k, &v, BPF_ANY) != 0)
		weft_stat_inc(WEFT_STAT_REVNAT_UPDATE_ERR);
}

/* recvmsg: the datagram's source is `src`; find the VIP it stands for, first
 * on the socket (connected UDP), then by socket cookie (unconnected UDP). */
static __always_inline int weft_revnat_lookup(struct bpf_sock_addr *ctx, const struct weft_addr *src,
					      __u16 src_port, struct weft_addr *vip, __u16 *vport)
{
	struct weft_udp_rev_key k;
	struct weft_udp_rev_val *v;

	if (weft_sock_rev_match(ctx->sk, src, src_port, vip, vport))
		return 1;
	weft_udp_rev_key_init(&k, bpf_get_socket_cookie(ctx), src, src_port);
	v = bpf_map_lookup_elem(&weft_udp_rev, &k);
	if (!v)
		return 0;
	weft_addr_load(vip, v->vip);
	*vport = v->vport;
	return 1;
}

#endif /* WEFT_BPF_LIB_REVNAT_H */
