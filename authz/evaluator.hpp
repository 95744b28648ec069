// The reference evaluator: Istio AuthorizationPolicy semantics at L4, as
// ztunnel applies them without a waypoint (policy.hpp lists the choices).
// Slow and obvious on purpose; lower.hpp's kernel entries are tested against it.
//
// For a connection to workload `dst` from `src` on destination `port`:
//  1. Policies that apply: not targetRef-bound, action ALLOW or DENY, in dst's
//     namespace or the root namespace, and either without selector or with a
//     selector matching dst's labels (a root-namespace selector applies to
//     matching workloads of every namespace).
//  2. Any matching DENY rule -> deny (the first such policy by ns/name).
//  3. If an ALLOW policy applies: allow iff one of its rules matches (first
//     such policy by ns/name), else "default deny".
//  4. Otherwise allow.
// A rule matches when from (any source), to (any operation) and every `when`
// match. Source fields are ANDed. A peer without identity matches no principal,
// namespace or service account (so every not* of those is satisfied).
// `when` destination.ip: for ALLOW every address of dst must satisfy it, for
// DENY one is enough (fail closed: the kernel entries carry no destination IP).
// Only TCP is subject to AuthorizationPolicy (ztunnel captures TCP only): other
// protocols are allowed with reason kNotEnforced.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "authz/policy.hpp"
#include "weft/bpf_abi.h"

namespace weft::authz {

inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr std::string_view kDefaultDenyMessage = "default deny: ALLOW policies select the workload";

enum class Verdict : uint8_t { kAllow = WEFT_VERDICT_ALLOW, kDeny = WEFT_VERDICT_DENY };

enum class Reason : uint8_t {
  kNoPolicy,       // allow: no ALLOW/DENY policy applies to the workload
  kNoAllowPolicy,  // allow: only DENY policies apply and none matched
  kAllowed,        // allow: a rule of `policy` (ALLOW) matched
  kDenied,         // deny: a rule of `policy` (DENY) matched
  kDefaultDeny,    // deny: ALLOW policies apply, none matched
  kNotEnforced,    // allow: not TCP
};

struct Decision {
  Verdict verdict = Verdict::kAllow;
  Reason reason = Reason::kNoPolicy;
  std::string policy;  // "ns/name" of the deciding policy; "" for kNoPolicy/kNoAllowPolicy/kDefaultDeny/kNotEnforced
  bool operator==(const Decision&) const = default;
  std::string ToString() const;  // "ALLOW by default/allow-x", "DENY default deny: ..."
};

struct EvalOptions {
  std::string root_namespace = std::string(kDefaultRootNamespace);
};

// The policies that apply to dst (step 1), sorted by ns/name.
std::vector<const Policy*> ApplicablePolicies(const std::vector<Policy>& policies, const Workload& dst,
                                              const EvalOptions& opts = {});

Decision Evaluate(const std::vector<Policy>& policies, const Workload& dst, const Peer& src, uint16_t port,
                  uint8_t proto = kProtoTcp, const EvalOptions& opts = {});

}  // namespace weft::authz
