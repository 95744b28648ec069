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
inline constexpr FieldLayout kSockRev[] = {WEFT_F(weft_sock_rev, vip), WEFT_F(weft_sock_rev, backend),
                                           WEFT_F(weft_sock_rev, vport),
                                           WEFT_F(weft_sock_rev, backend_port),
                                           WEFT_F(weft_sock_rev, pad)};
inline constexpr FieldLayout kUdpRevKey[] = {
    WEFT_F(weft_udp_rev_key, cookie), WEFT_F(weft_udp_rev_key, addr), WEFT_F(weft_udp_rev_key, port),
    WEFT_F(weft_udp_rev_key, pad1), WEFT_F(weft_udp_rev_key, pad2)};
inline constexpr FieldLayout kUdpRevVal[] = {WEFT_F(weft_udp_rev_val, vip), WEFT_F(weft_udp_rev_val, vport),
                                             WEFT_F(weft_udp_rev_val, pad)};
#undef WEFT_F

#define WEFT_S(S, arr) StructLayout{#S, sizeof(S), arr, sizeof(arr) / sizeof(arr[0])}
inline constexpr StructLayout kAbiStructs[] = {
    WEFT_S(weft_svc_key, kSvcKey),         WEFT_S(weft_svc_val, kSvcVal),
    WEFT_S(weft_slot_key, kSlotKey),       WEFT_S(weft_backend, kBackend),
    WEFT_S(weft_svc_stats, kSvcStats),     WEFT_S(weft_backend_stats, kBackendStats),
    WEFT_S(weft_sock_rev, kSockRev),       WEFT_S(weft_udp_rev_key, kUdpRevKey),
    WEFT_S(weft_udp_rev_val, kUdpRevVal),
};
#undef WEFT_S

// Sizes are part of the ABI: a change here is a deliberate ABI bump.
static_assert(sizeof(weft_svc_key) == 20);
static_assert(sizeof(weft_svc_val) == 12);
static_assert(sizeof(weft_slot_key) == 8);
static_assert(sizeof(weft_backend) == 20);
static_assert(sizeof(weft_svc_stats) == 16);
static_assert(sizeof(weft_backend_stats) == 8);
static_assert(sizeof(weft_sock_rev) == 40);
static_assert(sizeof(weft_udp_rev_key) == 32);
static_assert(sizeof(weft_udp_rev_val) == 20);
static_assert(offsetof(weft_svc_key, port) == 16);
static_assert(offsetof(weft_svc_val, gen) == 4);
static_assert(offsetof(weft_svc_val, slot_count) == 6);
static_assert(offsetof(weft_svc_val, algo) == 8);
static_assert(offsetof(weft_udp_rev_key, addr) == 8);

}  // namespace weft::abi
