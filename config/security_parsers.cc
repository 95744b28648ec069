// security.istio.io (v1, v1beta1): AuthorizationPolicy, PeerAuthentication,
// RequestAuthentication as schema tables with Istio's cross-field rules.
#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

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

// Istio's CheckEmptyValues: an empty principal, namespace, method, ... matches nothing.
std::string CheckNotEmpty(std::string_view s) { return s.empty() ? "must not be empty" : ""; }

// Istio's CheckServiceAccount: "<sa>" (the policy's namespace) or "<ns>/<sa>", no wildcard.
std::string CheckServiceAccount(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 320) return "must be no more than 320 characters";
  if (s.find('*') != std::string_view::npos) return "may not contain a wildcard (\"*\"): name each service account";
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return "";
  if (s.find('/', slash + 1) != std::string_view::npos || slash == 0 || slash + 1 == s.size()) {
    return "must be \"<serviceaccount>\" or \"<namespace>/<serviceaccount>\"";
  }
  return "";
}

// Istio's CheckWildcardValues (trust domains): exact, "prefix*", "*suffix" or "*".
std::string CheckWildcardValue(std::string_view s) {
  if (s.empty()) return "must not be empty";
  size_t stars = std::count(s.begin(), s.end(), '*');
  if (stars > 1) return "may hold at most one wildcard (\"*\")";
  if (stars == 1 && s != "*" && s.front() != '*' && s.back() != '*') return "may hold a wildcard only at its start or end";
  if (s.find('/') != std::string_view::npos) return "must not contain '/' (a trust domain)";
  return "";
}

// Istio's CheckValidPathTemplate: "{*}" matches one segment, "{**}" the rest
// (last only); other braces are invalid, and a templated path's literal
// segments must be URI pchars.
std::string CheckPath(std::string_view path) {
  if (path.empty()) return "must not be empty (it matches nothing)";
  bool templated = path.find("{*}") != std::string_view::npos || path.find("{**}") != std::string_view::npos;
  bool rest = false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view seg = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (seg == "{*}" || seg == "{**}") {
      if (rest) return "has \"{**}\" before another template: \"{**}\" must be the last";
      rest = seg == "{**}";
    } else if (seg.find_first_of("{}") != std::string_view::npos) {
      return "has '{' or '}' outside \"{*}\" and \"{**}\"";
    } else if (templated && !seg.empty() &&
               !std::all_of(seg.begin(), seg.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) ||
                        std::string_view("-._~%!$&'()+,;:@=").find(c) != std::string_view::npos;
               })) {
      return "has a segment that is not a URI path literal next to a template";
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return "";
}

// "a[b]": request.headers[x-token], request.auth.claims[iss].
bool MapKey(std::string_view key) {
  size_t open = key.find('[');
  return key.size() > 2 && key.back() == ']' && open != std::string_view::npos && open > 0 && open < key.size() - 2;
}

// Istio's ValidateAttribute for a `when` key: why it is not one ("" when it is).
std::string CheckConditionKey(std::string_view key) {
  static constexpr std::string_view kPlain[] = {
      "source.ip",        "remote.ip",        "source.namespace",       "source.serviceAccount",
      "source.principal", "source.trustDomain", "request.auth.principal", "request.auth.audiences",
      "request.auth.presenter", "destination.ip", "destination.port", "connection.sni"};
  if (std::find(std::begin(kPlain), std::end(kPlain), key) != std::end(kPlain)) return "";
  for (std::string_view prefix : {"request.headers", "request.auth.claims", "experimental.envoy.filters."}) {
    if (key.rfind(prefix, 0) == 0) return MapKey(key) ? "" : "must name a key in brackets, as in request.headers[x-token]";
  }
  if (key == "destination.namespace") return "is replaced by the policy's metadata.namespace";
  if (key.rfind("destination.labels", 0) == 0) return "is replaced by the workload selector (spec.selector)";
  if (key == "destination.name" || key == "destination.user") return "is deprecated (only in v1alpha1)";
  return "is not a known attribute (supported: source.ip, source.namespace, source.principal, "
         "source.serviceAccount, source.trustDomain, remote.ip, destination.ip, destination.port, connection.sni, "
         "request.headers[...], request.auth.*)";
}

// The check of each value of a known `when` key ("" when valid).
StringCheck ConditionValueCheck(std::string_view key) {
  if (key == "source.ip" || key == "remote.ip" || key == "destination.ip") return CheckIpOrCidr;
  if (key == "destination.port") return CheckPortString;
  if (key == "source.serviceAccount") return CheckServiceAccount;
  if (key == "source.trustDomain") return CheckWildcardValue;
  return CheckNotEmpty;
}

