#include "agent/reconcile.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/lb/maglev.hpp"
#include "agent/lb/random_slots.hpp"

namespace weft::agent {
namespace {

using datapath::BytesEqual;
using datapath::MapState;

// Lowest ids >= 1 not in use, below `limit`.
class IdAllocator {
 public:
  IdAllocator(std::set<uint32_t> used, uint32_t limit) : used_(std::move(used)), limit_(limit) {}
  std::optional<uint32_t> Next() {
    while (next_ < limit_ && used_.count(next_) != 0) ++next_;
    if (next_ >= limit_) return std::nullopt;
    return next_++;
  }

 private:
  std::set<uint32_t> used_;
  uint32_t limit_;
  uint32_t next_ = 1;
};

// The full desired content of the maps plus what it takes to get there.
struct Plan {
  MapState maps;
  std::vector<uint32_t> new_service_ids;
  std::vector<uint32_t> new_backend_ids;
  size_t services_changed = 0;
};

std::string Describe(const weft_svc_key& key, const lb::ServiceEntry& entry) {
  IpAddr vip = IpAddr::FromBytes(key.addr);
  std::string host = vip.is_v4() ? vip.ToString() : "[" + vip.ToString() + "]";
  return "service " + entry.name + " (" + host + ":" + std::to_string(ntohs(key.port)) + "/" +
         (key.proto == IPPROTO_UDP ? "UDP" : "TCP") + ")";
}

using BackendAddr = std::pair<std::array<uint8_t, 16>, uint16_t>;  // address, port (network order)

class BackendIds {
 public:
  BackendIds(const MapState& live, uint32_t limit) : alloc_(UsedIds(live), limit) {
    for (const auto& [id, be] : live.backends) ids_.emplace(Key(be), id);  // lowest id wins
  }
  // The id of an address, allocating one if needed; nullopt when ids run out.
  std::optional<uint32_t> Get(const lb::Backend& b, Plan& plan) {
    weft_backend be{};
    b.addr.CopyTo(be.addr);
    be.port = htons(b.port);
    auto [it, inserted] = ids_.emplace(Key(be), 0);
    if (inserted) {
      auto id = alloc_.Next();
      if (!id) {
        ids_.erase(it);
        return std::nullopt;
      }
      it->second = *id;
      plan.new_backend_ids.push_back(*id);
    }
    plan.maps.backends[it->second] = be;
    return it->second;
  }

