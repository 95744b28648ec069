// Istio AuthorizationPolicy as Weft enforces it at L4 (no waypoint, like
// ztunnel). The policies are the typed model's (config/model.hpp:
// config::AuthorizationPolicy, built once from the validated object by
// config::TypedView); this header adds the destination workload and the peer
// a decision is about. The decision is in evaluator.hpp, the numeric
// identities in identity.hpp, the kernel entries in lower.hpp.
//
// weft_authz (this directory) depends only on the typed model (weft_config)
// and weft_common: the controller's lowering links it today, a node-local
// proxy can link it without the controller.
//
// Semantics chosen (Istio's, as ztunnel applies them without a waypoint):
// - Policies with targetRef/targetRefs bind to waypoints/gateways, never to a
//   workload: they do not apply here.
// - AUDIT policies never decide. CUSTOM policies need an external authorizer
//   that only a waypoint/gateway calls: ignored, as ztunnel ignores them.
// - L7-only attributes (methods, paths, hosts and their not*, requestPrincipals,
//   remoteIpBlocks and their not*, `when` keys other than source.ip,
//   source.namespace, source.principal, source.serviceAccount,
//   source.trustDomain, destination.ip, destination.port) cannot be seen at
//   L4: in a DENY rule they count as matched (deny more, istiod's TCP-filter
//   rule); an ALLOW rule that has any of them never matches.
// - serviceAccounts / notServiceAccounts and `when` source.serviceAccount
//   ("<ns>/<sa>", trust domain ignored, no wildcards) are identity attributes,
//   enforced at L4. A bare "<sa>" is the policy's namespace, as Istio resolves
//   it (pilot/pkg/security/authz/model serviceAccountRegex): the typed view
//   writes it as "<policy ns>/<sa>", so a root-namespace policy's bare name
//   is a root-namespace account, never the destination's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/model.hpp"
#include "config/resource.hpp"
#include "weft/ip.hpp"

namespace weft::authz {

using Labels = config::Labels;

inline constexpr std::string_view kDefaultRootNamespace = "istio-system";
inline constexpr std::string_view kDefaultTrustDomain = "cluster.local";

using Policy = config::AuthorizationPolicy;
using Action = Policy::Action;
using Source = Policy::Source;
using Operation = Policy::Operation;
using Condition = Policy::Condition;
using Rule = Policy::Rule;

// One validated AuthorizationPolicy object (names from its metadata).
Policy ParsePolicy(const nlohmann::json& object);
// Every AuthorizationPolicy among the resources, sorted by ns/name.
std::vector<Policy> ParsePolicies(const std::vector<config::Resource>& all);

// The destination: a local workload.
struct Workload {
  std::string ns;
  std::string name;
  Labels labels;
  std::string service_account;     // "" = "default"
  std::vector<IpAddr> addresses;
  std::string key() const { return ns + "/" + name; }
  std::string sa() const { return service_account.empty() ? "default" : service_account; }
};

// The source of a connection, as far as L4 knows it.
struct Peer {
  // "spiffe://<td>/ns/<ns>/sa/<sa>"; nullopt: no identity (unknown, plaintext, CIDR-only).
  std::optional<std::string> spiffe_id;
  std::string ns;                  // the identity's namespace; "" without identity
  std::optional<IpAddr> ip;
  // Identity-level view (lowering): when set, ipBlocks/source.ip match by
  // membership of the canonical CIDR (CanonicalCidr) in this set instead of by ip.
  std::optional<std::set<std::string>> cidrs;

  static Peer FromIdentity(std::string_view trust_domain, std::string_view ns, std::string_view sa,
                           std::optional<IpAddr> ip = std::nullopt);
  static Peer Unknown(std::optional<IpAddr> ip = std::nullopt);
};

// --- helpers shared by the evaluator, the allocator and the lowering ---------

std::string SpiffeId(std::string_view trust_domain, std::string_view ns, std::string_view sa);
// Istio's string match: "*" any non-empty value, "abc*" prefix, "*abc" suffix, else exact.
bool StringMatches(std::string_view pattern, std::string_view value);
// "10.1.2.3" -> 10.1.2.3/32, "10.1.2.3/8" -> 10.0.0.0/8 (host bits cleared).
using config::ParseIpOrCidr;
IpPrefix Canonical(const IpPrefix& p);
std::string CanonicalCidr(const IpPrefix& p);
// Every CIDR a peer's source IP is tested against (ipBlocks, notIpBlocks,
// `when` source.ip) in these policies, canonical, sorted.
std::vector<IpPrefix> SourceCidrs(const std::vector<Policy>& policies);

}  // namespace weft::authz
