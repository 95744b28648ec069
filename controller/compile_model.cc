#include "controller/compile_model.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <tuple>

namespace weft::controller::compile {
namespace {

using nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> AsUint(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    return v < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(v));
  }
  if (j.is_string()) return ParseUint(j.get_ref<const std::string&>());
  return std::nullopt;
}

const json& Empty() {
  static const json kEmpty = json::object();
  return kEmpty;
}

const json& Obj(const json& j, std::string_view key) {
  const json* f = Field(j, key);
  return f && f->is_object() ? *f : Empty();
}

const json& Arr(const json& j, std::string_view key) {
  static const json kEmptyArray = json::array();
  const json* f = Field(j, key);
  return f && f->is_array() ? *f : kEmptyArray;
}

std::string Annotation(const json& object, std::string_view key) {
  return StringField(Obj(Obj(object, "metadata"), "annotations"), key);
}

// metadata.namespace / metadata.name
std::pair<std::string, std::string> NsName(const json& object) {
  const json& meta = Obj(object, "metadata");
  return {StringField(meta, "namespace"), StringField(meta, "name")};
}

std::map<std::string, uint32_t> NamedPorts(const json& j) {
  std::map<std::string, uint32_t> out;
  if (!j.is_object()) return out;
  for (const auto& [name, value] : j.items()) {
    if (auto v = AsUint(value); v && *v > 0 && *v <= 65535) out[name] = static_cast<uint32_t>(*v);
  }
  return out;
}

uint32_t Weight(const json& spec) {
  auto w = UintField(spec, "weight");
  return w ? static_cast<uint32_t>(std::min<uint64_t>(*w, UINT32_MAX)) : 1;
}

std::optional<Labels> Selector(const json& spec) {
  const json* sel = Field(spec, "selector");
  if (!sel || !sel->is_object()) return std::nullopt;
  Labels labels = LabelField(*sel, "matchLabels");
  // An empty matchLabels selects every workload of the namespace, like no selector.
  if (labels.empty()) return std::nullopt;
  return labels;
}

MtlsMode ParseMode(const json& mtls) {
  std::string mode = StringField(mtls, "mode");
  if (mode == "STRICT") return MtlsMode::kStrict;
  if (mode == "PERMISSIVE") return MtlsMode::kPermissive;
  if (mode == "DISABLE") return MtlsMode::kDisable;
  return MtlsMode::kUnset;
}

TrafficPolicyModel ParsePolicy(const json& p) {
  TrafficPolicyModel out;
  if (const json* lb = Field(p, "loadBalancer"); lb && lb->is_object()) {
    const json* hash = Field(*lb, "consistentHash");
    out.consistent_hash = hash && hash->is_object();
    if (*out.consistent_hash) {
      out.l7_hash = Field(*hash, "httpHeaderName") || Field(*hash, "httpCookie") ||
                    Field(*hash, "httpQueryParameterName");
    }
  }
  if (const json* tls = Field(p, "tls"); tls && tls->is_object()) {
    std::string mode = StringField(*tls, "mode");
    out.mtls = mode == "ISTIO_MUTUAL" || mode == "MUTUAL";
  }
  return out;
}

// Istio's protocol.Parse, canonical lower-case names; "" when unsupported.
std::string CanonicalProtocol(std::string_view name) {
  static const char* const kKnown[] = {"tcp",  "udp", "grpc",  "grpc-web", "http",  "http_proxy",
                                       "http2", "https", "tls", "mongo",    "redis", "mysql"};
  std::string lower = Lower(name);
  for (const char* k : kKnown) {
    if (lower == k) return lower;
  }
  return "";
}

// WorkloadEntry-shaped fields shared by WorkloadEntry.spec and ServiceEntry endpoints.
std::vector<IpAddr> Addresses(const json& spec) {
  std::vector<IpAddr> out;
  if (auto ip = IpAddr::Parse(StringField(spec, "address"))) out.push_back(*ip);
  return out;
}

}  // namespace

// --- JSON access ---------------------------------------------------------------

