#include "authz/evaluator.hpp"

#include <algorithm>
#include <tuple>

#include "config/model.hpp"

namespace weft::authz {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://";

// The principal Istio matches: the SPIFFE id without "spiffe://".
std::optional<std::string_view> PrincipalOf(const Peer& p) {
  if (!p.spiffe_id) return std::nullopt;
  std::string_view id = *p.spiffe_id;
  if (id.substr(0, kSpiffePrefix.size()) == kSpiffePrefix) id.remove_prefix(kSpiffePrefix.size());
  return id;
}

// "<ns>/<sa>" of the peer's identity (trust domain ignored).
std::optional<std::string> ServiceAccountOf(const Peer& p) {
  auto principal = PrincipalOf(p);
  if (!principal) return std::nullopt;
  auto ns_at = principal->find("/ns/");
  auto sa_at = principal->find("/sa/");
  if (ns_at == std::string_view::npos || sa_at == std::string_view::npos || sa_at < ns_at) return std::nullopt;
  std::string ns(principal->substr(ns_at + 4, sa_at - ns_at - 4));
  std::string sa(principal->substr(sa_at + 4));
  return ns + "/" + sa;
}

// The trust domain of the peer's identity ("cluster.local").
std::optional<std::string_view> TrustDomainOf(const Peer& p) {
  auto principal = PrincipalOf(p);
  if (!principal) return std::nullopt;
  return principal->substr(0, principal->find('/'));
}

bool ServiceAccountMatches(const Peer& p, const std::string& ns_sa) {
  auto sa = ServiceAccountOf(p);
  return sa && *sa == ns_sa;
}

bool InCidr(const Peer& p, const IpPrefix& c) {
  if (p.cidrs) return p.cidrs->contains(CanonicalCidr(c));
  return p.ip && c.Contains(*p.ip);
}

template <typename T, typename Pred>
bool Any(const std::vector<T>& v, Pred pred) {
  return std::any_of(v.begin(), v.end(), pred);
}

// Positive list (empty: no constraint) and negative list (empty: no constraint).
template <typename T, typename Pred>
bool PosNeg(const std::vector<T>& pos, const std::vector<T>& neg, Pred pred) {
  return (pos.empty() || Any(pos, pred)) && (neg.empty() || !Any(neg, pred));
}

bool PrincipalMatches(const Peer& p, const std::string& pattern) {
  auto principal = PrincipalOf(p);
  return principal && StringMatches(pattern, *principal);
}

bool NamespaceMatches(const Peer& p, const std::string& pattern) {
  return p.spiffe_id && !p.ns.empty() && StringMatches(pattern, p.ns);
}

bool SourceMatches(const Source& s, const Peer& p) {
  // L7 fields (s.l7) count as matched: only DENY rules get here with them.
  return PosNeg(s.principals, s.not_principals, [&](const std::string& v) { return PrincipalMatches(p, v); }) &&
         PosNeg(s.namespaces, s.not_namespaces, [&](const std::string& v) { return NamespaceMatches(p, v); }) &&
         PosNeg(s.service_accounts, s.not_service_accounts,
                [&](const std::string& v) { return ServiceAccountMatches(p, v); }) &&
         PosNeg(s.ip_blocks, s.not_ip_blocks, [&](const IpPrefix& c) { return InCidr(p, c); });
}

bool OperationMatches(const Operation& o, uint16_t port) {
  return PosNeg(o.ports, o.not_ports, [&](uint16_t v) { return v == port; });
}

bool ConditionMatches(const Condition& c, const Peer& p, const Workload& dst, uint16_t port, bool deny) {
  using K = Condition::Key;
  switch (c.key) {
    case K::kL7:
      return true;  // only DENY rules get here: fail closed
    case K::kSourceIp:
      return PosNeg(c.ip_values, c.ip_not_values, [&](const IpPrefix& v) { return InCidr(p, v); });
    case K::kSourceNamespace:
      return PosNeg(c.values, c.not_values, [&](const std::string& v) { return NamespaceMatches(p, v); });
    case K::kSourcePrincipal:
      return PosNeg(c.values, c.not_values, [&](const std::string& v) { return PrincipalMatches(p, v); });
    case K::kSourceServiceAccount:
      return PosNeg(c.values, c.not_values, [&](const std::string& v) { return ServiceAccountMatches(p, v); });
    case K::kSourceTrustDomain:
      return PosNeg(c.values, c.not_values, [&](const std::string& v) {
        auto td = TrustDomainOf(p);
        return td && StringMatches(v, *td);
      });
    case K::kDestinationPort:
      // Values that are not ports were dropped; a condition left with only
      // unparsable values matches nothing.
      if (c.port_values.empty() && !c.values.empty()) return false;
      return PosNeg(c.port_values, c.port_not_values, [&](uint16_t v) { return v == port; });
    case K::kDestinationIp: {
      if (c.ip_values.empty() && !c.values.empty()) return false;
      auto one = [&](const IpAddr& a) {
        return PosNeg(c.ip_values, c.ip_not_values, [&](const IpPrefix& v) { return v.Contains(a); });
      };
      if (dst.addresses.empty()) return false;
      return deny ? std::any_of(dst.addresses.begin(), dst.addresses.end(), one)
                  : std::all_of(dst.addresses.begin(), dst.addresses.end(), one);
    }
  }
  return false;
}

bool RuleMatches(const Rule& r, const Peer& p, const Workload& dst, uint16_t port, bool deny) {
  if (!deny && r.HasL7()) return false;  // an ALLOW rule that needs L7 can never match at L4
  bool from = r.from.empty() || Any(r.from, [&](const Source& s) { return SourceMatches(s, p); });
  bool to = r.to.empty() || Any(r.to, [&](const Operation& o) { return OperationMatches(o, port); });
  bool when = std::all_of(r.when.begin(), r.when.end(),
                          [&](const Condition& c) { return ConditionMatches(c, p, dst, port, deny); });
  return from && to && when;
}

bool PolicyMatches(const Policy& pol, const Peer& p, const Workload& dst, uint16_t port) {
  bool deny = pol.action == Action::kDeny;
  return Any(pol.rules, [&](const Rule& r) { return RuleMatches(r, p, dst, port, deny); });
}

}  // namespace

