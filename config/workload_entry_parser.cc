// kind: WorkloadEntry (networking.istio.io): one workload at one address.
#include <limits>

#include "config/names.hpp"
#include "config/resource_parsers.hpp"

namespace weft::config {
namespace {

void ParseNamedPorts(FieldReader& r, const YAML::Node& node, Workload& w) {
  if (!r.ExpectMap(node, "spec.ports")) return;
  for (const auto& kv : node) {
    std::string path = FieldPath("spec.ports", kv.first.Scalar());
    if (std::string why = CheckIanaSvcName(kv.first.Scalar()); !why.empty()) {
      r.Error(kv.first, path, "invalid port name \"" + kv.first.Scalar() + "\": " + why);
    }
    if (auto v = r.Int(kv.second, path, 1, 65535)) w.ports[kv.first.Scalar()] = static_cast<uint16_t>(*v);
  }
}

}  // namespace

std::optional<Workload> ParseWorkloadEntry(FieldReader& r, const YAML::Node& doc, const Metadata& meta) {
  size_t errors = r.errors();
  Workload w;
  w.name = meta.name;
  w.ns = meta.ns;
  auto spec = FieldReader::Find(doc, "spec");
  if (!spec) {
    r.Error(doc, "spec", "required field is missing");
    return std::nullopt;
  }
  if (!r.ExpectMap(*spec, "spec",
                   {"address", "ports", "labels", "network", "locality", "weight", "serviceAccount"})) {
    return std::nullopt;
  }
  if (auto n = FieldReader::Find(*spec, "address")) {
    if (auto text = r.String(*n, "spec.address")) {
      if (auto ip = IpAddr::Parse(*text)) {
        w.addresses.push_back(*ip);
      } else {
        r.Error(*n, "spec.address", "invalid IP address \"" + *text + "\" (file mode needs an IP)");
      }
    }
  } else {
    r.Error(*spec, "spec.address", "required field is missing (file mode needs an IP)");
  }
  if (auto n = FieldReader::Find(*spec, "ports")) ParseNamedPorts(r, *n, w);
  if (auto n = FieldReader::Find(*spec, "labels")) {
    if (auto labels = r.LabelMap(*n, "spec.labels")) w.labels = std::move(*labels);
  }
  if (auto n = FieldReader::Find(*spec, "weight")) {
    if (auto v = r.Int(*n, "spec.weight", 0, std::numeric_limits<uint32_t>::max())) {
      w.weight = static_cast<uint32_t>(*v);
    }
  }
  if (auto n = FieldReader::Find(*spec, "serviceAccount")) {
    if (auto v = r.String(*n, "spec.serviceAccount")) w.service_account = *v;
  }
  if (auto n = FieldReader::Find(*spec, "network")) {
    if (auto v = r.String(*n, "spec.network")) w.network = *v;
  }
  if (auto n = FieldReader::Find(*spec, "locality")) {
    if (auto v = r.String(*n, "spec.locality")) w.locality = *v;
  }
  if (r.errors() != errors) return std::nullopt;
  return w;
}

}  // namespace weft::config
