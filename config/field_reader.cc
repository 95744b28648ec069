#include "config/field_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <set>

#include "config/names.hpp"

namespace weft::config {
namespace {

bool OneOf(std::string_view s, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), s) != words.end();
}

bool IsDecimalInt(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsFloat(std::string_view s) {
  if (OneOf(s, {".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"})) return true;
  bool has_digit = std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  bool only_float_chars = std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
  });
  if (!has_digit || !only_float_chars) return false;
  std::string str(s);
  char* end = nullptr;
  std::strtod(str.c_str(), &end);
  return end == str.c_str() + str.size();
}

}  // namespace

ScalarType Classify(const YAML::Node& node) {
  if (node.IsNull()) return ScalarType::kNull;
  if (node.Tag() == "!") return ScalarType::kString;  // quoted
  const std::string& s = node.Scalar();
  if (OneOf(s, {"~", "null", "Null", "NULL"})) return ScalarType::kNull;
  if (OneOf(s, {"true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No",
                "NO", "on", "On", "ON", "off", "Off", "OFF"})) {
    return ScalarType::kBool;
  }
  if (IsDecimalInt(s)) return ScalarType::kInt;
  if (IsFloat(s)) return ScalarType::kFloat;
  return ScalarType::kString;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    default:
      break;
  }
  switch (Classify(node)) {
    case ScalarType::kNull:
      return "null";
    case ScalarType::kBool:
      return "boolean " + node.Scalar();
    case ScalarType::kInt:
      return "integer " + node.Scalar();
    case ScalarType::kFloat:
      return "number " + node.Scalar();
    case ScalarType::kString:
      break;
  }
  return "string \"" + node.Scalar() + "\"";
}

namespace {

std::string KeyText(const YAML::Node& key) { return key.IsScalar() ? key.Scalar() : "<" + Describe(key) + ">"; }

}  // namespace

Location LocationOf(const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  return Location{std::max(m.line, 0), std::max(m.column, 0)};
}

std::string IndexPath(std::string_view path, size_t index) {
  return std::string(path) + "[" + std::to_string(index) + "]";
}

std::string FieldPath(std::string_view path, std::string_view field) {
  if (field.find_first_of("./") != std::string_view::npos) {
    return std::string(path) + "[\"" + std::string(field) + "\"]";
  }
  if (path.empty()) return std::string(field);
  return std::string(path) + "." + std::string(field);
}

void FieldReader::Error(const YAML::Node& at, std::string_view path, std::string_view message) {
  Error(LocationOf(at), path, message);
}

void FieldReader::Error(Location at, std::string_view path, std::string_view message) {
  ++errors_;
  std::string subject = resource_;
  if (!path.empty()) subject += ": " + std::string(path);
  diags_.Add(at, subject, message);
}

std::optional<YAML::Node> FieldReader::Find(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return std::nullopt;
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) {
      if (kv.second.IsNull() || (kv.second.IsScalar() && Classify(kv.second) == ScalarType::kNull)) {
        return std::nullopt;
      }
      return kv.second;
    }
  }
  return std::nullopt;
}

bool FieldReader::ExpectMap(const YAML::Node& node, std::string_view path,
                            std::initializer_list<std::string_view> known) {
  return ExpectMapFields(node, path, std::vector<std::string_view>(known), known.size() == 0);
}

bool FieldReader::ExpectMapFields(const YAML::Node& node, std::string_view path,
                                  const std::vector<std::string_view>& known, bool lenient) {
  if (!node.IsMap()) {
    Error(node, path, "expected a mapping, got " + Describe(node));
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    std::string key = KeyText(kv.first);
    if (!seen.insert(key).second) {
      Error(kv.first, FieldPath(path, key), "duplicate field");
    } else if (!lenient && std::find(known.begin(), known.end(), key) == known.end()) {
      Error(kv.first, FieldPath(path, key), "unknown field");
    }
  }
  return true;
}

bool FieldReader::IsInteger(const YAML::Node& node) {
  return node.IsScalar() && Classify(node) == ScalarType::kInt;
}

bool FieldReader::ExpectSequence(const YAML::Node& node, std::string_view path) {
  if (node.IsSequence()) return true;
  Error(node, path, "expected a list, got " + Describe(node));
  return false;
}

std::optional<std::string> FieldReader::String(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar() && Classify(node) == ScalarType::kString) return node.Scalar();
  Error(node, path, "expected a string, got " + Describe(node));
  return std::nullopt;
}

std::optional<int64_t> FieldReader::Int(const YAML::Node& node, std::string_view path, int64_t min,
                                        int64_t max) {
  if (!node.IsScalar() || Classify(node) != ScalarType::kInt) {
    Error(node, path, "expected an integer, got " + Describe(node));
    return std::nullopt;
  }
  std::string_view s = node.Scalar();
  if (s.front() == '+') s.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || v < min || v > max) {
    Error(node, path,
          node.Scalar() + " is out of range (" + std::to_string(min) + "-" + std::to_string(max) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> FieldReader::Bool(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar() && Classify(node) == ScalarType::kBool) {
    return OneOf(node.Scalar(), {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"});
  }
  Error(node, path, "expected a boolean, got " + Describe(node));
  return std::nullopt;
}

std::optional<double> FieldReader::Number(const YAML::Node& node, std::string_view path, double min,
                                          double max) {
  ScalarType t = node.IsScalar() ? Classify(node) : ScalarType::kNull;
  if (t != ScalarType::kInt && t != ScalarType::kFloat) {
    Error(node, path, "expected a number, got " + Describe(node));
    return std::nullopt;
  }
  double v = std::strtod(node.Scalar().c_str(), nullptr);
  if (!(v >= min && v <= max)) {  // also rejects NaN
    auto fmt = [](double d) {
      std::string s = std::to_string(d);
      s.erase(s.find_last_not_of('0') + 1);
      if (s.back() == '.') s.pop_back();
      return s;
    };
    Error(node, path, node.Scalar() + " is out of range (" + fmt(min) + "-" + fmt(max) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<Labels> FieldReader::StringMap(const YAML::Node& node, std::string_view path) {
  if (!ExpectMap(node, path)) return std::nullopt;
  Labels out;
  bool ok = true;
  for (const auto& kv : node) {
    std::string key = KeyText(kv.first);
    auto value = String(kv.second, FieldPath(path, key));
    if (value) {
      out.emplace(key, *value);
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<Labels> FieldReader::LabelMap(const YAML::Node& node, std::string_view path) {
  auto labels = StringMap(node, path);
  if (!labels) return std::nullopt;
  bool ok = true;
  for (const auto& kv : node) {
    std::string key = KeyText(kv.first);
    std::string field = FieldPath(path, key);
    if (std::string why = CheckLabelKey(key); !why.empty()) {
      Error(kv.first, field, "invalid label key: " + why);
      ok = false;
    }
    if (std::string why = CheckLabelValue(labels->at(key)); !why.empty()) {
      Error(kv.second, field, "invalid label value \"" + labels->at(key) + "\": " + why);
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return labels;
}

}  // namespace weft::config
