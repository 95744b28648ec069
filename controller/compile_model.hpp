// The compiler's own vocabulary on top of the typed model (config/model.hpp):
// Istio's protocol selection, and the inputs of one compiled service (a v1
// Service, or one host of a STATIC ServiceEntry) in one shape. Pure functions
// of typed objects; the cross-object work (selection, routing, policy) lives
// in compiler.cc and compile_routing.*.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.hpp"

namespace weft::controller::compile {

using config::HostMatches;
using config::IsWildcard;
using config::Labels;
using config::LabelsMatch;
using config::ResolveHost;

// --- protocol selection (Istio's, pkg/config/protocol + kube ConvertProtocol) ---

enum class ProtocolClass { kHttp, kTls, kTcp, kUnknown, kUdp };
// app_protocol for a port: appProtocol if set, else the port name's prefix
// before '-' ("grpc-web..." as a whole), lower-cased and canonical; "" when
// unknown (plain TCP, sniffed by Istio). A UDP port is "udp".
std::string SelectAppProtocol(std::string_view app_protocol, std::string_view port_name, bool udp);
ProtocolClass ClassOf(std::string_view app_protocol);

// --- one compiled service's inputs ----------------------------------------------

struct PortModel {
  std::string name;
  uint32_t port = 0;
  uint32_t target_number = 0;  // used when target_name is empty
  std::string target_name;     // Service: resolved through the workload's named ports
  bool udp = false;
  std::string app_protocol;    // after SelectAppProtocol
};

struct ServiceModel {
  std::string ns;
  std::string name;      // output key is ns/name
  std::string hostname;
  std::vector<IpAddr> vips;
  std::vector<PortModel> ports;
  Labels selector;       // empty selects no workload
  bool from_service_entry = false;  // target ports resolve by the service port's name
  std::vector<config::ServiceEntry::Endpoint> endpoints;
  bool maglev = false;   // sessionAffinity ClientIP or weft.io/lb-algorithm: maglev
  uint32_t maglev_table_size = 0;
  bool steer_to_proxy = false;
  std::string key() const { return ns + "/" + name; }
};

ServiceModel FromService(config::Service svc);
// One service per host of a STATIC ServiceEntry (name = the entry's name, or
// "<name>.<host>" when it has several hosts); none for other resolutions.
std::vector<ServiceModel> FromServiceEntry(const config::ServiceEntry& se);

}  // namespace weft::controller::compile
