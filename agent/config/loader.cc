#include "agent/config/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/config/names.hpp"
#include "agent/config/resource_parsers.hpp"

namespace weft::config {
namespace {

enum class Handling { kService, kWorkloadEntry, kIgnored };

struct KindInfo {
  std::string_view kind;
  std::array<std::string_view, 3> api_versions;  // unused entries empty
  Handling handling;
  bool namespaced;
};

constexpr KindInfo kKinds[] = {
    {"Service", {"v1"}, Handling::kService, true},
    {"WorkloadEntry",
     {"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"},
     Handling::kWorkloadEntry,
     true},
    {"Deployment", {"apps/v1"}, Handling::kIgnored, true},
    {"ServiceAccount", {"v1"}, Handling::kIgnored, true},
    {"Namespace", {"v1"}, Handling::kIgnored, false},
};

const KindInfo* FindKind(std::string_view kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

std::string SupportedKinds() {
  std::string s;
  for (const auto& k : kKinds) s += (s.empty() ? "" : ", ") + std::string(k.kind);
  return s;
}

std::string SupportedVersions(const KindInfo& info) {
  std::string s;
  for (auto v : info.api_versions) {
    if (!v.empty()) s += (s.empty() ? "" : ", ") + std::string(v);
  }
  return s;
}

struct Loaded {
  std::vector<ParsedService> services;
  std::vector<Workload> workloads;
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

std::optional<Metadata> ParseMetadata(FieldReader& r, const YAML::Node& doc, const KindInfo& info) {
  auto node = FieldReader::Find(doc, "metadata");
  if (!node) {
    r.Error(doc, "metadata", "required field is missing");
    return std::nullopt;
  }
  bool modeled = info.handling != Handling::kIgnored;
  bool is_map = modeled ? r.ExpectMap(*node, "metadata", {"name", "namespace", "labels", "annotations"})
                        : r.ExpectMap(*node, "metadata");
  if (!is_map) return std::nullopt;
  Metadata meta;
  auto name = RequiredString(r, *node, "name", "metadata.name");
  if (!name) return std::nullopt;
  bool label_name = info.kind == "Service" || info.kind == "Namespace";
  std::string why = label_name ? CheckDns1123Label(*name) : CheckDns1123Subdomain(*name);
  if (!why.empty()) {
    r.Error(*FieldReader::Find(*node, "name"), "metadata.name", "\"" + *name + "\" " + why);
    return std::nullopt;
  }
  meta.name = *name;
  if (info.namespaced) {
    meta.ns = "default";
    if (auto ns_node = FieldReader::Find(*node, "namespace")) {
      auto ns = r.String(*ns_node, "metadata.namespace");
      if (!ns) return std::nullopt;
      if (std::string ns_why = CheckDns1123Label(*ns); !ns_why.empty()) {
        r.Error(*ns_node, "metadata.namespace", "\"" + *ns + "\" " + ns_why);
        return std::nullopt;
      }
      meta.ns = *ns;
    }
  }
  r.set_resource(std::string(info.kind) + " " + (info.namespaced ? meta.ns + "/" : "") + meta.name);
  if (!modeled) return meta;
  if (auto labels = FieldReader::Find(*node, "labels")) {
    if (auto v = r.LabelMap(*labels, "metadata.labels")) meta.labels = std::move(*v);
  }
  if (auto annotations = FieldReader::Find(*node, "annotations")) {
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

void LoadDocument(const YAML::Node& doc, size_t index, Diagnostics& diags, Loaded& out) {
  if (doc.IsNull()) return;  // empty document, e.g. after a trailing "---"
  std::string doc_name = "document " + std::to_string(index + 1);
  FieldReader r(diags, doc_name);
  if (!r.ExpectMap(doc, "")) return;
  auto api_version = RequiredString(r, doc, "apiVersion", "apiVersion");
  auto kind = RequiredString(r, doc, "kind", "kind");
  if (!api_version || !kind) return;
  const KindInfo* info = FindKind(*kind);
  if (!info) {
    r.Error(*FieldReader::Find(doc, "kind"), "kind", "unknown kind \"" + *kind + "\" (supported: " + SupportedKinds() + ")");
    return;
  }
  r.set_resource(*kind + " (" + doc_name + ")");
  const auto& versions = info->api_versions;
  if (std::find(versions.begin(), versions.end(), *api_version) == versions.end()) {
    r.Error(*FieldReader::Find(doc, "apiVersion"), "apiVersion",
            "unsupported apiVersion \"" + *api_version + "\" for kind " + *kind + " (supported: " +
                SupportedVersions(*info) + ")");
    return;
  }
  auto meta = ParseMetadata(r, doc, *info);
  if (!meta) return;
  std::string resource = *kind + " " + (info->namespaced ? meta->ns + "/" : "") + meta->name;
  RecordName(r, doc, resource, out);
  switch (info->handling) {
    case Handling::kService:
      r.ExpectMap(doc, "", {"apiVersion", "kind", "metadata", "spec"});
      if (auto svc = ParseService(r, doc, *meta)) out.services.push_back(std::move(*svc));
      break;
    case Handling::kWorkloadEntry:
      r.ExpectMap(doc, "", {"apiVersion", "kind", "metadata", "spec"});
      if (auto w = ParseWorkloadEntry(r, doc, *meta)) out.workloads.push_back(std::move(*w));
      break;
    case Handling::kIgnored:
      break;
  }
}

// A VIP belongs to one Service: the first in the file keeps it.
void CheckVipConflicts(const Loaded& loaded, Diagnostics& diags) {
  std::map<IpAddr, const Service*> owners;
  for (const auto& parsed : loaded.services) {
    const Service& svc = parsed.service;
    FieldReader r(diags, "Service " + svc.ns + "/" + svc.name);
    for (size_t i = 0; i < svc.vips.size(); ++i) {
      auto [it, inserted] = owners.emplace(svc.vips[i], &svc);
      if (!inserted) {
        r.Error(parsed.vip_sources[i].at, parsed.vip_sources[i].path,
                "cluster IP " + svc.vips[i].ToString() + " is already allocated to Service " + it->second->ns +
                    "/" + it->second->name);
      }
    }
  }
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view filename) {
  Diagnostics diags(filename);
  Loaded loaded;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    diags.Add(Location{std::max(e.mark.line, 0), std::max(e.mark.column, 0)}, "YAML syntax error", e.msg);
    return diags.ToStatus();
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    try {
      LoadDocument(docs[i], i, diags, loaded);
    } catch (const YAML::Exception& e) {  // a yaml-cpp accessor misused on this document
      diags.Add(Location{std::max(e.mark.line, 0), std::max(e.mark.column, 0)},
                "document " + std::to_string(i + 1), e.msg);
    }
  }
  CheckVipConflicts(loaded, diags);
  if (!diags.empty()) return diags.ToStatus();
  Config config;
  for (auto& parsed : loaded.services) config.services.push_back(std::move(parsed.service));
  config.workloads = std::move(loaded.workloads);
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno("read config " + path, errno);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::Errno("read config " + path, errno);
  return ParseConfig(text.str(), path);
}

}  // namespace weft::config
