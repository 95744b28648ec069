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
 *
 * WEFT_ABI_VERSION names this layout as a whole; it is recorded with the pins
 * (weft_meta) and checked when an agent adopts them. Bump it with any change
 * of a pinned map's key, value, flags or meaning, and give the agent a
 * migration from the previous version (agent/datapath/abi.cc), so that an
 * upgrade needs no `weft-agent cleanup`. History:
 *   1  the first layout (no weft_meta: pins without it are ABI 1);
 *   2  weft_endpoint carries the pod's addresses (source validation),
 *      weft_endpoints is BPF_F_NO_PREALLOC, WEFT_DROP_SOURCE (weft_drop_stats
 *      grows to WEFT_DROP_MAX), weft_meta.
 */
#ifndef WEFT_BPF_ABI_H
#define WEFT_BPF_ABI_H

#include <linux/types.h>

#define WEFT_ABI_VERSION 2

/* weft_meta: ARRAY[1], pinned at <pin-root>/<node>/maps/weft_meta by the
 * agent once every map of the node has this layout (fresh, or migrated), so
 * pins without it are ABI 1 or an agent that died before stamping. Both
 * objects declare it (one pin); no program reads it. */
#define WEFT_MAP_META "weft_meta"

struct weft_meta {
	__u32 abi_version; /* WEFT_ABI_VERSION of the layout of the node's maps */
	__u32 flags;       /* reserved, 0 */
};

/* Map names (also the pin file names under <pin-root>/<node>/maps/). */
#define WEFT_MAP_SERVICES      "weft_services"
#define WEFT_MAP_SLOTS         "weft_slots"
#define WEFT_MAP_BACKENDS      "weft_backends"
#define WEFT_MAP_SVC_STATS     "weft_svc_stats"
#define WEFT_MAP_BACKEND_STATS "weft_be_stats"
#define WEFT_MAP_LB_STATS      "weft_lb_stats"
#define WEFT_MAP_SOCK_REV      "weft_sock_rev"

/* Default capacities; the agent may resize before load (bpf_map__set_max_entries). */
#define WEFT_DEFAULT_MAX_SERVICES  65536
#define WEFT_DEFAULT_MAX_BACKENDS  262144
#define WEFT_DEFAULT_MAX_SLOTS     1048576
#define WEFT_DEFAULT_SOCK_REV      131072

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

/* Maglev's client hash: a WEFT_LB_MAGLEV service's slot for a connect is
 * weft_client_hash(netns cookie of the calling socket) % slot_count (one
 * network namespace per pod: one pod is one client). A 64-bit finalizer
 * (murmur3 fmix64): the cookie is a small counter, so it needs a real mix
 * before the modulo. The one definition: bpf/lib/lb.h picks with it, and
 * user space (weftctl trace, tests) predicts the pick with it
 * (weft/node/lookup.hpp). Changing it moves every Maglev client. */
static __inline__ __attribute__((always_inline)) __u32 weft_client_hash(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (__u32)x;
}

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

/* weft_sock_rev: LRU_HASH, reverse NAT: (socket, backend) -> what the app
 * asked for. Written at connect (TCP, connected UDP) and sendmsg
 * (unconnected UDP); read by getpeername and recvmsg. Keyed by the socket
 * cookie, which is never reused, so an entry of a closed socket can never
 * match another socket; it just ages out of the LRU. (Socket-local storage
 * would die with the socket, but allocating and RCU-freeing it costs about
 * 1 us per connection: bench/RESULTS.md.) */
struct weft_sock_rev_key {
	__u64 cookie;      /* socket cookie */
	__u8  addr[16];    /* backend address */
	__u16 port;        /* backend port, network byte order */
	__u16 pad1;
	__u32 pad2;
};

struct weft_sock_rev_val {
	__u8  vip[16];
	__u16 vport;       /* network byte order */
	__u16 pad;
};


/* ------------------------------------------------------------------------- *
 * Identity policy at TC (bpf/tc_policy.bpf.c). Issue 4.
 * ------------------------------------------------------------------------- */