 private:
  static BackendAddr Key(const weft_backend& be) {
    BackendAddr key{{}, be.port};
    std::copy(std::begin(be.addr), std::end(be.addr), key.first.begin());
    return key;
  }
  static std::set<uint32_t> UsedIds(const MapState& live) {
    std::set<uint32_t> used;
    for (const auto& kv : live.backends) used.insert(kv.first);
    return used;
  }
  std::map<BackendAddr, uint32_t> ids_;
  IdAllocator alloc_;
};

Result<std::vector<uint32_t>> BuildSlots(const weft_svc_key& key, const lb::ServiceEntry& entry,
                                         const std::vector<lb::WeightedBackend>& backends) {
  if (entry.algo == WEFT_LB_MAGLEV) {
    if (!lb::IsPrime(entry.maglev_table_size) || entry.maglev_table_size > WEFT_MAGLEV_MAX_SIZE) {
      return Status::Error(Describe(key, entry) + ": Maglev table size " +
                               std::to_string(entry.maglev_table_size) + " is not a prime <= " +
                               std::to_string(WEFT_MAGLEV_MAX_SIZE),
                           EINVAL);
    }
    return lb::BuildMaglevTable(backends, entry.maglev_table_size);
  }
  if (entry.algo != WEFT_LB_RANDOM) {
    return Status::Error(Describe(key, entry) + ": unknown LB algorithm " + std::to_string(entry.algo), EINVAL);
  }
  std::vector<uint32_t> slots = lb::BuildRandomSlots(backends);
  if (slots.size() > WEFT_MAX_RANDOM_SLOTS) {
    return Status::Error(Describe(key, entry) + ": " + std::to_string(backends.size()) +
                             " backends exceed the " + std::to_string(WEFT_MAX_RANDOM_SLOTS) +
                             " random slots; use Maglev",
                         E2BIG);
  }
  return slots;
}

// Whether the live maps already hold exactly these slots under the live gen.
bool SameSlots(const MapState& live, const weft_svc_val& val, const std::vector<uint32_t>& slots) {
  if (val.slot_count != slots.size()) return false;
  for (size_t i = 0; i < slots.size(); ++i) {
    auto it = live.slots.find(weft_slot_key{val.svc_id, val.gen, static_cast<uint16_t>(i)});
    if (it == live.slots.end() || it->second != slots[i]) return false;
  }
  return true;
}

Result<Plan> MakePlan(const MapState& live, const lb::DesiredState& desired, const ReconcileLimits& limits) {
  Plan plan;
  BackendIds backend_ids(live, limits.max_backends);
  std::set<uint32_t> used_service_ids;
  for (const auto& kv : live.services) used_service_ids.insert(kv.second.svc_id);
  IdAllocator service_ids(std::move(used_service_ids), limits.max_services);

  for (const auto& [key, entry] : desired.services) {
    std::vector<lb::WeightedBackend> backends;
    for (const auto& b : entry.backends) {
      if (b.weight == 0) continue;
      auto id = backend_ids.Get(b, plan);
      if (!id) {
        return Status::Error("backend ids exhausted: more than " + std::to_string(limits.max_backends - 1) +
                                 " distinct backends (at " + Describe(key, entry) + ")",
                             ENOSPC);
      }
      backends.push_back({b.StableName(), *id, b.weight});
    }
    auto slots = BuildSlots(key, entry, backends);
    if (!slots.ok()) return slots.status();

    weft_svc_val val{};
    val.slot_count = static_cast<uint16_t>(slots->size());
    val.algo = static_cast<uint8_t>(entry.algo);
    val.flags = entry.flags;
    auto live_it = live.services.find(key);
    if (live_it != live.services.end()) {
      const weft_svc_val& cur = live_it->second;
      val.svc_id = cur.svc_id;
      val.gen = SameSlots(live, cur, *slots) ? cur.gen : static_cast<uint16_t>(cur.gen + 1);
    } else {
      auto id = service_ids.Next();
      if (!id) {
        return Status::Error("service ids exhausted: more than " + std::to_string(limits.max_services - 1) +
                                 " services (at " + Describe(key, entry) + ")",
                             ENOSPC);
      }
      val.svc_id = *id;
      plan.new_service_ids.push_back(*id);
    }
    if (live_it == live.services.end() || !BytesEqual(val, live_it->second)) ++plan.services_changed;
    plan.maps.services.emplace(key, val);
    for (size_t i = 0; i < slots->size(); ++i) {
      plan.maps.slots.emplace(weft_slot_key{val.svc_id, val.gen, static_cast<uint16_t>(i)}, (*slots)[i]);
    }
  }
  for (const auto& kv : live.services) {
    if (!plan.maps.services.count(kv.first)) ++plan.services_changed;
  }

  // Old and new generations coexist between steps 2 and 5.
  size_t peak_slots = live.slots.size();
  for (const auto& kv : plan.maps.slots) peak_slots += live.slots.count(kv.first) ? 0 : 1;
  if (peak_slots > limits.max_slots) {
    return Status::Error("slots exhausted: the update needs " + std::to_string(peak_slots) +
                             " slot entries, the map holds " + std::to_string(limits.max_slots),
                         ENOSPC);
  }
  return plan;
}

// Entries of `desired` that `live` lacks or holds with another value.
template <typename Map>
std::vector<std::pair<typename Map::key_type, typename Map::mapped_type>> Upserts(const Map& desired,
                                                                                   const Map& live) {
  std::vector<std::pair<typename Map::key_type, typename Map::mapped_type>> out;
  for (const auto& kv : desired) {
    auto it = live.find(kv.first);
    if (it == live.end() || !BytesEqual(it->second, kv.second)) out.emplace_back(kv.first, kv.second);
  }
  return out;
}

// Keys of `live` that `desired` lacks.
template <typename Map>
std::vector<typename Map::key_type> Deletes(const Map& desired, const Map& live) {
  std::vector<typename Map::key_type> out;
  for (const auto& kv : live) {
    if (!desired.count(kv.first)) out.push_back(kv.first);
  }
  return out;
}

// One step: skipped when empty; on success the mirror follows the kernel.
template <typename Map, typename Kv>
Status UpsertStep(const char* step, const std::vector<Kv>& kv, Map& mirror, size_t& counter,
                  Status (datapath::MapWriter::*call)(const std::vector<Kv>&), datapath::MapWriter& writer) {
  if (kv.empty()) return Status::Ok();
  if (Status st = (writer.*call)(kv); !st.ok()) return st.Wrap(step);
  for (const auto& [k, v] : kv) mirror[k] = v;
  counter += kv.size();
  return Status::Ok();
}

template <typename Map, typename Key>
Status DeleteStep(const char* step, const std::vector<Key>& keys, Map& mirror, size_t& counter,
                  Status (datapath::MapWriter::*call)(const std::vector<Key>&), datapath::MapWriter& writer) {
  if (keys.empty()) return Status::Ok();
  if (Status st = (writer.*call)(keys); !st.ok()) return st.Wrap(step);
  for (const auto& k : keys) mirror.erase(k);
  counter += keys.size();
  return Status::Ok();
}

}  // namespace

size_t ReconcileStats::entries_written() const {
  return services.upserted + services.deleted + backends.upserted + backends.deleted + slots.upserted +
         slots.deleted;
}

Reconciler::Reconciler(datapath::MapWriter& writer, ReconcileLimits limits)
    : writer_(writer), limits_(limits) {}

Status Reconciler::Adopt() {
  auto state = writer_.ReadAll();
  if (!state.ok()) return state.status().Wrap("adopt live maps");
  live_ = std::move(*state);
  adopted_ = true;
  return Status::Ok();
}

Result<ReconcileStats> Reconciler::Apply(const lb::DesiredState& desired) {
  if (!adopted_) WEFT_RETURN_IF_ERROR(Adopt().Wrap("reconcile"));
  auto plan = MakePlan(live_, desired, limits_);
  if (!plan.ok()) return plan.status().Wrap("reconcile");
  const MapState& want = plan->maps;
  auto backend_upserts = Upserts(want.backends, live_.backends);
  auto slot_upserts = Upserts(want.slots, live_.slots);
  auto service_upserts = Upserts(want.services, live_.services);
  auto service_deletes = Deletes(want.services, live_.services);
  auto slot_deletes = Deletes(want.slots, live_.slots);
  auto backend_deletes = Deletes(want.backends, live_.backends);

  ReconcileStats stats;
  stats.services_changed = plan->services_changed;
  using W = datapath::MapWriter;
  Status st = [&]() -> Status {
    if (!plan->new_backend_ids.empty()) {
      WEFT_RETURN_IF_ERROR(writer_.ResetBackendStats(plan->new_backend_ids).Wrap("reset backend stats"));
      stats.backend_stats_reset = plan->new_backend_ids.size();
    }
    if (!plan->new_service_ids.empty()) {
      WEFT_RETURN_IF_ERROR(writer_.ResetServiceStats(plan->new_service_ids).Wrap("reset service stats"));
      stats.service_stats_reset = plan->new_service_ids.size();
    }
    WEFT_RETURN_IF_ERROR(UpsertStep("upsert backends", backend_upserts, live_.backends, stats.backends.upserted,
                                    &W::UpsertBackends, writer_));
    WEFT_RETURN_IF_ERROR(UpsertStep("upsert slots", slot_upserts, live_.slots, stats.slots.upserted,
                                    &W::UpsertSlots, writer_));
    WEFT_RETURN_IF_ERROR(UpsertStep("upsert services", service_upserts, live_.services,
                                    stats.services.upserted, &W::UpsertServices, writer_));
    WEFT_RETURN_IF_ERROR(DeleteStep("delete services", service_deletes, live_.services,
                                    stats.services.deleted, &W::DeleteServices, writer_));
    WEFT_RETURN_IF_ERROR(DeleteStep("delete slots", slot_deletes, live_.slots, stats.slots.deleted,
                                    &W::DeleteSlots, writer_));
    return DeleteStep("delete backends", backend_deletes, live_.backends, stats.backends.deleted,
                      &W::DeleteBackends, writer_);
  }();
  if (!st.ok()) {
    adopted_ = false;  // re-read the maps before the next Apply, whatever the failed call left
    return st.Wrap("reconcile");
  }
  return stats;
}

}  // namespace weft::agent
