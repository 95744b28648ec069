// PolicyReconciler: makes the TC policy maps and the tcx links equal a
// KernelPolicy, writing only the difference (a re-sent config writes nothing),
// through the PolicyMapWriter and PolicyLinks seams (map_writer.hpp). It plans
// first and then writes in this order (docs/ARCHITECTURE.md "Apply order"):
//
//   1 policy entries upserted: those that pass (ALLOW, STEER) first, then DENY
//   2 identity entries upserted
//   3 endpoints upserted (enforcement switches on after its entries exist)
//   4 links attached on interfaces whose endpoint enforces a direction now,
//     detached from those that enforce neither (weft_tc_to_pod; the way out
//     keeps weft_tc_from_pod)
//   5 interfaces whose workload is gone: links detached, endpoint deleted
//   6 stale policy entries deleted: DENY first, then those that pass
//   7 stale identity entries deleted
//   8 weft_policy_rev bumped, if any map entry was written.
//
// Why this order: the lookup order is fixed ((peer, port), (peer, any),
// (any, port), (any, any); first entry wins), so while upserts run the maps
// hold the old entries plus new ones, and while deletes run the new entries
// plus old ones. Writing the entries that pass before those that deny, and
// deleting the denying ones before those that pass, makes every intermediate
// state allow every new flow that both the old and the new config allow
// (tests/unit/policy_reconcile_test.cc checks it after every single write).
// Known limit: an address whose identity changes meets its new identity under
// the old policy entries for the duration of the apply.
//
// A failed write stops the apply; the next Apply re-reads the maps (a write
// call may have written part of its elements) and converges from what the
// kernel holds, so applying the old state again after a failure rolls back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/policy/desired.hpp"
#include "agent/policy/map_writer.hpp"
#include "weft/status.hpp"

namespace weft::policy {

struct PolicyWrites {
  size_t policy_upserted = 0, policy_deleted = 0;
  size_t identity_upserted = 0, identity_deleted = 0;
  size_t endpoints_upserted = 0, endpoints_deleted = 0;
  size_t links_attached = 0, links_detached = 0;
  uint32_t revision = 0;  // the new weft_policy_rev if it was bumped, else 0
  // Map entries upserted or deleted (the revision is bumped when > 0).
  size_t map_writes() const;
};

class PolicyReconciler {
 public:
  using IdentityMap = decltype(KernelPolicy::identity);

  PolicyReconciler(PolicyMapWriter& maps, PolicyLinks& links) : maps_(maps), links_(links) {}

  // Reads the maps (the mirror every difference is computed against). Apply
  // calls it first if it has not run or a write failed since.
  Status Adopt();
  bool adopted() const { return adopted_; }
  const KernelPolicy& live() const { return live_; }

  // At start-up, before any Apply: the programs on every interface the
  // adopted weft_endpoints names (in place where links exist). An interface
  // that is gone (ENODEV, ENOENT, EINVAL) is skipped and reported: the next
  // Apply removes its entry.
  struct AttachReport {
    size_t enforcing = 0, idle = 0;                       // attached: with weft_tc_to_pod, without
    std::vector<std::pair<uint32_t, std::string>> skipped;  // ifindex, why
  };
  Result<AttachReport> AttachAdopted();

  // Makes the maps and links equal `want`.
  Result<PolicyWrites> Apply(const KernelPolicy& want);
  // Only the weft_identity entries at `keys`: their value in `want`, or
  // deleted (the rest of the maps as they are). Steps 2, 7 and 8 above.
  Result<PolicyWrites> ApplyIdentity(const std::vector<weft_ipcache_key>& keys, const IdentityMap& want);

 private:
  struct Plan;
  Status Execute(const Plan& plan, PolicyWrites& w);

  PolicyMapWriter& maps_;
  PolicyLinks& links_;
  KernelPolicy live_;                  // mirror of the maps
  bool adopted_ = false;
  std::map<uint32_t, bool> attached_;  // interfaces with our links in this run -> weft_tc_to_pod too
};

}  // namespace weft::policy
