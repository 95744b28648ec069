#include "agent/reconcile.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
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

// Everything one Apply writes, in the order it is written.
struct Writes {
  std::vector<uint32_t> new_backend_ids;
  std::vector<uint32_t> new_service_ids;
  std::vector<std::pair<uint32_t, weft_backend>> backend_upserts;
  std::vector<std::pair<weft_slot_key, uint32_t>> slot_upserts;
  std::vector<std::pair<weft_svc_key, weft_svc_val>> service_upserts;
  std::vector<weft_svc_key> service_deletes;
  std::vector<weft_slot_key> slot_deletes;
  std::vector<uint32_t> backend_deletes;
};

// Writes `w` in the safe order (see the header); the mirror follows each step.
Status Execute(const Writes& w, datapath::MapWriter& writer, MapState& live, ReconcileStats& stats) {
  using W = datapath::MapWriter;
  if (!w.new_backend_ids.empty()) {
    WEFT_RETURN_IF_ERROR(writer.ResetBackendStats(w.new_backend_ids).Wrap("reset backend stats"));
    stats.backend_stats_reset = w.new_backend_ids.size();
  }
  if (!w.new_service_ids.empty()) {
    WEFT_RETURN_IF_ERROR(writer.ResetServiceStats(w.new_service_ids).Wrap("reset service stats"));
    stats.service_stats_reset = w.new_service_ids.size();
  }
  WEFT_RETURN_IF_ERROR(UpsertStep("upsert backends", w.backend_upserts, live.backends, stats.backends.upserted,
                                  &W::UpsertBackends, writer));
  WEFT_RETURN_IF_ERROR(
      UpsertStep("upsert slots", w.slot_upserts, live.slots, stats.slots.upserted, &W::UpsertSlots, writer));
  WEFT_RETURN_IF_ERROR(UpsertStep("upsert services", w.service_upserts, live.services, stats.services.upserted,
                                  &W::UpsertServices, writer));
  WEFT_RETURN_IF_ERROR(DeleteStep("delete services", w.service_deletes, live.services, stats.services.deleted,
                                  &W::DeleteServices, writer));
  WEFT_RETURN_IF_ERROR(
      DeleteStep("delete slots", w.slot_deletes, live.slots, stats.slots.deleted, &W::DeleteSlots, writer));
  return DeleteStep("delete backends", w.backend_deletes, live.backends, stats.backends.deleted,
                    &W::DeleteBackends, writer);
}

bool SameEntry(const lb::ServiceEntry& a, const lb::ServiceEntry& b) {
  return a.algo == b.algo && a.flags == b.flags && a.maglev_table_size == b.maglev_table_size &&
         a.backends == b.backends && a.name == b.name;
}

// Distinct backend ids in the slots of a live service entry.
std::vector<uint32_t> BackendsOf(const MapState& live, const weft_svc_val& val) {
  std::set<uint32_t> ids;
  for (uint16_t i = 0; i < val.slot_count; ++i) {
    auto it = live.slots.find(weft_slot_key{val.svc_id, val.gen, i});
    if (it != live.slots.end()) ids.insert(it->second);
  }
  return {ids.begin(), ids.end()};
}

}  // namespace

size_t ReconcileStats::entries_written() const {
  return services.upserted + services.deleted + backends.upserted + backends.deleted + slots.upserted +
         slots.deleted;
}

Reconciler::Reconciler(datapath::MapWriter& writer, ReconcileLimits limits)
    : writer_(writer), limits_(limits) {}

Status Reconciler::Adopt() {
  record_.reset();
  auto state = writer_.ReadAll();
  if (!state.ok()) return state.status().Wrap("adopt live maps");
  live_ = std::move(*state);
  adopted_ = true;
  return Status::Ok();
}

