// networking.istio.io (v1, v1beta1, v1alpha3): VirtualService, DestinationRule,
// ServiceEntry, Gateway as schema tables with Istio's cross-field rules;
// WorkloadEntry through its hand-written parser (workload_entry_parser.cc).
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

#include "config/names.hpp"
#include "config/resource_parsers.hpp"

namespace weft::config {
namespace {

using namespace schema;  // NOLINT: schema tables read better unqualified

const std::vector<std::string_view> kVersions = {"networking.istio.io/v1", "networking.istio.io/v1beta1",
                                                 "networking.istio.io/v1alpha3"};
constexpr int64_t kMaxInt32 = 2147483647;
constexpr int64_t kMaxUint32 = 4294967295;

std::string CheckLabel(std::string_view s) { return CheckDns1123Label(s); }
std::string CheckPortName(std::string_view s) { return CheckIanaSvcName(s); }

// Gateway server hosts: "host" or "namespace/host" ("*" and "." namespaces allowed).
std::string CheckGatewayHost(std::string_view s) {
  size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    std::string_view ns = s.substr(0, slash);
    if (ns != "*" && ns != "." && !CheckDns1123Label(ns).empty()) return "has an invalid namespace part";
    s.remove_prefix(slash + 1);
  }
  return CheckHost(s);
}

// VirtualService gateways: "mesh", "name" or "namespace/name".
std::string CheckGatewayRef(std::string_view s) {
  if (s == "mesh") return "";
  size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    if (!CheckDns1123Label(s.substr(0, slash)).empty()) return "has an invalid namespace part";
    s.remove_prefix(slash + 1);
  }
  return CheckDns1123Subdomain(s).empty() ? "" : "must be \"mesh\", a Gateway name or \"namespace/name\"";
}

