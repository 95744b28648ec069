// Table-driven validation of YAML against a schema: each kind's fields as a
// table of {name, type, required}. The walker reports every problem through
// FieldReader (position + field path) and never throws. Internal to config/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/field_reader.hpp"

namespace weft::config::schema {

// Returns why a string is invalid ("" when valid), e.g. "must be an IP address".
using StringCheck = std::string (*)(std::string_view);
// Cross-field rules of one object, run after its fields were checked.
using ObjectCheck = void (*)(FieldReader& r, const YAML::Node& node, const std::string& path);

enum class Type { kString, kInt, kBool, kNumber, kEnum, kDuration, kObject, kList, kMap, kLabels, kAny };

struct Node;
struct Field {
  std::string_view name;
  const Node* type;
  bool required = false;
};
inline constexpr bool kRequired = true;

struct ObjectOptions {
  ObjectCheck check = nullptr;
  std::vector<std::string_view> one_of;  // at most one of these may be set ...
  bool one_of_required = false;          // ... or exactly one
  bool lenient = false;                  // unknown fields are accepted as they are
};

struct Node {
  Type type = Type::kAny;
  std::vector<Field> fields;           // kObject
  ObjectOptions object;                // kObject
  const Node* elem = nullptr;          // kList, kMap: element / value type
  std::vector<std::string_view> values;  // kEnum
  bool case_insensitive = false;       // kEnum
  int64_t min = 0, max = 0;            // kInt range; kList minimum length; kDuration allows 0 if min == 0
  double dmin = 0, dmax = 0;           // kNumber
  StringCheck check = nullptr;         // kString value; kMap key
};

const Node* String(StringCheck check = nullptr);
const Node* Int(int64_t min, int64_t max);
const Node* Bool();
const Node* Number(double min, double max);
const Node* Enum(std::initializer_list<std::string_view> values, bool case_insensitive = false);
// Go/Istio duration ("1s", "0.5s", "100ms", "1h30m"), >= 1ms at ms precision; `allow_zero` for timeouts.
const Node* Duration(bool allow_zero = false);
const Node* List(const Node* elem, int64_t min_items = 0);
const Node* Map(const Node* value, StringCheck key_check = nullptr);
const Node* LabelMap();  // Kubernetes label map (keys and values checked)
const Node* Object(std::vector<Field> fields, ObjectOptions options = {});
const Node* Any();
// Fields of type Any for the given names (parts of a kind we accept without modelling).
std::vector<Field> AnyFields(std::initializer_list<std::string_view> names);
std::vector<Field> Concat(std::vector<Field> a, const std::vector<Field>& b);

// Checks `node` against `schema`; every problem goes to `r`.
void Validate(FieldReader& r, const YAML::Node& node, const Node& schema, const std::string& path);

// Duration in nanoseconds, or "" error in `why`.
bool ParseDuration(std::string_view text, int64_t& nanos, std::string& why);

}  // namespace weft::config::schema
