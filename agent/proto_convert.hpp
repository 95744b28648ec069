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
//     skipped (as the file compiler skips weight-0 workloads); the same
//     address:port listed twice gets both weights;
//   - needs_l7 does NOT set WEFT_SVC_F_STEER_PROXY yet: the node's L7 proxy
//     does not exist, so such a service is load-balanced in the kernel like
//     any other (needs_mtls is ignored for the same reason);
//   - two services claiming one VIP:port/protocol is an error naming both.
// Errors name the service and port ("service default/web port http: vip has 5
// bytes, expected 4 or 16"); nothing is partially converted.
#pragma once

#include <map>
#include <string>

#include "agent/lb/desired_state.hpp"
#include "weft/status.hpp"
#include "weft/v1/config.pb.h"

namespace weft::agent {

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

}  // namespace weft::agent