std::string CheckRetryOn(std::string_view s) {
  static const std::set<std::string_view> kPolicies = {
      "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
      "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
      "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"};
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string_view p = s.substr(start, comma == std::string_view::npos ? comma : comma - start);
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
    bool status = p.size() == 3 && CheckPortString(p).empty();
    if (!status && !kPolicies.contains(p)) {
      return p == s ? "is not a known retry policy" : "has an unknown retry policy \"" + std::string(p) + "\"";
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return "";
}

// Istio's host.Name.Matches: identical, or a wildcard whose suffix ends the other.
bool HostsOverlap(std::string_view a, std::string_view b) {
  auto ends = [](std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
  };
  if (a == b) return true;
  bool aw = !a.empty() && a.front() == '*', bw = !b.empty() && b.front() == '*';
  if (aw && bw) return ends(a.substr(1), b.substr(1)) || ends(b.substr(1), a.substr(1));
  if (aw) return ends(b, a.substr(1));
  if (bw) return ends(a, b.substr(1));
  return false;
}

// Istio's host.Name.SubsetOf: every name `sub` matches, `of` matches too.
bool HostSubsetOf(std::string_view sub, std::string_view of) {
  if (of == "*" || sub == of) return true;
  if (of.front() != '*') return false;
  std::string_view suffix = of.substr(1);  // ".example.com"
  std::string_view s = sub.front() == '*' ? sub.substr(1) : sub;
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "name" or "namespace/name" entries of a list, in order: their scalar nodes.
std::vector<YAML::Node> Scalars(const YAML::Node& parent, std::string_view field) {
  std::vector<YAML::Node> out;
  auto list = FieldReader::Find(parent, field);
  if (!list || !list->IsSequence()) return out;
  for (const auto& v : *list) {
    if (v.IsScalar()) out.push_back(v);
  }
  return out;
}

// Istio's validateExportTo: no duplicate ("." is the own namespace), "*" alone,
// and for a ServiceEntry "~" (no one) alone.
void CheckExportTo(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto values = Scalars(spec, "exportTo");
  std::map<std::string, size_t> seen;
  bool all = false, none = false;
  for (size_t i = 0; i < values.size(); ++i) {
    std::string v = values[i].Scalar();
    all |= v == "*";
    none |= v == "~";
    std::string key = v == "." && !r.ns().empty() ? r.ns() : v;
    auto [it, inserted] = seen.emplace(key, i);
    if (!inserted) {
      r.Error(values[i], IndexPath(path + ".exportTo", i),
              "\"" + v + "\" repeats " + IndexPath(path + ".exportTo", it->second) +
                  (key != v ? " (\".\" is namespace " + key + ")" : ""));
    }
  }
  if ((all || none) && values.size() > 1) {
    r.Error(values.front(), path + ".exportTo",
            std::string(all ? "\"*\" (every namespace)" : "\"~\" (no namespace)") + " must be the only entry");
  }
}

// Envoy's header rules as Istio applies them (ValidateHTTPHeader*Name, ...Value).
bool PseudoHeader(std::string_view n) { return !n.empty() && n.front() == ':'; }
bool HostHeader(std::string_view n) {
  return n.size() == 4 && std::equal(n.begin(), n.end(), "host", [](char a, char b) { return std::tolower(a) == b; });
}

void CheckHeaderOperations(FieldReader& r, const YAML::Node& headers, const std::string& path) {
  for (std::string_view dir : {"request", "response"}) {
    auto ops = FieldReader::Find(headers, dir);
    if (!ops || !ops->IsMap()) continue;
    std::string dp = path + "." + std::string(dir);
    for (std::string_view op : {"set", "add"}) {
      auto m = FieldReader::Find(*ops, op);
      if (!m || !m->IsMap()) continue;
      for (const auto& kv : *m) {
        if (!kv.first.IsScalar()) continue;
        const std::string& name = kv.first.Scalar();
        std::string field = FieldPath(dp + "." + std::string(op), name);
        if (name.empty()) {
          r.Error(kv.first, field, "a header name must not be empty");
        } else if (dir == "request" ? PseudoHeader(name) && name != ":authority"
                                    : PseudoHeader(name) || HostHeader(name)) {
          r.Error(kv.first, field, "header \"" + name + "\" cannot be " + (dir == "request" ? "set" : "set in a response"));
        }
        if (kv.second.IsScalar() && std::any_of(kv.second.Scalar().begin(), kv.second.Scalar().end(), [](char c) {
              auto u = static_cast<unsigned char>(c);
              return (u < 0x20 && u != '\t') || u == 0x7F;
            })) {
          r.Error(kv.second, field, "a header value may not hold control characters");
        }
      }
    }
    auto remove = Scalars(*ops, "remove");
    for (size_t i = 0; i < remove.size(); ++i) {
      const std::string& name = remove[i].Scalar();
      if (name.empty() || PseudoHeader(name) || HostHeader(name)) {
        r.Error(remove[i], IndexPath(dp + ".remove", i),
                name.empty() ? "a header name must not be empty" : "header \"" + name + "\" cannot be removed");
      }
    }
  }
}

// StringMatch: an empty prefix matches anything but is refused outside uri;
// a regex must not be empty and at most 1024 characters (Envoy's RE2 program limit).
template <bool kAllowEmptyPrefix>
void CheckStringMatch(FieldReader& r, const YAML::Node& m, const std::string& path) {
  auto prefix = FieldReader::Find(m, "prefix");
  if (!kAllowEmptyPrefix && prefix && prefix->IsScalar() && prefix->Scalar().empty()) {
    r.Error(*prefix, path + ".prefix", "must not be empty");
  }
  auto regex = FieldReader::Find(m, "regex");
  if (regex && regex->IsScalar()) {
    if (regex->Scalar().empty()) r.Error(*regex, path + ".regex", "must not be empty");
    if (regex->Scalar().size() > 1024) r.Error(*regex, path + ".regex", "is longer than 1024 characters");
  }
}

const Node* PortProtocol() {
  static const auto* p = Enum(
      {"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "MYSQL", "REDIS", "TCP", "TLS", "UDP"}, true);
  return p;
}

const Node* Percent() {
  static const auto* p = Object({{"value", Number(0, 100)}});
  return p;
}

const Node* PortSelector() {
  static const auto* p = Object({{"number", Int(1, 65535)}});
  return p;
}

const Node* StringMatch() {
  static const auto* m = Object({{"exact", String()}, {"prefix", String()}, {"regex", String()}},
                                {.check = CheckStringMatch<false>, .one_of = {"exact", "prefix", "regex"}});
  return m;
}

const Node* UriMatch() {
  static const auto* m = Object({{"exact", String()}, {"prefix", String()}, {"regex", String()}},
                                {.check = CheckStringMatch<true>, .one_of = {"exact", "prefix", "regex"}});
  return m;
}

// A destination names one service: "*" is no destination (Istio: "invalid destination host").
std::string CheckDestinationHost(std::string_view host) {
  return host == "*" ? "is not a destination: name a service" : CheckHost(host);
}

const Node* Destination() {
  static const auto* d = Object(
      {{"host", String(CheckDestinationHost), kRequired}, {"subset", String(CheckLabel)}, {"port", PortSelector()}});
  return d;
}

const Node* Headers() {
  static const auto* op = Object({{"set", Map(String())}, {"add", Map(String())}, {"remove", List(String())}});
  static const auto* h = Object({{"request", op}, {"response", op}}, {.check = CheckHeaderOperations});
  return h;
}

// Istio's rule: with more than one destination (or any weight given), weights total 100.
void CheckWeights(FieldReader& r, const YAML::Node& rule, const std::string& path) {
  auto routes = FieldReader::Find(rule, "route");
  if (!routes || !routes->IsSequence() || routes->size() == 0) return;
  int64_t total = 0;
  bool any = false;
  for (const auto& dest : *routes) {
    auto w = FieldReader::Find(dest, "weight");
    if (!w || !FieldReader::IsInteger(*w)) continue;
    any = true;
    total += std::strtoll(w->Scalar().c_str(), nullptr, 10);
  }
  if (routes->size() == 1 && (!any || total == 0 || total == 100)) return;
  if (total != 100) {
    r.Error(*routes, path + ".route",
            "destination weights total " + std::to_string(total) + ", must total 100");
  }
}

const Node* RouteDestination() {
  static const auto* d = Object({{"destination", Destination(), kRequired}, {"weight", Int(0, 100)}, {"headers", Headers()}});
  return d;
}

// "@request.auth.claims.<name>": routing on a JWT claim (only where a gateway validated the JWT).
bool ClaimHeader(std::string_view name) { return name.rfind("@request.auth.claims.", 0) == 0 && name.size() > 21; }

void CheckMatchHeaders(FieldReader& r, const YAML::Node& match, const std::string& path) {
  for (std::string_view field : {"headers", "withoutHeaders"}) {
    auto headers = FieldReader::Find(match, field);
    if (!headers || !headers->IsMap()) continue;
    for (const auto& kv : *headers) {
      if (!kv.first.IsScalar()) continue;
      const std::string& name = kv.first.Scalar();
      if (ClaimHeader(name) || name == ":method" || name == ":scheme" || name == ":authority" || name == ":path" ||
          name == ":status") {
        continue;
      }
      if (std::string why = CheckHeaderName(name); !why.empty()) {
        r.Error(kv.first, FieldPath(path + "." + std::string(field), name), "\"" + name + "\" " + why);
      }
    }
  }
}

// Istio's validateHTTPRouteConflict, validateHTTPRedirect, validateHTTPRewrite,
// validateAuthorityRewrite and the direct response size.
void CheckHttpRoute(FieldReader& r, const YAML::Node& route, const std::string& path) {
  CheckWeights(r, route, path);
  auto has = [&](std::string_view f) { return FieldReader::Find(route, f).has_value(); };
  bool target = has("route") || has("redirect") || has("directResponse");
  if (!target && !has("delegate")) r.Error(route, path, "one of route, redirect, directResponse or delegate is required");
  for (std::string_view with : {"redirect", "directResponse"}) {
    if (!has(with)) continue;
    for (std::string_view other : {"rewrite", "fault"}) {
      if (has(other)) r.Error(*FieldReader::Find(route, other), FieldPath(path, other), "may not be combined with " + std::string(with));
    }
  }
  if (has("mirror") && has("mirrors")) {
    r.Error(*FieldReader::Find(route, "mirrors"), path + ".mirrors", "may not be combined with mirror");
  }
  if (auto redirect = FieldReader::Find(route, "redirect"); redirect && redirect->IsMap()) {
    auto set = [&](std::string_view f) { return FieldReader::Find(*redirect, f).has_value(); };
    if (!set("uri") && !set("authority") && !set("scheme") && !set("port") && !set("derivePort")) {
      r.Error(*redirect, path + ".redirect", "must set uri, authority, scheme, port or derivePort");
    }
    auto scheme = FieldReader::Find(*redirect, "scheme");
    if (scheme && scheme->IsScalar() && scheme->Scalar() != "http" && scheme->Scalar() != "https") {
      r.Error(*scheme, path + ".redirect.scheme", "\"" + scheme->Scalar() + "\" must be \"http\" or \"https\"");
    }
  }
  auto rewrite = FieldReader::Find(route, "rewrite");
  if (rewrite && rewrite->IsMap() && !FieldReader::Find(*rewrite, "uri") && !FieldReader::Find(*rewrite, "authority") &&
      !FieldReader::Find(*rewrite, "uriRegexRewrite")) {
    r.Error(*rewrite, path + ".rewrite", "must set uri, uriRegexRewrite or authority");
  }
  // The authority is rewritten in one place only.
  int authorities = rewrite && rewrite->IsMap() && FieldReader::Find(*rewrite, "authority") ? 1 : 0;
  auto headers = FieldReader::Find(route, "headers");
  auto request = headers ? FieldReader::Find(*headers, "request") : std::nullopt;
  for (std::string_view op : {"set", "add"}) {
    auto m = request ? FieldReader::Find(*request, op) : std::nullopt;
    if (!m || !m->IsMap()) continue;
    for (const auto& kv : *m) {
      if (kv.first.IsScalar() && (kv.first.Scalar() == ":authority" || HostHeader(kv.first.Scalar())) &&
          ++authorities > 1) {
        r.Error(kv.first, FieldPath(path + ".headers.request." + std::string(op), kv.first.Scalar()),
                "the authority is already rewritten (rewrite.authority or another header): once only");
      }
    }
  }
  if (auto direct = FieldReader::Find(route, "directResponse")) {
    auto body = FieldReader::Find(*direct, "body");
    for (std::string_view f : {"string", "bytes"}) {
      auto v = body ? FieldReader::Find(*body, f) : std::nullopt;
      if (v && v->IsScalar() && v->Scalar().size() > 1024 * 1024) {
        r.Error(*v, path + ".directResponse.body." + std::string(f), "is larger than 1 MiB (Istio's limit)");
      }
    }
  }
  if (auto matches = FieldReader::Find(route, "match"); matches && matches->IsSequence()) {
    for (size_t i = 0; i < matches->size(); ++i) CheckMatchHeaders(r, (*matches)[i], IndexPath(path + ".match", i));
  }
}

const Node* HttpRoute() {
  static const auto* match = Object({{"name", String()},
                                     {"uri", UriMatch()},
                                     {"scheme", StringMatch()},
                                     {"method", StringMatch()},
                                     {"authority", StringMatch()},
                                     {"headers", Map(StringMatch())},
                                     {"withoutHeaders", Map(StringMatch())},
                                     {"queryParams", Map(StringMatch())},
                                     {"port", Int(1, 65535)},
                                     {"sourceLabels", LabelMap()},
                                     {"gateways", List(String(CheckGatewayRef))},
                                     {"sourceNamespace", String(CheckLabel)},
                                     {"ignoreUriCase", Bool()},
                                     {"statPrefix", String()}});
  static const auto* redirect = Object({{"uri", String()},
                                        {"authority", String()},
                                        {"port", Int(1, 65535)},
                                        {"derivePort", Enum({"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"})},
                                        {"scheme", String()},
                                        {"redirectCode", Int(300, 399)}},
                                       {.one_of = {"port", "derivePort"}});
  static const auto* regex_rewrite =
      Object({{"match", String(), kRequired}, {"rewrite", String(), kRequired}});
  static const auto* rewrite = Object({{"uri", String()}, {"authority", String()}, {"uriRegexRewrite", regex_rewrite}},
                                      {.one_of = {"uri", "uriRegexRewrite"}});
  static const auto* direct = Object(
      {{"status", Int(200, 599), kRequired},
       {"body", Object({{"string", String()}, {"bytes", String()}}, {.one_of = {"string", "bytes"}})}});
  static const auto* retries = Object({{"attempts", Int(0, kMaxInt32)},
                                       {"perTryTimeout", Duration()},
                                       {"retryOn", String(CheckRetryOn)},
                                       {"retryRemoteLocalities", Bool()}});
  static const auto* delay = Object({{"fixedDelay", Duration()},
                                     {"exponentialDelay", Duration()},
                                     {"percentage", Percent()},
                                     {"percent", Int(0, 100)}},
                                    {.one_of = {"fixedDelay", "exponentialDelay"}, .one_of_required = true});
  static const auto* abort = Object({{"httpStatus", Int(200, 599)},
                                     {"grpcStatus", String()},
                                     {"http2Error", String()},
                                     {"percentage", Percent()},
                                     {"percent", Int(0, 100)}},
                                    {.one_of = {"httpStatus", "grpcStatus", "http2Error"}, .one_of_required = true});
  static const auto* fault =
      Object({{"delay", delay}, {"abort", abort}}, {.check = [](FieldReader& r, const YAML::Node& n, const std::string& p) {
               if (!FieldReader::Find(n, "delay") && !FieldReader::Find(n, "abort")) {
                 r.Error(n, p, "one of delay or abort is required");
               }
             }});
  static const auto* cors = Object({{"allowOrigins", List(StringMatch())},
                                    {"allowOrigin", List(String())},
                                    {"allowMethods", List(String())},
                                    {"allowHeaders", List(String())},
                                    {"exposeHeaders", List(String())},
                                    {"maxAge", Duration()},
                                    {"allowCredentials", Bool()},
                                    {"unmatchedPreflights", Enum({"UNSPECIFIED", "FORWARD", "IGNORE"})}});
  static const auto* mirror = Object({{"destination", Destination(), kRequired}, {"percentage", Percent()}});
  static const auto* route = Object({{"name", String()},
                                     {"match", List(match)},
                                     {"route", List(RouteDestination())},
                                     {"redirect", redirect},
                                     {"directResponse", direct},
                                     {"delegate", Object({{"name", String(), kRequired}, {"namespace", String(CheckLabel)}})},
                                     {"rewrite", rewrite},
                                     {"timeout", Duration(true)},
                                     {"retries", retries},
                                     {"fault", fault},
                                     {"mirror", Destination()},
                                     {"mirrors", List(mirror)},
                                     {"mirrorPercentage", Percent()},
                                     {"mirrorPercent", Int(0, 100)},
                                     {"corsPolicy", cors},
                                     {"headers", Headers()}},
                                    {.check = CheckHttpRoute, .one_of = {"route", "redirect", "directResponse"}});
  return route;
}

void CheckL4Route(FieldReader& r, const YAML::Node& route, const std::string& path) { CheckWeights(r, route, path); }

// Bound to the mesh: no gateways, or only "mesh" (Istio's isGateway).
bool BoundToMesh(const YAML::Node& spec) {
  auto gateways = Scalars(spec, "gateways");
  return std::all_of(gateways.begin(), gateways.end(), [](const YAML::Node& g) { return g.Scalar() == "mesh"; });
}

// Istio's ValidateVirtualService: hosts ("*" only for gateways, no two
// overlapping), TLS SNI hosts within the hosts, JWT claim routing only at a
// gateway, exportTo.
void CheckVirtualService(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  if (!FieldReader::Find(spec, "http") && !FieldReader::Find(spec, "tcp") && !FieldReader::Find(spec, "tls")) {
    r.Error(spec, path, "at least one of http, tcp or tls is required");
  }
  const bool mesh = BoundToMesh(spec);
  auto hosts = Scalars(spec, "hosts");
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (mesh && hosts[i].Scalar() == "*") {
      r.Error(hosts[i], IndexPath(path + ".hosts", i),
              "\"*\" is not allowed for a VirtualService bound to the mesh (it would take every host): name them, or bind it to a gateway");
    }
    for (size_t j = 0; j < i; ++j) {
      if (HostsOverlap(hosts[j].Scalar(), hosts[i].Scalar())) {
        r.Error(hosts[i], IndexPath(path + ".hosts", i),
                "\"" + hosts[i].Scalar() + "\" overlaps " + IndexPath(path + ".hosts", j) + " \"" + hosts[j].Scalar() + "\"");
        break;
      }
    }
  }
  if (auto tls = FieldReader::Find(spec, "tls"); tls && tls->IsSequence()) {
    for (size_t i = 0; i < tls->size(); ++i) {
      auto matches = FieldReader::Find((*tls)[i], "match");
      if (!matches || !matches->IsSequence()) continue;
      for (size_t m = 0; m < matches->size(); ++m) {
        auto sni = Scalars((*matches)[m], "sniHosts");
        for (size_t k = 0; k < sni.size(); ++k) {
          bool within = std::any_of(hosts.begin(), hosts.end(),
                                    [&](const YAML::Node& h) { return HostSubsetOf(sni[k].Scalar(), h.Scalar()); });
          if (!within && CheckHost(sni[k].Scalar()).empty()) {
            r.Error(sni[k], IndexPath(IndexPath(IndexPath(path + ".tls", i) + ".match", m) + ".sniHosts", k),
                    "\"" + sni[k].Scalar() + "\" is not within any of spec.hosts");
          }
        }
      }
    }
  }
  if (mesh) {
    auto http = FieldReader::Find(spec, "http");
    for (size_t i = 0; http && http->IsSequence() && i < http->size(); ++i) {
      auto matches = FieldReader::Find((*http)[i], "match");
      for (size_t m = 0; matches && matches->IsSequence() && m < matches->size(); ++m) {
        for (std::string_view field : {"headers", "withoutHeaders"}) {
          auto headers = FieldReader::Find((*matches)[m], field);
          if (!headers || !headers->IsMap()) continue;
          for (const auto& kv : *headers) {
            if (kv.first.IsScalar() && ClaimHeader(kv.first.Scalar())) {
              r.Error(kv.first,
                      FieldPath(IndexPath(IndexPath(path + ".http", i) + ".match", m) + "." + std::string(field),
                                kv.first.Scalar()),
                      "routing on a JWT claim needs a gateway (spec.gateways): the mesh has not validated the token");
            }
          }
        }
      }
    }
  }
  CheckExportTo(r, spec, path);
}

const Node* VirtualServiceBody() {
  static const auto* l4_match = Object({{"destinationSubnets", List(String(CheckIpOrCidr))},
                                        {"port", Int(1, 65535)},
                                        {"sourceLabels", LabelMap()},
                                        {"gateways", List(String(CheckGatewayRef))},
                                        {"sourceNamespace", String(CheckLabel)},
                                        {"sourceSubnet", String(CheckIpOrCidr)}});
  static const auto* tls_match = Object({{"sniHosts", List(String(CheckHost), 1), kRequired},
                                         {"destinationSubnets", List(String(CheckIpOrCidr))},
                                         {"port", Int(1, 65535)},
                                         {"sourceLabels", LabelMap()},
                                         {"gateways", List(String(CheckGatewayRef))},
                                         {"sourceNamespace", String(CheckLabel)}});
  static const auto* tcp = Object({{"match", List(l4_match)}, {"route", List(RouteDestination(), 1), kRequired}},
                                  {.check = CheckL4Route});
  static const auto* tls = Object(
      {{"match", List(tls_match, 1), kRequired}, {"route", List(RouteDestination(), 1), kRequired}},
      {.check = CheckL4Route});
  static const auto* spec = Object({{"hosts", List(String(CheckHost), 1), kRequired},
                                    {"gateways", List(String(CheckGatewayRef))},
                                    {"http", List(HttpRoute())},
                                    {"tcp", List(tcp)},
                                    {"tls", List(tls)},
                                    {"exportTo", ExportTo()}},
                                   {.check = CheckVirtualService});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

std::string ModeOf(const YAML::Node& tls) {
  auto mode = FieldReader::Find(tls, "mode");
  return mode && mode->IsScalar() ? mode->Scalar() : "";
}

// Istio's ValidateTLS (a DestinationRule's client side): MUTUAL needs a
// certificate (credentialName, or clientCertificate and privateKey); a
// credentialName excludes files; insecureSkipVerify excludes what would verify.
void CheckClientTls(FieldReader& r, const YAML::Node& tls, const std::string& path) {
  const std::string mode = ModeOf(tls);
  auto has = [&](std::string_view f) { return FieldReader::Find(tls, f).has_value(); };
  auto skip = FieldReader::Find(tls, "insecureSkipVerify");
  if (skip && skip->IsScalar() && Classify(*skip) == ScalarType::kBool && skip->Scalar() == "true") {
    std::vector<std::string_view> verify = {"caCertificates", "subjectAltNames"};
    if (mode == "SIMPLE") verify.push_back("credentialName");
    for (auto f : verify) {
      if (has(f) && (mode == "SIMPLE" || mode == "MUTUAL")) {
        r.Error(*FieldReader::Find(tls, f), FieldPath(path, f), "may not be set with insecureSkipVerify: true");
      }
    }
  }
  if ((mode == "SIMPLE" || mode == "MUTUAL") && has("credentialName")) {
    for (std::string_view f : {"clientCertificate", "privateKey", "caCertificates", "caCrl"}) {
      if (has(f)) r.Error(*FieldReader::Find(tls, f), FieldPath(path, f), "may not be set with credentialName");
    }
    return;
  }
  if (mode == "MUTUAL" && (!has("clientCertificate") || !has("privateKey"))) {
    r.Error(*FieldReader::Find(tls, "mode"), path + ".mode",
            "MUTUAL requires credentialName, or clientCertificate and privateKey");
  }
}

// Istio's validateTLSOptions (a Gateway server): ISTIO_MUTUAL takes no
// certificate; one certificate source only; SIMPLE and MUTUAL need a server
// certificate and key unless credentialName(s) fetch them, MUTUAL a CA
// bundle too; a CRL not with credentialName nor SIMPLE.
void CheckServerTls(FieldReader& r, const YAML::Node& tls, const std::string& path) {
  const std::string mode = ModeOf(tls);
  auto has = [&](std::string_view f) { return FieldReader::Find(tls, f).has_value(); };
  auto at = [&](std::string_view f) { return *FieldReader::Find(tls, f); };
  static constexpr std::string_view kCertFields[] = {"serverCertificate", "privateKey", "caCertificates",
                                                     "credentialName", "credentialNames", "tlsCertificates"};
  if (mode == "ISTIO_MUTUAL") {
    for (auto f : kCertFields) {
      if (has(f)) r.Error(at(f), FieldPath(path, f), "may not be set with mode ISTIO_MUTUAL (the mesh's certificates)");
    }
    return;
  }
  int sources = (has("serverCertificate") && has("privateKey")) + has("credentialName") + has("credentialNames") +
                has("tlsCertificates");
  if (sources > 1) {
    r.Error(tls, path, "only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates");
  }
  bool fetched = has("credentialName") || has("credentialNames");
  bool mutual = mode == "MUTUAL" || mode == "OPTIONAL_MUTUAL";
  if ((mode == "SIMPLE" || mutual) && !fetched) {
    if (!has("tlsCertificates")) {
      for (std::string_view f : {"serverCertificate", "privateKey"}) {
        if (!has(f)) r.Error(at("mode"), FieldPath(path, f), "required with mode " + mode + " (or credentialName)");
      }
    }
    if (mutual && !has("caCertificates")) {
      r.Error(at("mode"), path + ".caCertificates", "required with mode " + mode + " (or credentialName)");
    }
  }
  if (has("caCrl") && has("credentialName")) {
    r.Error(at("caCrl"), path + ".caCrl", "may not be set with credentialName (the credential holds the CRL)");
  }
  if (has("caCrl") && mode == "SIMPLE") r.Error(at("caCrl"), path + ".caCrl", "is not supported with mode SIMPLE");
}

bool AnyOf(const YAML::Node& node, std::initializer_list<std::string_view> fields) {
  return std::any_of(fields.begin(), fields.end(), [&](std::string_view f) { return FieldReader::Find(node, f).has_value(); });
}

// Istio's validateTrafficPolicy: not empty; tunnel and proxyProtocol not together.
void CheckTrafficPolicy(FieldReader& r, const YAML::Node& policy, const std::string& path) {
  if (!AnyOf(policy, {"loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings", "tunnel",
                      "proxyProtocol", "retryBudget"})) {
    r.Error(policy, path, "must set at least one field (or be left out)");
  }
  if (AnyOf(policy, {"tunnel"}) && AnyOf(policy, {"proxyProtocol"})) {
    r.Error(policy, path, "tunnel and proxyProtocol may not be set together");
  }
}

void CheckPortTrafficPolicy(FieldReader& r, const YAML::Node& policy, const std::string& path) {
  if (!AnyOf(policy, {"loadBalancer", "connectionPool", "outlierDetection", "tls"})) {
    r.Error(policy, path, "must set at least one of loadBalancer, connectionPool, outlierDetection or tls");
  }
}

void CheckConnectionPool(FieldReader& r, const YAML::Node& pool, const std::string& path) {
  if (!AnyOf(pool, {"http", "tcp"})) r.Error(pool, path, "must set http or tcp (or be left out)");
  auto http = FieldReader::Find(pool, "http");
  auto policy = http ? FieldReader::Find(*http, "h2UpgradePolicy") : std::nullopt;
  auto client = http ? FieldReader::Find(*http, "useClientProtocol") : std::nullopt;
  if (policy && policy->IsScalar() && policy->Scalar() == "UPGRADE" && client && client->IsScalar() &&
      client->Scalar() == "true") {
    r.Error(*client, path + ".http.useClientProtocol", "may not be true with h2UpgradePolicy: UPGRADE");
  }
}

void CheckOutlierDetection(FieldReader& r, const YAML::Node& od, const std::string& path) {
  auto local = FieldReader::Find(od, "consecutiveLocalOriginFailures");
  auto split = FieldReader::Find(od, "splitExternalLocalOriginErrors");
  bool splitting = split && split->IsScalar() && split->Scalar() == "true";
  if (local && FieldReader::IsInteger(*local) && std::strtoll(local->Scalar().c_str(), nullptr, 10) > 0 && !splitting) {
    r.Error(*local, path + ".consecutiveLocalOriginFailures", "needs splitExternalLocalOriginErrors: true");
  }
}

bool IsPrime(uint64_t x) {
  if (x < 2) return false;
  for (uint64_t d = 2; d * d <= x; ++d) {
    if (x % d == 0) return false;
  }
  return true;
}

// Istio's validateLoadBalancer: Maglev's table is a prime below 5000011; the
// deprecated minimumRingSize not with ringHash or maglev.
void CheckConsistentHash(FieldReader& r, const YAML::Node& hash, const std::string& path) {
  if (auto maglev = FieldReader::Find(hash, "maglev")) {
    auto size = FieldReader::Find(*maglev, "tableSize");
    uint64_t v = size && FieldReader::IsInteger(*size) ? std::strtoull(size->Scalar().c_str(), nullptr, 10) : 0;
    if (!size || v == 0 || v >= 5000011 || !IsPrime(v)) {
      r.Error(size ? *size : *maglev, path + ".maglev.tableSize", "must be a prime below 5000011");
    }
  }
  if (AnyOf(hash, {"minimumRingSize"}) && AnyOf(hash, {"ringHash", "maglev"})) {
    r.Error(*FieldReader::Find(hash, "minimumRingSize"), path + ".minimumRingSize", "may not be set with ringHash or maglev");
  }
}

const Node* TrafficPolicy() {
  static const auto* consistent_hash = Object(
      {{"httpHeaderName", String()},
       {"httpCookie", Object({{"name", String(), kRequired}, {"path", String()}, {"ttl", Duration(true)}})},
       {"useSourceIp", Bool()},
       {"httpQueryParameterName", String()},
       {"ringHash", Object({{"minimumRingSize", Int(0, kMaxUint32)}})},
       {"maglev", Object({{"tableSize", Int(0, kMaxUint32)}})},
       {"minimumRingSize", Int(0, kMaxUint32)}},
      {.check = CheckConsistentHash, .one_of = {"httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"}});
  static const auto* lb = Object(
      Concat({{"simple", Enum({"UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"})},
              {"consistentHash", consistent_hash},
              {"warmupDurationSecs", Duration()}},
             AnyFields({"localityLbSetting", "warmup"})),
      {.one_of = {"simple", "consistentHash"}});
  static const auto* tcp = Object({{"maxConnections", Int(0, kMaxInt32)},
                                   {"connectTimeout", Duration()},
                                   {"tcpKeepalive", Object({{"probes", Int(0, kMaxUint32)},
                                                            {"time", Duration()},
                                                            {"interval", Duration()}})},
                                   {"maxConnectionDuration", Duration()},
                                   {"idleTimeout", Duration()}});
  static const auto* http = Object({{"http1MaxPendingRequests", Int(0, kMaxInt32)},
                                    {"http2MaxRequests", Int(0, kMaxInt32)},
                                    {"maxRequestsPerConnection", Int(0, kMaxInt32)},
                                    {"maxRetries", Int(0, kMaxInt32)},
                                    {"idleTimeout", Duration()},
                                    {"h2UpgradePolicy", Enum({"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"})},
                                    {"useClientProtocol", Bool()},
                                    {"maxConcurrentStreams", Int(0, kMaxInt32)}});
  static const auto* pool = Object({{"tcp", tcp}, {"http", http}}, {.check = CheckConnectionPool});
  static const auto* outlier = Object({{"consecutiveErrors", Int(0, kMaxInt32)},
                                       {"consecutiveGatewayErrors", Int(0, kMaxUint32)},
                                       {"consecutive5xxErrors", Int(0, kMaxUint32)},
                                       {"splitExternalLocalOriginErrors", Bool()},
                                       {"consecutiveLocalOriginFailures", Int(0, kMaxUint32)},
                                       {"interval", Duration()},
                                       {"baseEjectionTime", Duration()},
                                       {"maxEjectionPercent", Int(0, 100)},
                                       {"minHealthPercent", Int(0, 100)}},
                                      {.check = CheckOutlierDetection});
  static const auto* tls = Object({{"mode", Enum({"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"})},
                                   {"clientCertificate", String()},
                                   {"privateKey", String()},
                                   {"caCertificates", String()},
                                   {"credentialName", String()},
                                   {"subjectAltNames", List(String())},
                                   {"sni", String()},
                                   {"insecureSkipVerify", Bool()},
                                   {"caCrl", String()}},
                                  {.check = CheckClientTls});
  static const auto* port_level = Object({{"port", PortSelector(), kRequired},
                                          {"loadBalancer", lb},
                                          {"connectionPool", pool},
                                          {"outlierDetection", outlier},
                                          {"tls", tls}},
                                         {.check = CheckPortTrafficPolicy});
  static const auto* policy = Object(Concat({{"loadBalancer", lb},
                                             {"connectionPool", pool},
                                             {"outlierDetection", outlier},
                                             {"tls", tls},
                                             {"portLevelSettings", List(port_level)}},
                                            AnyFields({"tunnel", "proxyProtocol", "retryBudget"})),
                                     {.check = CheckTrafficPolicy});
  return policy;
}

// Istio's ValidateDestinationRule: unique subset names; a rule with a
// workload selector stays in its namespace; exportTo.
void CheckDestinationRule(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto subsets = FieldReader::Find(spec, "subsets");
  if (subsets && subsets->IsSequence()) {
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < subsets->size(); ++i) {
      auto name = FieldReader::Find((*subsets)[i], "name");
      if (!name || !name->IsScalar()) continue;
      auto [it, inserted] = seen.emplace(name->Scalar(), i);
      if (!inserted) {
        r.Error(*name, IndexPath(path + ".subsets", i) + ".name",
                "duplicate subset name \"" + name->Scalar() + "\" (also " + IndexPath(path + ".subsets", it->second) + ")");
      }
    }
  }
  CheckExportTo(r, spec, path);
  if (FieldReader::Find(spec, "workloadSelector")) {
    for (const auto& v : Scalars(spec, "exportTo")) {
      if (v.Scalar() != "." && v.Scalar() != r.ns()) {
        r.Error(v, path + ".exportTo", "a DestinationRule with a workloadSelector may be exported only to its own namespace");
        break;
      }
    }
  }
}

const Node* DestinationRuleBody() {
  static const auto* subset = Object(
      {{"name", String(CheckLabel), kRequired}, {"labels", LabelMap()}, {"trafficPolicy", TrafficPolicy()}});
  static const auto* spec = Object({{"host", String(CheckHost), kRequired},
                                    {"trafficPolicy", TrafficPolicy()},
                                    {"subsets", List(subset)},
                                    {"exportTo", ExportTo()},
                                    {"workloadSelector", WorkloadSelector()}},
                                   {.check = CheckDestinationRule});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

// Port numbers and names are unique within one ServiceEntry / Gateway list.
void CheckUniquePorts(FieldReader& r, const YAML::Node& ports, const std::string& path) {
  std::map<std::string, size_t> numbers, names;
  for (size_t i = 0; i < ports.size(); ++i) {
    for (auto [field, seen] : {std::pair{"number", &numbers}, std::pair{"name", &names}}) {
      auto v = FieldReader::Find(ports[i], field);
      if (!v || !v->IsScalar()) continue;
      auto [it, inserted] = seen->emplace(v->Scalar(), i);
      if (!inserted) {
        r.Error(*v, IndexPath(path, i) + "." + field,
                std::string("duplicate port ") + field + " " + v->Scalar() + " (also " + IndexPath(path, it->second) + ")");
      }
    }
  }
}

// Protocols that tell hosts apart on one port (HTTP by authority, TLS by SNI).
bool HostAware(std::string p) {
  for (auto& c : p) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return p == "HTTP" || p == "HTTP2" || p == "GRPC" || p == "GRPC-WEB" || p == "HTTPS" || p == "TLS";
}

// Istio's ValidateServiceEntry: unique ports; "*" is no host; CIDR
// addresses only without DNS; per resolution: NONE has no endpoints, STATIC
// endpoints are IPs, DNS without endpoints resolves the hosts (so no
// wildcards), DNS_ROUND_ROBIN at most one endpoint; endpoint ports are the
// entry's port names; several hosts on a port only if HTTP or TLS tells them
// apart (or resolution NONE); exportTo.
void CheckServiceEntry(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  std::set<std::string> port_names;
  std::vector<std::pair<YAML::Node, std::string>> protocols;  // (protocol node, value)
  if (auto ports = FieldReader::Find(spec, "ports"); ports && ports->IsSequence()) {
    CheckUniquePorts(r, *ports, path + ".ports");
    for (const auto& port : *ports) {
      auto name = FieldReader::Find(port, "name");
      if (name && name->IsScalar()) port_names.insert(name->Scalar());
      auto protocol = FieldReader::Find(port, "protocol");
      if (protocol && protocol->IsScalar()) protocols.emplace_back(*protocol, protocol->Scalar());
    }
  }
  auto resolution = FieldReader::Find(spec, "resolution");
  std::string mode = resolution && resolution->IsScalar() ? resolution->Scalar() : "NONE";
  auto hosts = Scalars(spec, "hosts");
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].Scalar() == "*") r.Error(hosts[i], IndexPath(path + ".hosts", i), "\"*\" is not a host: name one");
  }
  for (const auto& a : Scalars(spec, "addresses")) {
    if (a.Scalar().find('/') != std::string::npos && mode != "NONE" && mode != "STATIC") {
      r.Error(a, path + ".addresses", "a CIDR (\"" + a.Scalar() + "\") needs resolution NONE or STATIC");
      break;
    }
  }
  auto endpoints = FieldReader::Find(spec, "endpoints");
  bool has_endpoints = endpoints && endpoints->IsSequence() && endpoints->size() > 0;
  if (mode == "NONE" && has_endpoints) {
    r.Error(*endpoints, path + ".endpoints", "no endpoints may be given with resolution NONE");
  }
  if ((mode == "DNS" || mode == "DNS_ROUND_ROBIN") && !has_endpoints) {
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (hosts[i].Scalar().find('*') != std::string::npos && hosts[i].Scalar() != "*") {
        r.Error(hosts[i], IndexPath(path + ".hosts", i),
                "\"" + hosts[i].Scalar() + "\" cannot be resolved by DNS (resolution " + mode +
                    " without endpoints resolves the hosts): name a host");
      }
    }
  }
  if (mode == "DNS_ROUND_ROBIN" && has_endpoints && endpoints->size() > 1) {
    r.Error(*endpoints, path + ".endpoints", "at most one endpoint with resolution DNS_ROUND_ROBIN");
  }
  for (size_t i = 0; has_endpoints && i < endpoints->size(); ++i) {
    const YAML::Node& ep = (*endpoints)[i];
    std::string ep_path = IndexPath(path + ".endpoints", i);
    auto addr = FieldReader::Find(ep, "address");
    if (addr && addr->IsScalar()) {
      const std::string& a = addr->Scalar();
      if (mode == "STATIC" && !CheckIp(a).empty() && a.rfind("unix://", 0) != 0) {
        r.Error(*addr, ep_path + ".address", "\"" + a + "\" must be an IP address with resolution STATIC");
      } else if ((mode == "DNS" || mode == "DNS_ROUND_ROBIN") && !CheckIp(a).empty() &&
                 (a.find('*') != std::string::npos || !CheckHost(a).empty())) {
        r.Error(*addr, ep_path + ".address", "\"" + a + "\" must be an IP address or a host name");
      }
    }
    if (auto ports = FieldReader::Find(ep, "ports"); ports && ports->IsMap() && mode != "NONE") {
      for (const auto& kv : *ports) {
        if (kv.first.IsScalar() && !port_names.contains(kv.first.Scalar())) {
          r.Error(kv.first, FieldPath(ep_path + ".ports", kv.first.Scalar()),
                  "\"" + kv.first.Scalar() + "\" is not the name of one of spec.ports");
        }
      }
    }
  }
  if (mode != "NONE" && hosts.size() > 1) {
    for (const auto& [node, protocol] : protocols) {
      if (!HostAware(protocol)) {
        r.Error(node, path + ".hosts",
                "several hosts on a " + protocol + " port cannot be told apart (only HTTP or TLS ports, or resolution NONE)");
        break;
      }
    }
  }
  CheckExportTo(r, spec, path);
}

