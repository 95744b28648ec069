// Istio AuthorizationPolicy as Weft enforces it at L4 (no waypoint, like
// ztunnel): the typed view of a validated object, the destination workload
// and the peer. Pure data + parsing; the decision is in evaluator.hpp, the
// numeric identities in identity.hpp, the kernel entries in lower.hpp.
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
//   it (pilot/pkg/security/authz/model serviceAccountRegex): ParsePolicy
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

#include "config/resource.hpp"
#include "weft/ip.hpp"

namespace weft::controller::authz {

using Labels = std::map<std::string, std::string>;

inline constexpr std::string_view kDefaultRootNamespace = "istio-system";
inline constexpr std::string_view kDefaultTrustDomain = "cluster.local";

enum class Action { kAllow, kDeny, kAudit, kCustom };

// One `from[].source`. Empty lists mean "not constrained" (proto semantics).
struct Source {
  std::vector<std::string> principals, not_principals;    // Istio string match: exact, "p*", "*s", "*"
  std::vector<std::string> namespaces, not_namespaces;    // same
  std::vector<std::string> service_accounts, not_service_accounts;  // "<ns>/<sa>" (bare names resolved), exact
  std::vector<IpPrefix> ip_blocks, not_ip_blocks;         // single IPs as /32 or /128
  bool l7 = false;  // requestPrincipals / remoteIpBlocks (or their not*) present
};

// One `to[].operation`.
struct Operation {
  std::vector<uint16_t> ports, not_ports;
  bool l7 = false;  // methods / paths / hosts (or their not*) present
};

// One `when` condition.
struct Condition {
  enum class Key {
    kSourceIp,
    kSourceNamespace,
    kSourcePrincipal,
    kSourceServiceAccount,  // values resolved to "<ns>/<sa>" like serviceAccounts
    kSourceTrustDomain,     // Istio string match on the peer's trust domain
    kDestinationIp,
    kDestinationPort,
    kL7
  };
  Key key = Key::kL7;
  std::string raw_key;
  std::vector<std::string> values, not_values;           // as written (service accounts: resolved)
  std::vector<IpPrefix> ip_values, ip_not_values;          // kSourceIp / kDestinationIp
  std::vector<uint16_t> port_values, port_not_values;      // kDestinationPort (unparsable values dropped)
};

struct Rule {
  std::vector<Source> from;
  std::vector<Operation> to;
  std::vector<Condition> when;
  bool HasL7() const;
};

struct Policy {
  std::string ns;
  std::string name;
  std::optional<Labels> selector;  // nullopt: every workload of ns (mesh-wide in the root namespace)
  bool targeted = false;           // targetRef/targetRefs: binds to a waypoint/gateway, not here
  Action action = Action::kAllow;
  std::vector<Rule> rules;         // empty: ALLOW matches nothing, DENY denies nothing
  std::string key() const { return ns + "/" + name; }
};

// The validated canonical JSON of one AuthorizationPolicy (config::Resource::object).
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
std::optional<IpPrefix> ParseIpOrCidr(std::string_view text);
IpPrefix Canonical(const IpPrefix& p);
std::string CanonicalCidr(const IpPrefix& p);
// Every CIDR a peer's source IP is tested against (ipBlocks, notIpBlocks,
// `when` source.ip) in these policies, canonical, sorted.
std::vector<IpPrefix> SourceCidrs(const std::vector<Policy>& policies);

}  // namespace weft::controller::authz
