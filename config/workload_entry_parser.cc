// kind: WorkloadEntry (networking.istio.io): one workload at one address.
// Validation only; the typed WorkloadEntry is config::TypedView's (typed.cc).
#include <limits>

#include "config/names.hpp"
#include "config/resource_parsers.hpp"

namespace weft::config {
namespace {

void CheckNamedPorts(FieldReader& r, const YAML::Node& node) {
  if (!r.ExpectMap(node, "spec.ports")) return;
  for (const auto& kv : node) {
    std::string path = FieldPath("spec.ports", kv.first.Scalar());
    if (std::string why = CheckIanaSvcName(kv.first.Scalar()); !why.empty()) {
      r.Error(kv.first, path, "invalid port name \"" + kv.first.Scalar() + "\": " + why);
    }
    r.Int(kv.second, path, 1, 65535);
  }
}

}  // namespace

std::optional<ParsedWorkload> ParseWorkloadEntry(FieldReader& r, const YAML::Node& doc, const Metadata& meta) {
  size_t errors = r.errors();
  auto spec = RequiredSpec(r, doc, {"address", "ports", "labels", "network", "locality", "weight", "serviceAccount"});
  if (!spec) return std::nullopt;
  ParsedWorkload w{meta.ns, meta.name, {}, {}};
  std::optional<IpAddr> address;
  if (auto n = FieldReader::Find(*spec, "address")) {
    if (auto text = r.String(*n, "spec.address")) {
      address = IpAddr::Parse(*text);
      if (!address) r.Error(*n, "spec.address", "invalid IP address \"" + *text + "\" (file mode needs an IP)");
      w.at = LocationOf(*n);
    }
  } else {
    r.Error(*spec, "spec.address", "required field is missing (file mode needs an IP)");
  }
  if (auto n = FieldReader::Find(*spec, "ports")) CheckNamedPorts(r, *n);
  if (auto n = FieldReader::Find(*spec, "labels")) r.LabelMap(*n, "spec.labels");
  if (auto n = FieldReader::Find(*spec, "weight")) r.Int(*n, "spec.weight", 0, std::numeric_limits<uint32_t>::max());
  for (const char* field : {"serviceAccount", "network", "locality"}) {
    if (auto n = FieldReader::Find(*spec, field)) r.String(*n, std::string("spec.") + field);
  }
  if (r.errors() != errors || !address) return std::nullopt;
  w.address = *address;
  return w;
}

}  // namespace weft::config
