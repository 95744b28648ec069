// The node state: what this node's datapath should hold, converted once from
// each push (a snapshot, or a delta onto the state) and kept in one copy. Its
// consumers (the identity policy, then the socket LB; later the node proxy)
// apply it in that order (agent.cc), and a refused or NACKed push is taken
// back the same way for all of them: Revert, then every consumer applies the
// state of the last Commit again.
//
//   ServiceState (proto_convert.hpp)   services -> lb::DesiredState
//   PolicyState (policy/desired.hpp)   local workloads, identity cache,
//                                      identity and policy names -> PolicyDesired
//
// A push changes the state in place (a delta converts only what it carries)
// and records what it replaced, so neither a push nor its revert copies the
// whole state. One push at a time: Commit or Revert before the next.
//
// VIP sanity (issue 9): a push is refused (nothing changed) if a service's VIP
// lies outside the node's VIP ranges (the agent's --service-cidr/-v6 and
// --service-entry-cidr/-v6, the controller's defaults unless given) or equals
// a workload address the node knows: a local workload's address or a host
// entry (/32, /128) of the identity cache (every workload in the mesh),
// unless that entry's identity is known to be a CIDR-only one (no SPIFFE id).
// A controller that is not ours cannot point a VIP, or a pod's address, at
// another pod this way. A delta checks what it adds: its services' VIPs, its
// workload addresses against the VIPs, and every VIP when it upserts identities.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/lb/desired_state.hpp"
#include "agent/policy/desired.hpp"
#include "agent/proto_convert.hpp"
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
  // CIDRs as given on the command line; an empty list gives the defaults.
  static Result<VipRanges> Parse(const std::vector<std::string>& cidrs);
  bool Contains(const IpAddr& ip) const;
  std::string ToString() const;  // "10.96.0.0/16, fd00:96::/112, ..."
};

// What one push changed, for the consumers that apply only a difference.
struct NodeStateChange {
  policy::PolicyChange policy;  // default: everything
};

class NodeState {
 public:
  explicit NodeState(VipRanges ranges = VipRanges::Defaults()) : ranges_(std::move(ranges)) {}

  // A push of controller version `version`. An error changes nothing.
  Result<NodeStateChange> ApplySnapshot(const v1::NodeConfig& snapshot, uint64_t version);
  Result<NodeStateChange> ApplyDelta(const v1::NodeConfigDelta& delta, uint64_t version);
  // File mode: the services compiled from the file; no policy.
  NodeStateChange ReplaceServices(lb::DesiredState services);
  // The push is applied: it becomes the last good state.
  void Commit();
  // Back to the last good state (the last Commit).
  void Revert();
  // Some push was committed (else there is no good state to go back to, and
  // the maps keep what they held: never an empty state in their place).
  bool has_good() const { return has_good_; }

  const lb::DesiredState& services() const { return services_.desired(); }
  const policy::PolicyDesired& policy() const { return policy_.desired(); }
  uint64_t version() const { return version_; }
  const VipRanges& ranges() const { return ranges_; }

 private:
  // The VIP checks of the state after a push (see above): `changed` are the
  // LB keys the push added or changed; a delta's own additions otherwise.
  Status CheckVips(const std::vector<weft_svc_key>& changed, const v1::NodeConfigDelta* delta) const;

  VipRanges ranges_;
  ServiceState services_;
  policy::PolicyState policy_;
  uint64_t version_ = 0, good_version_ = 0;
  bool has_good_ = false;
};

// A part of the datapath that holds (part of) the node state. The agent
// applies every state to its consumers in a fixed order (the identity policy,
// then the socket LB; later the node proxy), and after a failure applies the
// last good state to all of them again (docs/ARCHITECTURE.md).
class NodeStateConsumer {
 public:
  virtual ~NodeStateConsumer() = default;
  virtual const char* name() const = 0;
  // Makes its part of the datapath hold `state`. `change`: what the push
  // changed (everything for a rollback or a retry); `why`: for logs. Errors
  // name the consumer's step ("identity policy: ...", "reconcile: ...").
  virtual Status Apply(const NodeState& state, const NodeStateChange& change, const std::string& why) = 0;
};

}  // namespace weft::agent
