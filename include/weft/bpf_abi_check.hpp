// Layout checks for include/weft/bpf_abi.h on the C++ side. The same layout is
// compared with the BTF of the built BPF objects by tests/kernel/abi_btf_test.cc.
#pragma once

#include <cstddef>

#include "weft/bpf_abi.h"

namespace weft::abi {

// One row per ABI struct: name, size, and the offset of every field. The BTF
// test walks this table, so adding a struct here is all it takes to check it.
struct FieldLayout {
  const char* name;
  std::size_t offset;
  std::size_t size;
};
struct StructLayout {
  const char* name;
  std::size_t size;
  const FieldLayout* fields;
  std::size_t nfields;
};

#define WEFT_F(S, f) FieldLayout{#f, offsetof(S, f), sizeof(((S*)nullptr)->f)}

inline constexpr FieldLayout kSvcKey[] = {WEFT_F(weft_svc_key, addr), WEFT_F(weft_svc_key, port),
                                          WEFT_F(weft_svc_key, proto), WEFT_F(weft_svc_key, pad)};
inline constexpr FieldLayout kSvcVal[] = {
    WEFT_F(weft_svc_val, svc_id), WEFT_F(weft_svc_val, gen),   WEFT_F(weft_svc_val, slot_count),
    WEFT_F(weft_svc_val, algo),   WEFT_F(weft_svc_val, flags), WEFT_F(weft_svc_val, pad)};
inline constexpr FieldLayout kSlotKey[] = {WEFT_F(weft_slot_key, svc_id), WEFT_F(weft_slot_key, gen),
                                           WEFT_F(weft_slot_key, slot)};
inline constexpr FieldLayout kBackend[] = {WEFT_F(weft_backend, addr), WEFT_F(weft_backend, port),
                                           WEFT_F(weft_backend, pad)};
inline constexpr FieldLayout kSvcStats[] = {WEFT_F(weft_svc_stats, connects),
                                            WEFT_F(weft_svc_stats, no_backend)};
inline constexpr FieldLayout kBackendStats[] = {WEFT_F(weft_backend_stats, connects)};
inline constexpr FieldLayout kSockRevKey[] = {
    WEFT_F(weft_sock_rev_key, cookie), WEFT_F(weft_sock_rev_key, addr), WEFT_F(weft_sock_rev_key, port),
    WEFT_F(weft_sock_rev_key, pad1), WEFT_F(weft_sock_rev_key, pad2)};
inline constexpr FieldLayout kSockRevVal[] = {WEFT_F(weft_sock_rev_val, vip), WEFT_F(weft_sock_rev_val, vport),
                                             WEFT_F(weft_sock_rev_val, pad)};

// Identity policy at TC (tc_policy.bpf.o).
inline constexpr FieldLayout kIpcacheKey[] = {WEFT_F(weft_ipcache_key, prefixlen),
                                              WEFT_F(weft_ipcache_key, addr)};
inline constexpr FieldLayout kIpcacheVal[] = {WEFT_F(weft_ipcache_val, identity),
                                              WEFT_F(weft_ipcache_val, flags)};
inline constexpr FieldLayout kEndpoint[] = {
    WEFT_F(weft_endpoint, ep_id),          WEFT_F(weft_endpoint, identity), WEFT_F(weft_endpoint, enforce_ingress),
    WEFT_F(weft_endpoint, enforce_egress), WEFT_F(weft_endpoint, n_addrs),  WEFT_F(weft_endpoint, pad),
    WEFT_F(weft_endpoint, addrs)};
inline constexpr FieldLayout kMeta[] = {WEFT_F(weft_meta, abi_version), WEFT_F(weft_meta, flags)};
inline constexpr FieldLayout kPolicyKey[] = {
    WEFT_F(weft_policy_key, ep_id), WEFT_F(weft_policy_key, peer_identity), WEFT_F(weft_policy_key, port),
    WEFT_F(weft_policy_key, proto), WEFT_F(weft_policy_key, direction)};
inline constexpr FieldLayout kPolicyVal[] = {WEFT_F(weft_policy_val, verdict), WEFT_F(weft_policy_val, reason),
                                             WEFT_F(weft_policy_val, pad), WEFT_F(weft_policy_val, policy_id)};
inline constexpr FieldLayout kCtKey[] = {WEFT_F(weft_ct_key, saddr), WEFT_F(weft_ct_key, daddr),
                                         WEFT_F(weft_ct_key, sport), WEFT_F(weft_ct_key, dport),
                                         WEFT_F(weft_ct_key, proto), WEFT_F(weft_ct_key, dir),
                                         WEFT_F(weft_ct_key, pad2)};
inline constexpr FieldLayout kCtVal[] = {WEFT_F(weft_ct_val, created_ns), WEFT_F(weft_ct_val, policy_id),
                                         WEFT_F(weft_ct_val, verdict), WEFT_F(weft_ct_val, flags),
                                         WEFT_F(weft_ct_val, policy_rev), WEFT_F(weft_ct_val, peer_identity),
                                         WEFT_F(weft_ct_val, flow_slot)};
inline constexpr FieldLayout kFlowKey[] = {
    WEFT_F(weft_flow_key, src_identity), WEFT_F(weft_flow_key, dst_identity), WEFT_F(weft_flow_key, dport),
    WEFT_F(weft_flow_key, proto),        WEFT_F(weft_flow_key, verdict),      WEFT_F(weft_flow_key, reason),
    WEFT_F(weft_flow_key, direction),    WEFT_F(weft_flow_key, pad),          WEFT_F(weft_flow_key, policy_id)};
inline constexpr FieldLayout kFlowSlot[] = {WEFT_F(weft_flow_slot, slot)};
inline constexpr FieldLayout kFlowVal[] = {WEFT_F(weft_flow_val, connections), WEFT_F(weft_flow_val, packets),
                                           WEFT_F(weft_flow_val, bytes)};
inline constexpr FieldLayout kFlowEvent[] = {
    WEFT_F(weft_flow_event, ts_ns),        WEFT_F(weft_flow_event, saddr),
    WEFT_F(weft_flow_event, daddr),        WEFT_F(weft_flow_event, sport),
    WEFT_F(weft_flow_event, dport),        WEFT_F(weft_flow_event, src_identity),
    WEFT_F(weft_flow_event, dst_identity), WEFT_F(weft_flow_event, policy_id),
    WEFT_F(weft_flow_event, proto),        WEFT_F(weft_flow_event, verdict),
    WEFT_F(weft_flow_event, reason),       WEFT_F(weft_flow_event, direction),
    WEFT_F(weft_flow_event, pad)};
#undef WEFT_F

#define WEFT_S(S, arr) StructLayout{#S, sizeof(S), arr, sizeof(arr) / sizeof(arr[0])}
// The structs of sock_lb.bpf.o.
inline constexpr StructLayout kAbiStructs[] = {
    WEFT_S(weft_svc_key, kSvcKey),         WEFT_S(weft_svc_val, kSvcVal),
    WEFT_S(weft_slot_key, kSlotKey),       WEFT_S(weft_backend, kBackend),
    WEFT_S(weft_svc_stats, kSvcStats),     WEFT_S(weft_backend_stats, kBackendStats),
    WEFT_S(weft_sock_rev_key, kSockRevKey),
    WEFT_S(weft_sock_rev_val, kSockRevVal),
    WEFT_S(weft_meta, kMeta),
};
// The structs of tc_policy.bpf.o (weft_flow_event is used by the program, so
// it is in the BTF even though the ring buffer map has no value type).
inline constexpr StructLayout kTcPolicyAbiStructs[] = {
    WEFT_S(weft_ipcache_key, kIpcacheKey), WEFT_S(weft_ipcache_val, kIpcacheVal),
    WEFT_S(weft_endpoint, kEndpoint),      WEFT_S(weft_policy_key, kPolicyKey),
    WEFT_S(weft_policy_val, kPolicyVal),   WEFT_S(weft_ct_key, kCtKey),
    WEFT_S(weft_ct_val, kCtVal),           WEFT_S(weft_flow_key, kFlowKey),
    WEFT_S(weft_flow_val, kFlowVal),       WEFT_S(weft_flow_event, kFlowEvent),
    WEFT_S(weft_flow_slot, kFlowSlot),     WEFT_S(weft_meta, kMeta),
};
#undef WEFT_S

// Sizes are part of the ABI: a change here is a deliberate ABI bump.
static_assert(sizeof(weft_svc_key) == 20);
static_assert(sizeof(weft_svc_val) == 12);
static_assert(sizeof(weft_slot_key) == 8);
static_assert(sizeof(weft_backend) == 20);
static_assert(sizeof(weft_svc_stats) == 16);
static_assert(sizeof(weft_backend_stats) == 8);
static_assert(sizeof(weft_sock_rev_key) == 32);
static_assert(sizeof(weft_sock_rev_val) == 20);
static_assert(offsetof(weft_svc_key, port) == 16);
static_assert(offsetof(weft_svc_val, gen) == 4);
static_assert(offsetof(weft_svc_val, slot_count) == 6);
static_assert(offsetof(weft_svc_val, algo) == 8);
static_assert(offsetof(weft_sock_rev_key, addr) == 8);
static_assert(sizeof(weft_ipcache_key) == 20);
static_assert(sizeof(weft_ipcache_val) == 8);
static_assert(sizeof(weft_endpoint) == 12 + 16 * WEFT_EP_MAX_ADDRS);
static_assert(offsetof(weft_endpoint, n_addrs) == 10);
static_assert(offsetof(weft_endpoint, addrs) == 12);
static_assert(sizeof(weft_meta) == 8);
static_assert(sizeof(weft_policy_key) == 12);
static_assert(sizeof(weft_policy_val) == 8);
static_assert(sizeof(weft_ct_key) == 40);
static_assert(sizeof(weft_ct_val) == 24);
static_assert(sizeof(weft_flow_key) == 20);
static_assert(sizeof(weft_flow_val) == 24);
static_assert(sizeof(weft_flow_slot) == 4);
static_assert(sizeof(weft_flow_event) == 64);
static_assert(offsetof(weft_ct_key, sport) == 32);
static_assert(offsetof(weft_flow_key, reason) == 12);
static_assert(offsetof(weft_flow_key, direction) == 13);
static_assert(offsetof(weft_flow_key, policy_id) == 16);
static_assert(offsetof(weft_flow_event, sport) == 40);
static_assert(offsetof(weft_ct_val, policy_rev) == 14);

}  // namespace weft::abi
