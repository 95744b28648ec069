// Strict reading of the node-local JSON files and answers (names.json, the
// agent's admin endpoint): every field typed, errors naming the place.
// Internal to weft_node.
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::node::internal {

using Json = nlohmann::json;

// Reads the fields of one JSON object, with errors naming the place.
class Fields {
 public:
  Fields(const Json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  Status U32(const char* key, uint32_t* out) const {
    uint64_t v = 0;
    WEFT_RETURN_IF_ERROR(Unsigned(key, std::numeric_limits<uint32_t>::max(), &v));
    *out = static_cast<uint32_t>(v);
    return Status::Ok();
  }
  Status U64(const char* key, uint64_t* out) const {
    return Unsigned(key, std::numeric_limits<uint64_t>::max(), out);
  }
  Status Str(const char* key, std::string* out) const {
    const Json* v = Find(key);
    if (!v || !v->is_string()) return Bad(key, "a string");
    *out = v->get<std::string>();
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    const Json* v = Find(key);
    if (!v || !v->is_boolean()) return Bad(key, "true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status Strings(const char* key, std::vector<std::string>* out) const {
    const Json* v = Find(key);
    if (!v || !v->is_array()) return Bad(key, "an array of strings");
    for (const auto& x : *v) {
      if (!x.is_string()) return Bad(key, "an array of strings");
      out->push_back(x.get<std::string>());
    }
    return Status::Ok();
  }
  // An array of objects, each handed to `each` with its place ("endpoints[3]").
  template <typename F>
  Status Objects(const char* key, F each) const {
    const Json* v = Find(key);
    if (!v || !v->is_array()) return Bad(key, "an array of objects");
    size_t i = 0;
    for (const auto& x : *v) {
      std::string at = std::string(key) + "[" + std::to_string(i++) + "]";
      if (!x.is_object()) return Status::Error(where_ + ": " + at + ": expected an object", EINVAL);
      WEFT_RETURN_IF_ERROR(each(Fields(x, where_ + ": " + at)));
    }
    return Status::Ok();
  }
  bool Has(const char* key) const { return Find(key) != nullptr; }
  const std::string& where() const { return where_; }

 private:
  const Json* Find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  Status Unsigned(const char* key, uint64_t max, uint64_t* out) const {
    const Json* v = Find(key);
    if (!v || !v->is_number_unsigned() || v->get<uint64_t>() > max)
      return Bad(key, max == std::numeric_limits<uint32_t>::max() ? "an unsigned 32-bit integer"
                                                                  : "an unsigned 64-bit integer");
    *out = v->get<uint64_t>();
    return Status::Ok();
  }
  Status Bad(const char* key, const char* expected) const {
    const Json* v = Find(key);
    return Status::Error(where_ + ": \"" + key + "\": " + (v ? "expected " : "missing: expected ") + expected, EINVAL);
  }

  const Json& obj_;
  std::string where_;
};

}  // namespace weft::node::internal
