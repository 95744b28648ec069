// Test helpers: YAML through the real parser (config::ParseResources) into
// Resources, object literals into Resources, and the cluster IPs the
// controller would assign.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/resource.hpp"

namespace weft::controller::testing {

// Every document of a YAML file / text, validated; throws (test failure) on errors.
std::vector<config::Resource> LoadYaml(const std::string& path);
std::vector<config::Resource> ParseYaml(const std::string& text);
// A Resource from an object literal (metadata.namespace defaults to ns).
config::Resource FromJson(nlohmann::json object, const std::string& ns = "default");
// Fills spec.clusterIP of Services that have none: <prefix>10, <prefix>11, ...
void AssignClusterIps(std::vector<config::Resource>& resources, const std::string& prefix = "10.96.0.");

// One WorkloadEntry per Bookinfo pod (namespace default): labels app/version,
// a pod address, the Deployment's service account (bookinfo-<app>), and the
// node it runs on (productpage, details, reviews-v1 on node-a; ratings,
// reviews-v2, reviews-v3 on node-b).
struct BookinfoPod {
  const char* app;
  const char* version;
  const char* ip;
  const char* node;
  std::string name() const { return std::string(app) + "-" + version; }
  std::string sa() const { return std::string("bookinfo-") + app; }
};
const std::vector<BookinfoPod>& BookinfoPodTable();
std::vector<config::Resource> BookinfoPods();
// A WorkloadEntry as the lab registers a pod.
config::Resource PodEntry(const std::string& ns, const std::string& name, const std::map<std::string, std::string>& labels,
                          const std::string& sa, const std::string& ip, const std::string& node);

}  // namespace weft::controller::testing
