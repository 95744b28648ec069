#include "weft/flow_aggregates.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <string>

namespace weft::flows {
namespace {

Result<weft_flow_val> SumSlot(int counters_fd, uint32_t slot, int ncpu) {
  std::vector<weft_flow_val> per(static_cast<size_t>(ncpu));  // 24 bytes: already a multiple of 8
  if (bpf_map_lookup_elem(counters_fd, &slot, per.data()) != 0)
    return Status::Errno("read " WEFT_MAP_FLOW_COUNTERS "[" + std::to_string(slot) + "]", errno);
  weft_flow_val t{};
  for (const auto& v : per) {
    t.connections += v.connections;
    t.packets += v.packets;
    t.bytes += v.bytes;
  }
  return t;
}

Result<int> PossibleCpus() {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) return Status::Error("count possible CPUs", -n);
  return n;
}

}  // namespace

Result<std::vector<Aggregate>> ReadAggregates(int flows_fd, int counters_fd) {
  auto ncpu = PossibleCpus();
  if (!ncpu.ok()) return ncpu.status();
  std::vector<Aggregate> out;
  weft_flow_key key{}, next{};
  const void* prev = nullptr;
  for (;;) {
    if (bpf_map_get_next_key(flows_fd, prev, &next) != 0) {
      if (errno == ENOENT) break;
      return Status::Errno("iterate " WEFT_MAP_FLOWS, errno);
    }
    key = next;
    prev = &key;
    weft_flow_slot s{};
    if (bpf_map_lookup_elem(flows_fd, &key, &s) != 0) continue;  // deleted meanwhile
    auto t = SumSlot(counters_fd, s.slot, *ncpu);
    if (!t.ok()) return t.status();
    out.push_back({key, s.slot, *t});
  }
  return out;
}

Result<weft_flow_val> ReadAggregate(int flows_fd, int counters_fd, const weft_flow_key& key) {
  weft_flow_slot s{};
  if (bpf_map_lookup_elem(flows_fd, &key, &s) != 0) {
    if (errno == ENOENT) return weft_flow_val{};
    return Status::Errno("look up a key of " WEFT_MAP_FLOWS, errno);
  }
  auto ncpu = PossibleCpus();
  if (!ncpu.ok()) return ncpu.status();
  return SumSlot(counters_fd, s.slot, *ncpu);
}

}  // namespace weft::flows
