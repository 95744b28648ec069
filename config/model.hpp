// The typed model of the mesh: one struct per kind Weft acts on, with the
// defaults Kubernetes and Istio give its fields. config::TypedView
// (typed.hpp) builds it from a validated Resource's canonical JSON (the
// store's durable format), once per resource; the compiler
// (controller/compiler*), the AuthorizationPolicy library (authz/) and the
// agent's file mode (which runs that compiler) read these, never the JSON.
//
// Kinds that Weft validates but does not act on (Namespace, ServiceAccount,
// Deployment, Gateway, RequestAuthentication) have no typed view.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/ip.hpp"

namespace weft::config {

using Labels = std::map<std::string, std::string>;
using NamedPorts = std::map<std::string, uint16_t>;  // a workload's named ports (resolve a string targetPort)

inline constexpr std::string_view kServiceDomain = "svc.cluster.local";
inline constexpr std::string_view kNodeAnnotation = "weft.io/node";
inline constexpr std::string_view kAlgorithmAnnotation = "weft.io/lb-algorithm";
inline constexpr std::string_view kMaglevSizeAnnotation = "weft.io/maglev-table-size";
inline constexpr std::string_view kSteerAnnotation = "weft.io/steer-to-proxy";

// --- names, hosts, labels, addresses ------------------------------------------

// Istio's short-name resolution: "reviews" in namespace ns is
// reviews.ns.svc.cluster.local; a name with a dot (or a wildcard "*") is taken as is.
std::string ResolveHost(std::string_view host, std::string_view ns);
// Exact match, or a wildcard pattern "*" / "*.suffix" covering host.
bool HostMatches(std::string_view pattern, std::string_view host);
bool IsWildcard(std::string_view host);
// labels ⊇ selector. An empty selector matches everything: each kind says
// what an empty selector means (a Service's selects nothing).
bool LabelsMatch(const Labels& selector, const Labels& labels);
// "10.1.2.3" -> 10.1.2.3/32, "10.1.2.3/8" -> 10.0.0.0/8 (host bits cleared).
std::optional<IpPrefix> ParseIpOrCidr(std::string_view text);
IpPrefix CanonicalPrefix(const IpPrefix& p);

enum class Protocol : uint8_t { kTcp, kUdp };
enum class LbAlgorithm : uint8_t { kRandom, kMaglev };

// --- v1 Service ------------------------------------------------------------------

// A Service port's targetPort: a number, or a port name resolved per workload.
// Unset, it is the port's own number (Kubernetes' default).
struct TargetPort {
  uint16_t number = 0;  // set when name is empty
  std::string name;
};

struct ServicePort {
  std::string name;  // may be empty for a single-port Service
  uint16_t port = 0;
  TargetPort target;
  Protocol protocol = Protocol::kTcp;
  std::string app_protocol;  // spec.ports[].appProtocol as written
};

struct Service {
  std::string ns;
  std::string name;
  std::vector<IpAddr> vips;  // spec.clusterIP(s); empty: headless or none given (file mode)
  std::vector<ServicePort> ports;
  Labels selector;  // empty: selects nothing (like a Kubernetes Service without selector)
  // sessionAffinity: ClientIP or weft.io/lb-algorithm: maglev.
  LbAlgorithm algorithm = LbAlgorithm::kRandom;
  uint32_t maglev_table_size = 0;  // weft.io/maglev-table-size; 0: the default size
  bool steer_to_proxy = false;     // weft.io/steer-to-proxy: "true"
  std::string key() const { return ns + "/" + name; }
  std::string hostname() const;  // name.ns.svc.cluster.local
};

// --- networking.istio.io --------------------------------------------------------

// A workload instance: an Istio WorkloadEntry (the lab registers pods as these).
struct WorkloadEntry {
  std::string ns;
  std::string name;
  std::vector<IpAddr> addresses;  // spec.address (file mode and the compiler need an IP)
  Labels labels;
  NamedPorts ports;
  uint32_t weight = 1;          // 0: excluded from load balancing
  std::string service_account;  // "" = "default"
  std::string network;
  std::string locality;
  std::string node;  // metadata.annotations[weft.io/node]: the node it runs on
  std::string key() const { return ns + "/" + name; }
};

struct ServiceEntry {
  enum class Resolution { kNone, kStatic, kDns, kDnsRoundRobin };
  struct Port {
    std::string name;
    uint16_t number = 0;
    uint16_t target_port = 0;  // targetPort as written; 0: the port's number
    std::string protocol;      // as written, upper case ("HTTP", "TCP", "UDP", ...)
  };
  // An endpoint with an IP address (DNS names and unix sockets are not L4 backends).
  struct Endpoint {
    IpAddr address;
    Labels labels;
    NamedPorts ports;  // the endpoint's port per service port name
    uint32_t weight = 1;
    std::string service_account;
  };
  std::string ns;
  std::string name;
  std::vector<std::string> hosts;  // sorted, unique, non-empty
  std::vector<IpAddr> addresses;   // single IPs of spec.addresses (a CIDR gives no VIP)
  std::vector<Port> ports;
  Resolution resolution = Resolution::kNone;
  std::vector<Endpoint> endpoints;
  Labels workload_selector;  // workloadSelector.labels; empty selects no workload
  std::string key() const { return ns + "/" + name; }
};

// The L4-relevant part of a DestinationRule traffic policy; unset fields
// inherit (port level from the top level).
struct TrafficPolicy {
  std::optional<bool> consistent_hash;  // loadBalancer set: consistentHash or not
  bool l7_hash = false;                 // hash on an HTTP header/cookie/query parameter
  std::optional<bool> mtls;             // tls set: ISTIO_MUTUAL/MUTUAL or not
};

struct DestinationRule {
  std::string ns;
  std::string name;
  std::string host;  // resolved against ns; "" when spec.host is missing
  std::map<std::string, Labels> subsets;
  TrafficPolicy policy;
  std::map<uint32_t, TrafficPolicy> port_policies;
  // The effective policy for a service port (port level over top level).
  TrafficPolicy For(uint32_t port) const;
};

// What L4 routing needs of a VirtualService: the rules per protocol, each
// with its weighted destinations, and whether anything else (match, fault,
// retries, headers, ...) is set, which needs the L7 proxy.
struct VirtualService {
  struct Destination {
    std::string host;  // resolved against the VirtualService's namespace
    std::optional<std::string> subset;
    std::optional<uint64_t> port;  // destination.port.number
    bool other = false;            // a field other than host, subset and port
  };
  struct RouteDestination {
    std::optional<Destination> destination;
    std::optional<uint64_t> weight;
    bool other = false;  // a field other than destination and weight (headers)
  };
  struct Rule {
    bool has_route = false;  // `route` is a list
    std::vector<RouteDestination> route;
    bool other = false;  // a field other than name and route
  };
  std::string ns;
  std::string name;
  // Resolved; empty when it does not apply to the mesh (bound to gateways only).
  std::vector<std::string> hosts;
  bool delegate = false;
  std::vector<Rule> http, tcp, tls;
};

// --- security.istio.io ------------------------------------------------------------

enum class MtlsMode { kUnset, kDisable, kPermissive, kStrict };

struct PeerAuthentication {
  std::string ns;
  std::string name;
  std::optional<Labels> selector;  // nullopt: namespace-wide (mesh-wide in the root namespace)
  MtlsMode mode = MtlsMode::kUnset;
  std::map<uint32_t, MtlsMode> port_modes;  // only with a selector (as Istio)
};

// An Istio AuthorizationPolicy. Its semantics at L4 are the authz library's
// (authz/policy.hpp); this is the policy as written, typed: empty lists mean
// "not constrained" (proto semantics).
struct AuthorizationPolicy {
  enum class Action { kAllow, kDeny, kAudit, kCustom };