#define WEFT_MAP_IDENTITY      "weft_identity"   /* LPM_TRIE  IP -> identity */
#define WEFT_MAP_POLICY        "weft_policy"     /* HASH      weft_policy_key -> weft_policy_val */
#define WEFT_MAP_CT            "weft_ct"         /* LRU_HASH  weft_ct_key -> weft_ct_val */
#define WEFT_MAP_ENDPOINTS     "weft_endpoints"  /* HASH      host-veth ifindex -> weft_endpoint */
#define WEFT_MAP_DROP_STATS    "weft_drop_stats" /* PERCPU_ARRAY [WEFT_DROP_MAX] __u64 */
#define WEFT_MAP_FLOWS         "weft_flows"      /* HASH      weft_flow_key -> weft_flow_slot */
#define WEFT_MAP_FLOW_COUNTERS "weft_flow_ctr"   /* PERCPU_ARRAY [slot] weft_flow_val */
#define WEFT_MAP_FLOW_NEXT     "weft_flow_next"  /* ARRAY[1] __u32: the next free slot */
#define WEFT_MAP_FLOW_EVENTS   "weft_flow_ev"    /* RINGBUF of weft_flow_event */
#define WEFT_MAP_EVENT_STATS   "weft_ev_stats"   /* PERCPU_ARRAY [WEFT_EVSTAT_MAX] __u64 */

#define WEFT_DEFAULT_MAX_IDENTITY_ENTRIES 131072
#define WEFT_DEFAULT_MAX_POLICY_ENTRIES   65536
#define WEFT_DEFAULT_MAX_CT_ENTRIES       262144
#define WEFT_DEFAULT_MAX_FLOW_ENTRIES     65536

/* Numeric identities. Reserved values below WEFT_IDENTITY_FIRST_DYNAMIC. */
enum weft_identity_reserved {
	WEFT_IDENTITY_ANY     = 0, /* wildcard in weft_policy_key only */
	WEFT_IDENTITY_UNKNOWN = 1, /* address not in the identity cache */
	WEFT_IDENTITY_WORLD   = 2, /* outside the cluster (reserved for later) */
	WEFT_IDENTITY_HOST    = 3, /* the node itself */
	WEFT_IDENTITY_FIRST_DYNAMIC = 256,
};

enum weft_direction {
	WEFT_DIR_INGRESS = 0, /* into the local endpoint */
	WEFT_DIR_EGRESS  = 1, /* out of the local endpoint */
};

enum weft_verdict {
	WEFT_VERDICT_NONE  = 0, /* no entry: not used in map values */
	WEFT_VERDICT_ALLOW = 1,
	WEFT_VERDICT_DENY  = 2,
	WEFT_VERDICT_STEER = 3, /* reserved: steer to the node's L7 proxy */
};

/* Why a packet was dropped. Append-only; never renumber; retire as UNUSED. */
enum weft_drop_reason {
	WEFT_DROP_NONE           = 0,
	WEFT_DROP_POLICY_DENIED  = 1, /* a DENY entry matched */
	WEFT_DROP_POLICY_DEFAULT = 2, /* an ALLOW policy selects the endpoint, none matched */
	WEFT_DROP_NO_IDENTITY    = 3, /* peer unknown and the policy needs an identity */
	WEFT_DROP_CT_INVALID     = 4, /* not a SYN, no conntrack entry (strict mode only) */
	WEFT_DROP_MALFORMED      = 5, /* packet too short to parse */
	WEFT_DROP_SOURCE         = 6, /* leaving a pod with a source address that
				       * is not one of the pod's (weft_endpoint.addrs):
				       * a forged address, whatever policy applies */
	WEFT_DROP_MAX            = 7,
};

/* weft_identity: LPM_TRIE, prefixlen counts bits of the 16-byte (v4-mapped) address. */
struct weft_ipcache_key {
	__u32 prefixlen;
	__u8  addr[16];
};

struct weft_ipcache_val {
	__u32 identity;
	__u32 flags; /* reserved */
};

/* weft_endpoints: HASH (BPF_F_NO_PREALLOC: a reader never sees an element
 * reused under it), one per local pod, keyed by the host-side veth ifindex.
 * Every endpoint gets weft_tc_from_pod (source validation); weft_tc_to_pod
 * only where a direction is enforced. */
#define WEFT_EP_MAX_ADDRS 4

struct weft_endpoint {
	__u32 ep_id;     /* local endpoint id, part of weft_policy_key */
	__u32 identity;  /* the pod's own identity */
	__u8  enforce_ingress; /* 0: no policy selects it, skip lookups */
	__u8  enforce_egress;
	__u8  n_addrs;   /* addresses in addrs[]: the only sources a packet
			  * leaving the pod may carry (else WEFT_DROP_SOURCE),
			  * besides IPv6 :: and fe80::/10 and IPv4 0.0.0.0 as
			  * DHCP (UDP 68 -> 67), which the kernel never forwards.
			  * 0: not checked (an entry migrated from ABI 1, until
			  * the agent rewrites it from its config) */
	__u8  pad;
	__u8  addrs[WEFT_EP_MAX_ADDRS][16]; /* IPv4-mapped for IPv4 */
};

