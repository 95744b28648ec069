/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reverse NAT state: what the app asked for, so recvmsg/getpeername can show
 * it the VIP instead of the backend. One LRU keyed by (socket cookie, backend
 * address, backend port): connect4/6 record the connected backend, sendmsg4/6
 * every backend an unconnected UDP socket sends to. The cookie is unique for
 * the life of the machine, so a closed socket's entry can never answer for
 * another socket; it ages out. (Socket-local storage was exact but cost an
 * allocation at connect and an RCU free at close, ~1 us per connection.) */
#ifndef WEFT_BPF_LIB_REVNAT_H
#define WEFT_BPF_LIB_REVNAT_H

#include "lib/common.h"
#include "lib/stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_sock_rev_key);
	__type(value, struct weft_sock_rev_val);
	__uint(max_entries, WEFT_DEFAULT_SOCK_REV);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_sock_rev SEC(".maps");

static __always_inline void weft_sock_rev_key_init(struct weft_sock_rev_key *k, __u64 cookie,
						   const struct weft_addr *be, __u16 be_port)
{
	k->cookie = cookie;
	weft_addr_store(k->addr, be);
	k->port = be_port;
	k->pad1 = 0;
	k->pad2 = 0;
}

/* Remember (socket, backend) -> VIP. sendmsg passes `skip_same`: an
 * unconnected UDP client sends many datagrams to one backend, so an entry
 * that already says the same is not rewritten. A connect is always new. */
static __always_inline void weft_sock_rev_record(__u64 cookie, const struct weft_addr *vip, __u16 vport,
						 const struct weft_addr *be, __u16 be_port, int skip_same)
{
	struct weft_sock_rev_key k;
	struct weft_sock_rev_val v = {};
	struct weft_sock_rev_val *cur;
	struct weft_addr cur_vip;

	weft_sock_rev_key_init(&k, cookie, be, be_port);
	if (skip_same) {
		cur = bpf_map_lookup_elem(&weft_sock_rev, &k);
		if (cur) {
			weft_addr_load(&cur_vip, cur->vip);
			if (cur->vport == vport && weft_addr_eq(&cur_vip, vip))
				return;
		}
	}
	weft_addr_store(v.vip, vip);
	v.vport = vport;
	if (bpf_map_update_elem(&weft_sock_rev, &k, &v, BPF_ANY) != 0)
		weft_stat_inc(WEFT_STAT_REVNAT_UPDATE_ERR);
}

/* recvmsg/getpeername: the peer is `peer`; if this socket reached it through
 * a VIP, sets the VIP and its port and returns 1. */
static __always_inline int weft_sock_rev_lookup(struct bpf_sock_addr *ctx, const struct weft_addr *peer,
						__u16 peer_port, struct weft_addr *vip, __u16 *vport)
{
	struct weft_sock_rev_key k;
	struct weft_sock_rev_val *v;

	weft_sock_rev_key_init(&k, bpf_get_socket_cookie(ctx), peer, peer_port);
	v = bpf_map_lookup_elem(&weft_sock_rev, &k);
	if (!v)
		return 0;
	weft_addr_load(vip, v->vip);
	*vport = v->vport;
	return 1;
}

#endif /* WEFT_BPF_LIB_REVNAT_H */
