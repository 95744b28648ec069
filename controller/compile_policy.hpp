// Identity policy for the per-node config (issue 4): AuthorizationPolicies and
// workloads in, per-workload weft_policy entries and the mesh-wide identity
// tables out, incrementally.
//
//  - Identities: authz::IdentityIndex over every WorkloadEntry (the lab's pods
//    are WorkloadEntries) and the policies' source CIDRs.
//  - Policy ids: a stable number >= 1 per AuthorizationPolicy "ns/name",
//    never reused (a policy that comes back gets its old id).
//  - Both tables persist through a StateStore (records "authz/identity/<key>"
//    and "authz/policy/<ns/name>"), written when a number is handed out, so
//    numbers survive recompiles and controller restarts.
//  - Lowering (authz::Lower) per local workload, shared by workloads with the
//    same applicable policies (and the same addresses when a policy tests
//    destination.ip): a mesh-wide policy costs one lowering per group, not
//    one per workload, and a new pod in an existing group costs a lookup.
//
// Which workloads a policy change reaches is decided by the compiler's
// indexes (compiler.cc); this class answers "what is workload W's policy now"
// and "what changed in the mesh-wide tables".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "authz/identity_index.hpp"
#include "authz/lower.hpp"
#include "authz/policy.hpp"
#include "controller/compile_model.hpp"
#include "controller/store.hpp"
#include "weft/status.hpp"
#include "weft/v1/config.pb.h"

namespace weft::controller::compile {

// What one Commit changed in the mesh-wide tables.
struct PolicyTableChanges {
  std::set<authz::PrefixKey> identity_cache;  // upserted or removed
  std::set<uint32_t> identities;              // upserted or removed
  std::set<uint32_t> policy_names;            // upserted or removed
  // Workloads ("ns/name") whose own identity may have moved with the policy CIDRs.
  std::set<std::string> rekeyed_workloads;
  bool empty() const { return identity_cache.empty() && identities.empty() && policy_names.empty(); }
};

class PolicyCompiler {
 public:
  PolicyCompiler(std::string trust_domain, std::string root_namespace, StateStore* state);

  // --- sources ------------------------------------------------------------------
  void UpsertPolicy(authz::Policy p);
  void RemovePolicy(const std::string& key);  // "ns/name"
  const authz::Policy* FindPolicy(const std::string& key) const;
  void UpsertWorkload(const config::WorkloadEntry& w);
  void RemoveWorkload(const std::string& ns, const std::string& name);
  // Forget every source (Reset), keeping numbers, ids and the last output so
  // the next Commit reports only what differs.
  void Clear();

  // Applies pending source changes to the tables; persists new numbers;
  // updates the lowerings of groups for identities that appeared or went.
  PolicyTableChanges Commit();
  // Workloads ("ns/name") whose lowering changed in the last Commit because
  // peer identities appeared or went; Fill them again.
  std::set<std::string> TakeRelowered() { return std::exchange(relowered_, {}); }

  // --- output -------------------------------------------------------------------
  // Sets identity, enforce_ingress/egress, policy and policies of `out` for w.
  void Fill(const config::WorkloadEntry& w, v1::Workload* out);
  // Mesh-wide tables, sorted by key.
  void FillTables(v1::NodeConfig* out) const;
  void FillDelta(const PolicyTableChanges& changes, v1::NodeConfigDelta* out) const;
  size_t groups() const { return groups_.size(); }

  const authz::IdentityIndex& identities() const { return index_; }
  const std::map<std::string, uint32_t>& policy_ids() const { return policy_ids_; }
  // The last persistence error (Ok when the state store is up to date).
  const Status& persist_status() const { return persist_status_; }

 private:
  struct Lowered {
    bool enforce = false;
    std::vector<v1::PolicyEntry> entries;
    std::vector<std::string> policies;
  };
  // Workloads with the same applicable policies (and the same addresses when
  // one tests destination.ip) share one lowering, kept per peer so that
  // identities that appear or go change only their own entries.
  struct Group {
    std::string key;
    std::set<std::string> policy_keys;
    std::vector<authz::Policy> policies;  // the applicable policies (copies)
    authz::Workload representative;       // the first member: same lowering for all
    std::unique_ptr<authz::PeerLowering> lowering;
    std::vector<v1::PolicyEntry> any;     // ANY-peer entries and the UDP entry
    std::map<uint32_t, std::vector<v1::PolicyEntry>> peers;  // non-empty only
    std::shared_ptr<const Lowered> result;
    std::set<std::string> members;        // workload keys
  };
  Status Load();
  void Persist(std::map<std::string, std::optional<std::string>> records);
  Group* GroupFor(const authz::Workload& w);
  std::vector<v1::PolicyEntry> Convert(const std::vector<authz::PolicyEntry>& entries) const;
  void Rebuild(Group& g) const;
  void Leave(const std::string& workload_key);
  v1::PolicyName NameOf(uint32_t id, const authz::Policy& p) const;

  std::string trust_domain_;
  authz::EvalOptions eval_;
  StateStore* state_;
  bool loaded_ = false;
  Status persist_status_;
  std::map<std::string, std::optional<std::string>> unsaved_;  // retried on the next Commit

  std::map<std::string, authz::Policy> policies_;              // by ns/name
  std::map<std::string, std::vector<authz::Policy>> by_ns_;    // rebuilt on a policy change
  bool policies_dirty_ = false;
  std::set<std::string> dirty_policy_keys_;

  authz::IdentityIndex index_;
  std::map<std::string, uint32_t> policy_ids_;   // every policy ever numbered
  uint32_t next_policy_id_ = 1;
  std::map<uint32_t, v1::PolicyName> names_;     // policies that exist, by id

  std::map<std::string, std::unique_ptr<Group>> groups_;  // group key -> group
  std::map<std::string, std::string> group_of_;           // workload key -> group key (enforced only)
  std::set<std::string> relowered_;
};

// Whether a delta carries nothing (every field empty).
bool DeltaEmpty(const v1::NodeConfigDelta& d);

}  // namespace weft::controller::compile
