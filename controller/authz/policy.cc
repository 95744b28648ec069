#include "controller/authz/policy.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "controller/compile_model.hpp"

namespace weft::controller::authz {
namespace {

using nlohmann::json;

const json& Empty() {
  static const json kEmpty = json::object();
  return kEmpty;
}

const json& Obj(const json& j, std::string_view key) {
  const json* f = compile::Field(j, key);
  return f && f->is_object() ? *f : Empty();
}

std::vector<std::string> Strings(const json& j, std::string_view key) {
  std::vector<std::string> out;
  const json* f = compile::Field(j, key);
  if (!f || !f->is_array()) return out;
  for (const json& v : *f) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<const json*> Items(const json& j, std::string_view key) {
  std::vector<const json*> out;
  const json* f = compile::Field(j, key);
  if (!f || !f->is_array()) return out;
  for (const json& v : *f) out.push_back(&v);
  return out;
}

std::optional<uint16_t> ParsePort(std::string_view s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 1 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

std::vector<uint16_t> Ports(const std::vector<std::string>& in) {
  std::vector<uint16_t> out;
  for (const auto& s : in) {
    if (auto p = ParsePort(s)) out.push_back(*p);
  }
  return out;
}

std::vector<IpPrefix> Cidrs(const std::vector<std::string>& in) {
  std::vector<IpPrefix> out;
  for (const auto& s : in) {
    if (auto p = ParseIpOrCidr(s)) out.push_back(*p);
  }
  return out;
}

bool Present(const json& j, std::string_view key) {
  const json* f = compile::Field(j, key);
  return f && !(f->is_array() && f->empty());
}

// Istio: "<sa>" names an account of the policy's namespace, "<ns>/<sa>" any.
std::vector<std::string> ServiceAccounts(std::vector<std::string> values, const std::string& policy_ns) {
  for (auto& v : values) {
    if (v.find('/') == std::string::npos) v = policy_ns + "/" + v;
  }
  return values;
}

Source ParseSource(const json& src, const std::string& policy_ns) {
  Source s;
  s.principals = Strings(src, "principals");
  s.not_principals = Strings(src, "notPrincipals");
  s.namespaces = Strings(src, "namespaces");
  s.not_namespaces = Strings(src, "notNamespaces");
  s.service_accounts = ServiceAccounts(Strings(src, "serviceAccounts"), policy_ns);
  s.not_service_accounts = ServiceAccounts(Strings(src, "notServiceAccounts"), policy_ns);
  s.ip_blocks = Cidrs(Strings(src, "ipBlocks"));
  s.not_ip_blocks = Cidrs(Strings(src, "notIpBlocks"));
  for (const char* k : {"requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"}) {
    s.l7 |= Present(src, k);
  }
  return s;
}

Operation ParseOperation(const json& op) {
  Operation o;
  o.ports = Ports(Strings(op, "ports"));
  o.not_ports = Ports(Strings(op, "notPorts"));
  for (const char* k : {"methods", "notMethods", "paths", "notPaths", "hosts", "notHosts"}) {
    o.l7 |= Present(op, k);
  }
  return o;
}

Condition ParseCondition(const json& c, const std::string& policy_ns) {
  Condition out;
  out.raw_key = compile::StringField(c, "key");
  out.values = Strings(c, "values");
  out.not_values = Strings(c, "notValues");
  using K = Condition::Key;
  if (out.raw_key == "source.ip") out.key = K::kSourceIp;
  else if (out.raw_key == "source.namespace") out.key = K::kSourceNamespace;
  else if (out.raw_key == "source.principal") out.key = K::kSourcePrincipal;
  else if (out.raw_key == "source.serviceAccount") out.key = K::kSourceServiceAccount;
  else if (out.raw_key == "source.trustDomain") out.key = K::kSourceTrustDomain;
  else if (out.raw_key == "destination.ip") out.key = K::kDestinationIp;
  else if (out.raw_key == "destination.port") out.key = K::kDestinationPort;
  else out.key = K::kL7;
  if (out.key == K::kSourceIp || out.key == K::kDestinationIp) {
    out.ip_values = Cidrs(out.values);
    out.ip_not_values = Cidrs(out.not_values);
  }
  if (out.key == K::kSourceServiceAccount) {
    out.values = ServiceAccounts(std::move(out.values), policy_ns);
    out.not_values = ServiceAccounts(std::move(out.not_values), policy_ns);
  }
  if (out.key == K::kDestinationPort) {
    out.port_values = Ports(out.values);
    out.port_not_values = Ports(out.not_values);
  }
  return out;
}

}  // namespace

bool Rule::HasL7() const {
  return std::any_of(from.begin(), from.end(), [](const Source& s) { return s.l7; }) ||
         std::any_of(to.begin(), to.end(), [](const Operation& o) { return o.l7; }) ||
         std::any_of(when.begin(), when.end(), [](const Condition& c) { return c.key == Condition::Key::kL7; });
}

Policy ParsePolicy(const json& object) {
  Policy p;
  if (auto model = compile::ParseAuthorizationPolicy(object)) {
    p.ns = model->ns;
    p.name = model->name;
    p.selector = model->selector;
  }
  const json& spec = Obj(object, "spec");
  p.targeted = compile::Field(spec, "targetRef") != nullptr || Present(spec, "targetRefs");
  std::string action = compile::StringField(spec, "action");
  if (action == "DENY") p.action = Action::kDeny;
  else if (action == "AUDIT") p.action = Action::kAudit;
  else if (action == "CUSTOM") p.action = Action::kCustom;
  else p.action = Action::kAllow;
  for (const json* r : Items(spec, "rules")) {
    Rule rule;
    for (const json* f : Items(*r, "from")) rule.from.push_back(ParseSource(Obj(*f, "source"), p.ns));
    for (const json* t : Items(*r, "to")) rule.to.push_back(ParseOperation(Obj(*t, "operation")));
    for (const json* w : Items(*r, "when")) rule.when.push_back(ParseCondition(*w, p.ns));
    p.rules.push_back(std::move(rule));
  }
  return p;
}

std::vector<Policy> ParsePolicies(const std::vector<config::Resource>& all) {
  std::vector<Policy> out;
  for (const auto& r : all) {
    if (r.key.kind == "AuthorizationPolicy") out.push_back(ParsePolicy(r.object));
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

IpPrefix Canonical(const IpPrefix& p) {
  auto bytes = p.addr.bytes();
  int bits = p.addr.is_v4() ? 96 + p.len : p.len;
  for (int i = 0; i < 16; ++i, bits -= 8) {
    if (bits >= 8) continue;
    uint8_t mask = bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    bytes[i] &= mask;
  }
  return IpPrefix{IpAddr::FromBytes(bytes.data()), p.len};
}

std::optional<IpPrefix> ParseIpOrCidr(std::string_view text) {
  if (text.find('/') == std::string_view::npos) {
    auto ip = IpAddr::Parse(text);
    if (!ip) return std::nullopt;
    return IpPrefix{*ip, ip->is_v4() ? 32 : 128};
  }
  auto p = IpPrefix::Parse(text);
  if (!p) return std::nullopt;
  return Canonical(*p);
}

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

}  // namespace weft::controller::authz
