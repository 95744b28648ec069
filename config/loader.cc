// The agent's file mode on top of ParseResources: the typed view of Services
// and WorkloadEntries (BuildConfig) re-reads their canonical JSON with the same
// parsers that validated them.
#include "config/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>

#include "config/limits.hpp"
#include "config/resource_parsers.hpp"
#include "config/resources.hpp"
#include "config/yaml_json.hpp"

namespace weft::config {
namespace {

Metadata MetadataOf(const Resource& res, const YAML::Node& doc) {
  Metadata meta;
  meta.name = res.key.name;
  meta.ns = res.key.ns;
  const auto& m = res.object.at("metadata");
  if (auto it = m.find("labels"); it != m.end()) meta.labels = it->get<Labels>();
  if (auto it = m.find("annotations"); it != m.end()) {
    meta.annotations = it->get<Labels>();
    meta.annotations_node = doc["metadata"]["annotations"];
  }
  return meta;
}

}  // namespace

Result<Config> BuildConfig(const std::vector<Resource>& all) {
  Diagnostics diags("(stored resources)");
  Config config;
  try {
    for (const auto& res : all) {
      if (res.key.kind != "Service" && res.key.kind != "WorkloadEntry") continue;
      YAML::Node doc = JsonToYaml(res.object);
      FieldReader r(diags, res.key.ToString());
      Metadata meta = MetadataOf(res, doc);
      if (res.key.kind == "Service") {
        if (auto svc = ParseService(r, doc, meta)) config.services.push_back(std::move(svc->service));
      } else if (auto w = ParseWorkloadEntry(r, doc, meta)) {
        config.workloads.push_back(std::move(*w));
      }
    }
  } catch (const std::exception& e) {  // yaml-cpp or nlohmann on an object that did not come from ParseResources
    return Status::Error(std::string("build config: ") + e.what(), EINVAL);
  }
  if (!diags.empty()) return diags.ToStatus().Wrap("build config");
  return config;
}

Result<Config> ParseConfig(std::string_view text, std::string_view filename) {
  auto resources = ParseResources(text, filename);
  if (!resources.ok()) return resources.status();
  return BuildConfig(*resources);
}

// Reads at most kMaxRequestBytes (one more is refused): a config file is
// bounded as an Admin request is (config/limits.hpp).
Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno("read config " + path, errno);
  std::string text(kMaxRequestBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return Status::Errno("read config " + path, errno);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxRequestBytes) {
    return Status::Error("read config " + path + ": larger than " + FormatBytes(kMaxRequestBytes) + " (the limit)",
                         EFBIG);
  }
  return ParseConfig(text, path);
}

}  // namespace weft::config
