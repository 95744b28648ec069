#include "config/model.hpp"

#include <algorithm>

namespace weft::config {

std::string ResolveHost(std::string_view host, std::string_view ns) {
  if (host.empty() || host.find('.') != std::string_view::npos || host == "*") return std::string(host);
  return std::string(host) + "." + std::string(ns) + "." + std::string(kServiceDomain);
}

bool IsWildcard(std::string_view host) { return !host.empty() && host.front() == '*'; }

bool HostMatches(std::string_view pattern, std::string_view host) {
  if (pattern == host) return true;
  if (!IsWildcard(pattern)) return false;
  std::string_view suffix = pattern.substr(1);  // ".suffix" or ""
  return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
}

bool LabelsMatch(const Labels& selector, const Labels& labels) {
  return std::all_of(selector.begin(), selector.end(), [&](const auto& kv) {
    auto it = labels.find(kv.first);
    return it != labels.end() && it->second == kv.second;
  });
}

IpPrefix CanonicalPrefix(const IpPrefix& p) {
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
  return CanonicalPrefix(*p);
}

std::string Service::hostname() const { return name + "." + ns + "." + std::string(kServiceDomain); }

TrafficPolicy DestinationRule::For(uint32_t port) const {
  TrafficPolicy out = policy;
  auto it = port_policies.find(port);
  if (it == port_policies.end()) return out;
  if (it->second.consistent_hash) {
    out.consistent_hash = it->second.consistent_hash;
    out.l7_hash = it->second.l7_hash;
  }
  if (it->second.mtls) out.mtls = it->second.mtls;
  return out;
}

bool AuthorizationPolicy::Rule::HasL7() const {
  return std::any_of(from.begin(), from.end(), [](const Source& s) { return s.l7; }) ||
         std::any_of(to.begin(), to.end(), [](const Operation& o) { return o.l7; }) ||
         std::any_of(when.begin(), when.end(), [](const Condition& c) { return c.key == Condition::Key::kL7; });
}

}  // namespace weft::config
