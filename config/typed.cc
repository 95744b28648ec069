// TypedView: a validated Resource's canonical JSON -> the typed model.
// Tolerant readers (the input is validated; a field of another type reads as
// absent), one builder per kind, the defaults of Kubernetes and Istio applied
// here and nowhere else.
#include "config/typed.hpp"

#include <algorithm>
#include <charconv>

namespace weft::config {
namespace {

using nlohmann::json;

// --- tolerant JSON access ---------------------------------------------------------

const json* Field(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& Obj(const json& j, std::string_view key) {
  static const json kEmpty = json::object();
  const json* f = Field(j, key);
  return f && f->is_object() ? *f : kEmpty;
}

const json& Arr(const json& j, std::string_view key) {
  static const json kEmpty = json::array();
  const json* f = Field(j, key);
  return f && f->is_array() ? *f : kEmpty;
}

std::string StringField(const json& j, std::string_view key) {
  const json* f = Field(j, key);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

std::vector<std::string> Strings(const json& j, std::string_view key) {
  std::vector<std::string> out;
  for (const json& v : Arr(j, key)) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
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

std::optional<uint64_t> UintField(const json& j, std::string_view key) {
  const json* f = Field(j, key);
  return f ? AsUint(*f) : std::nullopt;
}

// A port number 1..65535; 0 otherwise.
uint16_t PortField(const json& j, std::string_view key) {
  auto v = UintField(j, key);
  return v && *v <= 65535 ? static_cast<uint16_t>(*v) : 0;
}

Labels LabelField(const json& j, std::string_view key) {
  Labels out;
  for (const auto& [k, v] : Obj(j, key).items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::string Annotation(const json& object, std::string_view key) {
  return StringField(Obj(Obj(object, "metadata"), "annotations"), key);
}

// Fields present: not null, and not an empty list.
bool Present(const json& j, std::string_view key) {
  const json* f = Field(j, key);
  return f && !(f->is_array() && f->empty());
}

NamedPorts NamedPortsOf(const json& j) {
  NamedPorts out;
  if (!j.is_object()) return out;
  for (const auto& [name, value] : j.items()) {
    if (auto v = AsUint(value); v && *v > 0 && *v <= 65535) out[name] = static_cast<uint16_t>(*v);
  }
  return out;
}

uint32_t Weight(const json& spec) {
  auto w = UintField(spec, "weight");
  return w ? static_cast<uint32_t>(std::min<uint64_t>(*w, UINT32_MAX)) : 1;
}

// spec.selector.matchLabels; an empty one selects every workload of the
// namespace, like no selector (nullopt).
std::optional<Labels> Selector(const json& spec) {
  const json* sel = Field(spec, "selector");
  if (!sel || !sel->is_object()) return std::nullopt;
  Labels labels = LabelField(*sel, "matchLabels");
  if (labels.empty()) return std::nullopt;
  return labels;
}

// "a, b" written as [a, b], only if every key is in `allowed` (nulls ignored).
bool OnlyKeys(const json& j, std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) return false;
  for (const auto& [k, v] : j.items()) {
    if (v.is_null()) continue;
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) return false;
  }
  return true;
}

// A kind's typed view with its names from the key (the store's key is authoritative).
template <typename T>
T Named(const Resource& r) {
  T t;
  t.ns = r.key.ns;
  t.name = r.key.name;
  return t;
}

const json& Spec(const Resource& r) { return Obj(r.object, "spec"); }

// --- v1 Service -------------------------------------------------------------------

Service ServiceOf(const Resource& r) {
  auto svc = Named<Service>(r);
  const json& spec = Spec(r);
  std::vector<std::string> ips = Strings(spec, "clusterIPs");
  if (ips.empty()) ips.push_back(StringField(spec, "clusterIP"));
  for (const auto& text : ips) {
    // "None" (headless) and "" give no VIP.
    if (auto ip = IpAddr::Parse(text)) svc.vips.push_back(*ip);
  }
  for (const json& p : Arr(spec, "ports")) {
    ServicePort port;
    port.name = StringField(p, "name");
    port.port = PortField(p, "port");
    if (port.port == 0) continue;
    if (const json* t = Field(p, "targetPort")) {
      if (t->is_string() && !ParseUint(t->get_ref<const std::string&>())) {
        port.target.name = t->get<std::string>();
      } else {
        auto v = AsUint(*t);
        port.target.number = v && *v <= 65535 ? static_cast<uint16_t>(*v) : 0;
      }
    }
    if (port.target.name.empty() && port.target.number == 0) port.target.number = port.port;
    port.protocol = StringField(p, "protocol") == "UDP" ? Protocol::kUdp : Protocol::kTcp;
    port.app_protocol = StringField(p, "appProtocol");
    svc.ports.push_back(std::move(port));
  }
  svc.selector = LabelField(spec, "selector");
  if (StringField(spec, "sessionAffinity") == "ClientIP" || Annotation(r.object, kAlgorithmAnnotation) == "maglev") {
    svc.algorithm = LbAlgorithm::kMaglev;
  }
  if (auto size = ParseUint(Annotation(r.object, kMaglevSizeAnnotation)); size && *size <= UINT32_MAX) {
    svc.maglev_table_size = static_cast<uint32_t>(*size);
  }
  svc.steer_to_proxy = Annotation(r.object, kSteerAnnotation) == "true";
  return svc;
}

// --- networking.istio.io ----------------------------------------------------------

WorkloadEntry WorkloadEntryOf(const Resource& r) {
  auto w = Named<WorkloadEntry>(r);
  const json& spec = Spec(r);
  if (auto ip = IpAddr::Parse(StringField(spec, "address"))) w.addresses.push_back(*ip);
  w.labels = LabelField(spec, "labels");
  if (const json* ports = Field(spec, "ports")) w.ports = NamedPortsOf(*ports);
  w.weight = Weight(spec);
  w.service_account = StringField(spec, "serviceAccount");
  w.network = StringField(spec, "network");
  w.locality = StringField(spec, "locality");
  w.node = Annotation(r.object, kNodeAnnotation);
  return w;
}

ServiceEntry ServiceEntryOf(const Resource& r) {
  auto se = Named<ServiceEntry>(r);
  const json& spec = Spec(r);
  for (const auto& h : Strings(spec, "hosts")) {
    if (!h.empty()) se.hosts.push_back(h);
  }
  std::sort(se.hosts.begin(), se.hosts.end());
  se.hosts.erase(std::unique(se.hosts.begin(), se.hosts.end()), se.hosts.end());
  for (const auto& a : Strings(spec, "addresses")) {
    if (auto ip = IpAddr::Parse(a)) se.addresses.push_back(*ip);  // CIDRs: no VIP
  }
  for (const json& p : Arr(spec, "ports")) {
    ServiceEntry::Port port;
    port.name = StringField(p, "name");
    port.number = PortField(p, "number");
    if (port.number == 0) continue;
    port.target_port = PortField(p, "targetPort");
    port.protocol = StringField(p, "protocol");
    se.ports.push_back(std::move(port));
  }
  std::string resolution = StringField(spec, "resolution");
  if (resolution == "STATIC") se.resolution = ServiceEntry::Resolution::kStatic;
  else if (resolution == "DNS") se.resolution = ServiceEntry::Resolution::kDns;
  else if (resolution == "DNS_ROUND_ROBIN") se.resolution = ServiceEntry::Resolution::kDnsRoundRobin;
  for (const json& e : Arr(spec, "endpoints")) {
    auto addr = IpAddr::Parse(StringField(e, "address"));
    if (!addr) continue;  // DNS names and unix sockets are not L4 backends
    ServiceEntry::Endpoint ep;
    ep.address = *addr;
    ep.labels = LabelField(e, "labels");
    if (const json* ports = Field(e, "ports")) ep.ports = NamedPortsOf(*ports);
    ep.weight = Weight(e);
    ep.service_account = StringField(e, "serviceAccount");
    se.endpoints.push_back(std::move(ep));
  }
  se.workload_selector = LabelField(Obj(spec, "workloadSelector"), "labels");
  return se;
}

TrafficPolicy TrafficPolicyOf(const json& p) {
  TrafficPolicy out;
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

DestinationRule DestinationRuleOf(const Resource& r) {
  auto dr = Named<DestinationRule>(r);
  const json& spec = Spec(r);
  dr.host = ResolveHost(StringField(spec, "host"), dr.ns);
  for (const json& s : Arr(spec, "subsets")) {
    std::string name = StringField(s, "name");
    if (!name.empty()) dr.subsets.emplace(name, LabelField(s, "labels"));
  }
  const json& policy = Obj(spec, "trafficPolicy");
  dr.policy = TrafficPolicyOf(policy);
  for (const json& pl : Arr(policy, "portLevelSettings")) {
    if (auto number = UintField(Obj(pl, "port"), "number")) {
      dr.port_policies[static_cast<uint32_t>(*number)] = TrafficPolicyOf(pl);
    }
  }
  return dr;
}

VirtualService::Rule RuleOf(const json& rule, const std::string& ns) {
  VirtualService::Rule out;
  // "name" labels the rule for humans; everything else but "route" changes behaviour.
  out.other = !OnlyKeys(rule, {"name", "route"});
  const json* route = Field(rule, "route");
  out.has_route = route && route->is_array();
  if (!out.has_route) return out;
  for (const json& rd : *route) {
    VirtualService::RouteDestination d;
    d.other = !OnlyKeys(rd, {"destination", "weight"});
    d.weight = UintField(rd, "weight");
    if (const json* dest = Field(rd, "destination")) {
      VirtualService::Destination to;
      to.other = !OnlyKeys(*dest, {"host", "subset", "port"});
      to.host = ResolveHost(StringField(*dest, "host"), ns);
      if (const json* s = Field(*dest, "subset"); s && s->is_string()) to.subset = s->get<std::string>();
      if (const json* p = Field(*dest, "port")) to.port = UintField(*p, "number");
      d.destination = std::move(to);
    }
    out.route.push_back(std::move(d));
  }
  return out;
}

VirtualService VirtualServiceOf(const Resource& r) {
  auto vs = Named<VirtualService>(r);
  const json& spec = Spec(r);
  // Only a VirtualService bound to the mesh (no gateways, or "mesh" among them)
  // routes service traffic; gateway-only ones belong to the ingress.
  bool mesh = true;
  if (const json* gws = Field(spec, "gateways"); gws && gws->is_array() && !gws->empty()) {
    mesh = std::any_of(gws->begin(), gws->end(), [](const json& g) { return g.is_string() && g == "mesh"; });
  }
  if (mesh) {
    for (const auto& h : Strings(spec, "hosts")) {
      if (!h.empty()) vs.hosts.push_back(ResolveHost(h, vs.ns));
    }
  }
  vs.delegate = Field(spec, "delegate") != nullptr;
  for (const json& rule : Arr(spec, "http")) vs.http.push_back(RuleOf(rule, vs.ns));
  for (const json& rule : Arr(spec, "tcp")) vs.tcp.push_back(RuleOf(rule, vs.ns));
  for (const json& rule : Arr(spec, "tls")) vs.tls.push_back(RuleOf(rule, vs.ns));
  return vs;
}

// --- security.istio.io ----------------------------------------------------------

MtlsMode ModeOf(const json& mtls) {
  std::string mode = StringField(mtls, "mode");
  if (mode == "STRICT") return MtlsMode::kStrict;
  if (mode == "PERMISSIVE") return MtlsMode::kPermissive;
  if (mode == "DISABLE") return MtlsMode::kDisable;
  return MtlsMode::kUnset;
}

PeerAuthentication PeerAuthenticationOf(const Resource& r) {
  auto pa = Named<PeerAuthentication>(r);
  const json& spec = Spec(r);
  pa.selector = Selector(spec);
  pa.mode = ModeOf(Obj(spec, "mtls"));
  if (const json* ports = Field(spec, "portLevelMtls"); ports && ports->is_object() && pa.selector) {
    for (const auto& [port, mtls] : ports->items()) {
      if (auto n = ParseUint(port); n && *n <= 65535) pa.port_modes[static_cast<uint32_t>(*n)] = ModeOf(mtls);
    }
  }
  return pa;
}

using AP = AuthorizationPolicy;

std::vector<uint16_t> Ports(const std::vector<std::string>& in) {
  std::vector<uint16_t> out;
  for (const auto& s : in) {
    if (auto v = ParseUint(s); v && *v >= 1 && *v <= 65535) out.push_back(static_cast<uint16_t>(*v));
  }
  return out;
}

std::vector<IpPrefix> Cidrs(const std::vector<std::string>& in) {
  std::vector<IpPrefix> out;
  for (const auto& s : in) {
    if (auto p = ParseIpOrCidr(s)) out.push_back(*p);
  }
  return out;
}

// Istio: "<sa>" names an account of the policy's namespace, "<ns>/<sa>" any.
std::vector<std::string> ServiceAccounts(std::vector<std::string> values, const std::string& policy_ns) {
  for (auto& v : values) {
    if (v.find('/') == std::string::npos) v = policy_ns + "/" + v;
  }
  return values;
}

AP::Source SourceOf(const json& src, const std::string& policy_ns) {
  AP::Source s;
  s.principals = Strings(src, "principals");
  s.not_principals = Strings(src, "notPrincipals");
  s.namespaces = Strings(src, "namespaces");
  s.not_namespaces = Strings(src, "notNamespaces");
  s.service_accounts = ServiceAccounts(Strings(src, "serviceAccounts"), policy_ns);
  s.not_service_accounts = ServiceAccounts(Strings(src, "notServiceAccounts"), policy_ns);
  s.ip_blocks = Cidrs(Strings(src, "ipBlocks"));
  s.not_ip_blocks = Cidrs(Strings(src, "notIpBlocks"));
  for (const char* k : {"requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"}) {
    s.l7 |= Present(src, k);
  }
  return s;
}

AP::Operation OperationOf(const json& op) {
  AP::Operation o;
  o.ports = Ports(Strings(op, "ports"));
  o.not_ports = Ports(Strings(op, "notPorts"));
  for (const char* k : {"methods", "notMethods", "paths", "notPaths", "hosts", "notHosts"}) {
    o.l7 |= Present(op, k);
  }
  return o;
}

AP::Condition ConditionOf(const json& c, const std::string& policy_ns) {
  using K = AP::Condition::Key;
  static const std::pair<std::string_view, K> kKeys[] = {
      {"source.ip", K::kSourceIp},
      {"source.namespace", K::kSourceNamespace},
      {"source.principal", K::kSourcePrincipal},
      {"source.serviceAccount", K::kSourceServiceAccount},
      {"source.trustDomain", K::kSourceTrustDomain},
      {"destination.ip", K::kDestinationIp},
      {"destination.port", K::kDestinationPort}};
  AP::Condition out;
  out.raw_key = StringField(c, "key");
  out.values = Strings(c, "values");
  out.not_values = Strings(c, "notValues");
  out.key = K::kL7;
  for (const auto& [name, key] : kKeys) {
    if (out.raw_key == name) out.key = key;
  }
  if (out.key == K::kSourceIp || out.key == K::kDestinationIp) {
    out.ip_values = Cidrs(out.values);
    out.ip_not_values = Cidrs(out.not_values);
  }
  if (out.key == K::kSourceServiceAccount) {
    out.values = ServiceAccounts(std::move(out.values), policy_ns);
    out.not_values = ServiceAccounts(std::move(out.not_values), policy_ns);
  }
  if (out.key == K::kDestinationPort) {
    out.port_values = Ports(out.values);
    out.port_not_values = Ports(out.not_values);
  }
  return out;
}

// AuthorizationPolicy::needs_l7 (model.hpp).
bool NeedsL7(const json& spec, AP::Action action) {
  if (action == AP::Action::kAudit) return false;  // audit-only: nothing to enforce
  if (action == AP::Action::kCustom) return true;  // external authorization sees the request
  static const char* const kL7Operation[] = {"methods", "notMethods", "paths", "notPaths", "hosts", "notHosts"};
  static const char* const kL7Source[] = {"requestPrincipals", "notRequestPrincipals", "remoteIpBlocks",
                                          "notRemoteIpBlocks"};
  static const char* const kL4Conditions[] = {"source.ip",          "source.namespace",      "source.principal",
                                              "source.serviceAccount", "source.trustDomain", "destination.ip",
                                              "destination.port",   "connection.sni"};
  bool l7 = false;
  for (const json& rule : Arr(spec, "rules")) {
    for (const json& to : Arr(rule, "to")) {
      const json& op = Obj(to, "operation");
      for (const char* k : kL7Operation) l7 |= Field(op, k) != nullptr;
    }
    for (const json& from : Arr(rule, "from")) {
      const json& src = Obj(from, "source");
      for (const char* k : kL7Source) l7 |= Field(src, k) != nullptr;
    }
    for (const json& when : Arr(rule, "when")) {
      std::string key = StringField(when, "key");
      l7 |= std::none_of(std::begin(kL4Conditions), std::end(kL4Conditions), [&](const char* k) { return key == k; });
    }
  }
  return l7;
}

AuthorizationPolicy AuthorizationPolicyOf(const json& object, std::string ns, std::string name) {
  AP p;
  p.ns = std::move(ns);
  p.name = std::move(name);
  const json& spec = Obj(object, "spec");
  p.selector = Selector(spec);
  p.targeted = Field(spec, "targetRef") != nullptr || Present(spec, "targetRefs");
  std::string action = StringField(spec, "action");
  if (action == "DENY") p.action = AP::Action::kDeny;
  else if (action == "AUDIT") p.action = AP::Action::kAudit;
  else if (action == "CUSTOM") p.action = AP::Action::kCustom;
  else p.action = AP::Action::kAllow;
  for (const json& r : Arr(spec, "rules")) {
    AP::Rule rule;
    for (const json& f : Arr(r, "from")) rule.from.push_back(SourceOf(Obj(f, "source"), p.ns));
    for (const json& t : Arr(r, "to")) rule.to.push_back(OperationOf(Obj(t, "operation")));
    for (const json& w : Arr(r, "when")) rule.when.push_back(ConditionOf(w, p.ns));
    p.rules.push_back(std::move(rule));
  }
  p.needs_l7 = NeedsL7(spec, p.action);
  return p;
}

}  // namespace

Typed TypedView(const Resource& r) {
  const std::string& kind = r.key.kind;
  if (kind == "Service") {
    if (!r.api_version.empty() && r.api_version != "v1") return {};  // another group's "Service"
    return ServiceOf(r);
  }
  if (kind == "WorkloadEntry") return WorkloadEntryOf(r);
  if (kind == "ServiceEntry") return ServiceEntryOf(r);
  if (kind == "DestinationRule") return DestinationRuleOf(r);
  if (kind == "VirtualService") return VirtualServiceOf(r);
  if (kind == "PeerAuthentication") return PeerAuthenticationOf(r);
  if (kind == "AuthorizationPolicy") return AuthorizationPolicyOf(r.object, r.key.ns, r.key.name);
  return {};
}

AuthorizationPolicy TypedAuthorizationPolicy(const nlohmann::json& object) {
  const json& meta = Obj(object, "metadata");
  return AuthorizationPolicyOf(object, StringField(meta, "namespace"), StringField(meta, "name"));
}

}  // namespace weft::config
