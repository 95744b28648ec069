// YAML <-> canonical JSON. Internal to config/ (includes yaml-cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

namespace weft::config {

// Scalars resolve as Kubernetes reads them (FieldReader's Classify): quoted ->
// string, plain -> null, bool, integer, number or string.
nlohmann::json YamlToJson(const YAML::Node& node);
// The inverse, with strings tagged as quoted so that Classify reads them back as strings.
YAML::Node JsonToYaml(const nlohmann::json& value);

}  // namespace weft::config
