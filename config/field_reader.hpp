// Strict, typed access to the fields of one YAML resource. Every problem is
// reported to Diagnostics with the node's position and the field path; nothing
// throws. Internal to the config parsers (it includes yaml-cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/model.hpp"

namespace weft::config {

Location LocationOf(const YAML::Node& node);

// How a scalar resolves under the YAML rules Kubernetes uses (sigs.k8s.io/yaml):
// quoted scalars are strings; plain ones may be null, bool, int or float.
enum class ScalarType { kNull, kBool, kInt, kFloat, kString };
ScalarType Classify(const YAML::Node& node);
// "a mapping", "integer 80", "string \"x\"": for "expected ..., got ..." messages.
std::string Describe(const YAML::Node& node);

class FieldReader {
 public:
  FieldReader(Diagnostics& diags, std::string resource) : diags_(diags), resource_(std::move(resource)) {}

  // Names the resource in later errors: "Service default/cart".
  void set_resource(std::string resource) { resource_ = std::move(resource); }
  // The resource's metadata.namespace, for rules that compare against it
  // (exportTo "." is the own namespace); "" before metadata is read.
  void set_namespace(std::string ns) { ns_ = std::move(ns); }
  const std::string& ns() const { return ns_; }
  void Error(const YAML::Node& at, std::string_view path, std::string_view message);
  void Error(Location at, std::string_view path, std::string_view message);
  size_t errors() const { return errors_; }

  // The value of `key` in a mapping, if present and not null.
  static std::optional<YAML::Node> Find(const YAML::Node& map, std::string_view key);

  // Checks that `node` is a mapping without duplicate keys and, when `known` is
  // not empty, without keys outside `known`. False if it is not a mapping.
  bool ExpectMap(const YAML::Node& node, std::string_view path,
                 std::initializer_list<std::string_view> known = {});
  // Whether a scalar resolves to an integer (an unquoted 80, not "80").
  static bool IsInteger(const YAML::Node& node);
  // Same, with the known fields in a vector (schema tables); `lenient` accepts unknown ones.
  bool ExpectMapFields(const YAML::Node& node, std::string_view path,
                       const std::vector<std::string_view>& known, bool lenient);
  bool ExpectSequence(const YAML::Node& node, std::string_view path);

  std::optional<std::string> String(const YAML::Node& node, std::string_view path);
  // An integer within [min, max].
  std::optional<int64_t> Int(const YAML::Node& node, std::string_view path, int64_t min, int64_t max);
  std::optional<bool> Bool(const YAML::Node& node, std::string_view path);
  // An integer or decimal number within [min, max].
  std::optional<double> Number(const YAML::Node& node, std::string_view path, double min, double max);
  // A map of string to string whose keys and values are valid labels.
  std::optional<Labels> LabelMap(const YAML::Node& node, std::string_view path);
  // A map of string to string (annotations: any key, any value).
  std::optional<Labels> StringMap(const YAML::Node& node, std::string_view path);

 private:
  Diagnostics& diags_;
  std::string resource_;
  std::string ns_;
  size_t errors_ = 0;
};

// "spec.ports" + 2 -> "spec.ports[2]"; "metadata" + "name" -> "metadata.name";
// keys with '.' or '/' are quoted: metadata.annotations["weft.io/lb-algorithm"].
std::string IndexPath(std::string_view path, size_t index);
std::string FieldPath(std::string_view path, std::string_view field);

}  // namespace weft::config
