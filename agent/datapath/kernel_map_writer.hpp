// datapath::MapWriter over the node's pinned BPF maps, plus a reader of the
// per-CPU counters for /metrics.
//
// Writes go through bpf_map_update_batch / bpf_map_delete_batch in chunks;
// on an error the rest of the chunk is retried one element per call, which
// both falls back on kernels without batch support for a map (EINVAL,
// ENOTSUP: batch is then disabled for that map) and turns a failure into a
// message naming the map and the exact key. BatchMode::kOff forces one element
// per syscall everywhere (--no-batch; the benchmark compares both).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/datapath/map_state.hpp"
#include "weft/bpf_abi.h"
#include "weft/status.hpp"

struct sock_lb;

namespace weft::datapath {

enum class BatchMode { kAuto, kOff };

// One map as seen from user space: its fd (owned by the skeleton) and name.
struct MapHandle {
  int fd = -1;
  std::string name;
  bool batch = true;  // cleared when the kernel refuses batch ops on this map
};

class KernelMapWriter : public MapWriter {
 public:
  KernelMapWriter(sock_lb& skel, BatchMode mode);

  Result<MapState> ReadAll() override;
  Status UpsertServices(const std::vector<std::pair<weft_svc_key, weft_svc_val>>& kv) override;
  Status DeleteServices(const std::vector<weft_svc_key>& keys) override;
  Status UpsertBackends(const std::vector<std::pair<uint32_t, weft_backend>>& kv) override;
  Status DeleteBackends(const std::vector<uint32_t>& ids) override;
  Status UpsertSlots(const std::vector<std::pair<weft_slot_key, uint32_t>>& kv) override;
  Status DeleteSlots(const std::vector<weft_slot_key>& keys) override;
  Status ResetServiceStats(const std::vector<uint32_t>& svc_ids) override;
  Status ResetBackendStats(const std::vector<uint32_t>& backend_ids) override;

  // Syscalls issued so far (for the benchmark and debug logs).
  uint64_t syscalls() const { return syscalls_; }

 private:
  template <typename K, typename V, typename Cmp>
  Status ReadHashInto(MapHandle& m, std::map<K, V, Cmp>* out);
  template <typename K, typename V>
  Status Update(MapHandle& m, const std::vector<std::pair<K, V>>& kv);
  template <typename K>
  Status Delete(MapHandle& m, const std::vector<K>& keys);
  Status ResetPerCpu(MapHandle& m, const std::vector<uint32_t>& ids, size_t value_size);

  BatchMode mode_;
  int ncpus_;
  MapHandle services_, backends_, slots_, svc_stats_, be_stats_;
  uint64_t syscalls_ = 0;
};

struct ServiceCounters {
  uint64_t connects = 0;
  uint64_t no_backend = 0;
};

// Reads the per-CPU counters, summed over all possible CPUs. Holds only map
// fds and no mutable state, so it may run on the metrics thread while the
// reconcile thread writes the LB maps (the kernel serializes element access).
class KernelStatsReader {
 public:
  explicit KernelStatsReader(sock_lb& skel);
  Result<std::map<uint32_t, ServiceCounters>> Services(const std::vector<uint32_t>& svc_ids) const;
  Result<std::map<uint32_t, uint64_t>> Backends(const std::vector<uint32_t>& backend_ids) const;
  Result<std::array<uint64_t, WEFT_STAT_MAX>> Global() const;

 private:
  int ncpus_;
  int svc_stats_fd_, be_stats_fd_, lb_stats_fd_;
};

// Human-readable keys for error messages: "10.96.0.10:80/tcp", "[fd00::1]:53/udp".
std::string FormatKey(const weft_svc_key& k);
std::string FormatKey(const weft_slot_key& k);
std::string FormatKey(uint32_t id);

}  // namespace weft::datapath
