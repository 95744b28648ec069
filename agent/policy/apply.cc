#include "agent/policy/apply.hpp"

#include <spdlog/spdlog.h>

namespace weft::policy {

PolicyApplier::PolicyApplier(PolicyMapWriter& maps, PolicyLinks& links, RouteLookup route, NamesFile names)
    : reconciler_(maps, links), route_(std::move(route)), names_file_(std::move(names)) {}

size_t PolicyApplier::unplaced_count() const {
  size_t n = 0;
  for (const auto& [name, u] : placed_.unplaced) n += u.no_interface ? 1 : 0;
  return n;
}

std::shared_ptr<const PolicyNames> PolicyApplier::names() const {
  std::lock_guard lk(names_mu_);
  return names_;
}

Status PolicyApplier::Apply(const PolicyDesired& desired, const PolicyChange& change, uint64_t version) {
  if (change.full || !last_ok_ || has_unplaced()) return ApplyFull(desired, version);
  last_ok_ = false;
  auto w = reconciler_.ApplyIdentity(change.identity_keys, desired.identity);
  if (!w.ok()) return w.status();
  last_ok_ = true;
  version_ = version;
  // Names (identities, policies, endpoints) did not change: names.json and the
  // metrics' names stay as they are.
  spdlog::debug("policy: applied version {} (identity cache only): +{} -{}; {} map writes", version,
                w->identity_upserted, w->identity_deleted, w->map_writes());
  return Status::Ok();
}

Status PolicyApplier::Refresh(const PolicyDesired& desired) { return ApplyFull(desired, version_); }

Status PolicyApplier::ApplyFull(const PolicyDesired& desired, uint64_t version) {
  last_ok_ = false;
  // Ids are kept by interface from the maps: the mirror must be current.
  if (!reconciler_.adopted()) WEFT_RETURN_IF_ERROR(reconciler_.Adopt());
  PlacementResult placed = PlaceEndpoints(desired, route_, reconciler_.live().endpoints, placed_.placement);
  for (const auto& [name, u] : placed.unplaced) {
    auto it = placed_.unplaced.find(name);
    if (it == placed_.unplaced.end() || it->second.why != u.why) spdlog::warn("policy: workload {}: {}", name, u.why);
  }
  for (const auto& s : placed.endpoints)
    if (placed_.unplaced.count(s.workload) && !placed.unplaced.count(s.workload))
      spdlog::info("policy: workload {} is placed now (interface {})", s.workload, s.ifname);
  for (const auto& [key, msg] : placed.notes)
    if (!placed_.notes.count(key)) spdlog::warn("policy: {}", msg);

  auto w = reconciler_.Apply(ToKernel(desired, placed.placement));
  if (!w.ok()) return w.status();
  bool unplaced_changed = placed.unplaced.size() != placed_.unplaced.size();
  for (const auto& [name, u] : placed.unplaced) unplaced_changed |= !placed_.unplaced.count(name);
  placed_ = std::move(placed);
  unplaced_addresses_ = UnplacedAddresses(desired, placed_);
  unplaced_gauge_.store(unplaced_count(), std::memory_order_relaxed);
  version_ = version;
  {
    auto n = std::make_shared<PolicyNames>();
    n->identities = desired.identities;
    n->policy_names = desired.policy_names;
    std::lock_guard lk(names_mu_);
    names_ = std::move(n);
  }
  last_ok_ = true;
  // Logged when something changed: a Refresh that finds nothing new is silent.
  const auto& live = reconciler_.live();
  if (w->map_writes() > 0 || unplaced_changed)
    spdlog::info("policy: applied version {}: {} endpoints ({} without interface), {} policy entries, {} identity "
                 "entries; {} map writes, revision {}",
                 version, live.endpoints.size(), placed_.unplaced.size(), live.policy.size(), live.identity.size(),
                 w->map_writes(), w->revision ? std::to_string(w->revision) : std::string("unchanged"));
  // 9: the names of what the maps now hold.
  return names_file_.Write(desired, placed_.endpoints, version);
}

}  // namespace weft::policy