std::string Decision::ToString() const {
  std::string v = verdict == Verdict::kAllow ? "ALLOW" : "DENY";
  switch (reason) {
    case Reason::kNoPolicy: return v + " (no policy applies)";
    case Reason::kNoAllowPolicy: return v + " (no DENY matched, no ALLOW policy applies)";
    case Reason::kAllowed: return v + " by " + policy;
    case Reason::kDenied: return v + " by " + policy;
    case Reason::kDefaultDeny: return v + " " + std::string(kDefaultDenyMessage);
    case Reason::kNotEnforced: return v + " (protocol not enforced)";
  }
  return v;
}

std::vector<const Policy*> ApplicablePolicies(const std::vector<Policy>& policies, const Workload& dst,
                                              const EvalOptions& opts) {
  std::vector<const Policy*> out;
  for (const auto& p : policies) {
    if (p.targeted) continue;
    if (p.action != Action::kAllow && p.action != Action::kDeny) continue;
    if (p.ns != dst.ns && p.ns != opts.root_namespace) continue;
    if (p.selector && !config::LabelsMatch(*p.selector, dst.labels)) continue;
    out.push_back(&p);
  }
  std::sort(out.begin(), out.end(),
            [](const Policy* a, const Policy* b) { return std::tie(a->ns, a->name) < std::tie(b->ns, b->name); });
  return out;
}

Decision Evaluate(const std::vector<Policy>& policies, const Workload& dst, const Peer& src, uint16_t port,
                  uint8_t proto, const EvalOptions& opts) {
  if (proto != kProtoTcp) return {Verdict::kAllow, Reason::kNotEnforced, ""};
  auto applicable = ApplicablePolicies(policies, dst, opts);
  if (applicable.empty()) return {Verdict::kAllow, Reason::kNoPolicy, ""};
  for (const Policy* p : applicable) {
    if (p->action == Action::kDeny && PolicyMatches(*p, src, dst, port)) {
      return {Verdict::kDeny, Reason::kDenied, p->key()};
    }
  }
  bool any_allow = false;
  for (const Policy* p : applicable) {
    if (p->action != Action::kAllow) continue;
    any_allow = true;
    if (PolicyMatches(*p, src, dst, port)) return {Verdict::kAllow, Reason::kAllowed, p->key()};
  }
  if (any_allow) return {Verdict::kDeny, Reason::kDefaultDeny, ""};
  return {Verdict::kAllow, Reason::kNoAllowPolicy, ""};
}

}  // namespace weft::authz
