#include "tests/compiler/test_resources.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "config/resources.hpp"

namespace weft::controller::testing {

config::Resource FromJson(nlohmann::json object, const std::string& ns) {
  config::Resource r;
  r.api_version = object.value("apiVersion", "");
  r.key.kind = object.value("kind", "");
  nlohmann::json& meta = object["metadata"];
  if (!meta.contains("namespace")) meta["namespace"] = ns;
  r.key.ns = meta.value("namespace", "");
  r.key.name = meta.value("name", "");
  r.object = std::move(object);
  return r;
}

std::vector<config::Resource> ParseYaml(const std::string& text) {
  auto parsed = config::ParseResources(text, "<test>");
  if (!parsed.ok()) throw std::runtime_error("ParseResources: " + parsed.status().message());
  return std::move(*parsed);
}

std::vector<config::Resource> LoadYaml(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = config::ParseResources(ss.str(), path);
  if (!parsed.ok()) throw std::runtime_error("ParseResources: " + parsed.status().message());
  return std::move(*parsed);
}

void AssignClusterIps(std::vector<config::Resource>& resources, const std::string& prefix) {
  int n = 10;
  for (auto& r : resources) {
    if (r.key.kind != "Service") continue;
    nlohmann::json& spec = r.object["spec"];
    if (!spec.contains("clusterIP")) spec["clusterIP"] = prefix + std::to_string(n++);
  }
}

}  // namespace weft::controller::testing
