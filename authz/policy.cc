#include "authz/policy.hpp"

#include <algorithm>
#include <tuple>

#include "config/typed.hpp"

namespace weft::authz {

Policy ParsePolicy(const nlohmann::json& object) { return config::TypedAuthorizationPolicy(object); }

std::vector<Policy> ParsePolicies(const std::vector<config::Resource>& all) {
  std::vector<Policy> out;
  for (const auto& r : all) {
    if (r.key.kind == "AuthorizationPolicy") out.push_back(std::get<Policy>(config::TypedView(r)));
  }
  std::sort(out.begin(), out.end(), [](const Policy& a, const Policy& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  });
  return out;
}

Peer Peer::FromIdentity(std::string_view trust_domain, std::string_view ns, std::string_view sa,
                        std::optional<IpAddr> ip) {
  Peer p;
  p.spiffe_id = SpiffeId(trust_domain, ns, sa);
  p.ns = std::string(ns);
  p.ip = ip;
  return p;
}

Peer Peer::Unknown(std::optional<IpAddr> ip) {
  Peer p;
  p.ip = ip;
  return p;
}

std::string SpiffeId(std::string_view trust_domain, std::string_view ns, std::string_view sa) {
  return "spiffe://" + std::string(trust_domain) + "/ns/" + std::string(ns) + "/sa/" + std::string(sa);
}

bool StringMatches(std::string_view pattern, std::string_view value) {
  if (pattern == "*") return !value.empty();
  if (!pattern.empty() && pattern.back() == '*') {
    return value.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
  }
  if (!pattern.empty() && pattern.front() == '*') {
    auto suffix = pattern.substr(1);
    return value.size() >= suffix.size() && value.substr(value.size() - suffix.size()) == suffix;
  }
  return pattern == value;
}

IpPrefix Canonical(const IpPrefix& p) { return config::CanonicalPrefix(p); }

std::string CanonicalCidr(const IpPrefix& p) { return Canonical(p).ToString(); }

std::vector<IpPrefix> SourceCidrs(const std::vector<Policy>& policies) {
  std::map<std::string, IpPrefix> seen;
  auto add = [&](const std::vector<IpPrefix>& v) {
    for (const auto& p : v) seen.emplace(CanonicalCidr(p), Canonical(p));
  };
  for (const auto& pol : policies) {
    for (const auto& rule : pol.rules) {
      for (const auto& s : rule.from) {
        add(s.ip_blocks);
        add(s.not_ip_blocks);
      }
      for (const auto& c : rule.when) {
        if (c.key != Condition::Key::kSourceIp) continue;
        add(c.ip_values);
        add(c.ip_not_values);
      }
    }
  }
  std::vector<IpPrefix> out;
  for (auto& [k, v] : seen) out.push_back(v);
  return out;
}

}  // namespace weft::authz
