// The seam between the agent's reconcile logic and the kernel: the LB maps'
// contents as plain values (MapState) and the MapWriter interface that reads
// and writes them. KernelMapWriter (datapath/kernel_map_writer.*) talks to the
// pinned BPF maps; tests use FakeMapWriter (tests/unit) and run without a kernel.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/status.hpp"

namespace weft::datapath {

// Ordering/equality on ABI structs by bytes (they have no implicit padding).
template <typename T>
struct BytesLess {
  bool operator()(const T& a, const T& b) const { return std::memcmp(&a, &b, sizeof(T)) < 0; }
};
template <typename T>
bool BytesEqual(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

struct MapState {
  std::map<weft_svc_key, weft_svc_val, BytesLess<weft_svc_key>> services;
  std::map<uint32_t, weft_backend> backends;  // backend id -> address
  std::map<weft_slot_key, uint32_t, BytesLess<weft_slot_key>> slots;  // -> backend id
};

// Writes are grouped per map; an implementation uses batch syscalls where the
// kernel allows and falls back to one element per call. Every call either
// applies all of its elements or returns an error naming the map and key.
class MapWriter {
 public:
  virtual ~MapWriter() = default;
  virtual Result<MapState> ReadAll() = 0;

  virtual Status UpsertServices(const std::vector<std::pair<weft_svc_key, weft_svc_val>>& kv) = 0;
  virtual Status DeleteServices(const std::vector<weft_svc_key>& keys) = 0;
  virtual Status UpsertBackends(const std::vector<std::pair<uint32_t, weft_backend>>& kv) = 0;
  virtual Status DeleteBackends(const std::vector<uint32_t>& ids) = 0;
  virtual Status UpsertSlots(const std::vector<std::pair<weft_slot_key, uint32_t>>& kv) = 0;
  virtual Status DeleteSlots(const std::vector<weft_slot_key>& keys) = 0;
  // Zero the per-CPU counters of ids that are (re)allocated to a new object.
  virtual Status ResetServiceStats(const std::vector<uint32_t>& svc_ids) = 0;
  virtual Status ResetBackendStats(const std::vector<uint32_t>& backend_ids) = 0;
};

}  // namespace weft::datapath
