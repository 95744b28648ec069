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
  static const auto* m =
      Object({{"exact", String()}, {"prefix", String()}, {"regex", String()}}, {.one_of = {"exact", "prefix", "regex"}});
  return m;
}

const Node* Destination() {
  static const auto* d = Object(
      {{"host", String(CheckHost), kRequired}, {"subset", String(CheckLabel)}, {"port", PortSelector()}});
  return d;
}

const Node* Headers() {
  static const auto* op = Object({{"set", Map(String())}, {"add", Map(String())}, {"remove", List(String())}});
  static const auto* h = Object({{"request", op}, {"response", op}});
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

void CheckHttpRoute(FieldReader& r, const YAML::Node& route, const std::string& path) {
  CheckWeights(r, route, path);
  bool delegate = FieldReader::Find(route, "delegate").has_value();
  bool target = FieldReader::Find(route, "route") || FieldReader::Find(route, "redirect") ||
                FieldReader::Find(route, "directResponse");
  if (!target && !delegate) r.Error(route, path, "one of route, redirect, directResponse or delegate is required");
  if (FieldReader::Find(route, "redirect") && FieldReader::Find(route, "rewrite")) {
    r.Error(route, path, "rewrite may not be combined with redirect");
  }
}

const Node* HttpRoute() {
  static const auto* match = Object({{"name", String()},
                                     {"uri", StringMatch()},
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
                                   {.check = [](FieldReader& r, const YAML::Node& n, const std::string& p) {
                                     if (!FieldReader::Find(n, "http") && !FieldReader::Find(n, "tcp") &&
                                         !FieldReader::Find(n, "tls")) {
                                       r.Error(n, p, "at least one of http, tcp or tls is required");
                                     }
                                   }});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

// MUTUAL TLS needs a certificate: credentialName, or a certificate and key pair.
template <const char* kCert>
void CheckMutualCredentials(FieldReader& r, const YAML::Node& tls, const std::string& path) {
  auto mode = FieldReader::Find(tls, "mode");
  if (!mode || !mode->IsScalar() || mode->Scalar() != "MUTUAL") return;
  if (FieldReader::Find(tls, "credentialName")) return;
  if (!FieldReader::Find(tls, kCert) || !FieldReader::Find(tls, "privateKey")) {
    r.Error(*mode, path + ".mode",
            std::string("MUTUAL requires credentialName, or ") + kCert + " and privateKey");
  }
}
constexpr char kClientCert[] = "clientCertificate";
constexpr char kServerCert[] = "serverCertificate";

const Node* TrafficPolicy() {
  static const auto* consistent_hash = Object(
      {{"httpHeaderName", String()},
       {"httpCookie", Object({{"name", String(), kRequired}, {"path", String()}, {"ttl", Duration(true)}})},
       {"useSourceIp", Bool()},
       {"httpQueryParameterName", String()},
       {"ringHash", Object({{"minimumRingSize", Int(0, kMaxUint32)}})},
       {"maglev", Object({{"tableSize", Int(0, kMaxUint32)}})},
       {"minimumRingSize", Int(0, kMaxUint32)}},
      {.one_of = {"httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"}});
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
  static const auto* pool = Object({{"tcp", tcp}, {"http", http}});
  static const auto* outlier = Object({{"consecutiveErrors", Int(0, kMaxInt32)},
                                       {"consecutiveGatewayErrors", Int(0, kMaxUint32)},
                                       {"consecutive5xxErrors", Int(0, kMaxUint32)},
                                       {"splitExternalLocalOriginErrors", Bool()},
                                       {"consecutiveLocalOriginFailures", Int(0, kMaxUint32)},
                                       {"interval", Duration()},
                                       {"baseEjectionTime", Duration()},
                                       {"maxEjectionPercent", Int(0, 100)},
                                       {"minHealthPercent", Int(0, 100)}});
  static const auto* tls = Object({{"mode", Enum({"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"})},
                                   {"clientCertificate", String()},
                                   {"privateKey", String()},
                                   {"caCertificates", String()},
                                   {"credentialName", String()},
                                   {"subjectAltNames", List(String())},
                                   {"sni", String()},
                                   {"insecureSkipVerify", Bool()},
                                   {"caCrl", String()}},
                                  {.check = CheckMutualCredentials<kClientCert>});
  static const auto* port_level = Object({{"port", PortSelector(), kRequired},
                                          {"loadBalancer", lb},
                                          {"connectionPool", pool},
                                          {"outlierDetection", outlier},
                                          {"tls", tls}});
  static const auto* policy = Object(Concat({{"loadBalancer", lb},
                                             {"connectionPool", pool},
                                             {"outlierDetection", outlier},
                                             {"tls", tls},
                                             {"portLevelSettings", List(port_level)}},
                                            AnyFields({"tunnel", "proxyProtocol"})));
  return policy;
}

void CheckSubsetNames(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto subsets = FieldReader::Find(spec, "subsets");
  if (!subsets || !subsets->IsSequence()) return;
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

const Node* DestinationRuleBody() {
  static const auto* subset = Object(
      {{"name", String(CheckLabel), kRequired}, {"labels", LabelMap()}, {"trafficPolicy", TrafficPolicy()}});
  static const auto* spec = Object({{"host", String(CheckHost), kRequired},
                                    {"trafficPolicy", TrafficPolicy()},
                                    {"subsets", List(subset)},
                                    {"exportTo", ExportTo()},
                                    {"workloadSelector", WorkloadSelector()}},
                                   {.check = CheckSubsetNames});
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

void CheckServiceEntry(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  if (auto ports = FieldReader::Find(spec, "ports"); ports && ports->IsSequence()) {
    CheckUniquePorts(r, *ports, path + ".ports");
  }
  auto resolution = FieldReader::Find(spec, "resolution");
  std::string mode = resolution && resolution->IsScalar() ? resolution->Scalar() : "NONE";
  auto endpoints = FieldReader::Find(spec, "endpoints");
  bool has_endpoints = endpoints && endpoints->IsSequence() && endpoints->size() > 0;
  if (mode == "NONE" && has_endpoints) {
    r.Error(*endpoints, path + ".endpoints", "no endpoints may be given with resolution NONE");
  }
  if (mode == "STATIC" && has_endpoints) {
    for (size_t i = 0; i < endpoints->size(); ++i) {
      auto addr = FieldReader::Find((*endpoints)[i], "address");
      if (addr && addr->IsScalar() && !CheckIp(addr->Scalar()).empty()) {
        r.Error(*addr, IndexPath(path + ".endpoints", i) + ".address",
                "\"" + addr->Scalar() + "\" must be an IP address with resolution STATIC");
      }
    }
  }
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
                                    {"exportTo", ExportTo()},
                                    {"subjectAltNames", List(String())}},
                                   {.check = CheckServiceEntry, .one_of = {"endpoints", "workloadSelector"}});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

// A server speaking HTTPS or TLS needs TLS settings.
void CheckServer(FieldReader& r, const YAML::Node& server, const std::string& path) {
  auto port = FieldReader::Find(server, "port");
  auto protocol = port ? FieldReader::Find(*port, "protocol") : std::nullopt;
  if (!protocol || !protocol->IsScalar()) return;
  std::string p = protocol->Scalar();
  for (auto& c : p) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if ((p == "HTTPS" || p == "TLS") && !FieldReader::Find(server, "tls")) {
    r.Error(server, path + ".tls", "required for protocol " + protocol->Scalar());
  }
}

const Node* GatewayBody() {
  static const auto* port = Object({{"number", Int(1, 65535), kRequired},
                                    {"protocol", PortProtocol(), kRequired},
                                    {"name", String()},
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
      {.check = CheckMutualCredentials<kServerCert>});
  static const auto* server = Object({{"port", port, kRequired},
                                      {"bind", String()},
                                      {"hosts", List(String(CheckGatewayHost), 1), kRequired},
                                      {"tls", tls},
                                      {"defaultEndpoint", String()},
                                      {"name", String()}},
                                     {.check = CheckServer});
  static const auto* spec = Object({{"selector", LabelMap()}, {"servers", List(server, 1), kRequired}});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

void ParseWorkloadEntryDoc(FieldReader& r, const YAML::Node& doc, const Metadata& meta, ParsedDocs& out) {
  r.ExpectMap(doc, "", {"apiVersion", "kind", "metadata", "spec"});
  if (auto w = ParseWorkloadEntry(r, doc, meta); w && !w->addresses.empty()) {
    auto spec = FieldReader::Find(doc, "spec");
    auto address = spec ? FieldReader::Find(*spec, "address") : std::nullopt;
    out.workloads.push_back({w->ns, w->name, w->addresses.front(), address ? LocationOf(*address) : LocationOf(doc)});
  }
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
      {.kind = "Gateway", .api_versions = kVersions, .body = GatewayBody()},
  };
}

}  // namespace weft::config
