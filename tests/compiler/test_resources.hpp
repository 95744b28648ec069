// Test helpers: YAML through the real parser (config::ParseResources) into
// Resources, object literals into Resources, and the cluster IPs the
// controller would assign.
#pragma once

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

}  // namespace weft::controller::testing
