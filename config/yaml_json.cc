#include "config/yaml_json.hpp"

#include <charconv>
#include <cstdlib>

#include "config/field_reader.hpp"
#include "config/limits.hpp"
#include "config/resources.hpp"

namespace weft::config {
namespace {

bool IsTrue(const std::string& s) {
  return s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "Yes" || s == "YES" || s == "on" ||
         s == "On" || s == "ON";
}

nlohmann::json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  switch (Classify(node)) {
    case ScalarType::kNull:
      return nullptr;
    case ScalarType::kBool:
      return IsTrue(s);
    case ScalarType::kInt: {
      std::string_view v = s;
      if (v.front() == '+') v.remove_prefix(1);
      int64_t i = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
      if (ec == std::errc() && end == v.data() + v.size()) return i;
      uint64_t u = 0;
      auto [uend, uec] = std::from_chars(v.data(), v.data() + v.size(), u);
      if (uec == std::errc() && uend == v.data() + v.size()) return u;
      return std::strtod(s.c_str(), nullptr);
    }
    case ScalarType::kFloat: {
      double d = std::strtod(s.c_str(), nullptr);
      if (d != d || d - d != 0) return s;  // .nan / .inf have no JSON form: keep the text
      return d;
    }
    case ScalarType::kString:
      break;
  }
  return s;
}

void Emit(YAML::Emitter& out, const nlohmann::json& v) {
  if (v.is_object()) {
    if (v.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      Emit(out, it.value());
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    if (v.empty()) {
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
      return;
    }
    out << YAML::BeginSeq;
    for (const auto& e : v) Emit(out, e);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    // A plain scalar that would read back as null/bool/number must be quoted.
    bool ambiguous = s.empty() || Classify(YAML::Node(s)) != ScalarType::kString;
    if (ambiguous) out << YAML::DoubleQuoted;
    out << s;
  } else if (v.is_null()) {
    out << YAML::Null;
  } else if (v.is_boolean()) {
    out << (v.get<bool>() ? "true" : "false");
  } else {
    out << v.dump();
  }
}

}  // namespace

nlohmann::json YamlToJson(const YAML::Node& node, int depth) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      if (depth > kMaxDepth) throw TooDeep{node.Mark()};
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.Scalar()] = YamlToJson(kv.second, depth + 1);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      if (depth > kMaxDepth) throw TooDeep{node.Mark()};
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& e : node) arr.push_back(YamlToJson(e, depth + 1));
      return arr;
    }
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    default:
      return nullptr;
  }
}

YAML::Node JsonToYaml(const nlohmann::json& v) {
  if (v.is_object()) {
    YAML::Node map(YAML::NodeType::Map);
    for (auto it = v.begin(); it != v.end(); ++it) map[it.key()] = JsonToYaml(it.value());
    return map;
  }
  if (v.is_array()) {
    YAML::Node seq(YAML::NodeType::Sequence);
    for (const auto& e : v) seq.push_back(JsonToYaml(e));
    return seq;
  }
  if (v.is_null()) return YAML::Node(YAML::NodeType::Null);
  if (v.is_string()) {
    YAML::Node s(v.get<std::string>());
    s.SetTag("!");  // quoted: a string whatever it looks like
    return s;
  }
  if (v.is_boolean()) return YAML::Node(v.get<bool>() ? "true" : "false");
  return YAML::Node(v.dump());
}

std::string ToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  Emit(out, value);
  std::string text = out.c_str();
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

}  // namespace weft::config