Result<ReconcileStats> Reconciler::Apply(const lb::DesiredState& desired) {
  if (!adopted_) WEFT_RETURN_IF_ERROR(Adopt().Wrap("reconcile"));
  // A plan error writes nothing and keeps the mirror and the record; a failed
  // write (Execute) clears adopted_ and the record.
  auto stats = record_ ? ApplyIncremental(desired) : ApplyFull(desired);
  if (!stats.ok()) return stats.status().Wrap("reconcile");
  return stats;
}

Result<ReconcileStats> Reconciler::ApplyFull(const lb::DesiredState& desired) {
  auto plan = MakePlan(live_, desired, limits_);
  if (!plan.ok()) return plan.status();
  const MapState& want = plan->maps;
  Writes w;
  w.new_backend_ids = std::move(plan->new_backend_ids);
  w.new_service_ids = std::move(plan->new_service_ids);
  w.backend_upserts = Upserts(want.backends, live_.backends);
  w.slot_upserts = Upserts(want.slots, live_.slots);
  w.service_upserts = Upserts(want.services, live_.services);
  w.service_deletes = Deletes(want.services, live_.services);
  w.slot_deletes = Deletes(want.slots, live_.slots);
  w.backend_deletes = Deletes(want.backends, live_.backends);
  ReconcileStats stats;
  stats.services_changed = plan->services_changed;
  if (Status st = Execute(w, writer_, live_, stats); !st.ok()) {
    adopted_ = false;  // re-read the maps before the next Apply, whatever the failed call left
    return st;
  }
  Remember(desired);
  return stats;
}

void Reconciler::Remember(const lb::DesiredState& desired) {
  Record r;
  r.entries = desired.services;
  for (const auto& [key, val] : live_.services) {
    auto ids = BackendsOf(live_, val);
    for (uint32_t id : ids) ++r.refs[id];
    r.backends_of.emplace(key, std::move(ids));
  }
  for (const auto& kv : live_.services) r.service_ids.insert(kv.second.svc_id);
  for (const auto& [id, be] : live_.backends) {
    BackendAddr a{{}, be.port};
    std::copy(std::begin(be.addr), std::end(be.addr), a.first.begin());
    r.id_of.emplace(a, id);
  }
  record_ = std::move(r);
}

