// Compiles the stored resources into per-node config (proto/weft/v1/config.proto).
// Incremental: Update() takes the changed and deleted resources of one store
// revision and recomputes only the services and workloads they affect.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/resource.hpp"
#include "controller/compile_policy.hpp"
#include "controller/store.hpp"
#include "weft/v1/config.pb.h"

namespace weft::controller {

// What one Update() changed, in compiled terms.
struct ChangeSet {
  std::set<std::string> services;   // "namespace/name" upserted or removed
  std::set<std::string> workloads;  // "namespace/name" upserted or removed
  // For each changed workload, the nodes it ran on before or after the change
  // (weft.io/node): Delta() sends a removal only to nodes that had it.
  std::map<std::string, std::set<std::string>> workload_nodes;
  // Mesh-wide identity tables (every node gets these): identity cache,
  // identities, policy names.
  compile::PolicyTableChanges tables;
  bool empty() const { return services.empty() && workloads.empty() && tables.empty(); }
};

struct CompilerOptions {
  std::string trust_domain = "cluster.local";
  // Istio's root namespace: PeerAuthentication/AuthorizationPolicy there apply mesh-wide.
  std::string root_namespace = "istio-system";
  // Where identity numbers and policy ids persist (not owned; must outlive
  // the compiler). Null: in memory only (stable across Reset, not restarts).
  StateStore* state = nullptr;
};

class Compiler {
 public:
  explicit Compiler(CompilerOptions opts = {});
  // Replace everything (start-up from the store).
  ChangeSet Reset(const std::vector<config::Resource>& all);
  // Apply one revision's changes.
  ChangeSet Update(const std::vector<config::Resource>& upserted,
                   const std::vector<config::ResourceKey>& deleted);

  // Full config for a node: every service (socket-LB runs on the client's
  // node, so all nodes need the whole service table), the workloads that
  // run on that node (WorkloadEntry annotation weft.io/node) with their
  // identity policy, and the mesh-wide identity cache, identities and policy
  // names (a node resolves every peer).
  weft::v1::NodeConfig Snapshot(const std::string& node) const;
  // The part of a ChangeSet that concerns a node (compile::DeltaEmpty tells
  // whether anything does).
  weft::v1::NodeConfigDelta Delta(const std::string& node, const ChangeSet& changes) const;
  // [control-plane fan-out] Only the node's own part of Snapshot(node): its
  // local_workloads. ConfigHub sends Snapshot("") minus local_workloads
  // (serialized once per version, shared by every stream) followed by this;
  // keep the two in step with Snapshot (tests/controller/server_test.cc
  // checks that they add up to Snapshot(node)).
  weft::v1::NodeConfig NodeSnapshot(const std::string& node) const;
  // Ok, or the last failure to persist identity numbers / policy ids (they
  // stay valid in memory and the write is retried on the next change).
  Status persist_status() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace weft::controller
