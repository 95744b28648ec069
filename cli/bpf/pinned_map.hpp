// A pinned BPF map opened read-only through its bpffs path, with its kernel
// info (bpf_obj_get_info_by_fd) and a raw reader (get_next_key + lookup).
// Per-CPU values come back as one stride per possible CPU.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

namespace weft::cli::bpf {

struct PinnedMap {
  std::string name;
  std::string path;
  UniqueFd fd;
  bpf_map_info info{};

  bool percpu() const;
  std::string type_name() const;  // "hash", "percpu_array", ...
  bool has_btf() const { return info.btf_id != 0; }
};

// Opens <maps_dir>/<name> (read-only unless `writable`: a ring buffer's
// consumer page must be mapped writable) and reads its info.
Result<PinnedMap> OpenPinnedMap(const std::string& maps_dir, const std::string& name, bool writable = false);

// Sums a per-CPU value of ReadAll/LookupPercpu as u64 fields (every field of
// the ABI's per-CPU values is a __u64).
std::vector<uint64_t> SumPerCpuU64(const std::vector<uint8_t>& value, int ncpus, size_t stride, size_t value_size);
// Names of the pins in maps_dir, sorted.
Result<std::vector<std::string>> ListPinnedMaps(const std::string& maps_dir);

// Number of keys, by get_next_key iteration; nullopt when the map type has no
// keys to iterate (ringbuf, sk_storage, ...).
Result<std::optional<uint64_t>> CountKeys(const PinnedMap& m);

struct RawEntry {
  std::vector<uint8_t> key;
  std::vector<uint8_t> value;  // per-CPU maps: ncpus strides of RoundUp8(value_size)
};
struct RawDump {
  uint32_t key_size = 0, value_size = 0;
  bool percpu = false;
  int ncpus = 1;
  size_t stride = 0;  // per-CPU value stride
  std::vector<RawEntry> entries;
};
// Every element (an entry deleted while iterating is skipped).
Result<RawDump> ReadAll(const PinnedMap& m);

// One element by key into `value` (value_size bytes; per-CPU maps: ncpus
// strides of RoundUp8(value_size)). false when the key is absent. On an LPM
// trie this is the longest-prefix match.
Result<bool> LookupElem(const PinnedMap& m, const void* key, void* value);
// Bytes a lookup of `m` writes.
size_t ValueBufferSize(const PinnedMap& m);

// Fails unless the map's key/value sizes are those of the ABI structs.
Status CheckLayout(const PinnedMap& m, size_t key_size, const char* key_type, size_t value_size,
                   const char* value_type);

template <typename T>
T Load(const uint8_t* p) {
  T t;
  std::memcpy(&t, p, sizeof(T));
  return t;
}

}  // namespace weft::cli::bpf
