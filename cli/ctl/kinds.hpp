// What weftctl knows about resource kinds without asking the controller: the
// names a user may type (kubectl style: Kind, plural, short name, with or
// without the API group) and how a kind is shown (`service`,
// `virtualservice.networking.istio.io`).
#pragma once

#include <string>

namespace weft::cli::ctl {

// "svc", "services", "Service", "vs", "virtualservices.networking.istio.io"
// -> the canonical Kind ("Service", "VirtualService"); an unknown name is
// returned unchanged (the controller has the last word).
std::string CanonicalKind(const std::string& typed);

// "service", "virtualservice.networking.istio.io", "deployment.apps": the
// prefix of kubectl's "<kind>/<name> configured" lines.
std::string DisplayKind(const std::string& kind);

}  // namespace weft::cli::ctl
