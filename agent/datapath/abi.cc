#include "agent/datapath/abi.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "weft/bpf_abi.h"

namespace fs = std::filesystem;

namespace weft::datapath {

const uint32_t AbiMigration::kCurrent = WEFT_ABI_VERSION;

namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<bpf_map_info> InfoOf(int fd, const std::string& what) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return Status::Errno("get info of " + what, errno);
  return info;
}

// ---- ABI 1 -> 2 --------------------------------------------------------------------
// weft_endpoint of ABI 1 (12 bytes): ep_id, identity, enforce_ingress,
// enforce_egress, __u16 pad (always 0). ABI 2 keeps those bytes where they
// were (pad became n_addrs + pad) and appends the addresses: an ABI 1 entry
// copied over reads as n_addrs = 0 (source not checked) until the agent
// rewrites it from its config.
constexpr uint32_t kEndpointV1Size = 12;
static_assert(offsetof(weft_endpoint, n_addrs) == 10 && offsetof(weft_endpoint, addrs) == kEndpointV1Size);

bool EndpointsV1(const bpf_map_info& i) {
  return i.type == BPF_MAP_TYPE_HASH && i.key_size == sizeof(__u32) && i.value_size == kEndpointV1Size &&
         i.map_flags == 0;
}

Status FillEndpointsV1(int old_fd, int new_fd, std::vector<uint8_t>*) {
  __u32 key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(old_fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    uint8_t v1[kEndpointV1Size];
    if (bpf_map_lookup_elem(old_fd, &key, v1) != 0) continue;  // deleted meanwhile
    weft_endpoint ep{};
    std::memcpy(&ep, v1, kEndpointV1Size);
    ep.n_addrs = 0;
    ep.pad = 0;
    if (bpf_map_update_elem(new_fd, &key, &ep, BPF_ANY) != 0)
      return Status::Errno("write " WEFT_MAP_ENDPOINTS " ifindex " + std::to_string(key), errno);
  }
  if (errno != ENOENT) return Status::Errno("iterate the ABI 1 " WEFT_MAP_ENDPOINTS, errno);
  return Status::Ok();
}

// weft_drop_stats of ABI 1: WEFT_DROP_MAX was 6.
bool DropStatsV1(const bpf_map_info& i) {
  return i.type == BPF_MAP_TYPE_PERCPU_ARRAY && i.key_size == sizeof(__u32) && i.value_size == sizeof(__u64) &&
         i.max_entries == 6;
}

// Per-CPU __u64 counter arrays: copied index by index (the old array may be
// shorter); the snapshot lets Finish add what the old programs counted after.
Status CopyCounters(int old_fd, int new_fd, std::vector<uint8_t>* snapshot) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Status::Error("count possible CPUs", -ncpu);
  auto oi = InfoOf(old_fd, "old counters");
  if (!oi.ok()) return oi.status();
  auto ni = InfoOf(new_fd, "new counters");
  if (!ni.ok()) return ni.status();
  const uint32_t n = std::min(oi->max_entries, ni->max_entries);
  std::vector<uint64_t> v(ncpu);
  snapshot->clear();
  for (uint32_t i = 0; i < n; ++i) {
    if (bpf_map_lookup_elem(old_fd, &i, v.data()) != 0)
      return Status::Errno("read counter " + std::to_string(i), errno);
    if (bpf_map_update_elem(new_fd, &i, v.data(), BPF_ANY) != 0)
      return Status::Errno("write counter " + std::to_string(i), errno);
    const auto* b = reinterpret_cast<const uint8_t*>(v.data());
    snapshot->insert(snapshot->end(), b, b + v.size() * sizeof(uint64_t));
  }
  return Status::Ok();
}

Status CarryCounters(int old_fd, int new_fd, const std::vector<uint8_t>& snapshot) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Status::Error("count possible CPUs", -ncpu);
  const size_t per = static_cast<size_t>(ncpu) * sizeof(uint64_t);
  std::vector<uint64_t> old_now(ncpu), cur(ncpu), snap(ncpu);
  for (uint32_t i = 0; (i + 1) * per <= snapshot.size(); ++i) {
    std::memcpy(snap.data(), snapshot.data() + i * per, per);
    if (bpf_map_lookup_elem(old_fd, &i, old_now.data()) != 0) continue;
    bool any = false;
    for (int c = 0; c < ncpu; ++c) any |= old_now[c] != snap[c];
    if (!any) continue;
    if (bpf_map_lookup_elem(new_fd, &i, cur.data()) != 0) continue;
    for (int c = 0; c < ncpu; ++c) cur[c] += old_now[c] - snap[c];
    // Counts the new programs add between the read and this write on that
    // CPU are lost: microseconds, once per upgrade.
    if (bpf_map_update_elem(new_fd, &i, cur.data(), BPF_ANY) != 0)
      return Status::Errno("carry counter " + std::to_string(i), errno);
  }
  return Status::Ok();
}

}  // namespace

