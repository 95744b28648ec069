#include "cli/ctl/kinds.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace weft::cli::ctl {

namespace {

struct KindNames {
  std::string_view kind;
  std::string_view group;  // "" = core
  std::string_view plural;
  std::string_view short_name;  // "" = none
};

constexpr std::array<KindNames, 13> kKinds = {{
    {"Service", "", "services", "svc"},
    {"ServiceAccount", "", "serviceaccounts", "sa"},
    {"Namespace", "", "namespaces", "ns"},
    {"Deployment", "apps", "deployments", "deploy"},
    {"VirtualService", "networking.istio.io", "virtualservices", "vs"},
    {"DestinationRule", "networking.istio.io", "destinationrules", "dr"},
    {"Gateway", "networking.istio.io", "gateways", "gw"},
    {"ServiceEntry", "networking.istio.io", "serviceentries", "se"},
    {"WorkloadEntry", "networking.istio.io", "workloadentries", "we"},
    {"Sidecar", "networking.istio.io", "sidecars", ""},
    {"AuthorizationPolicy", "security.istio.io", "authorizationpolicies", "ap"},
    {"PeerAuthentication", "security.istio.io", "peerauthentications", "pa"},
    {"RequestAuthentication", "security.istio.io", "requestauthentications", "ra"},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

const KindNames* Find(const std::string& typed) {
  std::string t = Lower(typed);
  std::string group;
  if (auto dot = t.find('.'); dot != std::string::npos) {
    group = t.substr(dot + 1);
    t = t.substr(0, dot);
  }
  for (const auto& k : kKinds) {
    if (!group.empty() && group != k.group) continue;
    if (t == Lower(k.kind) || t == k.plural || (!k.short_name.empty() && t == k.short_name)) return &k;
  }
  return nullptr;
}

}  // namespace

std::string CanonicalKind(const std::string& typed) {
  const KindNames* k = Find(typed);
  return k ? std::string(k->kind) : typed;
}

std::string DisplayKind(const std::string& kind) {
  const KindNames* k = Find(kind);
  if (!k) return Lower(kind);
  std::string out = Lower(k->kind);
  if (!k->group.empty()) out += "." + std::string(k->group);
  return out;
}

}  // namespace weft::cli::ctl
