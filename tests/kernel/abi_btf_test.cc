// Compares include/weft/bpf_abi.h as the C++ compiler lays it out
// (weft::abi::kAbiStructs) with the BTF clang emitted into the built BPF
// object. Needs no root: it only parses the ELF file.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>

#include "weft/bpf_abi_check.hpp"

#ifndef WEFT_SOCK_LB_BPF_OBJECT
#error "WEFT_SOCK_LB_BPF_OBJECT must name the built sock_lb.bpf.o"
#endif
#ifndef WEFT_TC_POLICY_BPF_OBJECT
#error "WEFT_TC_POLICY_BPF_OBJECT must name the built tc_policy.bpf.o"
#endif

namespace {

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

// One BPF object and the ABI structs it must carry.
struct ObjectStructs {
  const char* path;
  const weft::abi::StructLayout* structs;
  size_t n;
};
template <size_t N>
ObjectStructs Obj(const char* path, const weft::abi::StructLayout (&s)[N]) {
  return ObjectStructs{path, s, N};
}

void PrintTo(const ObjectStructs& o, std::ostream* os) { *os << o.path; }

class AbiBtfTest : public ::testing::TestWithParam<ObjectStructs> {};

TEST_P(AbiBtfTest, EveryAbiStructMatchesBtf) {
  const char* path = GetParam().path;
  std::unique_ptr<btf, BtfDeleter> b(btf__parse_elf(path, nullptr));
  ASSERT_TRUE(b) << "parse BTF of " << path << ": " << std::strerror(errno);

  for (size_t si = 0; si < GetParam().n; ++si) {
    const auto& s = GetParam().structs[si];
    SCOPED_TRACE(std::string("struct ") + s.name + " in " + path);
    int id = btf__find_by_name_kind(b.get(), s.name, BTF_KIND_STRUCT);
    ASSERT_GT(id, 0) << "struct " << s.name << " not in the BTF of " << path
                     << " (is it used as a map key/value?)";
    const btf_type* t = btf__type_by_id(b.get(), id);
    EXPECT_EQ(t->size, s.size) << "struct " << s.name << ": size";
    ASSERT_EQ(btf_vlen(t), s.nfields) << "struct " << s.name << ": member count";
    const btf_member* m = btf_members(t);
    for (size_t i = 0; i < s.nfields; ++i, ++m) {
      const auto& f = s.fields[i];
      std::string name = btf__name_by_offset(b.get(), m->name_off);
      EXPECT_EQ(name, f.name) << "struct " << s.name << ": member #" << i;
      EXPECT_EQ(btf_member_bitfield_size(t, i), 0u) << s.name << "." << f.name << ": bitfield";
      EXPECT_EQ(btf_member_bit_offset(t, i) / 8, f.offset) << s.name << "." << f.name << ": offset";
      EXPECT_EQ(static_cast<size_t>(btf__resolve_size(b.get(), m->type)), f.size)
          << s.name << "." << f.name << ": size";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SockLb, AbiBtfTest,
                         ::testing::Values(Obj(WEFT_SOCK_LB_BPF_OBJECT, weft::abi::kAbiStructs)));
INSTANTIATE_TEST_SUITE_P(TcPolicy, AbiBtfTest,
                         ::testing::Values(Obj(WEFT_TC_POLICY_BPF_OBJECT, weft::abi::kTcPolicyAbiStructs)));

// The map definitions themselves: names fit the kernel's 15 characters and
// key/value sizes are the ABI's.
TEST(AbiBtfMaps, SockLbMapsUseAbiTypes) {
  bpf_object* obj = bpf_object__open_file(WEFT_SOCK_LB_BPF_OBJECT, nullptr);
  ASSERT_TRUE(obj) << "open " << WEFT_SOCK_LB_BPF_OBJECT << ": " << std::strerror(errno);
  struct Want {
    const char* name;
    size_t key, value;
  } want[] = {
      {WEFT_MAP_SERVICES, sizeof(weft_svc_key), sizeof(weft_svc_val)},
      {WEFT_MAP_SLOTS, sizeof(weft_slot_key), sizeof(__u32)},
      {WEFT_MAP_BACKENDS, sizeof(__u32), sizeof(weft_backend)},
      {WEFT_MAP_SVC_STATS, sizeof(__u32), sizeof(weft_svc_stats)},
      {WEFT_MAP_BACKEND_STATS, sizeof(__u32), sizeof(weft_backend_stats)},
      {WEFT_MAP_LB_STATS, sizeof(__u32), sizeof(__u64)},
      {WEFT_MAP_SOCK_REV, sizeof(weft_sock_rev_key), sizeof(weft_sock_rev_val)},
      {WEFT_MAP_META, sizeof(__u32), sizeof(weft_meta)},
  };
  for (const auto& w : want) {
    EXPECT_LE(std::strlen(w.name), 15u) << w.name;
    bpf_map* m = bpf_object__find_map_by_name(obj, w.name);
    if (!m) {
      ADD_FAILURE() << "map " << w.name << " missing from " << WEFT_SOCK_LB_BPF_OBJECT;
      continue;
    }
    EXPECT_EQ(bpf_map__key_size(m), w.key) << w.name << " key size";
    EXPECT_EQ(bpf_map__value_size(m), w.value) << w.name << " value size";
  }
  EXPECT_EQ(bpf_map__max_entries(bpf_object__find_map_by_name(obj, WEFT_MAP_LB_STATS)),
            static_cast<__u32>(WEFT_STAT_MAX));
  bpf_object__close(obj);
}

TEST(AbiBtfMaps, TcPolicyMapsUseAbiTypes) {
  bpf_object* obj = bpf_object__open_file(WEFT_TC_POLICY_BPF_OBJECT, nullptr);
  ASSERT_TRUE(obj) << "open " << WEFT_TC_POLICY_BPF_OBJECT << ": " << std::strerror(errno);
  struct Want {
    const char* name;
    size_t key, value;
  } want[] = {
      {WEFT_MAP_IDENTITY, sizeof(weft_ipcache_key), sizeof(weft_ipcache_val)},
      {WEFT_MAP_POLICY, sizeof(weft_policy_key), sizeof(weft_policy_val)},
      {WEFT_MAP_CT, sizeof(weft_ct_key), sizeof(weft_ct_val)},
      {WEFT_MAP_ENDPOINTS, sizeof(__u32), sizeof(weft_endpoint)},
      {WEFT_MAP_DROP_STATS, sizeof(__u32), sizeof(__u64)},
      {WEFT_MAP_FLOWS, sizeof(weft_flow_key), sizeof(weft_flow_slot)},
      {WEFT_MAP_FLOW_COUNTERS, sizeof(__u32), sizeof(weft_flow_val)},
      {WEFT_MAP_FLOW_NEXT, sizeof(__u32), sizeof(__u32)},
      {WEFT_MAP_EVENT_STATS, sizeof(__u32), sizeof(__u64)},
      {WEFT_MAP_POLICY_REV, sizeof(__u32), sizeof(__u32)},
      {WEFT_MAP_META, sizeof(__u32), sizeof(weft_meta)},
  };
  for (const auto& w : want) {
    EXPECT_LE(std::strlen(w.name), 15u) << w.name;
    bpf_map* m = bpf_object__find_map_by_name(obj, w.name);
    if (!m) {
      ADD_FAILURE() << "map " << w.name << " missing from " << WEFT_TC_POLICY_BPF_OBJECT;
      continue;
    }
    EXPECT_EQ(bpf_map__key_size(m), w.key) << w.name << " key size";
    EXPECT_EQ(bpf_map__value_size(m), w.value) << w.name << " value size";
  }
  bpf_map* ev = bpf_object__find_map_by_name(obj, WEFT_MAP_FLOW_EVENTS);
  ASSERT_TRUE(ev) << "map " << WEFT_MAP_FLOW_EVENTS << " missing";
  EXPECT_EQ(bpf_map__type(ev), BPF_MAP_TYPE_RINGBUF);
  EXPECT_EQ(bpf_map__max_entries(bpf_object__find_map_by_name(obj, WEFT_MAP_DROP_STATS)),
            static_cast<__u32>(WEFT_DROP_MAX));
  EXPECT_EQ(bpf_map__max_entries(bpf_object__find_map_by_name(obj, WEFT_MAP_EVENT_STATS)),
            static_cast<__u32>(WEFT_EVSTAT_MAX));
  EXPECT_EQ(bpf_map__max_entries(bpf_object__find_map_by_name(obj, WEFT_MAP_POLICY_REV)), 1u);
  // A rewritten endpoint is never reused under a reader (bpf_abi.h).
  EXPECT_EQ(bpf_map__map_flags(bpf_object__find_map_by_name(obj, WEFT_MAP_ENDPOINTS)),
            static_cast<__u32>(BPF_F_NO_PREALLOC));
  EXPECT_EQ(bpf_map__max_entries(bpf_object__find_map_by_name(obj, WEFT_MAP_META)), 1u);
  bpf_object__close(obj);
}

}  // namespace