struct MapMigration {
  const char* name;
  bool (*is_old)(const bpf_map_info& pin);  // the pin has the step's old layout
  bool keep_capacity;                       // the new map takes the old one's max_entries
  Status (*fill)(int old_fd, int new_fd, std::vector<uint8_t>* snapshot);
  Status (*carry)(int old_fd, int new_fd, const std::vector<uint8_t>& snapshot);  // nullptr: nothing to carry
};

namespace {

struct AbiStep {
  uint32_t from;
  std::vector<MapMigration> maps;  // the maps whose layout changes; the others are adopted as they are
};

// The migrations this build knows, to WEFT_ABI_VERSION. Add the previous
// version's step with every ABI bump (and keep it for a release or two).
const std::vector<AbiStep>& Steps() {
  static const std::vector<AbiStep> k = {
      {1,
       {{WEFT_MAP_ENDPOINTS, EndpointsV1, true, FillEndpointsV1, nullptr},
        {WEFT_MAP_DROP_STATS, DropStatsV1, false, CopyCounters, CarryCounters}}},
  };
  return k;
}

}  // namespace

struct AbiMigration::Staged {
  const MapMigration* m = nullptr;
  bpf_map* map = nullptr;
  std::string pin, staging;
  UniqueFd old_fd;
  std::vector<uint8_t> snapshot;
  bool filled = false, done = false;
};

AbiMigration::~AbiMigration() = default;

Result<std::unique_ptr<AbiMigration>> AbiMigration::Prepare(bpf_object* obj, const std::string& maps_dir,
                                                            const std::string& hint) {
  std::unique_ptr<AbiMigration> m(new AbiMigration());
  m->maps_dir_ = maps_dir;
  auto pinned = ReadPinnedAbi(maps_dir);
  if (!pinned.ok()) return pinned.status();
  m->pinned_ = *pinned;
  if (!m->pinned_.stamped) {
    // Unstamped: ABI 1 if this object's maps are pinned (an agent of the
    // other object may just have created its own on a fresh node).
    m->pinned_.version = 0;
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      const char* pin = bpf_map__pin_path(map);
      if (pin && std::string(bpf_map__name(map)) != WEFT_MAP_META && Exists(pin)) m->pinned_.version = 1;
    }
  }
  const uint32_t v = m->pinned_.version;
  const std::string where = "the pins under " + maps_dir + " are of ABI " + std::to_string(v) +
                            (m->pinned_.stamped ? " (" WEFT_MAP_META ")" : " (no " WEFT_MAP_META ")");
  if (v > kCurrent)
    return Status::Error(where + ", newer than this agent's ABI " + std::to_string(kCurrent) +
                         ": it cannot adopt them" + hint);
  const AbiStep* step = nullptr;
  if (m->migrating()) {
    for (const auto& s : Steps())
      if (s.from == v) step = &s;
    if (!step)
      return Status::Error(where + ": this agent (ABI " + std::to_string(kCurrent) + ") has no migration from it" +
                           hint);
  }
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const std::string name = bpf_map__name(map);
    if (name == WEFT_MAP_META) {
      // Created unpinned until StampAbi says the node has this layout.
      if (!m->pinned_.stamped || v != kCurrent) {
        if (int err = bpf_map__set_pin_path(map, nullptr); err != 0)
          return Status::Errno("unpin " WEFT_MAP_META " of the new object", -err);
      }
      continue;
    }
    if (!step) continue;
    auto mm = std::find_if(step->maps.begin(), step->maps.end(), [&](const MapMigration& x) { return name == x.name; });
    const char* pin_c = bpf_map__pin_path(map);
    if (mm == step->maps.end() || !pin_c || !Exists(pin_c)) continue;
    auto st = std::make_unique<Staged>();
    st->m = &*mm;
    st->map = map;
    st->pin = pin_c;
    st->old_fd.reset(bpf_obj_get(pin_c));
    if (!st->old_fd) return Status::Errno("open pinned map " + st->pin, errno);
    auto info = InfoOf(st->old_fd.get(), "pinned map " + st->pin);
    if (!info.ok()) return info.status();
    // Not the old layout: renamed into place by a migration that died before
    // the stamp (then it has the new layout and is adopted), or foreign (then
    // the shape check names the difference).
    if (!mm->is_old(*info)) continue;
    st->staging = st->pin + "_abi" + std::to_string(kCurrent);  // bpffs refuses names with a dot
    if (::unlink(st->staging.c_str()) != 0 && errno != ENOENT)
      return Status::Errno("remove the staging pin " + st->staging + " of an earlier migration", errno);
    if (mm->keep_capacity) {
      if (int err = bpf_map__set_max_entries(map, info->max_entries); err != 0)
        return Status::Errno("set capacity of map " + name, -err);
    }
    if (int err = bpf_map__set_pin_path(map, st->staging.c_str()); err != 0)
      return Status::Errno("stage map " + name + " at " + st->staging, -err);
    m->staged_.push_back(std::move(st));
  }
  if (m->migrating())
    spdlog::info(
        "ABI migration {} -> {} under {}: {} map(s) get a new layout{}", v, kCurrent, maps_dir, m->staged_.size(),
        m->staged_.empty() ? "" : " (" + [&] {
          std::string s;
          for (const auto& x : m->staged_) s += (s.empty() ? "" : ", ") + std::string(x->m->name);
          return s;
        }() + ")");
  return m;
}