const std::vector<std::string_view> kSourceFields = {
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
    "ipBlocks",   "notIpBlocks",   "remoteIpBlocks",    "notRemoteIpBlocks",    "serviceAccounts", "notServiceAccounts"};
const std::vector<std::string_view> kOperationFields = {"hosts", "notHosts", "ports", "notPorts",
                                                        "methods", "notMethods", "paths", "notPaths"};
constexpr size_t kMaxServiceAccounts = 16;  // Istio's CheckServiceAccount (MaxItems in the CRD)

bool NonEmptyList(const YAML::Node& node, std::string_view field) {
  auto v = FieldReader::Find(node, field);
  return v && (!v->IsSequence() || v->size() > 0);
}

// `from[].source` / `to[].operation` with no list set (Istio: "must not be
// empty"): it would match every source or operation.
void RequireOneList(FieldReader& r, const YAML::Node& n, const std::string& path,
                    const std::vector<std::string_view>& fields) {
  if (std::none_of(fields.begin(), fields.end(), [&](std::string_view f) { return NonEmptyList(n, f); })) {
    r.Error(n, path, "must not be empty: set at least one of its lists");
  }
}

void CheckOperation(FieldReader& r, const YAML::Node& op, const std::string& path) {
  RequireOneList(r, op, path, kOperationFields);
}

void CheckSource(FieldReader& r, const YAML::Node& src, const std::string& path) {
  RequireOneList(r, src, path, kSourceFields);
  bool accounts = NonEmptyList(src, "serviceAccounts") || NonEmptyList(src, "notServiceAccounts");
  for (std::string_view f : {"principals", "notPrincipals", "namespaces", "notNamespaces"}) {
    if (accounts && NonEmptyList(src, f)) {
      r.Error(*FieldReader::Find(src, f), FieldPath(path, f),
              "may not be set with serviceAccounts or notServiceAccounts (Istio: use one or the other)");
    }
  }
  for (std::string_view f : {"serviceAccounts", "notServiceAccounts"}) {
    auto v = FieldReader::Find(src, f);
    if (v && v->IsSequence() && v->size() > kMaxServiceAccounts) {
      r.Error(*v, FieldPath(path, f), "at most " + std::to_string(kMaxServiceAccounts) + " entries");
    }
  }
}

void CheckCondition(FieldReader& r, const YAML::Node& c, const std::string& path) {
  auto key = FieldReader::Find(c, "key");
  if (!key || !key->IsScalar() || key->Scalar().empty()) return;  // the schema reports a missing or empty key
  const std::string& k = key->Scalar();
  if (std::string why = CheckConditionKey(k); !why.empty()) {
    r.Error(*key, path + ".key", "\"" + k + "\" " + why);
    return;
  }
  if (!FieldReader::Find(c, "values") && !FieldReader::Find(c, "notValues")) {
    r.Error(c, path, "at least one of values or notValues is required");
  }
  StringCheck check = ConditionValueCheck(k);
  for (std::string_view f : {"values", "notValues"}) {
    auto list = FieldReader::Find(c, f);
    if (!list || !list->IsSequence()) continue;
    if (k == "source.serviceAccount" && list->size() > kMaxServiceAccounts) {
      r.Error(*list, FieldPath(path, f), "at most " + std::to_string(kMaxServiceAccounts) + " entries");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      const YAML::Node& v = (*list)[i];
      if (!v.IsScalar() || Classify(v) != ScalarType::kString) continue;  // the schema reports the type
      if (std::string why = check(v.Scalar()); !why.empty()) {
        r.Error(v, IndexPath(FieldPath(path, f), i), "\"" + v.Scalar() + "\" " + why + " (for key " + k + ")");
      }
    }
  }
}

// `from: []` / `to: []` match nothing (Istio: "must not be empty").
void CheckRule(FieldReader& r, const YAML::Node& rule, const std::string& path) {
  for (std::string_view f : {"from", "to"}) {
    auto v = FieldReader::Find(rule, f);
    if (v && v->IsSequence() && v->size() == 0) {
      r.Error(*v, FieldPath(path, f), "must not be empty: leave it out to match any " +
                                          std::string(f == "from" ? "source" : "operation"));
    }
  }
}

