// security.istio.io (v1, v1beta1): AuthorizationPolicy, PeerAuthentication,
// RequestAuthentication as schema tables with Istio's cross-field rules.
#include "config/names.hpp"
#include "config/resource_parsers.hpp"

namespace weft::config {
namespace {

using namespace schema;  // NOLINT: schema tables read better unqualified

const std::vector<std::string_view> kVersions = {"security.istio.io/v1", "security.istio.io/v1beta1"};

std::string CheckUrl(std::string_view s) {
  bool ok = (s.rfind("http://", 0) == 0 && s.size() > 7) || (s.rfind("https://", 0) == 0 && s.size() > 8);
  return ok ? "" : "must be an http:// or https:// URL";
}

const Node* TargetRef() {
  static const auto* t = Object({{"group", String()},
                                 {"kind", String(), kRequired},
                                 {"name", String(), kRequired},
                                 {"namespace", String()}});
  return t;
}

std::vector<Field> Targeting() {
  return {{"selector", WorkloadSelector()}, {"targetRef", TargetRef()}, {"targetRefs", List(TargetRef())}};
}
const std::vector<std::string_view> kTargetingFields = {"selector", "targetRef", "targetRefs"};

// `from[].source` / `to[].operation` must be present and not empty.
void CheckNotEmpty(FieldReader& r, const YAML::Node& node, const std::string& path) {
  if (node.IsMap() && node.size() == 0) r.Error(node, path, "must not be empty");
}

void CheckAction(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto action = FieldReader::Find(spec, "action");
  bool custom = action && action->IsScalar() && action->Scalar() == "CUSTOM";
  auto provider = FieldReader::Find(spec, "provider");
  if (custom && !provider) r.Error(spec, path + ".provider", "required with action CUSTOM");
  if (!custom && provider) r.Error(*provider, path + ".provider", "only valid with action CUSTOM");
}

const Node* AuthorizationPolicyBody() {
  static const auto* strings = List(String());
  static const auto* ip_blocks = List(String(CheckIpOrCidr));
  static const auto* ports = List(String(CheckPortString));
  static const auto* source = Object({{"principals", strings},
                                      {"notPrincipals", strings},
                                      {"requestPrincipals", strings},
                                      {"notRequestPrincipals", strings},
                                      {"namespaces", strings},
                                      {"notNamespaces", strings},
                                      {"ipBlocks", ip_blocks},
                                      {"notIpBlocks", ip_blocks},
                                      {"remoteIpBlocks", ip_blocks},
                                      {"notRemoteIpBlocks", ip_blocks},
                                      {"serviceAccounts", strings},
                                      {"notServiceAccounts", strings}},
                                     {.check = CheckNotEmpty});
  static const auto* operation = Object({{"hosts", strings},
                                         {"notHosts", strings},
                                         {"ports", ports},
                                         {"notPorts", ports},
                                         {"methods", strings},
                                         {"notMethods", strings},
                                         {"paths", strings},
                                         {"notPaths", strings}},
                                        {.check = CheckNotEmpty});
  static const auto* condition = Object(
      {{"key", String(), kRequired}, {"values", strings}, {"notValues", strings}},
      {.check = [](FieldReader& r, const YAML::Node& n, const std::string& p) {
        if (!FieldReader::Find(n, "values") && !FieldReader::Find(n, "notValues")) {
          r.Error(n, p, "at least one of values or notValues is required");
        }
      }});
  static const auto* rule = Object({{"from", List(Object({{"source", source, kRequired}}))},
                                    {"to", List(Object({{"operation", operation, kRequired}}))},
                                    {"when", List(condition)}});
  static const auto* spec = Object(Concat(Targeting(), {{"action", Enum({"ALLOW", "DENY", "AUDIT", "CUSTOM"})},
                                                        {"provider", Object({{"name", String(), kRequired}})},
                                                        {"rules", List(rule)}}),
                                   {.check = CheckAction, .one_of = kTargetingFields});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

const Node* MutualTls() {
  static const auto* m = Object({{"mode", Enum({"UNSET", "DISABLE", "PERMISSIVE", "STRICT"})}});
  return m;
}

void CheckPortLevelMtls(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto ports = FieldReader::Find(spec, "portLevelMtls");
  if (ports && !FieldReader::Find(spec, "selector")) {
    r.Error(*ports, path + ".portLevelMtls", "requires a workload selector (spec.selector)");
  }
}

const Node* PeerAuthenticationBody() {
  static const auto* spec = Object({{"selector", WorkloadSelector()},
                                    {"mtls", MutualTls()},
                                    {"portLevelMtls", Map(MutualTls(), CheckPortString)}},
                                   {.check = CheckPortLevelMtls});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

const Node* RequestAuthenticationBody() {
  static const auto* header = Object({{"name", String(), kRequired}, {"prefix", String()}});
  static const auto* claim = Object({{"header", String(), kRequired}, {"claim", String(), kRequired}});
  static const auto* jwt = Object({{"issuer", String(), kRequired},
                                   {"audiences", List(String())},
                                   {"jwksUri", String(CheckUrl)},
                                   {"jwks", String()},
                                   {"fromHeaders", List(header)},
                                   {"fromParams", List(String())},
                                   {"fromCookies", List(String())},
                                   {"outputPayloadToHeader", String()},
                                   {"outputClaimToHeaders", List(claim)},
                                   {"forwardOriginalToken", Bool()},
                                   {"timeout", Duration()}},
                                  {.one_of = {"jwksUri", "jwks"}});
  static const auto* spec = Object(Concat(Targeting(), {{"jwtRules", List(jwt)}}), {.one_of = kTargetingFields});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

}  // namespace

std::vector<KindSpec> SecurityKinds() {
  return {
      {.kind = "AuthorizationPolicy", .api_versions = kVersions, .body = AuthorizationPolicyBody()},
      {.kind = "PeerAuthentication", .api_versions = kVersions, .body = PeerAuthenticationBody()},
      {.kind = "RequestAuthentication", .api_versions = kVersions, .body = RequestAuthenticationBody()},
  };
}

}  // namespace weft::config