const Node* ServiceEntryBody() {
  static const auto* port = Object({{"number", Int(1, 65535), kRequired},
                                    {"protocol", PortProtocol(), kRequired},
                                    {"name", String(CheckLabel), kRequired},
                                    {"targetPort", Int(1, 65535)}});
  static const auto* endpoint = Object({{"address", String()},
                                        {"ports", Map(Int(1, 65535), CheckPortName)},
                                        {"labels", LabelMap()},
                                        {"network", String()},
                                        {"locality", String()},
                                        {"weight", Int(0, kMaxUint32)},
                                        {"serviceAccount", String()}});
  static const auto* spec = Object({{"hosts", List(String(CheckHost), 1), kRequired},
                                    {"addresses", List(String(CheckIpOrCidr))},
                                    {"ports", List(port)},
                                    {"location", Enum({"MESH_EXTERNAL", "MESH_INTERNAL"})},
                                    {"resolution", Enum({"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"})},
                                    {"endpoints", List(endpoint)},
                                    {"workloadSelector", Object({{"labels", LabelMap()}})},
                                    {"exportTo", ExportTo(/*service_entry=*/true)},
                                    {"subjectAltNames", List(String())}},
                                   {.check = CheckServiceEntry, .one_of = {"endpoints", "workloadSelector"}});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

// Istio's validateServer: HTTPS and TLS servers need TLS settings; a plain
// HTTP server may only redirect to HTTPS (no certificates), other protocols
// take none; targetPort has no effect on a Gateway; bind is an IP or unix://.
void CheckServer(FieldReader& r, const YAML::Node& server, const std::string& path) {
  auto port = FieldReader::Find(server, "port");
  if (auto target = port ? FieldReader::Find(*port, "targetPort") : std::nullopt) {
    r.Error(*target, path + ".port.targetPort", "has no effect on a Gateway: leave it out");
  }
  if (auto bind = FieldReader::Find(server, "bind"); bind && bind->IsScalar()) {
    const std::string& b = bind->Scalar();
    if (b.rfind("unix://", 0) == 0 ? b.size() == 7 : !CheckIp(b).empty()) {
      r.Error(*bind, path + ".bind", "\"" + b + "\" must be an IP address or unix://<path>");
    }
  }
  auto protocol = port ? FieldReader::Find(*port, "protocol") : std::nullopt;
  if (!protocol || !protocol->IsScalar()) return;
  std::string p = protocol->Scalar();
  for (auto& c : p) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto tls = FieldReader::Find(server, "tls");
  if ((p == "HTTPS" || p == "TLS") && !tls) {
    r.Error(server, path + ".tls", "required for protocol " + protocol->Scalar());
  }
  if (!tls || p == "HTTPS" || p == "TLS") return;
  std::string mode = ModeOf(*tls);
  bool redirect_only = (mode.empty() || mode == "PASSTHROUGH" || mode == "AUTO_PASSTHROUGH") &&
                       !AnyOf(*tls, {"caCertificates", "privateKey", "serverCertificate"});
  if (!HostAware(p) || p == "GRPC" || p == "GRPC-WEB" || !redirect_only) {
    r.Error(*tls, path + ".tls",
            "TLS settings on a plain " + protocol->Scalar() + " port: only httpsRedirect, on an HTTP port");
  }
}

// Port names are unique across a Gateway's servers (Istio).
void CheckGateway(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto servers = FieldReader::Find(spec, "servers");
  if (!servers || !servers->IsSequence()) return;
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < servers->size(); ++i) {
    auto port = FieldReader::Find((*servers)[i], "port");
    auto name = port ? FieldReader::Find(*port, "name") : std::nullopt;
    if (!name || !name->IsScalar()) continue;
    auto [it, inserted] = names.emplace(name->Scalar(), i);
    if (!inserted) {
      r.Error(*name, IndexPath(path + ".servers", i) + ".port.name",
              "duplicate port name \"" + name->Scalar() + "\" (also " + IndexPath(path + ".servers", it->second) + ")");
    }
  }
}

