#include "weft/node/names_file.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/node/json_fields.hpp"
#include "weft/sys.hpp"

namespace weft::node {

namespace {

using internal::Fields;
using internal::Json;

// Deepest nesting of arrays and objects in `text` (strings skipped), or -1
// past `limit` (so a pathological input is refused before a tree is built).
int NestingDepth(std::string_view text, int limit) {
  int depth = 0, max = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > limit) return -1;
      max = std::max(max, depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max;
}

}  // namespace

std::string RenderNames(const NodeNames& n) {
  Json j;
  j["schema"] = kNamesSchema;
  j["version"] = n.version;
  j["identities"] = Json::array();
  for (const auto& [id, i] : n.identities)
    j["identities"].push_back({{"id", id},
                               {"spiffe_id", i.spiffe_id},
                               {"namespace", i.ns},
                               {"service_account", i.service_account},
                               {"cidrs", i.cidrs}});
  j["policies"] = Json::array();
  for (const auto& [id, p] : n.policies) j["policies"].push_back({{"id", id}, {"name", p.name}, {"action", p.action}});
  j["endpoints"] = Json::array();
  for (const auto& e : n.endpoints)
    j["endpoints"].push_back({{"workload", e.workload},
                              {"ifindex", e.ifindex},
                              {"ifname", e.ifname},
                              {"ep_id", e.ep_id},
                              {"identity", e.identity},
                              {"addresses", e.addresses},
                              {"enforce_ingress", e.enforce_ingress},
                              {"policies", e.policies}});
  return j.dump(1, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<NodeNames> ParseNames(std::string_view text, const std::string& what, size_t max_bytes) {
  if (text.size() > max_bytes)
    return Status::Error(what + ": " + std::to_string(text.size()) + " bytes, more than names.json may hold (" +
                             std::to_string(max_bytes) + ")",
                         EFBIG);
  if (NestingDepth(text, kMaxNamesDepth) < 0)
    return Status::Error(what + ": nested deeper than " + std::to_string(kMaxNamesDepth) +
                             " levels: not a names.json",
                         EINVAL);
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Error(what + ": not JSON", EINVAL);
  if (!j.is_object()) return Status::Error(what + ": not a JSON object", EINVAL);
  Fields top(j, what);
  uint32_t schema = kNamesSchema;
  if (j.contains("schema")) WEFT_RETURN_IF_ERROR(top.U32("schema", &schema));
  if (schema != kNamesSchema)
    return Status::Error(what + ": names.json schema " + std::to_string(schema) + ", this build reads schema " +
                             std::to_string(kNamesSchema) + " (the agent and weftctl are of different versions)",
                         EPROTO);
  NodeNames n;
  WEFT_RETURN_IF_ERROR(top.U64("version", &n.version));
  WEFT_RETURN_IF_ERROR(top.Objects("identities", [&](const Fields& f) {
    IdentityName x;
    WEFT_RETURN_IF_ERROR(f.U32("id", &x.id));
    WEFT_RETURN_IF_ERROR(f.Str("spiffe_id", &x.spiffe_id));
    WEFT_RETURN_IF_ERROR(f.Str("namespace", &x.ns));
    WEFT_RETURN_IF_ERROR(f.Str("service_account", &x.service_account));
    WEFT_RETURN_IF_ERROR(f.Strings("cidrs", &x.cidrs));
    const uint32_t id = x.id;
    if (!n.identities.emplace(id, std::move(x)).second)
      return Status::Error(f.where() + ": identity " + std::to_string(id) + " is listed twice", EINVAL);
    return Status::Ok();
  }));
  WEFT_RETURN_IF_ERROR(top.Objects("policies", [&](const Fields& f) {
    PolicyName x;
    WEFT_RETURN_IF_ERROR(f.U32("id", &x.id));
    WEFT_RETURN_IF_ERROR(f.Str("name", &x.name));
    WEFT_RETURN_IF_ERROR(f.Str("action", &x.action));
    const uint32_t id = x.id;
    if (!n.policies.emplace(id, std::move(x)).second)
      return Status::Error(f.where() + ": policy " + std::to_string(id) + " is listed twice", EINVAL);
    return Status::Ok();
  }));
  WEFT_RETURN_IF_ERROR(top.Objects("endpoints", [&](const Fields& f) {
    EndpointName x;
    WEFT_RETURN_IF_ERROR(f.Str("workload", &x.workload));
    WEFT_RETURN_IF_ERROR(f.U32("ifindex", &x.ifindex));
    WEFT_RETURN_IF_ERROR(f.Str("ifname", &x.ifname));
    WEFT_RETURN_IF_ERROR(f.U32("ep_id", &x.ep_id));
    WEFT_RETURN_IF_ERROR(f.U32("identity", &x.identity));
    WEFT_RETURN_IF_ERROR(f.Strings("addresses", &x.addresses));
    WEFT_RETURN_IF_ERROR(f.Bool("enforce_ingress", &x.enforce_ingress));
    WEFT_RETURN_IF_ERROR(f.Strings("policies", &x.policies));
    n.endpoints.push_back(std::move(x));
    return Status::Ok();
  }));
  return n;
}

Status WriteNamesFile(const std::string& path, const std::string& rendered) {
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(std::filesystem::path(path).parent_path().string()));
  return sys::WriteFileAtomic(path, rendered, 0600);
}

Result<NodeNames> ReadNamesFile(const std::string& path, size_t max_bytes) {
  auto text = sys::ReadSmallFile(path, max_bytes);
  if (!text.ok()) return text.status();
  return ParseNames(*text, path, max_bytes);
}

}  // namespace weft::node
