// ParseResources: the document header, metadata and names of every kind, then
// the kind's own schema or parser; duplicates and VIP conflicts across documents.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>

#include "config/input_scan.hpp"
#include "config/names.hpp"
#include "config/resource_parsers.hpp"
#include "config/resources.hpp"
#include "config/yaml_json.hpp"

namespace weft::config {
namespace {

struct Kind {
  KindSpec spec;
  const schema::Node* doc = nullptr;  // apiVersion, kind, metadata + spec.body
};

const std::vector<Kind>& Kinds() {
  static const std::vector<Kind> kinds = [] {
    std::vector<Kind> out;
    for (auto family : {KubernetesKinds, NetworkingKinds, SecurityKinds}) {
      for (auto& spec : family()) {
        Kind k{spec, nullptr};
        if (spec.body) {
          k.doc = schema::Object(schema::Concat(schema::AnyFields({"apiVersion", "kind", "metadata"}), spec.body->fields),
                                 spec.body->object);
        }
        out.push_back(std::move(k));
      }
    }
    return out;
  }();
  return kinds;
}

const Kind* FindKind(std::string_view kind) {
  for (const auto& k : Kinds()) {
    if (k.spec.kind == kind) return &k;
  }
  return nullptr;
}

std::string SupportedKinds() {
  std::string s;
  for (const auto& k : Kinds()) s += (s.empty() ? "" : ", ") + std::string(k.spec.kind);
  return s;
}

std::string Join(const std::vector<std::string_view>& values) {
  std::string s;
  for (auto v : values) s += (s.empty() ? "" : ", ") + std::string(v);
  return s;
}

struct Loaded {
  std::vector<Resource> resources;
  ParsedDocs parsed;
  std::map<std::string, Location> names;  // "Kind ns/name" -> where first defined
};

// Reads a required string field of the document header; reports if missing.
std::optional<std::string> RequiredString(FieldReader& r, const YAML::Node& map, std::string_view key,
                                          std::string_view path) {
  auto node = FieldReader::Find(map, key);
  if (!node) {
    r.Error(map, path, "required field is missing");
    return std::nullopt;
  }
  return r.String(*node, path);
}

std::optional<Metadata> ParseMetadata(FieldReader& r, const YAML::Node& doc, const KindSpec& kind) {
  auto node = FieldReader::Find(doc, "metadata");
  if (!node) {
    r.Error(doc, "metadata", "required field is missing");
    return std::nullopt;
  }
  if (!r.ExpectMap(*node, "metadata", {"name", "namespace", "labels", "annotations"})) return std::nullopt;
  Metadata meta;
  auto name = RequiredString(r, *node, "name", "metadata.name");
  if (!name) return std::nullopt;
  std::string why = kind.label_name ? CheckDns1123Label(*name) : CheckDns1123Subdomain(*name);
  if (!why.empty()) {
    r.Error(*FieldReader::Find(*node, "name"), "metadata.name", "\"" + *name + "\" " + why);
    return std::nullopt;
  }
  meta.name = *name;
  auto ns_node = FieldReader::Find(*node, "namespace");
  if (kind.namespaced) {
    meta.ns = "default";
    if (ns_node) {
      auto ns = r.String(*ns_node, "metadata.namespace");
      if (!ns) return std::nullopt;
      if (std::string ns_why = CheckDns1123Label(*ns); !ns_why.empty()) {
        r.Error(*ns_node, "metadata.namespace", "\"" + *ns + "\" " + ns_why);
        return std::nullopt;
      }
      meta.ns = *ns;
    }
  } else if (ns_node) {
    r.Error(*ns_node, "metadata.namespace", std::string(kind.kind) + " is cluster-scoped: no namespace");
  }
  r.set_resource(ResourceKey{std::string(kind.kind), meta.ns, meta.name}.ToString());
  r.set_namespace(meta.ns);
  if (auto labels = FieldReader::Find(*node, "labels")) {
    if (auto v = r.LabelMap(*labels, "metadata.labels")) meta.labels = std::move(*v);
  }
  if (auto annotations = FieldReader::Find(*node, "annotations")) {
    CheckAnnotationSize(r, *annotations, "metadata.annotations");
    if (auto v = r.StringMap(*annotations, "metadata.annotations")) {
      meta.annotations = std::move(*v);
      meta.annotations_node = *annotations;
    }
  }
  return meta;
}

void RecordName(FieldReader& r, const YAML::Node& doc, const std::string& resource, Loaded& out) {
  YAML::Node name = *FieldReader::Find(*FieldReader::Find(doc, "metadata"), "name");
  auto [it, inserted] = out.names.emplace(resource, LocationOf(name));
  if (!inserted) {
    r.Error(name, "metadata.name", "duplicate resource (first defined at line " + std::to_string(it->second.line + 1) + ")");
  }
}

void LoadDocument(const YAML::Node& doc, size_t index, std::string_view file, Diagnostics& diags, Loaded& out) {
  if (doc.IsNull()) return;  // empty document, e.g. after a trailing "---"
  std::string doc_name = "document " + std::to_string(index + 1);
  FieldReader r(diags, doc_name);
  if (!r.ExpectMap(doc, "")) return;
  auto api_version = RequiredString(r, doc, "apiVersion", "apiVersion");
  auto kind_name = RequiredString(r, doc, "kind", "kind");
  if (!api_version || !kind_name) return;
  const Kind* kind = FindKind(*kind_name);
  if (!kind) {
    r.Error(*FieldReader::Find(doc, "kind"), "kind",
            "unknown kind \"" + *kind_name + "\" of apiVersion " + *api_version + " (supported: " + SupportedKinds() + ")");
    return;
  }
  r.set_resource(*kind_name + " (" + doc_name + ")");
  const auto& versions = kind->spec.api_versions;
  if (std::find(versions.begin(), versions.end(), *api_version) == versions.end()) {
    r.Error(*FieldReader::Find(doc, "apiVersion"), "apiVersion",
            "unsupported apiVersion \"" + *api_version + "\" for kind " + *kind_name + " (supported: " + Join(versions) +
                ")");
    return;
  }
  size_t errors = r.errors();
  auto meta = ParseMetadata(r, doc, kind->spec);
  if (!meta) return;
  ResourceKey key{*kind_name, meta->ns, meta->name};
  RecordName(r, doc, key.ToString(), out);
  if (kind->spec.parse) {
    kind->spec.parse(r, doc, *meta, out.parsed);
  } else {
    schema::Validate(r, doc, *kind->doc, "");
  }
  if (r.errors() != errors) return;
  Resource res;
  res.api_version = *api_version;
  res.key = std::move(key);
  try {
    res.object = YamlToJson(doc);
  } catch (const TooDeep& e) {  // in a field Weft accepts without modelling (the schema walks only its own)
    diags.Add(Location{std::max(e.mark.line, 0), std::max(e.mark.column, 0)}, doc_name, TooDeepMessage());
    return;
  }
  if (kind->spec.namespaced) res.object["metadata"]["namespace"] = meta->ns;
  size_t bytes = 0;
  try {
    bytes = res.object.dump().size();  // the store and weftctl serialize it: JSON strings must be UTF-8
  } catch (const nlohmann::json::exception&) {
    r.Error(doc, "", "contains text that is not valid UTF-8");
    return;
  }
  if (bytes > kMaxObjectBytes) {
    diags.Add(LocationOf(doc), doc_name, TooLargeMessage());
    return;
  }
  Location at = LocationOf(doc);
  res.pos = SourcePos{std::string(file), at.line + 1, at.column + 1};
  out.resources.push_back(std::move(res));
}

// A VIP belongs to one Service: the first in the file keeps it.
void CheckVipConflicts(const Loaded& loaded, Diagnostics& diags) {
  std::map<IpAddr, const ParsedService*> owners;
  for (const auto& svc : loaded.parsed.services) {
    FieldReader r(diags, "Service " + svc.ns + "/" + svc.name);
    for (size_t i = 0; i < svc.vips.size(); ++i) {
      auto [it, inserted] = owners.emplace(svc.vips[i], &svc);
      if (!inserted) {
        r.Error(svc.vip_sources[i].at, svc.vip_sources[i].path,
                "cluster IP " + svc.vips[i].ToString() + " is already allocated to Service " + it->second->ns + "/" +
                    it->second->name);
      }
    }
  }
}

// An address is one workload's: the kernel's identity cache maps it to one
// identity, so a second claimant would take the first one's identity (or lose
// its own) silently. The first in the file keeps it.
void CheckAddressConflicts(const Loaded& loaded, Diagnostics& diags) {
  std::map<IpAddr, const ParsedWorkload*> owners;
  for (const auto& w : loaded.parsed.workloads) {
    auto [it, inserted] = owners.emplace(w.address, &w);
    if (inserted) continue;
    FieldReader r(diags, "WorkloadEntry " + w.ns + "/" + w.name);
    r.Error(w.at, "spec.address",
            "address " + w.address.ToString() + " is already the address of WorkloadEntry " + it->second->ns + "/" +
                it->second->name + " (line " + std::to_string(it->second->at.line + 1) +
                "): one address, one workload");
  }
}

Location MarkLocation(const YAML::Mark& m) { return Location{std::max(m.line, 0), std::max(m.column, 0)}; }

}  // namespace

Status CheckText(std::string_view text, std::string_view filename) {
  Diagnostics diags(filename);
  ScanEncoding(text, diags);
  return diags.ToStatus();
}

Result<std::vector<Resource>> ParseResources(std::string_view text, std::string_view filename,
                                             const ParseOptions& options) {
  Diagnostics diags(filename);
  if (!ScanEncoding(text, diags)) return diags.ToStatus();
  if (NeedsStructureScan(text, options.max_documents) && !ScanStructure(text, diags, options.max_documents)) {
    return diags.ToStatus();
  }
  Loaded loaded;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    diags.Add(MarkLocation(e.mark), "YAML syntax error", e.msg);
    return diags.ToStatus();
  } catch (const std::exception& e) {
    diags.Add(Location{}, "YAML", e.what());
    return diags.ToStatus();
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    try {
      LoadDocument(docs[i], i, filename, diags, loaded);
    } catch (const YAML::Exception& e) {  // a yaml-cpp accessor misused on this document
      diags.Add(MarkLocation(e.mark), "document " + std::to_string(i + 1), e.msg);
    } catch (const std::exception& e) {
      diags.Add(LocationOf(docs[i]), "document " + std::to_string(i + 1), e.what());
    }
  }
  CheckVipConflicts(loaded, diags);
  CheckAddressConflicts(loaded, diags);
  if (!diags.empty()) return diags.ToStatus();
  return std::move(loaded.resources);
}

}  // namespace weft::config
