/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weft/bpf_abi.h: the one kernel/user ABI of Weft.
 *
 * Every struct, enum and constant that crosses the boundary between the BPF
 * programs in bpf/ and user space (agent, weftctl, tests) lives here and only
 * here. Rules:
 *   - fixed-width types only, explicit padding fields, no implicit holes;
 *   - enums and reason codes are append-only: never renumber, retire instead;
 *   - the C++ side checks sizes/offsets with static_assert (weft/bpf_abi_check.hpp)
 *     and tests/kernel/abi_btf_test.cc compares them with the BTF of the built
 *     BPF objects, so a drift fails the build or the test suite.
 *
 * Addresses are 16 bytes in network byte order. IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d) so one key type serves both families. Ports are in network
 * byte order, as in struct bpf_sock_addr.
 */
#ifndef WEFT_BPF_ABI_H
#define WEFT_BPF_ABI_H

#include <linux/types.h>

#define WEFT_ABI_VERSION 1

/* Map names (also the pin file names under <pin-root>/<node>/maps/). */
#define WEFT_MAP_SERVICES      "weft_services"
#define WEFT_MAP_SLOTS         "weft_slots"
#define WEFT_MAP_BACKENDS      "weft_backends"
#define WEFT_MAP_SVC_STATS     "weft_svc_stats"
#define WEFT_MAP_BACKEND_STATS "weft_be_stats"
#define WEFT_MAP_LB_STATS      "weft_lb_stats"
#define WEFT_MAP_SOCK_REV      "weft_sock_rev"
#define WEFT_MAP_UDP_REV       "weft_udp_rev"

/* Default capacities; the agent may resize before load (bpf_map__set_max_entries). */
#define WEFT_DEFAULT_MAX_SERVICES  65536
#define WEFT_DEFAULT_MAX_BACKENDS  262144
#define WEFT_DEFAULT_MAX_SLOTS     1048576
#define WEFT_DEFAULT_UDP_REV       65536

/* Per-service selection slots for weighted random. Weights are reduced by
 * their gcd and scaled so that the slot count never exceeds this. */
#define WEFT_MAX_RANDOM_SLOTS      4096
/* Maglev lookup table size: a prime. slot_count carries the size for
 * WEFT_LB_MAGLEV services, so it must fit in 16 bits. */
#define WEFT_MAGLEV_DEFAULT_SIZE   16381
#define WEFT_MAGLEV_MAX_SIZE       65521

/* IDs: 0 is never a valid service or backend id. */
#define WEFT_INVALID_ID 0

enum weft_lb_algo {
	WEFT_LB_RANDOM = 0, /* weighted random over slots (default) */
	WEFT_LB_MAGLEV = 1, /* Maglev consistent hashing on the client */
};

enum weft_svc_flags {
	/* Reserved: flows of this service are steered to the node's L7 proxy. */
	WEFT_SVC_F_STEER_PROXY = 1 << 0,
};

/* Global LB counters (index into weft_lb_stats, per-CPU u64). Append-only. */
enum weft_lb_stat {
	WEFT_STAT_CONNECT_REWRITTEN = 0, /* connect to a VIP rewritten to a backend */
	WEFT_STAT_NO_BACKEND        = 1, /* connect/sendmsg to a VIP with no backends */
	WEFT_STAT_SLOT_MISS         = 2, /* slot or backend entry missing (racing update) */
	WEFT_STAT_SENDMSG_REWRITTEN = 3, /* unconnected UDP sendmsg rewritten */
	WEFT_STAT_RECVMSG_REVNAT    = 4, /* recvmsg source rewritten back to the VIP */
	WEFT_STAT_REVNAT_UPDATE_ERR = 5, /* could not record reverse NAT state */
	WEFT_STAT_MAX               = 6,
};

/* weft_services: HASH, key = VIP:port/proto. */
struct weft_svc_key {
	__u8  addr[16];  /* VIP, IPv4-mapped for IPv4 */
	__u16 port;      /* network byte order */
	__u8  proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8  pad;
};

struct weft_svc_val {
	__u32 svc_id;     /* index into weft_svc_stats; part of weft_slot_key */
	__u16 gen;        /* slot generation currently in force */
	__u16 slot_count; /* random: number of slots; maglev: table size; 0: no backends */
	__u8  algo;       /* enum weft_lb_algo */
	__u8  flags;      /* enum weft_svc_flags */
	__u16 pad;
};

/* weft_slots: HASH, key = (service, generation, slot) -> backend id.
 * A backend set is replaced atomically: write all slots of a new generation,
 * then update the service entry (gen, slot_count) in one map update, then
 * delete the old generation's slots. */
struct weft_slot_key {
	__u32 svc_id;
	__u16 gen;
	__u16 slot;
};

/* weft_backends: HASH, key = __u32 backend id. */
struct weft_backend {
	__u8  addr[16];  /* IPv4-mapped for IPv4 */
	__u16 port;      /* network byte order */
	__u16 pad;
};

/* weft_svc_stats: PERCPU_ARRAY indexed by svc_id. */
struct weft_svc_stats {
	__u64 connects;    /* connects/sendmsgs rewritten to a backend */
	__u64 no_backend;  /* refused: the service had no backends */
};

/* weft_be_stats: PERCPU_ARRAY indexed by backend id. */
struct weft_backend_stats {
	__u64 connects;
};

/* weft_sock_rev: SK_STORAGE, for connected sockets: what the app asked for. */
struct weft_sock_rev {
	__u8  vip[16];
	__u8  backend[16];
	__u16 vport;        /* network byte order */
	__u16 backend_port; /* network byte order */
	__u32 pad;
};

/* weft_udp_rev: LRU_HASH, reverse NAT for unconnected UDP (sendmsg/recvmsg). */
struct weft_udp_rev_key {
	__u64 cookie;      /* socket cookie */
	__u8  addr[16];    /* backend address */
	__u16 port;        /* backend port, network byte order */
	__u16 pad1;
	__u32 pad2;
};

struct weft_udp_rev_val {
	__u8  vip[16];
	__u16 vport;
	__u16 pad;
};

#endif /* WEFT_BPF_ABI_H */