  // One `from[].source`.
  struct Source {
    std::vector<std::string> principals, not_principals;  // Istio string match: exact, "p*", "*s", "*"
    std::vector<std::string> namespaces, not_namespaces;  // same
    // "<ns>/<sa>": a bare "<sa>" is an account of the policy's namespace
    // (Istio's serviceAccountRegex), resolved here.
    std::vector<std::string> service_accounts, not_service_accounts;
    std::vector<IpPrefix> ip_blocks, not_ip_blocks;  // canonical; single IPs as /32 or /128
    bool l7 = false;  // requestPrincipals / remoteIpBlocks (or their not*) non-empty
  };

  // One `to[].operation`.
  struct Operation {
    std::vector<uint16_t> ports, not_ports;
    bool l7 = false;  // methods / paths / hosts (or their not*) non-empty
  };

  // One `when` condition.
  struct Condition {
    enum class Key {
      kSourceIp,
      kSourceNamespace,
      kSourcePrincipal,
      kSourceServiceAccount,  // values resolved to "<ns>/<sa>" like serviceAccounts
      kSourceTrustDomain,     // Istio string match on the peer's trust domain
      kDestinationIp,
      kDestinationPort,
      kL7
    };
    Key key = Key::kL7;
    std::string raw_key;
    std::vector<std::string> values, not_values;       // as written (service accounts: resolved)
    std::vector<IpPrefix> ip_values, ip_not_values;    // kSourceIp / kDestinationIp
    std::vector<uint16_t> port_values, port_not_values;  // kDestinationPort (unparsable values dropped)
  };

  struct Rule {
    std::vector<Source> from;
    std::vector<Operation> to;
    std::vector<Condition> when;
    bool HasL7() const;
  };

  std::string ns;
  std::string name;
  std::optional<Labels> selector;  // nullopt: every workload of ns (mesh-wide in the root namespace)
  bool targeted = false;           // targetRef/targetRefs: binds to a waypoint/gateway, not a workload
  Action action = Action::kAllow;
  std::vector<Rule> rules;         // empty: ALLOW matches nothing, DENY denies nothing
  // Whether deciding needs an HTTP attribute, as the compiler marks a
  // workload's services needs_l7: CUSTOM; or an L7 field of an operation or
  // source is written (even as an empty list); or a `when` key other than
  // source.ip, source.namespace, source.principal, source.serviceAccount,
  // source.trustDomain, destination.ip, destination.port, connection.sni.
  // AUDIT never does.
  bool needs_l7 = false;
  std::string key() const { return ns + "/" + name; }
};

}  // namespace weft::config
