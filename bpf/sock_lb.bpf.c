// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sock_lb: socket-level load balancing for Weft services.
 *
 * Attached to a cgroup (the node's pods). connect/sendmsg to a service VIP are
 * rewritten to a backend before any packet exists; recvmsg/getpeername show the
 * app the VIP again. Hooks:
 *   connect4/6   TCP and connected UDP: pick, rewrite, remember by socket cookie
 *   sendmsg4/6   unconnected UDP: the same, per datagram
 *   recvmsg4/6   UDP: backend source -> VIP
 *   getpeername4/6: backend peer -> VIP
 * Logic lives in lib/{lb,revnat,stats}.h. */
#include "lib/common.h"
#include "lib/lb.h"
#include "lib/meta.h"
#include "lib/revnat.h"
#include "lib/stats.h"

/* What the kernel can do with a backend of the other family:
 *   - connect4 (AF_INET socket): only IPv4 backends;
 *   - connect6: an IPv4 backend is written as ::ffff:a.b.c.d, which
 *     tcp_v6_connect/ip6_datagram_connect hand to the IPv4 stack for
 *     dual-stack sockets (V6ONLY sockets get ENETUNREACH from the kernel);
 *   - sendmsg6: udpv6_sendmsg rejects a v4-mapped rewrite (ENOTSUPP), so only
 *     IPv6 backends. (An app sending to ::ffff:VIP goes through sendmsg4.)
 * A backend the socket cannot use is counted as WEFT_STAT_SLOT_MISS and the
 * call is left alone. */
enum weft_hook_family {
	WEFT_HOOK_V4 = 0,       /* AF_INET socket */
	WEFT_HOOK_V6 = 1,       /* AF_INET6, mapped backends allowed */
	WEFT_HOOK_V6_ONLY = 2,  /* AF_INET6, IPv6 backends only */
};

static __always_inline int weft_backend_usable(const struct weft_addr *be, int fam)
{
	int is_v4 = weft_addr_is_v4(be);

	if (fam == WEFT_HOOK_V4)
		return is_v4;
	if (fam == WEFT_HOOK_V6_ONLY)
		return !is_v4;
	return 1;
}

static __always_inline void weft_ctx_set_dst(struct bpf_sock_addr *ctx, const struct weft_addr *a,
					     __u16 port_be, int fam)
{
	if (fam == WEFT_HOOK_V4)
		ctx->user_ip4 = a->w[3];
	else
		weft_ctx_set_ip6(ctx, a);
	weft_ctx_set_port(ctx, port_be);
}

/* connect4/6 and sendmsg4/6. */
static __always_inline int weft_sock_forward(struct bpf_sock_addr *ctx, const struct weft_addr *vip,
					     int fam, int is_sendmsg)
{
	struct weft_lb_result res = {};
	struct weft_svc_key key;
	__u32 proto = ctx->protocol;
	__u16 vport = weft_ctx_get_port(ctx);
	int verdict;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return WEFT_SOCK_ALLOW;

	weft_svc_key_init(&key, vip, vport, proto);
	verdict = weft_lb_select(ctx, &key, &res);
	if (verdict == WEFT_LB_OK && !weft_backend_usable(&res.be_addr, fam))
		verdict = WEFT_LB_SLOT_MISS;
	weft_lb_account(verdict, &res,
			is_sendmsg ? WEFT_STAT_SENDMSG_REWRITTEN : WEFT_STAT_CONNECT_REWRITTEN);

	if (verdict == WEFT_LB_NO_BACKEND)
		return weft_lb_refuse();
	if (verdict != WEFT_LB_OK)
		return WEFT_SOCK_ALLOW;

	weft_ctx_set_dst(ctx, &res.be_addr, res.be_port, fam);
	weft_sock_rev_record(bpf_get_socket_cookie(ctx), vip, vport, &res.be_addr, res.be_port, is_sendmsg);
	return WEFT_SOCK_ALLOW;
}

/* recvmsg4/6 and getpeername4/6: the address in ctx is the peer. */
static __always_inline int weft_sock_reverse(struct bpf_sock_addr *ctx, const struct weft_addr *peer,
					     int fam, int is_recvmsg)
{
	__u16 peer_port = weft_ctx_get_port(ctx);
	struct weft_addr vip;
	__u16 vport = 0;

	if (!weft_sock_rev_lookup(ctx, peer, peer_port, &vip, &vport))
		return WEFT_SOCK_ALLOW;
	/* An AF_INET socket can only be shown an IPv4 VIP. */
	if (fam == WEFT_HOOK_V4 && !weft_addr_is_v4(&vip))
		return WEFT_SOCK_ALLOW;

	weft_ctx_set_dst(ctx, &vip, vport, fam);
	if (is_recvmsg)
		weft_stat_inc(WEFT_STAT_RECVMSG_REVNAT);
	return WEFT_SOCK_ALLOW;
}

SEC("cgroup/connect4")
int weft_connect4(struct bpf_sock_addr *ctx)
{
	struct weft_addr dst;

	weft_addr_set_v4(&dst, ctx->user_ip4);
	return weft_sock_forward(ctx, &dst, WEFT_HOOK_V4, 0);
}

SEC("cgroup/connect6")
int weft_connect6(struct bpf_sock_addr *ctx)
{
	struct weft_addr dst;

	weft_ctx_get_ip6(ctx, &dst);
	return weft_sock_forward(ctx, &dst, WEFT_HOOK_V6, 0);
}

SEC("cgroup/sendmsg4")
int weft_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct weft_addr dst;

	weft_addr_set_v4(&dst, ctx->user_ip4);
	return weft_sock_forward(ctx, &dst, WEFT_HOOK_V4, 1);
}

SEC("cgroup/sendmsg6")
int weft_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct weft_addr dst;

	weft_ctx_get_ip6(ctx, &dst);
	return weft_sock_forward(ctx, &dst, WEFT_HOOK_V6_ONLY, 1);
}

SEC("cgroup/recvmsg4")
int weft_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct weft_addr src;

	weft_addr_set_v4(&src, ctx->user_ip4);
	return weft_sock_reverse(ctx, &src, WEFT_HOOK_V4, 1);
}

SEC("cgroup/recvmsg6")
int weft_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct weft_addr src;

	weft_ctx_get_ip6(ctx, &src);
	return weft_sock_reverse(ctx, &src, WEFT_HOOK_V6, 1);
}

SEC("cgroup/getpeername4")
int weft_getpeername4(struct bpf_sock_addr *ctx)
{
	struct weft_addr peer;

	weft_addr_set_v4(&peer, ctx->user_ip4);
	return weft_sock_reverse(ctx, &peer, WEFT_HOOK_V4, 0);
}

SEC("cgroup/getpeername6")
int weft_getpeername6(struct bpf_sock_addr *ctx)
{
	struct weft_addr peer;

	weft_ctx_get_ip6(ctx, &peer);
	return weft_sock_reverse(ctx, &peer, WEFT_HOOK_V6, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