const Node* GatewayBody() {
  static const auto* port = Object({{"number", Int(1, 65535), kRequired},
                                    {"protocol", PortProtocol(), kRequired},
                                    {"name", String(), kRequired},
                                    {"targetPort", Int(1, 65535)}});
  static const auto* tls_version = Enum({"TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"});
  static const auto* tls = Object(
      Concat({{"httpsRedirect", Bool()},
              {"mode", Enum({"PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"})},
              {"serverCertificate", String()},
              {"privateKey", String()},
              {"caCertificates", String()},
              {"caCrl", String()},
              {"credentialName", String()},
              {"credentialNames", List(String())},
              {"subjectAltNames", List(String())},
              {"verifyCertificateSpki", List(String())},
              {"verifyCertificateHash", List(String())},
              {"minProtocolVersion", tls_version},
              {"maxProtocolVersion", tls_version},
              {"cipherSuites", List(String())}},
             AnyFields({"tlsCertificates"})),
      {.check = CheckServerTls});
  static const auto* server = Object({{"port", port, kRequired},
                                      {"bind", String()},
                                      {"hosts", List(String(CheckGatewayHost), 1), kRequired},
                                      {"tls", tls},
                                      {"defaultEndpoint", String()},
                                      {"name", String()}},
                                     {.check = CheckServer});
  static const auto* spec =
      Object({{"selector", LabelMap()}, {"servers", List(server, 1), kRequired}}, {.check = CheckGateway});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

void ParseWorkloadEntryDoc(FieldReader& r, const YAML::Node& doc, const Metadata& meta, ParsedDocs& out) {
  r.ExpectMap(doc, "", {"apiVersion", "kind", "metadata", "spec"});
  if (auto w = ParseWorkloadEntry(r, doc, meta)) out.workloads.push_back(std::move(*w));
  // weft.io/node: the node the workload runs on (the controller sends it to that node's agent).
  if (auto node = meta.annotations.find("weft.io/node"); node != meta.annotations.end()) {
    if (std::string why = CheckDns1123Subdomain(node->second); !why.empty()) {
      auto at = [&]() -> YAML::Node {  // yaml-cpp's Node::operator= writes through: no reassignment
        for (const auto& kv : *meta.annotations_node) {
          if (kv.first.Scalar() == node->first) return kv.second;
        }
        return *meta.annotations_node;
      };
      r.Error(at(), FieldPath("metadata.annotations", node->first), "\"" + node->second + "\" " + why);
    }
  }
}

}  // namespace

std::vector<KindSpec> NetworkingKinds() {
  return {
      {.kind = "VirtualService", .api_versions = kVersions, .body = VirtualServiceBody()},
      {.kind = "DestinationRule", .api_versions = kVersions, .body = DestinationRuleBody()},
      {.kind = "ServiceEntry", .api_versions = kVersions, .body = ServiceEntryBody()},
      {.kind = "WorkloadEntry", .api_versions = kVersions, .parse = ParseWorkloadEntryDoc},
      {.kind = "Gateway", .api_versions = kVersions, .label_name = true, .body = GatewayBody()},
  };
}

}  // namespace weft::config
