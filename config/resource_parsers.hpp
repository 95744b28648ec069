// Per-kind validation. Internal to config/: resources.cc validates the document
// header and metadata, then hands the document to its kind (KindSpec): a
// schema table (schema.hpp) or a hand-written parser (Service, WorkloadEntry).
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/field_reader.hpp"
#include "config/model.hpp"
#include "config/schema.hpp"

namespace weft::config {

struct Metadata {
  std::string name;
  std::string ns;
  Labels labels;
  Labels annotations;
  std::optional<YAML::Node> annotations_node;  // for error positions
};

// Where a VIP was written, to report a VIP claimed by two Services.
struct VipSource {
  Location at;
  std::string path;  // spec.clusterIP or spec.clusterIPs[i]
};

// A Service's VIPs and where they were written, to report a VIP claimed by two Services.
struct ParsedService {
  std::string ns, name;
  std::vector<IpAddr> vips;
  std::vector<VipSource> vip_sources;  // parallel to vips
};

// Where a WorkloadEntry's address was written, to report an address claimed twice.
struct ParsedWorkload {
  std::string ns, name;
  IpAddr address;
  Location at;  // spec.address
};

// The document's `spec`: required, a mapping of the `known` fields (the
// hand-written parsers' start); nullopt after reporting why not.
std::optional<YAML::Node> RequiredSpec(FieldReader& reader, const YAML::Node& doc,
                                       std::initializer_list<std::string_view> known);

// Validation only (the typed view is config::TypedView's, from the stored
// object). Both return nullopt after reporting at least one error to
// `reader`; ParseWorkloadEntry also when spec.address is not an IP.
std::optional<ParsedService> ParseService(FieldReader& reader, const YAML::Node& doc, const Metadata& meta);
std::optional<ParsedWorkload> ParseWorkloadEntry(FieldReader& reader, const YAML::Node& doc, const Metadata& meta);

// What hand-written parsers hand back for checks across documents.
struct ParsedDocs {
  std::vector<ParsedService> services;    // VIPs claimed twice
  std::vector<ParsedWorkload> workloads;  // addresses claimed twice
};

// One kind: where it is valid and how its body (everything but apiVersion,
// kind and metadata) is checked.
struct KindSpec {
  std::string_view kind;
  std::vector<std::string_view> api_versions;
  bool namespaced = true;
  bool label_name = false;  // metadata.name is a DNS-1123 label (else a subdomain)
  // The document's other top-level fields (usually just `spec`), as a schema ...
  const schema::Node* body = nullptr;
  // ... or a hand-written parser of the whole document.
  void (*parse)(FieldReader& reader, const YAML::Node& doc, const Metadata& meta, struct ParsedDocs& out) = nullptr;
};

// The kinds of each API family (k8s_parsers.cc, networking_parsers.cc, security_parsers.cc).
std::vector<KindSpec> KubernetesKinds();
std::vector<KindSpec> NetworkingKinds();
std::vector<KindSpec> SecurityKinds();

// Shared value checks (each returns why the value is invalid, "" when valid).
std::string CheckIp(std::string_view text);
std::string CheckIpOrCidr(std::string_view text);
std::string CheckPortString(std::string_view text);  // "8080"
std::string CheckHost(std::string_view host);        // FQDN, short name or wildcard ("*", "*.example.com")
std::string CheckHeaderName(std::string_view name);        // an HTTP token (RFC 7230 tchars)
std::string CheckStrictHeaderName(std::string_view name);  // letters, digits, '-' and '_' (Istio's strict form)
// Annotations (a mapping of strings) larger than kMaxAnnotationBytes, keys and
// values together, as apimachinery's ValidateAnnotations counts them.
void CheckAnnotationSize(FieldReader& r, const YAML::Node& annotations, const std::string& path);
// selector: {matchLabels} as Istio's WorkloadSelector.
const schema::Node* WorkloadSelector();
const schema::Node* ExportTo(bool service_entry = false);

}  // namespace weft::config
