// A validated configuration object (Kubernetes or Istio kind) as the control
// plane handles it: the parser (config/) produces these, the store
// (controller/store*) persists them, the compiler (controller/compiler*)
// turns them into per-node config.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace weft::config {

struct SourcePos {
  std::string file;
  int line = 0;    // 1-based, 0 = unknown
  int column = 0;  // 1-based, 0 = unknown
};

struct ResourceKey {
  std::string kind;  // canonical Kind: "Service", "VirtualService", ...
  std::string ns;    // metadata.namespace ("" for cluster-scoped kinds such as Namespace)
  std::string name;
  auto operator<=>(const ResourceKey&) const = default;
  std::string ToString() const { return kind + " " + (ns.empty() ? name : ns + "/" + name); }
};

struct Resource {
  std::string api_version;  // as written, e.g. "networking.istio.io/v1beta1"
  ResourceKey key;
  // The whole object (apiVersion, kind, metadata, spec) after validation, with
  // metadata.namespace filled in. Canonical: this is what is stored and compiled.
  nlohmann::json object;
  SourcePos pos;                  // where the document starts
  uint64_t resource_version = 0;  // assigned by the store
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourcePos pos;
  std::string resource;  // "Kind ns/name"
  std::string field;     // "spec.http[0].route[0].destination.subset"
  std::string message;
  std::string code;      // analyzer code for warnings (istioctl analyze style)
  // "file:line:col: Kind ns/name: field: message"
  std::string ToString() const;
};

}  // namespace weft::config
