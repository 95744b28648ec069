// Lowering: the policies that apply to one local workload -> weft_policy
// entries (include/weft/bpf_abi.h) such that the kernel's lookup order
//   (peer, port) -> (peer, ANY) -> (ANY, port) -> (ANY, ANY), first hit decides
// gives exactly Evaluate()'s decision (verdict, reason, policy) for every peer
// identity of the table, every unknown peer and every destination port.
//
// Method: ports mentioned by the applicable policies (ports, notPorts, `when`
// destination.port) and one unmentioned representative port form the port
// classes; every identity of the table and one identity-less, CIDR-less
// representative (ANY: unknown, reserved, or not in the table) form the peer
// classes. Each (class, class) is decided by Evaluate() on a representative,
// then entries equal to what the lookup would find anyway are dropped.
// Preconditions: the identity table was allocated from (a superset of) these
// policies, so every CIDR they test has its identities.
//
// Only INGRESS entries (AuthorizationPolicy is destination-side). Only TCP is
// enforced: an enforced workload gets one explicit (ANY, ANY, UDP) ALLOW entry,
// so UDP never depends on how the kernel treats a miss.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "authz/evaluator.hpp"
#include "authz/identity.hpp"
#include "authz/policy.hpp"
#include "weft/bpf_abi.h"

namespace weft::authz {

inline constexpr uint32_t kAnyPeer = WEFT_IDENTITY_ANY;
inline constexpr uint16_t kAnyPort = 0;

struct PolicyEntry {
  uint32_t peer_identity = kAnyPeer;
  uint16_t port = kAnyPort;
  uint8_t proto = kProtoTcp;
  uint8_t direction = WEFT_DIR_INGRESS;
  Decision decision;  // verdict, reason (kDenied -> WEFT_DROP_POLICY_DENIED, kDefaultDeny -> _DEFAULT), policy
  bool operator==(const PolicyEntry&) const = default;
};

struct LoweredPolicy {
  bool enforce_ingress = false;       // weft_endpoint.enforce_ingress: an ALLOW or DENY policy applies
  std::vector<PolicyEntry> entries;   // unique (peer, port, proto, direction); empty when not enforced
  std::vector<std::string> policies;  // the applicable policies, ns/name, sorted
};

LoweredPolicy Lower(const std::vector<Policy>& policies, const Workload& workload, const IdentityTable& identities,
                    const EvalOptions& opts = {});

// Lower(), one peer at a time: the entries of one peer identity depend only on
// that identity and on the ANY row, so a controller can add or drop the
// entries of identities that appear or go without lowering every peer again.
// Lower() is built from this (same entries, same order). Keeps references to
// `policies` and `workload`.
class PeerLowering {
 public:
  PeerLowering(const std::vector<Policy>& policies, const Workload& workload, const EvalOptions& opts = {});
  bool enforced() const { return !applicable_.empty(); }
  const std::vector<std::string>& policies() const { return names_; }
  // (ANY peer) entries: (ANY, ANY) and the mentioned ports that differ; empty when not enforced.
  std::vector<PolicyEntry> AnyEntries() const;
  // The entries for peer `id` (none when the ANY entries decide it already).
  std::vector<PolicyEntry> PeerEntries(uint32_t id, const IdentityInfo& info) const;
  // The explicit UDP entry of an enforced workload.
  static PolicyEntry UdpEntry();

 private:
  Decision Decide(const Peer& peer, uint16_t port) const;

  const std::vector<Policy>& policies_;
  const Workload& workload_;
  EvalOptions opts_;
  std::vector<const Policy*> applicable_;
  std::vector<std::string> names_;
  std::vector<uint16_t> ports_;  // mentioned ports, sorted
  uint16_t rep_port_ = 0;        // a port no policy mentions (0: none)
  Decision any_any_;
  std::vector<Decision> any_row_;  // per ports_
};

// weft_drop_reason for a deny decision: kDenied -> WEFT_DROP_POLICY_DENIED,
// kDefaultDeny -> WEFT_DROP_POLICY_DEFAULT; WEFT_DROP_NONE for an allow.
uint32_t DropReasonOf(const Decision& d);

// The kernel's lookup over the entries, in user space. A workload that is not
// enforced, or a miss, allows (kNoPolicy / kNotEnforced).
Decision Lookup(const LoweredPolicy& lowered, uint32_t peer_identity, uint16_t port, uint8_t proto = kProtoTcp);

}  // namespace weft::authz