// Istio's allowedTargetRefs: group and kind; no cross-namespace reference.
void CheckTargetRef(FieldReader& r, const YAML::Node& ref, const std::string& path) {
  if (auto ns = FieldReader::Find(ref, "namespace")) {
    r.Error(*ns, path + ".namespace", "must not be set: a policy targets objects of its own namespace");
  }
  auto kind = FieldReader::Find(ref, "kind");
  if (!kind || !kind->IsScalar()) return;
  auto group_node = FieldReader::Find(ref, "group");
  std::string group = group_node && group_node->IsScalar() ? group_node->Scalar() : "";
  if (group.empty()) group = "core";
  static const std::pair<std::string_view, std::string_view> kAllowed[] = {{"core", "Service"},
                                                                           {"networking.istio.io", "ServiceEntry"},
                                                                           {"gateway.networking.k8s.io", "Gateway"},
                                                                           {"gateway.networking.k8s.io", "GatewayClass"}};
  for (auto [g, k] : kAllowed) {
    if (g == group && k == kind->Scalar()) return;
  }
  r.Error(*kind, path + ".kind",
          "\"" + kind->Scalar() + "\" of group \"" + group +
              "\" cannot be targeted (supported: Service, networking.istio.io ServiceEntry, "
              "gateway.networking.k8s.io Gateway and GatewayClass)");
}

const Node* TargetRef() {
  static const auto* t = Object({{"group", String()},
                                 {"kind", String(), kRequired},
                                 {"name", String(CheckNotEmpty), kRequired},
                                 {"namespace", String()}},
                                {.check = CheckTargetRef});
  return t;
}

std::vector<Field> Targeting() {
  return {{"selector", WorkloadSelector()}, {"targetRef", TargetRef()}, {"targetRefs", List(TargetRef())}};
}
const std::vector<std::string_view> kTargetingFields = {"selector", "targetRef", "targetRefs"};

// What an external authorizer (CUSTOM) cannot see: Istio's list.
void CheckCustomRules(FieldReader& r, const YAML::Node& rules, const std::string& path) {
  static constexpr std::string_view kSource[] = {"namespaces",       "notNamespaces",        "serviceAccounts",
                                                 "notServiceAccounts", "principals",         "notPrincipals",
                                                 "requestPrincipals", "notRequestPrincipals"};
  for (size_t i = 0; i < rules.size(); ++i) {
    std::string rp = IndexPath(path, i);
    if (auto from = FieldReader::Find(rules[i], "from"); from && from->IsSequence()) {
      for (size_t j = 0; j < from->size(); ++j) {
        auto src = FieldReader::Find((*from)[j], "source");
        if (!src) continue;
        for (std::string_view f : kSource) {
          if (NonEmptyList(*src, f)) {
            r.Error(*FieldReader::Find(*src, f), FieldPath(IndexPath(rp + ".from", j) + ".source", f),
                    "is not supported with action CUSTOM");
          }
        }
      }
    }
    if (auto when = FieldReader::Find(rules[i], "when"); when && when->IsSequence()) {
      for (size_t j = 0; j < when->size(); ++j) {
        auto key = FieldReader::Find((*when)[j], "key");
        if (!key || !key->IsScalar()) continue;
        const std::string& k = key->Scalar();
        if (k == "source.namespace" || k == "source.serviceAccount" || k == "source.trustDomain" ||
            k == "source.principal" || k.rfind("request.auth.", 0) == 0) {
          r.Error(*key, IndexPath(rp + ".when", j) + ".key", "\"" + k + "\" is not supported with action CUSTOM");
        }
      }
    }
  }
}

// Istio's action rules: a DENY or CUSTOM without rules never applies; CUSTOM
// needs a provider; a provider needs CUSTOM.
void CheckAction(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto action = FieldReader::Find(spec, "action");
  std::string a = action && action->IsScalar() ? action->Scalar() : "ALLOW";
  auto rules = FieldReader::Find(spec, "rules");
  bool no_rules = !rules || (rules->IsSequence() && rules->size() == 0);
  if ((a == "DENY" || a == "CUSTOM") && no_rules) {
    r.Error(rules ? *rules : *action, path + ".rules",
            a + " without rules never applies: add an empty rule ({}) to apply it to every request");
  }
  auto provider = FieldReader::Find(spec, "provider");
  if (a == "CUSTOM" && !provider) r.Error(spec, path + ".provider", "required with action CUSTOM");
  if (a != "CUSTOM" && provider) r.Error(*provider, path + ".provider", "only valid with action CUSTOM");
  if (a == "CUSTOM" && rules && rules->IsSequence()) CheckCustomRules(r, *rules, path + ".rules");
}