const json* Field(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string StringField(const json& j, std::string_view key) {
  const json* f = Field(j, key);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

std::optional<uint64_t> UintField(const json& j, std::string_view key) {
  const json* f = Field(j, key);
  return f ? AsUint(*f) : std::nullopt;
}

Labels LabelField(const json& j, std::string_view key) {
  Labels out;
  const json* f = Field(j, key);
  if (!f || !f->is_object()) return out;
  for (const auto& [k, v] : f->items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

// --- names ---------------------------------------------------------------------

std::string ResolveHost(std::string_view host, std::string_view ns) {
  if (host.empty() || host.find('.') != std::string_view::npos || host == "*") return std::string(host);
  return std::string(host) + "." + std::string(ns) + "." + std::string(kServiceDomain);
}

bool IsWildcard(std::string_view host) { return !host.empty() && host.front() == '*'; }

bool HostMatches(std::string_view pattern, std::string_view host) {
  if (pattern == host) return true;
  if (!IsWildcard(pattern)) return false;
  std::string_view suffix = pattern.substr(1);  // ".suffix" or ""
  return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
}

bool LabelsMatch(const Labels& selector, const Labels& labels) {
  return std::all_of(selector.begin(), selector.end(), [&](const auto& kv) {
    auto it = labels.find(kv.first);
    return it != labels.end() && it->second == kv.second;
  });
}

// --- protocols -----------------------------------------------------------------

std::string SelectAppProtocol(std::string_view app_protocol, std::string_view port_name, bool udp) {
  if (udp) return "udp";
  std::string name(port_name);
  if (!app_protocol.empty()) {
    if (app_protocol == "kubernetes.io/h2c") return "http2";
    if (app_protocol == "kubernetes.io/ws" || app_protocol == "kubernetes.io/wss") return "http";
    name = app_protocol;
  }
  std::string lower = Lower(name);
  if (lower.rfind("grpc-web", 0) == 0) return "grpc-web";
  if (auto dash = lower.find('-'); dash != std::string::npos) lower.resize(dash);
  return CanonicalProtocol(lower);
}

ProtocolClass ClassOf(std::string_view p) {
  if (p == "http" || p == "http2" || p == "grpc" || p == "grpc-web" || p == "http_proxy") return ProtocolClass::kHttp;
  if (p == "https" || p == "tls") return ProtocolClass::kTls;
  if (p == "udp") return ProtocolClass::kUdp;
  if (p.empty()) return ProtocolClass::kUnknown;
  return ProtocolClass::kTcp;  // tcp, mongo, redis, mysql: opaque to HTTP routing
}

// --- kinds ---------------------------------------------------------------------

std::optional<ServiceModel> ParseService(const json& object) {
  ServiceModel svc;
  std::tie(svc.ns, svc.name) = NsName(object);
  svc.hostname = svc.name + "." + svc.ns + "." + std::string(kServiceDomain);
  const json& spec = Obj(object, "spec");
  std::vector<std::string> ips;
  for (const json& ip : Arr(spec, "clusterIPs")) {
    if (ip.is_string()) ips.push_back(ip.get<std::string>());
  }
  if (ips.empty()) ips.push_back(StringField(spec, "clusterIP"));
  for (const auto& text : ips) {
    // "None" (headless) and "" give no VIP; so does anything unparsable.
    if (auto ip = IpAddr::Parse(text)) svc.vips.push_back(*ip);
  }
  for (const json& p : Arr(spec, "ports")) {
    PortModel port;
    port.name = StringField(p, "name");
    port.port = static_cast<uint32_t>(UintField(p, "port").value_or(0));
    if (port.port == 0 || port.port > 65535) continue;
    if (const json* t = Field(p, "targetPort")) {
      if (t->is_string() && !ParseUint(t->get_ref<const std::string&>())) {
        port.target_name = t->get<std::string>();
      } else {
        port.target_number = static_cast<uint32_t>(AsUint(*t).value_or(0));
      }
    }
    if (port.target_name.empty() && port.target_number == 0) port.target_number = port.port;
    port.udp = StringField(p, "protocol") == "UDP";
    port.app_protocol = SelectAppProtocol(StringField(p, "appProtocol"), port.name, port.udp);
    svc.ports.push_back(std::move(port));
  }
  svc.selector = LabelField(spec, "selector");
  svc.maglev = StringField(spec, "sessionAffinity") == "ClientIP" ||
               Annotation(object, kAlgorithmAnnotation) == "maglev";
  if (auto size = ParseUint(Annotation(object, kMaglevSizeAnnotation)); size && *size <= UINT32_MAX) {
    svc.maglev_table_size = static_cast<uint32_t>(*size);
  }
  return svc;
}

std::vector<ServiceModel> ParseServiceEntry(const json& object) {
  std::vector<ServiceModel> out;
  const json& spec = Obj(object, "spec");
  if (StringField(spec, "resolution") != "STATIC") return out;
  auto [ns, name] = NsName(object);
  ServiceModel base;
  base.ns = ns;
  base.from_service_entry = true;
  for (const json& a : Arr(spec, "addresses")) {
    if (!a.is_string()) continue;
    if (auto ip = IpAddr::Parse(a.get<std::string>())) base.vips.push_back(*ip);  // CIDRs: no VIP
  }
  for (const json& p : Arr(spec, "ports")) {
    PortModel port;
    port.name = StringField(p, "name");
    port.port = static_cast<uint32_t>(UintField(p, "number").value_or(0));
    if (port.port == 0 || port.port > 65535) continue;
    port.target_number = static_cast<uint32_t>(UintField(p, "targetPort").value_or(port.port));
    std::string proto = StringField(p, "protocol");
    port.udp = proto == "UDP";
    port.app_protocol = SelectAppProtocol(Lower(proto), port.name, port.udp);
    base.ports.push_back(std::move(port));
  }
  for (const json& e : Arr(spec, "endpoints")) {
    InlineEndpoint ep;
    auto addr = IpAddr::Parse(StringField(e, "address"));
    if (!addr) continue;  // DNS names and unix sockets are not L4 backends
    ep.address = *addr;
    ep.labels = LabelField(e, "labels");
    if (const json* ports = Field(e, "ports")) ep.ports = NamedPorts(*ports);
    ep.weight = Weight(e);
    ep.service_account = StringField(e, "serviceAccount");
    base.endpoints.push_back(std::move(ep));
  }
  base.selector = LabelField(Obj(spec, "workloadSelector"), "labels");
  std::vector<std::string> hosts;
  for (const json& h : Arr(spec, "hosts")) {
    if (h.is_string() && !h.get<std::string>().empty()) hosts.push_back(h.get<std::string>());
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  for (const auto& host : hosts) {
    ServiceModel svc = base;
    svc.name = hosts.size() == 1 ? name : name + "." + host;
    svc.hostname = host;
    out.push_back(std::move(svc));
  }
  return out;
}

std::optional<WorkloadModel> ParseWorkloadEntry(const json& object) {
  WorkloadModel w;
  std::tie(w.ns, w.name) = NsName(object);
  const json& spec = Obj(object, "spec");
  w.addresses = Addresses(spec);
  w.labels = LabelField(spec, "labels");
  if (const json* ports = Field(spec, "ports")) w.ports = NamedPorts(*ports);
  w.weight = Weight(spec);
  w.service_account = StringField(spec, "serviceAccount");
  w.node = Annotation(object, kNodeAnnotation);
  return w;
}

TrafficPolicyModel DestinationRuleModel::For(uint32_t port) const {
  TrafficPolicyModel out = policy;
  auto it = port_policies.find(port);
  if (it == port_policies.end()) return out;
  if (it->second.consistent_hash) {
    out.consistent_hash = it->second.consistent_hash;
    out.l7_hash = it->second.l7_hash;
  }
  if (it->second.mtls) out.mtls = it->second.mtls;
  return out;
}

std::optional<DestinationRuleModel> ParseDestinationRule(const json& object) {
  DestinationRuleModel dr;
  std::tie(dr.ns, dr.name) = NsName(object);
  const json& spec = Obj(object, "spec");
  dr.host = ResolveHost(StringField(spec, "host"), dr.ns);
  if (dr.host.empty()) return std::nullopt;
  for (const json& s : Arr(spec, "subsets")) {
    std::string name = StringField(s, "name");
    if (!name.empty()) dr.subsets.emplace(name, LabelField(s, "labels"));
  }
  const json& policy = Obj(spec, "trafficPolicy");
  dr.policy = ParsePolicy(policy);
  for (const json& pl : Arr(policy, "portLevelSettings")) {
    auto number = UintField(Obj(pl, "port"), "number");
    if (number) dr.port_policies[static_cast<uint32_t>(*number)] = ParsePolicy(pl);
  }
  return dr;
}

std::optional<VirtualServiceModel> ParseVirtualService(const json& object) {
  VirtualServiceModel vs;
  std::tie(vs.ns, vs.name) = NsName(object);
  vs.spec = Obj(object, "spec");
  // Only a VirtualService bound to the mesh (no gateways, or "mesh" among them)
  // routes service traffic; gateway-only ones belong to the ingress.
  bool mesh = true;
  if (const json* gws = Field(vs.spec, "gateways"); gws && gws->is_array() && !gws->empty()) {
    mesh = std::any_of(gws->begin(), gws->end(), [](const json& g) { return g.is_string() && g == "mesh"; });
  }
  if (mesh) {
    for (const json& h : Arr(vs.spec, "hosts")) {
      if (h.is_string() && !h.get<std::string>().empty()) vs.hosts.push_back(ResolveHost(h.get<std::string>(), vs.ns));
    }
  }
  return vs;
}

std::optional<PeerAuthenticationModel> ParsePeerAuthentication(const json& object) {
  PeerAuthenticationModel pa;
  std::tie(pa.ns, pa.name) = NsName(object);
  const json& spec = Obj(object, "spec");
  pa.selector = Selector(spec);
  pa.mode = ParseMode(Obj(spec, "mtls"));
  if (const json* ports = Field(spec, "portLevelMtls"); ports && ports->is_object() && pa.selector) {
    for (const auto& [port, mtls] : ports->items()) {
      if (auto n = ParseUint(port); n && *n <= 65535) pa.port_modes[static_cast<uint32_t>(*n)] = ParseMode(mtls);
    }
  }
  return pa;
}

std::optional<AuthorizationPolicyModel> ParseAuthorizationPolicy(const json& object) {
  AuthorizationPolicyModel ap;
  std::tie(ap.ns, ap.name) = NsName(object);
  const json& spec = Obj(object, "spec");
  ap.selector = Selector(spec);
  std::string action = StringField(spec, "action");
  if (action == "AUDIT") return ap;  // audit-only: nothing to enforce
  if (action == "CUSTOM") {          // external authorization sees the request
    ap.needs_l7 = true;
    return ap;
  }
  static const char* const kL7Operation[] = {"methods", "notMethods", "paths", "notPaths", "hosts", "notHosts"};
  static const char* const kL7Source[] = {"requestPrincipals", "notRequestPrincipals", "remoteIpBlocks",
                                          "notRemoteIpBlocks"};
  static const char* const kL4Conditions[] = {"source.ip",          "source.namespace",      "source.principal",
                                              "source.serviceAccount", "source.trustDomain", "destination.ip",
                                              "destination.port",   "connection.sni"};
  for (const json& rule : Arr(spec, "rules")) {
    for (const json& to : Arr(rule, "to")) {
      const json& op = Obj(to, "operation");
      for (const char* k : kL7Operation) ap.needs_l7 |= Field(op, k) != nullptr;
    }
    for (const json& from : Arr(rule, "from")) {
      const json& src = Obj(from, "source");
      for (const char* k : kL7Source) ap.needs_l7 |= Field(src, k) != nullptr;
    }
    for (const json& when : Arr(rule, "when")) {
      std::string key = StringField(when, "key");
      ap.needs_l7 |= std::none_of(std::begin(kL4Conditions), std::end(kL4Conditions),
                                  [&](const char* k) { return key == k; });
    }
  }
  return ap;
}

}  // namespace weft::controller::compile
