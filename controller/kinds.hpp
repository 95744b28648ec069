// Kind names as users type them (weftctl get vs, kubectl style): Kind,
// lower-case kind, plural and short names, case-insensitive.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "weft/status.hpp"

namespace weft::controller {

struct KindInfo {
  const char* kind;    // canonical: "VirtualService"
  const char* plural;  // "virtualservices"
  std::vector<const char*> short_names;  // "vs"
  bool namespaced = true;
};

const std::vector<KindInfo>& KnownKinds();

// The canonical Kind for `name`; `extra` are further canonical kinds accepted
// (e.g. every kind present in the store). Unknown -> EINVAL listing the known
// kinds.
Result<std::string> ResolveKind(std::string_view name, const std::vector<std::string>& extra = {});

}  // namespace weft::controller