/* weft_policy: lookup order for a packet (ep, peer, port, proto, dir):
 *   (peer, port) -> (peer, ANY port) -> (ANY peer, port) -> (ANY, ANY);
 * the first entry found decides. The compiler writes entries so that this
 * order gives Istio's semantics (DENY before ALLOW, default deny once an
 * ALLOW policy selects the endpoint). */
struct weft_policy_key {
	__u32 ep_id;
	__u32 peer_identity; /* WEFT_IDENTITY_ANY = wildcard */
	__u16 port;          /* destination port, host byte order; 0 = wildcard */
	__u8  proto;         /* IPPROTO_TCP / IPPROTO_UDP */
	__u8  direction;     /* enum weft_direction */
};

struct weft_policy_val {
	__u8  verdict;   /* enum weft_verdict */
	__u8  reason;    /* DENY: enum weft_drop_reason to count it under (an
			  * explicit entry of a default deny says POLICY_DEFAULT);
			  * 0 = POLICY_DENIED */
	__u16 pad;
	__u32 policy_id; /* names the AuthorizationPolicy (agent keeps the id -> name table) */
};

/* weft_ct: LRU_HASH keyed by the flow as seen leaving the client. */
struct weft_ct_key {
	__u8  saddr[16];
	__u8  daddr[16];
	__u16 sport;     /* network byte order */
	__u16 dport;     /* network byte order */
	__u8  proto;
	__u8  dir;       /* enum weft_direction of the endpoint that tracks it: a
			  * node-local flow has an EGRESS entry (client pod) and an
			  * INGRESS entry (server pod), each its own verdict */
	__u16 pad2;
};

struct weft_ct_val {
	__u64 created_ns; /* CLOCK_MONOTONIC (coarse) when the flow opened; no
			   * per-packet write: the LRU ages entries out */
	__u32 policy_id;  /* what allowed (or, verdict DENY: cut) it */
	__u8  verdict;    /* ALLOW/STEER; DENY = a flow cut by a policy change (tombstone) */
	__u8  flags;      /* enum weft_ct_flags */
	__u16 policy_rev; /* low 16 bits of weft_policy_rev[0] when last evaluated */
	__u32 peer_identity; /* the peer's identity under policy_rev: packets of a
			      * current entry skip the identity cache (every
			      * identity-cache change bumps the revision) */
	__u32 flow_slot;  /* the flow's counters in weft_flow_ctr (set with
			   * policy_rev); WEFT_FLOW_SLOT_NONE: not counted */
};

/* weft_ct_val.flags: a TCP connection's close. Once a FIN was seen each way,
 * the next segment that acknowledges without SYN or FIN (the last ACK)
 * deletes the entry: closed connections give their room back instead of
 * waiting for LRU eviction (which would first push out idle live flows). */
enum weft_ct_flags {
	WEFT_CT_FIN_FWD = 1 << 0, /* FIN from the side that opened the flow */
	WEFT_CT_FIN_REV = 1 << 1, /* FIN from the other side */
};

/* Exact flow aggregates, in two maps so that a packet of a known flow pays no
 * hash lookup: weft_flows maps a weft_flow_key to its slot, allocated from
 * weft_flow_next[0] the first time the key is seen (never reused: the table
 * holds up to its capacity of keys, then counts WEFT_EVSTAT_FLOWS_FULL), and
 * weft_flow_ctr[slot] holds the per-CPU counters. The conntrack entry keeps
 * the slot of its flow. A reader joins the two: for each key, the sum over
 * CPUs of weft_flow_ctr[slot]. A slot a racing CPU allocated but did not get
 * into weft_flows is never referenced and stays zero. */
#define WEFT_FLOW_SLOT_NONE 0xffffffffU

struct weft_flow_slot {
	__u32 slot; /* index into weft_flow_ctr */
};

struct weft_flow_key {
	__u32 src_identity;
	__u32 dst_identity;
	__u16 dport;      /* host byte order */
	__u8  proto;
	__u8  verdict;    /* enum weft_verdict */
	__u8  reason;     /* enum weft_drop_reason */
	__u8  direction;  /* enum weft_direction: where it was seen. A flow
			   * between two pods is counted once leaving the
			   * client (EGRESS) and once entering the server
			   * (INGRESS), each exactly */
	__u16 pad;
	__u32 policy_id;
};

struct weft_flow_val {
	__u64 connections; /* new flows (first packet) */
	__u64 packets;
	__u64 bytes;
};

