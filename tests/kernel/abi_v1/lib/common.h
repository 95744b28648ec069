/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared basics of the Weft BPF programs: UAPI headers only (no vmlinux.h),
 * the ABI, and the 16-byte address form every map uses. */
#ifndef WEFT_BPF_LIB_COMMON_H
#define WEFT_BPF_LIB_COMMON_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "weft/bpf_abi.h"

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif

/* Verdicts of cgroup/sock_addr programs. */
#define WEFT_SOCK_ALLOW 1
#define WEFT_SOCK_DENY  0

/* An address as four network-order words: IPv4 is mapped into ::ffff:0:0/96,
 * byte-identical to the __u8 addr[16] fields of the ABI structs. */
struct weft_addr {
	__u32 w[4];
};

static __always_inline void weft_addr_set_v4(struct weft_addr *a, __u32 ip4_be)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0x0000ffff);
	a->w[3] = ip4_be;
}

static __always_inline int weft_addr_is_v4(const struct weft_addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int weft_addr_eq(const struct weft_addr *a, const struct weft_addr *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3])) == 0;
}

/* From/to the ABI's byte arrays (map keys and values). */
static __always_inline void weft_addr_load(struct weft_addr *a, const __u8 bytes[16])
{
	__builtin_memcpy(a->w, bytes, 16);
}

static __always_inline void weft_addr_store(__u8 bytes[16], const struct weft_addr *a)
{
	__builtin_memcpy(bytes, a->w, 16);
}

/* The context accessors: user_ip4/user_ip6 and user_port take 4-byte loads and
 * stores only (user_port holds the __be16 port in its low half), so every
 * access below is an explicit __u32 one. */
static __always_inline void weft_ctx_get_ip6(const struct bpf_sock_addr *ctx, struct weft_addr *a)
{
	a->w[0] = ctx->user_ip6[0];
	a->w[1] = ctx->user_ip6[1];
	a->w[2] = ctx->user_ip6[2];
	a->w[3] = ctx->user_ip6[3];
}

static __always_inline void weft_ctx_set_ip6(struct bpf_sock_addr *ctx, const struct weft_addr *a)
{
	ctx->user_ip6[0] = a->w[0];
	ctx->user_ip6[1] = a->w[1];
	ctx->user_ip6[2] = a->w[2];
	ctx->user_ip6[3] = a->w[3];
}

static __always_inline __u16 weft_ctx_get_port(const struct bpf_sock_addr *ctx)
{
	return (__u16)ctx->user_port;
}

static __always_inline void weft_ctx_set_port(struct bpf_sock_addr *ctx, __u16 port_be)
{
	ctx->user_port = (__u32)port_be;
}

#endif /* WEFT_BPF_LIB_COMMON_H */