Result<ReconcileStats> Reconciler::ApplyIncremental(const lb::DesiredState& desired) {
  Record& rec = *record_;
  // 1. What changed: one ordered walk over both maps (same key order).
  std::vector<std::pair<const weft_svc_key*, const lb::ServiceEntry*>> changed;  // new or different
  std::vector<weft_svc_key> removed;
  {
    lb::ServiceKeyLess less;
    auto d = desired.services.begin();
    auto r = rec.entries.begin();
    while (d != desired.services.end() || r != rec.entries.end()) {
      if (r == rec.entries.end() || (d != desired.services.end() && less(d->first, r->first))) {
        changed.emplace_back(&d->first, &d->second);
        ++d;
      } else if (d == desired.services.end() || less(r->first, d->first)) {
        removed.push_back(r->first);
        ++r;
      } else {
        if (!SameEntry(d->second, r->second)) changed.emplace_back(&d->first, &d->second);
        ++d;
        ++r;
      }
    }
  }
  ReconcileStats stats;
  stats.incremental = true;
  if (changed.empty() && removed.empty()) return stats;

  // 2. Plan only those services. Nothing is written (and no record changes)
  // until the whole plan stands.
  Writes w;
  std::map<uint32_t, int64_t> ref_delta;                     // backend id -> change of its refs
  std::map<BackendAddr, uint32_t> new_ids;                   // addresses given an id in this Apply
  std::map<weft_svc_key, std::vector<uint32_t>, lb::ServiceKeyLess> new_backends_of;
  // Lowest free ids from the record's hints; ids freed by this Apply are
  // still in the mirror while allocating, so they are not reused in it.
  uint32_t backend_next = rec.backend_hint, service_next = rec.service_hint;
  std::set<uint32_t> new_service_ids;
  auto next_backend_id = [&]() -> std::optional<uint32_t> {
    while (backend_next < limits_.max_backends && live_.backends.count(backend_next)) ++backend_next;
    if (backend_next >= limits_.max_backends) return std::nullopt;
    return backend_next++;
  };
  auto next_service_id = [&]() -> std::optional<uint32_t> {
    while (service_next < limits_.max_services && rec.service_ids.count(service_next)) ++service_next;
    if (service_next >= limits_.max_services) return std::nullopt;
    new_service_ids.insert(service_next);
    return service_next++;
  };
  size_t new_slot_entries = 0;
  for (const auto& [keyp, entryp] : changed) {
    const weft_svc_key& key = *keyp;
    const lb::ServiceEntry& entry = *entryp;
    std::vector<lb::WeightedBackend> backends;
    std::set<uint32_t> ids;
    for (const auto& b : entry.backends) {
      if (b.weight == 0) continue;
      weft_backend be{};
      b.addr.CopyTo(be.addr);
      be.port = htons(b.port);
      BackendAddr a{{}, be.port};
      std::copy(std::begin(be.addr), std::end(be.addr), a.first.begin());
      uint32_t id;
      if (auto it = rec.id_of.find(a); it != rec.id_of.end()) {
        id = it->second;
      } else if (auto n = new_ids.find(a); n != new_ids.end()) {
        id = n->second;
      } else {
        auto next = next_backend_id();
        if (!next)
          return Status::Error("backend ids exhausted: more than " + std::to_string(limits_.max_backends - 1) +
                                   " distinct backends (at " + Describe(key, entry) + ")",
                               ENOSPC);
        id = *next;
        new_ids.emplace(a, id);
        ref_delta.emplace(id, 0);  // so that an id no slot uses is found unused below
        w.new_backend_ids.push_back(id);
        w.backend_upserts.emplace_back(id, be);
      }
      backends.push_back({b.StableName(), id, b.weight});
    }
    auto slots = BuildSlots(key, entry, backends);
    if (!slots.ok()) return slots.status();
    ids = std::set<uint32_t>(slots->begin(), slots->end());  // what the slots reference, as Remember counts

    weft_svc_val val{};
    val.slot_count = static_cast<uint16_t>(slots->size());
    val.algo = static_cast<uint8_t>(entry.algo);
    val.flags = entry.flags;
    auto live_it = live_.services.find(key);
    bool new_gen = true;
    if (live_it != live_.services.end()) {
      const weft_svc_val& cur = live_it->second;
      val.svc_id = cur.svc_id;
      new_gen = !SameSlots(live_, cur, *slots);
      val.gen = new_gen ? static_cast<uint16_t>(cur.gen + 1) : cur.gen;
      if (new_gen)
        for (uint16_t i = 0; i < cur.slot_count; ++i) w.slot_deletes.push_back(weft_slot_key{cur.svc_id, cur.gen, i});
    } else {
      auto id = next_service_id();
      if (!id)
        return Status::Error("service ids exhausted: more than " + std::to_string(limits_.max_services - 1) +
                                 " services (at " + Describe(key, entry) + ")",
                             ENOSPC);
      val.svc_id = *id;
      w.new_service_ids.push_back(*id);
    }
    if (live_it == live_.services.end() || !BytesEqual(val, live_it->second)) {
      ++stats.services_changed;
      w.service_upserts.emplace_back(key, val);
    }
    if (new_gen) {
      for (size_t i = 0; i < slots->size(); ++i)
        w.slot_upserts.emplace_back(weft_slot_key{val.svc_id, val.gen, static_cast<uint16_t>(i)}, (*slots)[i]);
      new_slot_entries += slots->size();
    }
    if (auto old = rec.backends_of.find(key); old != rec.backends_of.end())
      for (uint32_t id : old->second) --ref_delta[id];
    for (uint32_t id : ids) ++ref_delta[id];
    new_backends_of[key] = std::vector<uint32_t>(ids.begin(), ids.end());
  }
  std::vector<uint32_t> freed_service_ids;
  for (const auto& key : removed) {
    auto live_it = live_.services.find(key);
    if (live_it == live_.services.end()) continue;  // never written (cannot happen while the record holds)
    const weft_svc_val& cur = live_it->second;
    ++stats.services_changed;
    w.service_deletes.push_back(key);
    freed_service_ids.push_back(cur.svc_id);
    for (uint16_t i = 0; i < cur.slot_count; ++i) w.slot_deletes.push_back(weft_slot_key{cur.svc_id, cur.gen, i});
    if (auto old = rec.backends_of.find(key); old != rec.backends_of.end())
      for (uint32_t id : old->second) --ref_delta[id];
  }
  std::set<uint32_t> unused;  // ids no service references after this Apply
  for (const auto& [id, d] : ref_delta) {
    auto it = rec.refs.find(id);
    if ((it == rec.refs.end() ? 0 : it->second) + d <= 0) unused.insert(id);
  }
  for (uint32_t id : unused)
    if (live_.backends.count(id)) w.backend_deletes.push_back(id);
  // An id handed out above that no slot ended up using is not written at all.
  auto drop_unused = [&](auto& v, auto id_of) {
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& x) { return unused.count(id_of(x)) != 0; }), v.end());
  };
  drop_unused(w.new_backend_ids, [](uint32_t id) { return id; });
  drop_unused(w.backend_upserts, [](const std::pair<uint32_t, weft_backend>& kv) { return kv.first; });
  for (auto it = new_ids.begin(); it != new_ids.end();)
    it = unused.count(it->second) ? new_ids.erase(it) : std::next(it);
  // Addresses of the backends to delete, for the record (read before the mirror drops them).
  std::vector<BackendAddr> deleted_addrs;
  for (uint32_t id : w.backend_deletes) {
    const weft_backend& be = live_.backends.at(id);
    BackendAddr a{{}, be.port};
    std::copy(std::begin(be.addr), std::end(be.addr), a.first.begin());
    deleted_addrs.push_back(a);
  }
  // Old and new generations coexist between the slot upserts and deletes.
  if (live_.slots.size() + new_slot_entries > limits_.max_slots)
    return Status::Error("slots exhausted: the update needs " + std::to_string(live_.slots.size() + new_slot_entries) +
                             " slot entries, the map holds " + std::to_string(limits_.max_slots),
                         ENOSPC);

  // 3. Write, then bring the record up to date.
  if (Status st = Execute(w, writer_, live_, stats); !st.ok()) {
    adopted_ = false;  // re-read the maps before the next Apply, whatever the failed call left
    record_.reset();
    return st;
  }
  for (const auto& [keyp, entryp] : changed) rec.entries[*keyp] = *entryp;
  for (const auto& key : removed) {
    rec.entries.erase(key);
    rec.backends_of.erase(key);
  }
  for (auto& [key, ids] : new_backends_of) rec.backends_of[key] = std::move(ids);
  for (const auto& [id, d] : ref_delta) {
    int64_t now = static_cast<int64_t>(rec.refs[id]) + d;
    if (now <= 0) rec.refs.erase(id);
    else rec.refs[id] = static_cast<uint32_t>(now);
  }
  for (const auto& a : deleted_addrs) rec.id_of.erase(a);
  for (const auto& [a, id] : new_ids) rec.id_of.emplace(a, id);
  rec.service_ids.insert(new_service_ids.begin(), new_service_ids.end());
  rec.service_hint = service_next;
  for (uint32_t id : freed_service_ids) {
    rec.service_ids.erase(id);
    rec.service_hint = std::min(rec.service_hint, id);
  }
  rec.backend_hint = backend_next;
  for (uint32_t id : unused) rec.backend_hint = std::min(rec.backend_hint, id);  // deleted, or handed out unused
  return stats;
}

}  // namespace weft::agent
