// YAML <-> canonical JSON. Internal to config/ (includes yaml-cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

namespace weft::config {

// Thrown by YamlToJson at the first mapping or list nested deeper than kMaxDepth.
struct TooDeep {
  YAML::Mark mark;
};

// Scalars resolve as Kubernetes reads them (FieldReader's Classify): quoted ->
// string, plain -> null, bool, integer, number or string. `depth` is the
// nesting of `node` (1 for a document's root); deeper than kMaxDepth throws
// TooDeep.
nlohmann::json YamlToJson(const YAML::Node& node, int depth = 1);
// The inverse, with strings tagged as quoted so that Classify reads them back as strings.
YAML::Node JsonToYaml(const nlohmann::json& value);

}  // namespace weft::config
