// The compiler's typed view of the resources it reads: each validated
// Kubernetes/Istio object (config::Resource::object) reduced to the fields
// that matter for per-node L4 config. Pure functions of one object; the
// cross-object work (selection, routing, policy) lives in compiler.cc and
// compile_routing.*.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "weft/ip.hpp"

namespace weft::controller::compile {

using Labels = std::map<std::string, std::string>;

inline constexpr std::string_view kServiceDomain = "svc.cluster.local";
inline constexpr std::string_view kNodeAnnotation = "weft.io/node";
inline constexpr std::string_view kAlgorithmAnnotation = "weft.io/lb-algorithm";
inline constexpr std::string_view kMaglevSizeAnnotation = "weft.io/maglev-table-size";

// --- names and hosts -------------------------------------------------------

// Istio's short-name resolution: "reviews" in namespace ns is
// reviews.ns.svc.cluster.local; a name with a dot (or a wildcard "*") is taken as is.
std::string ResolveHost(std::string_view host, std::string_view ns);
// Exact match, or a wildcard pattern "*" / "*.suffix" covering host.
bool HostMatches(std::string_view pattern, std::string_view host);
bool IsWildcard(std::string_view host);
// labels ⊇ selector (an empty selector matches everything: callers decide
// whether "empty" means all or nothing).
bool LabelsMatch(const Labels& selector, const Labels& labels);

// --- protocol selection (Istio's, pkg/config/protocol + kube ConvertProtocol) ---

enum class ProtocolClass { kHttp, kTls, kTcp, kUnknown, kUdp };
// app_protocol for a port: appProtocol if set, else the port name's prefix
// before '-' ("grpc-web..." as a whole), lower-cased and canonical; "" when
// unknown (plain TCP, sniffed by Istio). A UDP port is "udp".
std::string SelectAppProtocol(std::string_view app_protocol, std::string_view port_name, bool udp);
ProtocolClass ClassOf(std::string_view app_protocol);

// --- models -------------------------------------------------------------------

struct PortModel {
  std::string name;
  uint32_t port = 0;
  uint32_t target_number = 0;  // used when target_name is empty
  std::string target_name;     // Service: resolved through the workload's named ports
  bool udp = false;
  std::string app_protocol;    // after SelectAppProtocol
};

// A ServiceEntry endpoint: an address that is not a mesh workload object.
struct InlineEndpoint {
  IpAddr address;
  Labels labels;
  std::map<std::string, uint32_t> ports;
  uint32_t weight = 1;
  std::string service_account;
};

struct ServiceModel {
  std::string ns;
  std::string name;      // output key is ns/name
  std::string hostname;
  std::vector<IpAddr> vips;
  std::vector<PortModel> ports;
  Labels selector;       // empty selects no workload
  bool from_service_entry = false;  // target ports resolve by the service port's name
  std::vector<InlineEndpoint> endpoints;
  bool maglev = false;   // sessionAffinity ClientIP or weft.io/lb-algorithm: maglev
  uint32_t maglev_table_size = 0;
  std::string key() const { return ns + "/" + name; }
};

struct WorkloadModel {
  std::string ns;
  std::string name;
  std::vector<IpAddr> addresses;
  Labels labels;
  std::map<std::string, uint32_t> ports;
  uint32_t weight = 1;
  std::string service_account;  // "" = default
  std::string node;             // metadata.annotations[weft.io/node]
  std::string key() const { return ns + "/" + name; }
};

// The L4-relevant part of a DestinationRule traffic policy; unset fields
// inherit (port level from the top level).
struct TrafficPolicyModel {
  std::optional<bool> consistent_hash;  // loadBalancer set: consistentHash or not
  bool l7_hash = false;                 // hash on an HTTP header/cookie/query parameter
  std::optional<bool> mtls;             // tls set: ISTIO_MUTUAL/MUTUAL or not
};

struct DestinationRuleModel {
  std::string ns;
  std::string name;
  std::string host;  // resolved
  std::map<std::string, Labels> subsets;
  TrafficPolicyModel policy;
  std::map<uint32_t, TrafficPolicyModel> port_policies;
  // Effective policy for a service port (port level over top level).
  TrafficPolicyModel For(uint32_t port) const;
};

struct VirtualServiceModel {
  std::string ns;
  std::string name;
  std::vector<std::string> hosts;  // resolved; empty when it does not apply to the mesh (gateways only)
  nlohmann::json spec;
};

enum class MtlsMode { kUnset, kDisable, kPermissive, kStrict };

struct PeerAuthenticationModel {
  std::string ns;
  std::string name;
  std::optional<Labels> selector;  // nullopt: namespace-wide (mesh-wide in the root namespace)
  MtlsMode mode = MtlsMode::kUnset;
  std::map<uint32_t, MtlsMode> port_modes;
};

struct AuthorizationPolicyModel {
  std::string ns;
  std::string name;
  std::optional<Labels> selector;  // nullopt: namespace-wide (mesh-wide in the root namespace)
  bool needs_l7 = false;           // an HTTP attribute is needed to decide
};

// --- parsing (object = validated canonical JSON) -------------------------------

// nullopt when the object is not a v1 Service we model.
std::optional<ServiceModel> ParseService(const nlohmann::json& object);
// One service per host of a STATIC ServiceEntry (name = the entry's name, or
// "<name>.<host>" when it has several hosts); none for other resolutions.
std::vector<ServiceModel> ParseServiceEntry(const nlohmann::json& object);
std::optional<WorkloadModel> ParseWorkloadEntry(const nlohmann::json& object);
std::optional<DestinationRuleModel> ParseDestinationRule(const nlohmann::json& object);
std::optional<VirtualServiceModel> ParseVirtualService(const nlohmann::json& object);
std::optional<PeerAuthenticationModel> ParsePeerAuthentication(const nlohmann::json& object);
std::optional<AuthorizationPolicyModel> ParseAuthorizationPolicy(const nlohmann::json& object);

// --- tolerant JSON access (the input is validated; these never throw) --------

const nlohmann::json* Field(const nlohmann::json& j, std::string_view key);
std::string StringField(const nlohmann::json& j, std::string_view key);
std::optional<uint64_t> UintField(const nlohmann::json& j, std::string_view key);
Labels LabelField(const nlohmann::json& j, std::string_view key);

}  // namespace weft::controller::compile
