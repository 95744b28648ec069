#include "cli/bpf/pinned_map.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace weft::cli::bpf {

namespace {

size_t RoundUp8(size_t n) { return (n + 7) & ~size_t{7}; }

bool KeyIterable(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_RINGBUF:
    case BPF_MAP_TYPE_SK_STORAGE:
    case BPF_MAP_TYPE_INODE_STORAGE:
    case BPF_MAP_TYPE_TASK_STORAGE:
    case BPF_MAP_TYPE_USER_RINGBUF:
    case BPF_MAP_TYPE_BLOOM_FILTER:
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK:
    case BPF_MAP_TYPE_STRUCT_OPS:
      return false;
    default:
      return true;
  }
}

}  // namespace

bool PinnedMap::percpu() const {
  switch (info.type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

std::string PinnedMap::type_name() const {
  const char* s = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
  return s ? s : "type " + std::to_string(info.type);
}

std::vector<uint64_t> SumPerCpuU64(const std::vector<uint8_t>& value, int ncpus, size_t stride, size_t value_size) {
  std::vector<uint64_t> sum(value_size / sizeof(uint64_t), 0);
  for (int c = 0; c < ncpus; ++c)
    for (size_t i = 0; i < sum.size(); ++i) {
      size_t off = static_cast<size_t>(c) * stride + i * sizeof(uint64_t);
      if (off + sizeof(uint64_t) <= value.size()) sum[i] += Load<uint64_t>(value.data() + off);
    }
  return sum;
}

Result<PinnedMap> OpenPinnedMap(const std::string& maps_dir, const std::string& name, bool writable) {
  PinnedMap m;
  m.name = name;
  m.path = maps_dir + "/" + name;
  LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = writable ? 0u : static_cast<__u32>(BPF_F_RDONLY));
  m.fd.reset(bpf_obj_get_opts(m.path.c_str(), &opts));
  if (!m.fd) {
    int err = errno;
    Status st = Status::Errno("open pinned map " + m.path + " (bpf_obj_get)", err);
    if ((err == EPERM || err == EACCES) && geteuid() != 0) return Status::Error(st.message() + " (run as root)", err);
    return st;
  }
  __u32 len = sizeof(m.info);
  if (bpf_obj_get_info_by_fd(m.fd.get(), &m.info, &len) != 0)
    return Status::Errno("read info of pinned map " + m.path + " (bpf_obj_get_info_by_fd)", errno);
  return m;
}

Result<std::vector<std::string>> ListPinnedMaps(const std::string& maps_dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(maps_dir, ec)) names.push_back(e.path().filename());
  if (ec) return Status::Error("list pinned maps in " + maps_dir + ": " + ec.message(), ec.value());
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::optional<uint64_t>> CountKeys(const PinnedMap& m) {
  if (!KeyIterable(m.info.type)) return std::optional<uint64_t>{};
  std::vector<uint8_t> key(std::max<uint32_t>(m.info.key_size, 1)), next(key.size());
  uint64_t n = 0;
  // Bound: a hash map being rewritten can restart the walk; never loop forever.
  const uint64_t limit = 4ull * std::max<uint32_t>(m.info.max_entries, 1) + 1024;
  bool first = true;
  while (n < limit) {
    if (bpf_map_get_next_key(m.fd.get(), first ? nullptr : key.data(), next.data()) != 0) {
      if (errno == ENOENT) break;
      return Status::Errno("count entries of map " + m.name + " (" + m.path + "): get_next_key", errno);
    }
    ++n;
    key.swap(next);
    first = false;
  }
  return std::optional<uint64_t>{n};
}

Result<RawDump> ReadAll(const PinnedMap& m) {
  RawDump d;
  d.key_size = m.info.key_size;
  d.value_size = m.info.value_size;
  d.percpu = m.percpu();
  if (d.percpu) {
    d.ncpus = libbpf_num_possible_cpus();
    if (d.ncpus <= 0) return Status::Errno("read map " + m.name + ": count possible CPUs", -d.ncpus);
    d.stride = RoundUp8(d.value_size);
  } else {
    d.stride = d.value_size;
  }
  if (!KeyIterable(m.info.type))
    return Status::Error("read map " + m.name + " (" + m.path + "): a " + m.type_name() +
                         " map has no entries to list");
  std::vector<uint8_t> key(std::max<uint32_t>(d.key_size, 1)), next(key.size());
  std::vector<uint8_t> val(d.stride * static_cast<size_t>(d.ncpus));
  const uint64_t limit = 4ull * std::max<uint32_t>(m.info.max_entries, 1) + 1024;
  bool first = true;
  for (uint64_t i = 0; i < limit; ++i) {
    if (bpf_map_get_next_key(m.fd.get(), first ? nullptr : key.data(), next.data()) != 0) {
      if (errno == ENOENT) break;
      return Status::Errno("read map " + m.name + " (" + m.path + "): get_next_key", errno);
    }
    first = false;
    key.swap(next);
    if (bpf_map_lookup_elem(m.fd.get(), key.data(), val.data()) != 0) {
      if (errno == ENOENT) continue;  // deleted while we walked
      return Status::Errno("read map " + m.name + " (" + m.path + "): lookup", errno);
    }
    d.entries.push_back({std::vector<uint8_t>(key.begin(), key.begin() + d.key_size), val});
  }
  return d;
}

size_t ValueBufferSize(const PinnedMap& m) {
  if (!m.percpu()) return m.info.value_size;
  int n = libbpf_num_possible_cpus();
  return RoundUp8(m.info.value_size) * static_cast<size_t>(n > 0 ? n : 1);
}

Result<bool> LookupElem(const PinnedMap& m, const void* key, void* value) {
  if (bpf_map_lookup_elem(m.fd.get(), key, value) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::Errno("look up an element of map " + m.name + " (" + m.path + ")", errno);
}

Status CheckLayout(const PinnedMap& m, size_t key_size, const char* key_type, size_t value_size,
                   const char* value_type) {
  if (m.info.key_size == key_size && m.info.value_size == value_size) return Status::Ok();
  return Status::Error("decode map " + m.name + " (" + m.path + "): key/value size " + std::to_string(m.info.key_size) +
                       "/" + std::to_string(m.info.value_size) + " in the kernel, " + std::to_string(key_size) + "/" +
                       std::to_string(value_size) + " for " + key_type + "/" + value_type +
                       " in weft/bpf_abi.h (ABI mismatch: is weftctl older or newer than the agent?)");
}

}  // namespace weft::cli::bpf
