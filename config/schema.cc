#include "config/schema.hpp"

#include <algorithm>
#include <cctype>
#include <deque>
#include <mutex>

namespace weft::config::schema {
namespace {

// Schema nodes live for the whole program: kinds build their tables once (function statics).
const Node* Keep(Node node) {
  static std::mutex mu;
  static auto* pool = new std::deque<Node>();
  std::lock_guard lock(mu);
  pool->push_back(std::move(node));
  return &pool->back();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Join(const std::vector<std::string_view>& values) {
  std::string s;
  for (auto v : values) s += (s.empty() ? "" : ", ") + std::string(v);
  return s;
}

void ValidateObject(FieldReader& r, const YAML::Node& node, const Node& schema, const std::string& path) {
  std::vector<std::string_view> known;
  for (const auto& f : schema.fields) known.push_back(f.name);
  if (!r.ExpectMapFields(node, path, known, schema.object.lenient)) return;
  for (const auto& f : schema.fields) {
    auto value = FieldReader::Find(node, f.name);
    if (value) {
      Validate(r, *value, *f.type, FieldPath(path, f.name));
    } else if (f.required) {
      r.Error(node, FieldPath(path, f.name), "required field is missing");
    }
  }
  const auto& one_of = schema.object.one_of;
  size_t set = std::count_if(one_of.begin(), one_of.end(),
                             [&](std::string_view f) { return FieldReader::Find(node, f).has_value(); });
  if (set > 1) r.Error(node, path, "only one of " + Join(one_of) + " may be set");
  if (set == 0 && schema.object.one_of_required) r.Error(node, path, "one of " + Join(one_of) + " is required");
  if (schema.object.check) schema.object.check(r, node, path);
}

}  // namespace

const Node* String(StringCheck check) { return Keep({.type = Type::kString, .check = check}); }
const Node* Int(int64_t min, int64_t max) { return Keep({.type = Type::kInt, .min = min, .max = max}); }
const Node* Bool() { return Keep({.type = Type::kBool}); }
const Node* Number(double min, double max) { return Keep({.type = Type::kNumber, .dmin = min, .dmax = max}); }
const Node* Enum(std::initializer_list<std::string_view> values, bool case_insensitive) {
  return Keep({.type = Type::kEnum, .values = values, .case_insensitive = case_insensitive});
}
const Node* Duration(bool allow_zero) { return Keep({.type = Type::kDuration, .min = allow_zero ? 0 : 1}); }
const Node* List(const Node* elem, int64_t min_items) {
  return Keep({.type = Type::kList, .elem = elem, .min = min_items});
}
const Node* Map(const Node* value, StringCheck key_check) {
  return Keep({.type = Type::kMap, .elem = value, .check = key_check});
}
const Node* LabelMap() { return Keep({.type = Type::kLabels}); }
const Node* Object(std::vector<Field> fields, ObjectOptions options) {
  return Keep({.type = Type::kObject, .fields = std::move(fields), .object = std::move(options)});
}
const Node* Any() { return Keep({.type = Type::kAny}); }

std::vector<Field> AnyFields(std::initializer_list<std::string_view> names) {
  std::vector<Field> out;
  for (auto n : names) out.push_back({n, Any()});
  return out;
}

std::vector<Field> Concat(std::vector<Field> a, const std::vector<Field>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool ParseDuration(std::string_view s, int64_t& nanos, std::string& why) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  if (s == "0") {
    nanos = 0;
    return true;
  }
  if (s.empty()) {
    why = "must not be empty";
    return false;
  }
  double total = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
    std::string number(s.substr(0, n));
    if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) {
      why = "expected a number followed by a unit (h, m, s, ms, us, ns), e.g. \"1.5s\"";
      return false;
    }
    s.remove_prefix(n);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    std::string_view unit = s.substr(0, u);
    auto it = std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& k) { return k.first == unit; });
    if (it == std::end(kUnits)) {
      why = unit.empty() ? "missing unit (h, m, s, ms, us, ns)" : "unknown unit \"" + std::string(unit) + "\"";
      return false;
    }
    total += std::stod(number) * it->second;
    s.remove_prefix(u);
  }
  if (total > 9.2e18) {
    why = "too large";
    return false;
  }
  nanos = static_cast<int64_t>(total + 0.5);
  return true;
}

void Validate(FieldReader& r, const YAML::Node& node, const Node& schema, const std::string& path) {
  switch (schema.type) {
    case Type::kAny:
      return;
    case Type::kString: {
      auto v = r.String(node, path);
      if (v && schema.check) {
        if (std::string why = schema.check(*v); !why.empty()) r.Error(node, path, "\"" + *v + "\" " + why);
      }
      return;
    }
    case Type::kInt:
      r.Int(node, path, schema.min, schema.max);
      return;
    case Type::kBool:
      r.Bool(node, path);
      return;
    case Type::kNumber:
      r.Number(node, path, schema.dmin, schema.dmax);
      return;
    case Type::kEnum: {
      auto v = r.String(node, path);
      if (!v) return;
      bool ok = std::any_of(schema.values.begin(), schema.values.end(), [&](std::string_view e) {
        return schema.case_insensitive ? EqualsIgnoreCase(e, *v) : e == *v;
      });
      if (!ok) r.Error(node, path, "unsupported value \"" + *v + "\" (supported: " + Join(schema.values) + ")");
      return;
    }
    case Type::kDuration: {
      auto v = r.String(node, path);
      if (!v) return;
      int64_t ns = 0;
      std::string why;
      if (!ParseDuration(*v, ns, why)) {
        r.Error(node, path, "invalid duration \"" + *v + "\": " + why);
      } else if (ns == 0 && schema.min == 0) {
        return;
      } else if (ns < 1000000) {
        r.Error(node, path, "duration \"" + *v + "\" must be at least 1ms");
      } else if (ns % 1000000 != 0) {
        r.Error(node, path, "duration \"" + *v + "\" has sub-millisecond precision (only ms precision is supported)");
      }
      return;
    }
    case Type::kList: {
      if (!r.ExpectSequence(node, path)) return;
      for (size_t i = 0; i < node.size(); ++i) Validate(r, node[i], *schema.elem, IndexPath(path, i));
      if (static_cast<int64_t>(node.size()) < schema.min) {
        r.Error(node, path, "at least " + std::to_string(schema.min) + (schema.min == 1 ? " entry" : " entries") +
                                " required");
      }
      return;
    }
    case Type::kMap: {
      if (!r.ExpectMap(node, path)) return;
      for (const auto& kv : node) {
        std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
        std::string field = FieldPath(path, key);
        if (schema.check) {
          if (std::string why = schema.check(key); !why.empty()) r.Error(kv.first, field, "key \"" + key + "\" " + why);
        }
        Validate(r, kv.second, *schema.elem, field);
      }
      return;
    }
    case Type::kLabels:
      r.LabelMap(node, path);
      return;
    case Type::kObject:
      ValidateObject(r, node, schema, path);
      return;
  }
}

}  // namespace weft::config::schema
