// The LB part of the node state (node_state.hpp): the controller's services
// (weft.v1.Service) as the LB maps should hold them (lb::DesiredState), kept
// up to date by deltas in place. Pure (no kernel, no gRPC): unit-testable and
// the one place that knows the services' wire format.
//
// Translation rules:
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
// bytes, expected 4 or 16"); a refused push changes nothing.
//
// A delta converts only the services it upserts or removes; the rest of the
// desired state stays as it is (the same result as converting the whole
// state: tests/agent/proto_convert_test.cc, tests/fuzz/node_state_fuzz.cc).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/lb/desired_state.hpp"
#include "agent/undo.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"
#include "weft/v1/config.pb.h"

namespace weft::agent {

// An address as the wire format carries it: 4 bytes (IPv4, network order) or
// 16 (IPv6); nullopt for any other length.
std::optional<IpAddr> AddrFromBytes(const std::string& bytes);

// "namespace/name" of a service or workload.
std::string KeyOf(const v1::Service& s);
std::string KeyOf(const v1::Workload& w);

// One service's LB entries (one per port), in port order; `name` is its
// "namespace/name". Two ports on one VIP:port/protocol is an error.
Result<std::vector<std::pair<weft_svc_key, lb::ServiceEntry>>> ConvertService(const std::string& name,
                                                                                const v1::Service& svc);

// The services of a whole config, converted as ServiceState converts a snapshot.
Result<lb::DesiredState> ToDesiredState(const v1::NodeConfig& config);

// The LB part of the node state. One push at a time: Commit keeps it, Revert
// returns to the state of the last Commit. Deltas apply removals, then upserts
// (a name both removed and upserted ends up present; the last upsert of a name
// wins); removals of unknown names are ignored.
class ServiceState {
 public:
  // Both return the keys the push added or changed (their VIPs are checked).
  Result<std::vector<weft_svc_key>> ApplySnapshot(const v1::NodeConfig& snapshot);
  Result<std::vector<weft_svc_key>> ApplyDelta(const v1::NodeConfigDelta& delta);
  // File mode: a whole desired state compiled elsewhere (no deltas follow).
  void Replace(lb::DesiredState desired);
  void Commit();
  void Revert();
  const lb::DesiredState& desired() const { return desired_; }

 private:
  using Services = decltype(lb::DesiredState::services);
  using Owners = std::map<weft_svc_key, std::string, lb::ServiceKeyLess>;  // LB key -> "namespace/name"
  using KeysOf = std::map<std::string, std::vector<weft_svc_key>>;         // "namespace/name" -> its LB keys
  struct Tables {
    lb::DesiredState desired;
    Owners owner;
    KeysOf keys_of;
  };
  Status ApplyDeltaInPlace(const v1::NodeConfigDelta& delta, std::vector<weft_svc_key>* changed);

  lb::DesiredState desired_;
  Owners owner_;
  KeysOf keys_of_;
  std::optional<Tables> replaced_;  // a snapshot's predecessor, until Commit
  UndoLog<Services> services_undo_;
  UndoLog<Owners> owner_undo_;
  UndoLog<KeysOf> keys_undo_;
};

}  // namespace weft::agent