const Node* AuthorizationPolicyBody() {
  static const auto* strings = List(String(CheckNotEmpty));
  static const auto* accounts = List(String(CheckServiceAccount));
  static const auto* ip_blocks = List(String(CheckIpOrCidr));
  static const auto* ports = List(String(CheckPortString));
  static const auto* paths = List(String(CheckPath));
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
                                      {"serviceAccounts", accounts},
                                      {"notServiceAccounts", accounts}},
                                     {.check = CheckSource});
  static const auto* operation = Object({{"hosts", strings},
                                         {"notHosts", strings},
                                         {"ports", ports},
                                         {"notPorts", ports},
                                         {"methods", strings},
                                         {"notMethods", strings},
                                         {"paths", paths},
                                         {"notPaths", paths}},
                                        {.check = CheckOperation});
  static const auto* condition = Object(
      {{"key", String(CheckNotEmpty), kRequired}, {"values", List(String())}, {"notValues", List(String())}},
      {.check = CheckCondition});
  static const auto* rule = Object({{"from", List(Object({{"source", source, kRequired}}))},
                                    {"to", List(Object({{"operation", operation, kRequired}}))},
                                    {"when", List(condition)}},
                                   {.check = CheckRule});
  static const auto* spec = Object(Concat(Targeting(), {{"action", Enum({"ALLOW", "DENY", "AUDIT", "CUSTOM"})},
                                                        {"provider", Object({{"name", String(CheckNotEmpty), kRequired}})},
                                                        {"rules", List(rule)}}),
                                   {.check = CheckAction, .one_of = kTargetingFields});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

const Node* MutualTls() {
  static const auto* m = Object({{"mode", Enum({"UNSET", "DISABLE", "PERMISSIVE", "STRICT"})}});
  return m;
}

// Istio: port-level mTLS needs a workload (a selector with labels), and is not empty.
void CheckPortLevelMtls(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto ports = FieldReader::Find(spec, "portLevelMtls");
  if (!ports) return;
  auto selector = FieldReader::Find(spec, "selector");
  auto labels = selector ? FieldReader::Find(*selector, "matchLabels") : std::nullopt;
  if (!labels || (labels->IsMap() && labels->size() == 0)) {
    r.Error(*ports, path + ".portLevelMtls", "requires a workload selector with labels (spec.selector.matchLabels)");
  }
  if (ports->IsMap() && ports->size() == 0) {
    r.Error(*ports, path + ".portLevelMtls", "must not be empty: leave it out, or name at least one port");
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

// Istio's validateJwtRule: an issuer or a JWKS URI; an inline JWKS that parses.
void CheckJwtRule(FieldReader& r, const YAML::Node& rule, const std::string& path) {
  auto issuer = FieldReader::Find(rule, "issuer");
  bool has_issuer = issuer && issuer->IsScalar() && !issuer->Scalar().empty();
  if (!has_issuer && !FieldReader::Find(rule, "jwksUri")) {
    r.Error(rule, path + ".issuer", "issuer or jwksUri is required");
  }
  auto jwks = FieldReader::Find(rule, "jwks");
  if (jwks && jwks->IsScalar() && Classify(*jwks) == ScalarType::kString) {
    auto j = nlohmann::json::parse(jwks->Scalar(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !(j.contains("keys") || j.contains("kty"))) {
      r.Error(*jwks, path + ".jwks", "must be a JSON Web Key Set (a JSON object with \"keys\")");
    }
  }
}

const Node* RequestAuthenticationBody() {
  static const auto* header = Object({{"name", String(CheckNotEmpty), kRequired}, {"prefix", String()}});
  static const auto* claim = Object({{"header", String(CheckStrictHeaderName), kRequired},
                                     {"claim", String(CheckNotEmpty), kRequired}});
  static const auto* jwt = Object({{"issuer", String()},
                                   {"audiences", List(String(CheckNotEmpty))},
                                   {"jwksUri", String(CheckUrl)},
                                   {"jwks", String()},
                                   {"fromHeaders", List(header)},
                                   {"fromParams", List(String(CheckNotEmpty))},
                                   {"fromCookies", List(String(CheckNotEmpty))},
                                   {"outputPayloadToHeader", String()},
                                   {"outputClaimToHeaders", List(claim)},
                                   {"forwardOriginalToken", Bool()},
                                   {"timeout", Duration()}},
                                  {.check = CheckJwtRule, .one_of = {"jwksUri", "jwks"}});
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
