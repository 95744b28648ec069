// The controller's view of a node (weft.v1.NodeConfig) as the agent keeps it,
// and its translation into what the LB maps should hold (lb::DesiredState).
//
// NodeConfigState holds services and workloads keyed by "namespace/name", so
// a NodeConfigDelta upserts (replaces whole) and removes by that key. Every
// function here is pure (no kernel, no gRPC): unit-testable and the one place
// that knows the wire format's meaning.
//
// Translation rules (ToDesiredState):
//   - one weft_services entry per ServicePort: vip (4 or 16 bytes) + port +
//     protocol (UNSPECIFIED means TCP, the Kubernetes default);
//   - algorithm LB_RANDOM / LB_MAGLEV; maglev_table_size 0 = default (the
//     Reconciler checks that a given size is a prime <= WEFT_MAGLEV_MAX_SIZE);
//   - backends: same address family as the VIP, port 1..65535; weight 0 is
//     skipped (the compiler never sends one); the same
//     address:port listed twice gets both weights;
//   - needs_l7 does NOT set WEFT_SVC_F_STEER_PROXY yet: the node's L7 proxy
//     does not exist, so such a service is load-balanced in the kernel like
//     any other (needs_mtls is ignored for the same reason); steer_to_proxy
//     (the Service's weft.io/steer-to-proxy annotation) sets it, as file mode
//     always did (the kernel does not act on the flag yet);
//   - two services claiming one VIP:port/protocol is an error naming both.
// Errors name the service and port ("service default/web port http: vip has 5
// bytes, expected 4 or 16"); nothing is partially converted.
//
// VIP sanity (ConvertedConfig, issue 9): a push is refused (NACK, nothing
// changed) if a service's VIP lies outside the node's VIP ranges (the agent's
// --service-cidr/-v6 and --service-entry-cidr/-v6, the controller's defaults
// unless given) or equals a workload address the node knows: a local
// workload's address or a host entry (/32, /128) of the identity cache (every
// workload in the mesh), unless that entry's identity is known to be a
// CIDR-only one (no SPIFFE id). A controller that is not ours cannot point a
// VIP, or a pod's address, at another pod this way.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/lb/desired_state.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"
#include "weft/v1/config.pb.h"

namespace weft::agent {

// The ranges VIPs must lie in.
struct VipRanges {
  std::vector<IpPrefix> prefixes;
  // The controller's defaults: 10.96.0.0/16, fd00:96::/112 (Services),
  // 240.240.0.0/16, 2001:2::/48 (ServiceEntry addresses).
  static VipRanges Defaults();
  bool Contains(const IpAddr& ip) const;
  std::string ToString() const;  // "10.96.0.0/16, fd00:96::/112, ..."
};

struct NodeConfigState {
  std::map<std::string, v1::Service> services;    // "namespace/name" -> service
  std::map<std::string, v1::Workload> workloads;  // "namespace/name" -> local workload

  // A full snapshot; a name listed twice is an error.
  static Result<NodeConfigState> FromSnapshot(const v1::NodeConfig& snapshot);
  // Applies a delta in place: upserts replace whole objects, removals of
  // unknown names are ignored (idempotent). Call it on a copy to keep the
  // last good state on failure.
  Status ApplyDelta(const v1::NodeConfigDelta& delta);
};

// "namespace/name" of a service or workload.
std::string KeyOf(const v1::Service& s);
std::string KeyOf(const v1::Workload& w);

Result<lb::DesiredState> ToDesiredState(const NodeConfigState& state);

// One service's LB entries (one per port), in port order; `name` is its
// "namespace/name". Two ports on one VIP:port/protocol is an error.
Result<std::vector<std::pair<weft_svc_key, lb::ServiceEntry>>> ConvertService(const std::string& name,
                                                                                const v1::Service& svc);

// The controller source's state: a NodeConfigState together with its
// DesiredState and the service that owns every LB key, so that a delta is
// converted incrementally: only its upserted and removed services are
// converted and checked, the rest of the desired state is carried over.
// Same rules as ToDesiredState (tested to agree with it); a VIP:port claimed
// twice names both services (the one holding it first).
//
// Two steps, so that a NACKed push leaves the state untouched: Prepare*
// returns the candidate (the whole new DesiredState plus what Commit needs),
// Commit makes it the current state once the maps hold it.
class ConvertedConfig {
 public:
  struct Pending {
    lb::DesiredState desired;  // the whole desired state after the push (Commit does not need it)
   private:
    friend class ConvertedConfig;
    std::optional<NodeConfigState> snapshot;  // a snapshot replaces everything
    v1::NodeConfigDelta delta;                // otherwise: applied to the state by Commit
    // Services whose LB keys change ("namespace/name" -> its keys; empty = gone).
    std::map<std::string, std::vector<weft_svc_key>> keys;
    // The entries of those services (Commit puts them into the current desired state).
    std::vector<std::pair<weft_svc_key, lb::ServiceEntry>> entries;
    // A snapshot's identity tables (a delta's are in `delta`).
    std::map<IpAddr, uint32_t> hosts;
    std::map<uint32_t, bool> workload_ids;
  };

  explicit ConvertedConfig(VipRanges ranges = VipRanges::Defaults()) : ranges_(std::move(ranges)) {}

  // Both check the VIPs (see above) before anything is decided.
  Result<Pending> PrepareSnapshot(const v1::NodeConfig& snapshot) const;
  // On top of this state (never modified here).
  Result<Pending> PrepareDelta(const v1::NodeConfigDelta& delta) const;
  void Commit(Pending&& p);

  const NodeConfigState& state() const { return state_; }
  const lb::DesiredState& desired() const { return desired_; }
  const VipRanges& ranges() const { return ranges_; }

 private:
  // The VIP checks of a prepared push (see above).
  Status CheckVips(const Pending& p, bool snapshot) const;

  VipRanges ranges_;
  NodeConfigState state_;
  lb::DesiredState desired_;
  std::map<weft_svc_key, std::string, lb::ServiceKeyLess> owner_;  // LB key -> "namespace/name"
  std::map<std::string, std::vector<weft_svc_key>> keys_of_;       // "namespace/name" -> its LB keys
  // What the node knows of workload addresses (the VIP check):
  std::map<IpAddr, uint32_t> hosts_;          // identity cache host entries -> identity
  std::map<uint32_t, bool> workload_ids_;     // identity -> has a SPIFFE id (a workload)
};

}  // namespace weft::agent
