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

const std::vector<BookinfoPod>& BookinfoPodTable() {
  static const std::vector<BookinfoPod> kPods = {
      {"productpage", "v1", "10.1.0.2", "node-a"}, {"details", "v1", "10.1.0.3", "node-a"},
      {"ratings", "v1", "10.2.0.2", "node-b"},     {"reviews", "v1", "10.1.0.4", "node-a"},
      {"reviews", "v2", "10.2.0.3", "node-b"},     {"reviews", "v3", "10.2.0.4", "node-b"}};
  return kPods;
}

config::Resource PodEntry(const std::string& ns, const std::string& name, const std::map<std::string, std::string>& labels,
                          const std::string& sa, const std::string& ip, const std::string& node) {
  nlohmann::json spec = {{"address", ip}, {"labels", labels}};
  if (!sa.empty()) spec["serviceAccount"] = sa;
  return FromJson({{"apiVersion", "networking.istio.io/v1"},
                   {"kind", "WorkloadEntry"},
                   {"metadata", {{"name", name}, {"annotations", {{"weft.io/node", node}}}}},
                   {"spec", spec}},
                  ns);
}

std::vector<config::Resource> BookinfoPods() {
  std::vector<config::Resource> out;
  for (const BookinfoPod& p : BookinfoPodTable()) {
    out.push_back(PodEntry("default", p.name(), {{"app", p.app}, {"version", p.version}}, p.sa(), p.ip, p.node));
  }
  return out;
}

}  // namespace weft::controller::testing
