#include "agent/datapath/kernel_map_writer.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "weft/ip.hpp"
#include "weft/sock_lb.skel.h"

namespace weft::datapath {

namespace {

// Elements per batch syscall: bounds the time spent in one syscall and the
// size of the buffers the kernel copies.
constexpr size_t kBatchChunk = 4096;

bool BatchUnsupported(int err) { return err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP; }

MapHandle Handle(const bpf_map* map, BatchMode mode) {
  return MapHandle{bpf_map__fd(map), bpf_map__name(map), mode == BatchMode::kAuto};
}

size_t RoundUp8(size_t n) { return (n + 7) & ~size_t{7}; }

int PossibleCpus() {
  int n = libbpf_num_possible_cpus();
  return n > 0 ? n : 1;
}

std::string Errstr(int err) { return std::strerror(err); }

std::string ProtoName(uint8_t p) {
  if (p == IPPROTO_TCP) return "tcp";
  if (p == IPPROTO_UDP) return "udp";
  return std::to_string(p);
}

}  // namespace

std::string FormatKey(const weft_svc_key& k) {
  IpAddr ip = IpAddr::FromBytes(k.addr);
  std::string a = ip.is_v4() ? ip.ToString() : "[" + ip.ToString() + "]";
  return a + ":" + std::to_string(ntohs(k.port)) + "/" + ProtoName(k.proto);
}
std::string FormatKey(const weft_slot_key& k) {
  return "svc " + std::to_string(k.svc_id) + " gen " + std::to_string(k.gen) + " slot " + std::to_string(k.slot);
}
std::string FormatKey(uint32_t id) { return "id " + std::to_string(id); }

KernelMapWriter::KernelMapWriter(sock_lb& skel, BatchMode mode)
    : mode_(mode),
      ncpus_(PossibleCpus()),
      services_(Handle(skel.maps.weft_services, mode)),
      backends_(Handle(skel.maps.weft_backends, mode)),
      slots_(Handle(skel.maps.weft_slots, mode)),
      svc_stats_(Handle(skel.maps.weft_svc_stats, mode)),
      be_stats_(Handle(skel.maps.weft_be_stats, mode)) {}

template <typename K, typename V, typename Cmp>
Status KernelMapWriter::ReadHashInto(MapHandle& m, std::map<K, V, Cmp>* out) {
  out->clear();
  if (m.batch) {
    size_t cap = kBatchChunk;
    std::vector<K> keys(cap);
    std::vector<V> vals(cap);
    uint64_t in_batch = 0, out_batch = 0;  // hash maps use a u32 bucket cursor
    bool first = true;
    bool fallback = false;
    for (;;) {
      __u32 count = static_cast<__u32>(cap);
      bpf_map_batch_opts opts{};
      opts.sz = sizeof(opts);
      ++syscalls_;
      int rc = bpf_map_lookup_batch(m.fd, first ? nullptr : &in_batch, &out_batch, keys.data(), vals.data(),
                                    &count, &opts);
      int err = rc ? -rc : 0;
      if (err == ENOSPC && count == 0) {  // one bucket holds more than `cap` elements
        cap *= 2;
        keys.resize(cap);
        vals.resize(cap);
        continue;
      }
      for (__u32 i = 0; i < count; ++i) (*out)[keys[i]] = vals[i];
      if (err == ENOENT) break;  // end of the map
      if (err != 0) {
        if (first && BatchUnsupported(err)) {
          spdlog::debug("map {}: batch lookup not supported ({}), iterating one key at a time", m.name, Errstr(err));
          fallback = true;
          break;
        }
        return Status::Errno("read map " + m.name + " (batch lookup)", err);
      }
      in_batch = out_batch;
      first = false;
    }
    if (!fallback) return Status::Ok();
    out->clear();
  }
  K key{}, next{};
  bool has_prev = false;
  for (;;) {
    ++syscalls_;
    if (bpf_map_get_next_key(m.fd, has_prev ? &key : nullptr, &next) != 0) {
      if (errno == ENOENT) break;
      return Status::Errno("read map " + m.name + " (next key after " + (has_prev ? FormatKey(key) : "start") + ")",
                           errno);
    }
    V val{};
    ++syscalls_;
    if (bpf_map_lookup_elem(m.fd, &next, &val) == 0) {
      (*out)[next] = val;
    } else if (errno != ENOENT) {  // ENOENT: deleted under us, skip
      return Status::Errno("read map " + m.name + " key " + FormatKey(next), errno);
    }
    key = next;
    has_prev = true;
  }
  return Status::Ok();
}

template <typename K, typename V>
Status KernelMapWriter::Update(MapHandle& m, const std::vector<std::pair<K, V>>& kv) {
  size_t done = 0;
  std::vector<K> keys;
  std::vector<V> vals;
  while (done < kv.size()) {
    size_t n = std::min(kBatchChunk, kv.size() - done);
    if (m.batch) {
      keys.clear();
      vals.clear();
      for (size_t i = done; i < done + n; ++i) {
        keys.push_back(kv[i].first);
        vals.push_back(kv[i].second);
      }
      __u32 count = static_cast<__u32>(n);
      bpf_map_batch_opts opts{};
      opts.sz = sizeof(opts);
      opts.elem_flags = BPF_ANY;
      ++syscalls_;
      int rc = bpf_map_update_batch(m.fd, keys.data(), vals.data(), &count, &opts);
      if (rc == 0) {
        done += n;
        continue;
      }
      int err = -rc;
      done += std::min<size_t>(count, n);
      // Retry the rest of this chunk one by one: names the failing key, or
      // shows that the kernel only refused the batch operation itself.
      size_t end = std::min(kv.size(), done + (n - std::min<size_t>(count, n)));
      for (; done < end; ++done) {
        ++syscalls_;
        if (bpf_map_update_elem(m.fd, &kv[done].first, &kv[done].second, BPF_ANY) != 0)
          return Status::Errno("update map " + m.name + " key " + FormatKey(kv[done].first), errno);
      }
      if (BatchUnsupported(err)) {
        spdlog::info("map {}: batch update refused ({}), writing one element per call", m.name, Errstr(err));
        m.batch = false;
      }
      continue;
    }
    for (size_t end = done + n; done < end; ++done) {
      ++syscalls_;
      if (bpf_map_update_elem(m.fd, &kv[done].first, &kv[done].second, BPF_ANY) != 0)
        return Status::Errno("update map " + m.name + " key " + FormatKey(kv[done].first), errno);
    }
  }
  return Status::Ok();
}

template <typename K>
Status KernelMapWriter::Delete(MapHandle& m, const std::vector<K>& keys) {
  // A key that is already gone is not an error: deletes are idempotent (an
  // agent killed mid-reconcile repeats them after adoption).
  auto delete_one = [&](const K& k) -> Status {
    ++syscalls_;
    if (bpf_map_delete_elem(m.fd, &k) != 0 && errno != ENOENT)
      return Status::Errno("delete from map " + m.name + " key " + FormatKey(k), errno);
    return Status::Ok();
  };
  size_t done = 0;
  while (done < keys.size()) {
    if (!m.batch) {
      WEFT_RETURN_IF_ERROR(delete_one(keys[done]));
      ++done;
      continue;
    }
    size_t n = std::min(kBatchChunk, keys.size() - done);
    __u32 count = static_cast<__u32>(n);
    bpf_map_batch_opts opts{};
    opts.sz = sizeof(opts);
    ++syscalls_;
    int rc = bpf_map_delete_batch(m.fd, &keys[done], &count, &opts);
    if (rc == 0) {
      done += n;
      continue;
    }
    int err = -rc;
    done += std::min<size_t>(count, n);  // elements before the failing one are deleted
    if (done >= keys.size()) break;
    // The element at `done` failed: handle it alone, then resume batching.
    WEFT_RETURN_IF_ERROR(delete_one(keys[done]));
    ++done;
    if (BatchUnsupported(err)) {
      spdlog::info("map {}: batch delete refused ({}), deleting one element per call", m.name, Errstr(err));
      m.batch = false;
    }
  }
  return Status::Ok();
}

Status KernelMapWriter::ResetPerCpu(MapHandle& m, const std::vector<uint32_t>& ids, size_t value_size) {
  const size_t stride = RoundUp8(value_size) * static_cast<size_t>(ncpus_);
  size_t done = 0;
  while (done < ids.size()) {
    size_t n = std::min(kBatchChunk, ids.size() - done);
    std::vector<uint8_t> zeros(stride * n, 0);
    if (m.batch) {
      __u32 count = static_cast<__u32>(n);
      bpf_map_batch_opts opts{};
      opts.sz = sizeof(opts);
      opts.elem_flags = BPF_ANY;
      ++syscalls_;
      int rc = bpf_map_update_batch(m.fd, &ids[done], zeros.data(), &count, &opts);
      if (rc == 0) {
        done += n;
        continue;
      }
      if (BatchUnsupported(-rc) && count == 0) {
        spdlog::info("map {}: batch update refused ({}), writing one element per call", m.name, Errstr(-rc));
        m.batch = false;
      }
      done += std::min<size_t>(count, n);
      n = std::min(kBatchChunk, ids.size() - done);
      if (n == 0) break;
    }
    for (size_t end = done + n; done < end; ++done) {
      ++syscalls_;
      if (bpf_map_update_elem(m.fd, &ids[done], zeros.data(), BPF_ANY) != 0)
        return Status::Errno("reset counters in map " + m.name + " " + FormatKey(ids[done]), errno);
    }
  }
  return Status::Ok();
}

Result<MapState> KernelMapWriter::ReadAll() {
  MapState s;
  WEFT_RETURN_IF_ERROR(ReadHashInto(services_, &s.services));
  WEFT_RETURN_IF_ERROR(ReadHashInto(backends_, &s.backends));
  WEFT_RETURN_IF_ERROR(ReadHashInto(slots_, &s.slots));
  return s;
}

Status KernelMapWriter::UpsertServices(const std::vector<std::pair<weft_svc_key, weft_svc_val>>& kv) {
  return Update(services_, kv);
}
Status KernelMapWriter::DeleteServices(const std::vector<weft_svc_key>& keys) { return Delete(services_, keys); }
Status KernelMapWriter::UpsertBackends(const std::vector<std::pair<uint32_t, weft_backend>>& kv) {
  return Update(backends_, kv);
}
Status KernelMapWriter::DeleteBackends(const std::vector<uint32_t>& ids) { return Delete(backends_, ids); }
Status KernelMapWriter::UpsertSlots(const std::vector<std::pair<weft_slot_key, uint32_t>>& kv) {
  return Update(slots_, kv);
}
Status KernelMapWriter::DeleteSlots(const std::vector<weft_slot_key>& keys) { return Delete(slots_, keys); }
Status KernelMapWriter::ResetServiceStats(const std::vector<uint32_t>& svc_ids) {
  return ResetPerCpu(svc_stats_, svc_ids, sizeof(weft_svc_stats));
}
Status KernelMapWriter::ResetBackendStats(const std::vector<uint32_t>& backend_ids) {
  return ResetPerCpu(be_stats_, backend_ids, sizeof(weft_backend_stats));
}

// ---- counters ----

KernelStatsReader::KernelStatsReader(sock_lb& skel)
    : ncpus_(PossibleCpus()),
      svc_stats_fd_(bpf_map__fd(skel.maps.weft_svc_stats)),
      be_stats_fd_(bpf_map__fd(skel.maps.weft_be_stats)),
      lb_stats_fd_(bpf_map__fd(skel.maps.weft_lb_stats)) {}

namespace {
// Reads one per-CPU array element into `per_cpu` (ncpus slots of T, each
// padded to 8 bytes, which for our u64-only structs is sizeof(T)).
template <typename T>
Status LookupPerCpu(int fd, uint32_t id, std::vector<T>* per_cpu, const char* map) {
  static_assert(sizeof(T) % 8 == 0, "per-CPU values are 8-byte aligned");
  if (bpf_map_lookup_elem(fd, &id, per_cpu->data()) != 0)
    return Status::Errno(std::string("read map ") + map + " " + FormatKey(id), errno);
  return Status::Ok();
}
}  // namespace

Result<std::map<uint32_t, ServiceCounters>> KernelStatsReader::Services(const std::vector<uint32_t>& ids) const {
  std::map<uint32_t, ServiceCounters> out;
  std::vector<weft_svc_stats> v(ncpus_);
  for (uint32_t id : ids) {
    WEFT_RETURN_IF_ERROR(LookupPerCpu(svc_stats_fd_, id, &v, WEFT_MAP_SVC_STATS));
    ServiceCounters c;
    for (const auto& s : v) {
      c.connects += s.connects;
      c.no_backend += s.no_backend;
    }
    out[id] = c;
  }
  return out;
}

Result<std::map<uint32_t, uint64_t>> KernelStatsReader::Backends(const std::vector<uint32_t>& ids) const {
  std::map<uint32_t, uint64_t> out;
  std::vector<weft_backend_stats> v(ncpus_);
  for (uint32_t id : ids) {
    WEFT_RETURN_IF_ERROR(LookupPerCpu(be_stats_fd_, id, &v, WEFT_MAP_BACKEND_STATS));
    uint64_t sum = 0;
    for (const auto& s : v) sum += s.connects;
    out[id] = sum;
  }
  return out;
}

Result<std::array<uint64_t, WEFT_STAT_MAX>> KernelStatsReader::Global() const {
  std::array<uint64_t, WEFT_STAT_MAX> out{};
  std::vector<uint64_t> v(ncpus_);
  for (uint32_t i = 0; i < WEFT_STAT_MAX; ++i) {
    WEFT_RETURN_IF_ERROR(LookupPerCpu(lb_stats_fd_, i, &v, WEFT_MAP_LB_STATS));
    for (uint64_t x : v) out[i] += x;
  }
  return out;
}

}  // namespace weft::datapath