std::vector<std::string> AbiMigration::staged() const {
  std::vector<std::string> out;
  for (const auto& s : staged_) out.push_back(s->m->name);
  return out;
}

Status AbiMigration::Fill() {
  for (auto& s : staged_) {
    if (s->filled) continue;
    const int new_fd = bpf_map__fd(s->map);
    if (new_fd < 0) return Status::Error("map " + std::string(s->m->name) + " is not loaded");
    WEFT_RETURN_IF_ERROR(
        s->m->fill(s->old_fd.get(), new_fd, &s->snapshot)
            .Wrap("migrate " + s->pin + " (ABI " + std::to_string(pinned_.version) + ") to " + s->staging));
    s->filled = true;
  }
  return Status::Ok();
}

Status AbiMigration::Finish() {
  WEFT_RETURN_IF_ERROR(Fill());
  for (auto& s : staged_) {
    if (s->done) continue;
    if (s->m->carry)
      WEFT_RETURN_IF_ERROR(s->m->carry(s->old_fd.get(), bpf_map__fd(s->map), s->snapshot).Wrap("carry over " + s->pin));
    // The old pin goes last, replaced in one step: no moment without one.
    if (::rename(s->staging.c_str(), s->pin.c_str()) != 0)
      return Status::Errno("rename " + s->staging + " over " + s->pin, errno);
    bpf_map__set_pin_path(s->map, s->pin.c_str());
    s->old_fd.reset();
    s->done = true;
    spdlog::info("ABI migration: {} now has the ABI {} layout (the old map is unpinned)", s->pin, kCurrent);
  }
  finished_ = true;
  return Status::Ok();
}

Status StampAbi(int meta_fd, const std::string& maps_dir) {
  const weft_meta meta{WEFT_ABI_VERSION, 0};
  const __u32 zero = 0;
  const std::string pin = maps_dir + "/" WEFT_MAP_META, tmp = pin + "_new";  // bpffs refuses names with a dot
  if (Exists(pin)) {
    // The pinned one is the node's (this object reused it, or an agent of an
    // older ABI pinned it with the same shape).
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) return Status::Errno("open pinned map " + pin, errno);
    if (bpf_map_update_elem(fd.get(), &zero, &meta, BPF_ANY) != 0) return Status::Errno("stamp " + pin, errno);
    return Status::Ok();
  }
  if (bpf_map_update_elem(meta_fd, &zero, &meta, BPF_ANY) != 0) return Status::Errno("stamp " WEFT_MAP_META, errno);
  ::unlink(tmp.c_str());
  if (bpf_obj_pin(meta_fd, tmp.c_str()) != 0) return Status::Errno("pin " WEFT_MAP_META " at " + tmp, errno);
  if (::rename(tmp.c_str(), pin.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Errno("rename " + tmp + " to " + pin, err);
  }
  spdlog::info("{}: ABI {} recorded", pin, WEFT_ABI_VERSION);
  return Status::Ok();
}

}  // namespace weft::datapath
