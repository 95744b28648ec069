// Lookups over compiled NodeConfigs shared by the compiler tests.
#pragma once

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>

#include "controller/compiler.hpp"
#include "controller/store.hpp"
#include "weft/ip.hpp"

namespace weft::controller::testing {

inline const v1::Service& FindService(const v1::NodeConfig& c, const std::string& key) {
  for (const auto& s : c.services()) {
    if (s.namespace_() + "/" + s.name() == key) return s;
  }
  throw std::runtime_error("no service " + key);
}

inline bool HasService(const v1::NodeConfig& c, const std::string& key) {
  for (const auto& s : c.services()) {
    if (s.namespace_() + "/" + s.name() == key) return true;
  }
  return false;
}

inline std::string AddrText(const std::string& bytes) {
  uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (bytes.size() == 4) {
    std::copy(bytes.begin(), bytes.end(), b + 12);
  } else if (bytes.size() == 16) {
    std::copy(bytes.begin(), bytes.end(), b);
  } else {
    return "<" + std::to_string(bytes.size()) + " bytes>";
  }
  return IpAddr::FromBytes(b).ToString();
}

// The first port (any VIP of the given family) with this number.
inline const v1::ServicePort& FindPort(const v1::Service& s, uint32_t port, bool v4 = true,
                                       v1::Protocol proto = v1::TCP) {
  for (const auto& p : s.ports()) {
    if (p.port() == port && (p.vip().size() == 4) == v4 && p.protocol() == proto) return p;
  }
  throw std::runtime_error("no port " + std::to_string(port) + " in " + s.name());
}

// workload (or address:port when the backend has no workload) -> weight
inline std::map<std::string, uint32_t> Weights(const v1::ServicePort& p) {
  std::map<std::string, uint32_t> out;
  for (const auto& b : p.backends()) {
    std::string k = b.workload().empty() ? AddrText(b.address()) + ":" + std::to_string(b.port()) : b.workload();
    out[k] += b.weight();
  }
  return out;
}

// A NodeConfig as keyed tables (what the agent keeps).
struct KeyedConfig {
  std::map<std::string, v1::Service> services;
  std::map<std::string, v1::Workload> workloads;
  std::map<std::pair<std::string, uint32_t>, v1::IdentityCacheEntry> cache;
  std::map<uint32_t, v1::IdentityInfo> identities;
  std::map<uint32_t, v1::PolicyName> names;
};

inline KeyedConfig Keyed(const v1::NodeConfig& c) {
  KeyedConfig k;
  for (const auto& s : c.services()) k.services[s.namespace_() + "/" + s.name()] = s;
  for (const auto& w : c.local_workloads()) k.workloads[w.namespace_() + "/" + w.name()] = w;
  for (const auto& e : c.identity_cache()) k.cache[{e.prefix(), e.prefix_len()}] = e;
  for (const auto& i : c.identities()) k.identities[i.id()] = i;
  for (const auto& n : c.policy_names()) k.names[n.id()] = n;
  return k;
}

// The agent's side of a delta: removals, then upserts, by key.
inline void ApplyDelta(const v1::NodeConfigDelta& d, v1::NodeConfig* c) {
  KeyedConfig k = Keyed(*c);
  for (const auto& key : d.removed_services()) k.services.erase(key);
  for (const auto& s : d.upserted_services()) k.services[s.namespace_() + "/" + s.name()] = s;
  for (const auto& key : d.removed_workloads()) k.workloads.erase(key);
  for (const auto& w : d.upserted_workloads()) k.workloads[w.namespace_() + "/" + w.name()] = w;
  for (const auto& e : d.removed_identity_cache()) k.cache.erase({e.prefix(), e.prefix_len()});
  for (const auto& e : d.upserted_identity_cache()) k.cache[{e.prefix(), e.prefix_len()}] = e;
  for (uint32_t id : d.removed_identities()) k.identities.erase(id);
  for (const auto& i : d.upserted_identities()) k.identities[i.id()] = i;
  for (uint32_t id : d.removed_policy_names()) k.names.erase(id);
  for (const auto& n : d.upserted_policy_names()) k.names[n.id()] = n;
  c->Clear();
  for (const auto& [key, s] : k.services) *c->add_services() = s;
  for (const auto& [key, w] : k.workloads) *c->add_local_workloads() = w;
  for (const auto& [key, e] : k.cache) *c->add_identity_cache() = e;
  for (const auto& [key, i] : k.identities) *c->add_identities() = i;
  for (const auto& [key, n] : k.names) *c->add_policy_names() = n;
}

template <typename Map>
bool SameMap(const Map& a, const Map& b) {
  if (a.size() != b.size()) return false;
  for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
    if (i->first != j->first || !google::protobuf::util::MessageDifferencer::Equals(i->second, j->second)) return false;
  }
  return true;
}

