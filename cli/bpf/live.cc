#include "cli/bpf/live.hpp"

#include <arpa/inet.h>

#include <cerrno>
#include <filesystem>
#include <map>

#include "cli/bpf/pinned_map.hpp"

namespace weft::cli::bpf {

namespace {

Result<PinnedMap> Open(const std::string& dir, const char* name, size_t key_size, const char* key_type,
                       size_t value_size, const char* value_type) {
  std::error_code ec;
  if (!std::filesystem::exists(dir + "/" + name, ec))
    return Status::Error("map " + std::string(name) + " is not pinned (no " + dir + "/" + name + ")", ENOENT);
  auto m = OpenPinnedMap(dir, name);
  if (!m.ok()) return m.status();
  WEFT_RETURN_IF_ERROR(CheckLayout(*m, key_size, key_type, value_size, value_type));
  return m;
}

template <typename K, typename V>
Result<std::optional<V>> LookupOne(const std::string& dir, const char* name, const char* kt, const char* vt,
                                   const K& key) {
  auto m = Open(dir, name, sizeof(K), kt, sizeof(V), vt);
  if (!m.ok()) return m.status();
  V v{};
  auto hit = LookupElem(*m, &key, &v);
  if (!hit.ok()) return hit.status();
  if (!*hit) return std::optional<V>{};
  return std::optional<V>{v};
}

}  // namespace

Result<std::vector<LiveService>> ServicesOfVip(const std::string& maps_dir, const IpAddr& vip, uint16_t port,
                                               uint8_t proto, bool with_slots) {
  auto svcs = Open(maps_dir, WEFT_MAP_SERVICES, sizeof(weft_svc_key), "weft_svc_key", sizeof(weft_svc_val),
                   "weft_svc_val");
  if (!svcs.ok()) return svcs.status();
  std::vector<LiveService> out;
  std::vector<weft_svc_key> keys;
  if (port != 0) {
    weft_svc_key k{};
    vip.CopyTo(k.addr);
    k.port = htons(port);
    k.proto = proto;
    keys.push_back(k);
  } else {
    auto all = ReadAll(*svcs);
    if (!all.ok()) return all.status();
    for (const auto& e : all->entries) {
      auto k = Load<weft_svc_key>(e.key.data());
      if (IpAddr::FromBytes(k.addr) == vip) keys.push_back(k);
    }
  }
  std::optional<PinnedMap> slots_map, be_map;
  if (with_slots) {
    auto s = Open(maps_dir, WEFT_MAP_SLOTS, sizeof(weft_slot_key), "weft_slot_key", sizeof(uint32_t), "__u32");
    if (!s.ok()) return s.status();
    slots_map = std::move(*s);
    auto b = Open(maps_dir, WEFT_MAP_BACKENDS, sizeof(uint32_t), "__u32", sizeof(weft_backend), "weft_backend");
    if (!b.ok()) return b.status();
    be_map = std::move(*b);
  }
  for (const auto& k : keys) {
    weft_svc_val v{};
    auto hit = LookupElem(*svcs, &k, &v);
    if (!hit.ok()) return hit.status();
    if (!*hit) continue;
    LiveService s;
    s.vip = IpAddr::FromBytes(k.addr);
    s.port = ntohs(k.port);
    s.proto = k.proto;
    s.val = v;
    if (with_slots) {
      std::map<uint32_t, uint32_t> count;
      s.slot_table.resize(v.slot_count, 0);
      for (uint32_t i = 0; i < v.slot_count; ++i) {
        weft_slot_key sk{v.svc_id, v.gen, static_cast<uint16_t>(i)};
        uint32_t be = 0;
        auto h = LookupElem(*slots_map, &sk, &be);
        if (!h.ok()) return h.status();
        if (*h) {
          s.slot_table[i] = be;
          ++count[be];
        }
      }
      for (const auto& [id, n] : count) {
        LiveService::Backend b;
        b.id = id;
        b.slots = n;
        weft_backend bv{};
        auto h = LookupElem(*be_map, &id, &bv);
        if (!h.ok()) return h.status();
        if (*h) {
          b.present = true;
          b.ip = IpAddr::FromBytes(bv.addr);
          b.port = ntohs(bv.port);
        }
        s.backends.push_back(b);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::optional<weft_ipcache_val>> IdentityOf(const std::string& maps_dir, const IpAddr& ip) {
  weft_ipcache_key k{};
  k.prefixlen = 128;
  ip.CopyTo(k.addr);
  return LookupOne<weft_ipcache_key, weft_ipcache_val>(maps_dir, WEFT_MAP_IDENTITY, "weft_ipcache_key",
                                                       "weft_ipcache_val", k);
}

Result<std::optional<weft_endpoint>> EndpointOf(const std::string& maps_dir, uint32_t ifindex) {
  return LookupOne<uint32_t, weft_endpoint>(maps_dir, WEFT_MAP_ENDPOINTS, "__u32", "weft_endpoint", ifindex);
}

Result<std::optional<weft_policy_val>> PolicyOf(const std::string& maps_dir, const weft_policy_key& key) {
  return LookupOne<weft_policy_key, weft_policy_val>(maps_dir, WEFT_MAP_POLICY, "weft_policy_key", "weft_policy_val",
                                                     key);
}

Result<std::pair<uint64_t, uint64_t>> EventStats(const std::string& maps_dir) {
  auto m = Open(maps_dir, WEFT_MAP_EVENT_STATS, sizeof(uint32_t), "__u32", sizeof(uint64_t), "__u64");
  if (!m.ok()) return m.status();
  std::vector<uint8_t> buf(ValueBufferSize(*m));
  uint64_t v[2] = {0, 0};
  const int ncpus = m->percpu() ? static_cast<int>(buf.size() / 8) : 1;
  for (uint32_t i : {uint32_t{WEFT_EVSTAT_SENT}, uint32_t{WEFT_EVSTAT_LOST}}) {
    auto h = LookupElem(*m, &i, buf.data());
    if (!h.ok()) return h.status();
    if (*h) v[i] = SumPerCpuU64(buf, ncpus, 8, 8)[0];
  }
  return std::pair<uint64_t, uint64_t>{v[0], v[1]};
}

}  // namespace weft::cli::bpf
