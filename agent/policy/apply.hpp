// PolicyApplier: one apply of the policy part of the node state, without a
// kernel (the seams are parameters):
//
//   PolicyDesired --PlaceEndpoints (placement.hpp: route lookup, endpoint ids)-->
//   placement --ToKernel--> KernelPolicy --PolicyReconciler (reconcile.hpp:
//   plan, then write through PolicyMapWriter and PolicyLinks)--> maps, links
//   --> NamesFile (names.json).
//
// A change of identity-cache entries only (a pod came or went elsewhere in the
// mesh: the common delta) takes a fast path with the same writes, order and
// revision bump, without placing or comparing the rest: only those entries
// are compared. It needs the last apply to have succeeded and every workload
// placed; otherwise the whole state is applied.
//
// What cannot be placed is reported once while it lasts (Refresh retries it
// every second, silently). Everything runs on the agent's main thread except
// names() and unplaced_gauge() (the metrics thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/policy/desired.hpp"
#include "agent/policy/map_writer.hpp"
#include "agent/policy/names.hpp"
#include "agent/policy/placement.hpp"
#include "agent/policy/reconcile.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::policy {

// Identity and policy names, for the metrics' labels.
struct PolicyNames {
  std::map<uint32_t, IdentityName> identities;
  std::map<uint32_t, PolicyNameInfo> policy_names;
};

class PolicyApplier {
 public:
  PolicyApplier(PolicyMapWriter& maps, PolicyLinks& links, RouteLookup route, NamesFile names);

  PolicyReconciler& reconciler() { return reconciler_; }

  // Makes the maps and links hold `desired` (version: the controller's, for
  // names.json and logs). A failure leaves the maps part-written: applying
  // the last good state again rolls them back.
  Status Apply(const PolicyDesired& desired, const PolicyChange& change, uint64_t version);
  // Places again (interfaces that appeared or moved) and applies the
  // difference; silent when nothing changed.
  Status Refresh(const PolicyDesired& desired);

  bool has_unplaced() const { return !placed_.unplaced.empty(); }
  // Local workloads with no interface on this node (not enforced).
  size_t unplaced_count() const;
  // Their addresses, less those a placed endpoint holds: a backend at one of
  // them is not served by this node (the agent withholds it from LB).
  const std::set<IpAddr>& unplaced_addresses() const { return unplaced_addresses_; }
  const std::vector<EndpointStatus>& endpoints() const { return placed_.endpoints; }

  // For the metrics thread.
  std::shared_ptr<const PolicyNames> names() const;
  uint64_t unplaced_gauge() const { return unplaced_gauge_.load(std::memory_order_relaxed); }

 private:
  Status ApplyFull(const PolicyDesired& desired, uint64_t version);

  PolicyReconciler reconciler_;
  RouteLookup route_;
  NamesFile names_file_;
  PlacementResult placed_;           // the last placement
  std::set<IpAddr> unplaced_addresses_;
  uint64_t version_ = 0;
  bool last_ok_ = false;             // the last apply succeeded (the fast path builds on it)
  std::atomic<uint64_t> unplaced_gauge_{0};
  mutable std::mutex names_mu_;
  std::shared_ptr<const PolicyNames> names_;
};

}  // namespace weft::policy
