#include "controller/kinds.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>

namespace weft::controller {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const std::vector<KindInfo>& KnownKinds() {
  // What config::ParseResources accepts (config/resources.hpp).
  static const std::vector<KindInfo> kKinds = {
      {"Namespace", "namespaces", {"ns"}, false},
      {"Service", "services", {"svc"}},
      {"ServiceAccount", "serviceaccounts", {"sa"}},
      {"Deployment", "deployments", {"deploy"}},
      {"VirtualService", "virtualservices", {"vs"}},
      {"DestinationRule", "destinationrules", {"dr"}},
      {"ServiceEntry", "serviceentries", {"se"}},
      {"WorkloadEntry", "workloadentries", {"we"}},
      {"Gateway", "gateways", {"gw"}},
      {"AuthorizationPolicy", "authorizationpolicies", {"ap"}},
      {"PeerAuthentication", "peerauthentications", {"pa"}},
      {"RequestAuthentication", "requestauthentications", {"ra"}},
  };
  return kKinds;
}

Result<std::string> ResolveKind(std::string_view name, const std::vector<std::string>& extra) {
  const std::string want = Lower(name);
  if (!want.empty()) {
    for (const auto& k : KnownKinds()) {
      if (want == Lower(k.kind) || want == k.plural) return std::string(k.kind);
      for (const char* s : k.short_names)
        if (want == s) return std::string(k.kind);
    }
    for (const auto& k : extra)
      if (want == Lower(k) || want == Lower(k) + "s") return k;
  }
  std::set<std::string> names;
  for (const auto& k : KnownKinds()) names.insert(k.kind);
  for (const auto& k : extra) names.insert(k);
  std::string msg = "unknown kind \"" + std::string(name) + "\"; known kinds:";
  bool first = true;
  for (const auto& n : names) {
    msg += (first ? " " : ", ") + n;
    first = false;
  }
  return Status::Error(msg, EINVAL);
}

}  // namespace weft::controller