// Equal as keyed tables (order of repeated fields aside).
inline void ExpectSameConfig(const v1::NodeConfig& got, const v1::NodeConfig& want, const std::string& where) {
  KeyedConfig a = Keyed(got), b = Keyed(want);
  EXPECT_TRUE(SameMap(a.services, b.services)) << where << ": services";
  EXPECT_TRUE(SameMap(a.workloads, b.workloads)) << where << ": workloads";
  EXPECT_TRUE(SameMap(a.cache, b.cache)) << where << ": identity cache";
  EXPECT_TRUE(SameMap(a.identities, b.identities)) << where << ": identities";
  EXPECT_TRUE(SameMap(a.names, b.names)) << where << ": policy names";
}

// The mesh-wide table keys that differ between two configs, and those a ChangeSet names.
using TableKeys = std::tuple<std::set<std::pair<std::string, uint32_t>>, std::set<uint32_t>, std::set<uint32_t>>;

template <typename Map>
void DiffKeys(const Map& a, const Map& b, std::set<typename Map::key_type>* out) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !google::protobuf::util::MessageDifferencer::Equals(v, it->second)) out->insert(k);
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) out->insert(k);
  }
}

inline TableKeys TableDiff(const v1::NodeConfig& before, const v1::NodeConfig& after) {
  KeyedConfig a = Keyed(before), b = Keyed(after);
  TableKeys out;
  DiffKeys(a.cache, b.cache, &std::get<0>(out));
  DiffKeys(a.identities, b.identities, &std::get<1>(out));
  DiffKeys(a.names, b.names, &std::get<2>(out));
  return out;
}

inline TableKeys TableChanges(const ChangeSet& cs) {
  TableKeys out;
  for (const auto& pk : cs.tables.identity_cache) {
    const auto& b = pk.addr.bytes();
    std::string bytes = pk.v6 ? std::string(reinterpret_cast<const char*>(b.data()), 16)
                              : std::string(reinterpret_cast<const char*>(b.data() + 12), 4);
    std::get<0>(out).insert({bytes, static_cast<uint32_t>(pk.len)});
  }
  std::get<1>(out) = cs.tables.identities;
  std::get<2>(out) = cs.tables.policy_names;
  return out;
}

// StateStore in memory: copy it to "restart" a compiler from the same state.
class MemoryStateStore : public StateStore {
 public:
  Result<std::map<std::string, std::string>> LoadState(const std::string& prefix) const override {
    std::map<std::string, std::string> out;
    for (auto it = records.lower_bound(prefix); it != records.end() && it->first.starts_with(prefix); ++it)
      out.insert(*it);
    return out;
  }
  Status WriteState(const std::map<std::string, std::optional<std::string>>& batch) override {
    ++writes;
    for (const auto& [k, v] : batch) {
      if (v) {
        records[k] = *v;
      } else {
        records.erase(k);
      }
    }
    return Status::Ok();
  }
  std::map<std::string, std::string> records;
  int writes = 0;
};

}  // namespace weft::controller::testing