/* weft_flow_ev: one per new flow or drop, for weftctl flows --follow. */
struct weft_flow_event {
	__u64 ts_ns;
	__u8  saddr[16];
	__u8  daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 policy_id;
	__u8  proto;
	__u8  verdict;
	__u8  reason;
	__u8  direction;
	__u32 pad;
};

enum weft_event_stat {
	WEFT_EVSTAT_SENT = 0,
	WEFT_EVSTAT_LOST = 1, /* ring buffer full: counted, never silent */
	WEFT_EVSTAT_FLOWS_FULL = 2, /* a new flow key found weft_flows full: its
				     * connections/bytes are not in the aggregates */
	WEFT_EVSTAT_MAX  = 3,
};

/* weftctl trace: BPF_PROG_TEST_RUN of the attached tc_policy program on a
 * synthetic packet with __sk_buff.mark = WEFT_TRACE_MARK and
 * cb[WEFT_TRACE_CB_MAGIC] = WEFT_TRACE_MAGIC runs the real decision without
 * side effects (no conntrack write, no flow count, no event, no RST) and
 * returns what it decided in cb[] (copied back by the kernel): */
#define WEFT_TRACE_MARK  0x77656674u /* "weft" */
#define WEFT_TRACE_MAGIC 0x74726163u /* "trac" */

enum weft_trace_cb {
	WEFT_TRACE_CB_MAGIC  = 0, /* in: WEFT_TRACE_MAGIC; out: 0 once the program ran in trace mode */
	WEFT_TRACE_CB_RESULT = 1, /* out: verdict | reason << 8 | stage << 16 */
	WEFT_TRACE_CB_POLICY = 2, /* out: policy_id of the deciding entry (0: none) */
	WEFT_TRACE_CB_PEER   = 3, /* out: peer identity from weft_identity */
	WEFT_TRACE_CB_EP     = 4, /* out: ep_id of the endpoint (0: not ours) */
};

/* Where the program's decision came from (bits 16..23 of WEFT_TRACE_CB_RESULT). */
enum weft_trace_stage {
	WEFT_TRACE_STAGE_NONE         = 0,
	WEFT_TRACE_STAGE_NO_ENDPOINT  = 1, /* ifindex not in weft_endpoints: pass */
	WEFT_TRACE_STAGE_NOT_ENFORCED = 2, /* endpoint enforces neither direction: pass */
	WEFT_TRACE_STAGE_NOT_L4       = 3, /* not TCP/UDP: pass */
	WEFT_TRACE_STAGE_MALFORMED    = 4,
	WEFT_TRACE_STAGE_CT           = 5, /* existing conntrack entry (forward or reply) */
	WEFT_TRACE_STAGE_POLICY       = 6, /* weft_policy lookup decided */
	WEFT_TRACE_STAGE_UNENFORCED_DIR = 7, /* this direction is not enforced: allowed */
	WEFT_TRACE_STAGE_SOURCE       = 8, /* leaving the pod from an address not its own: dropped */
};

/* Trace result encoding (tc_policy): the verdict is WEFT_VERDICT_ALLOW whenever the
 * program returns TC_ACT_OK (also for the pass-through stages NO_ENDPOINT,
 * NOT_ENFORCED, NOT_L4, UNENFORCED_DIR) and WEFT_VERDICT_DENY (or the recorded
 * verdict of a conntrack tombstone) when it returns TC_ACT_SHOT; in trace mode
 * the program never returns TC_ACT_REDIRECT. WEFT_TRACE_STAGE_NONE is reported for a
 * TCP RST without a conntrack entry in an enforced direction (RSTs pass untouched);
 * a RST on an entry reports WEFT_TRACE_STAGE_CT. Trace mode is keyed on mark + cb
 * only: a real packet that carried both would get the same verdict, uncounted and
 * without conntrack or RST. */

/* weft_policy_rev: ARRAY[1] of __u32, the policy revision. The agent bumps it
 * after every change of weft_identity/weft_policy/weft_endpoints. A conntrack
 * hit whose weft_ct_val.policy_rev differs from its low 16 bits (or whose
 * verdict is DENY) re-evaluates the flow's policy: still allowed -> the entry
 * takes the new revision; now denied -> the entry becomes a DENY tombstone and
 * the packet is dropped through weft_drop() (TCP: answered with a RST to its
 * sender), so existing connections of a now-denied flow are cut, as ztunnel
 * does. */
#define WEFT_MAP_POLICY_REV    "weft_policy_rev"

#endif /* WEFT_BPF_ABI_H */
