#include "controller/compile_model.hpp"

#include <algorithm>
#include <cctype>

namespace weft::controller::compile {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
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

}  // namespace

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

// --- services --------------------------------------------------------------------

namespace {

PortModel Port(std::string name, uint32_t number, uint32_t target_number, std::string target_name, bool udp,
               std::string_view app_protocol) {
  PortModel port{std::move(name), number, target_number, std::move(target_name), udp, ""};
  port.app_protocol = SelectAppProtocol(app_protocol, port.name, udp);
  return port;
}

}  // namespace

ServiceModel FromService(config::Service svc) {
  ServiceModel m;
  m.hostname = svc.hostname();
  m.ns = std::move(svc.ns);
  m.name = std::move(svc.name);
  m.vips = std::move(svc.vips);
  for (auto& p : svc.ports) {
    bool udp = p.protocol == config::Protocol::kUdp;
    m.ports.push_back(Port(std::move(p.name), p.port, p.target.number, std::move(p.target.name), udp, p.app_protocol));
  }
  m.selector = std::move(svc.selector);
  m.maglev = svc.algorithm == config::LbAlgorithm::kMaglev;
  m.maglev_table_size = svc.maglev_table_size;
  m.steer_to_proxy = svc.steer_to_proxy;
  return m;
}

std::vector<ServiceModel> FromServiceEntry(const config::ServiceEntry& se) {
  std::vector<ServiceModel> out;
  if (se.resolution != config::ServiceEntry::Resolution::kStatic) return out;
  ServiceModel base;
  base.ns = se.ns;
  base.from_service_entry = true;
  base.vips = se.addresses;
  for (const auto& p : se.ports) {
    uint32_t target = p.target_port != 0 ? p.target_port : p.number;
    base.ports.push_back(Port(p.name, p.number, target, "", p.protocol == "UDP", Lower(p.protocol)));
  }
  base.endpoints = se.endpoints;
  base.selector = se.workload_selector;
  for (const auto& host : se.hosts) {
    ServiceModel svc = base;
    svc.name = se.hosts.size() == 1 ? se.name : se.name + "." + host;
    svc.hostname = host;
    out.push_back(std::move(svc));
  }
  return out;
}

}  // namespace weft::controller::compile
