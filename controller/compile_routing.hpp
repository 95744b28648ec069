// The L4-expressible part of Istio routing: which VirtualService rules the
// kernel can carry out by choosing backends at connect time, and how weighted
// destinations become backend weights.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/compile_model.hpp"

namespace weft::controller::compile {

struct RouteDestination {
  std::optional<std::string> subset;  // nullopt: every endpoint of the service
  uint64_t weight = 0;                // share, > 0
  bool operator==(const RouteDestination&) const = default;
};

// How connections to one service port are routed.
//  - needs_l7: the rules need the L7 proxy (backends stay the full endpoint set);
//  - else destinations empty: no VirtualService applies (all endpoints);
//  - else: the union of the destinations' endpoints, each destination getting its share.
struct RoutePlan {
  bool needs_l7 = false;
  std::vector<RouteDestination> destinations;
  bool operator==(const RoutePlan&) const = default;
};

// vs (may be null) applies to hostname; port is the service port being compiled.
// A port gets the rules of its protocol (http for HTTP ports, tcp for opaque TCP,
// tls + tcp for TLS, both http and tcp when the protocol is unknown/sniffed; none
// for UDP). L4-expressible: exactly one rule, no match, no fault/retries/timeout/
// mirror/rewrite/redirect/header operations, every destination this same host
// (optional subset, optional port equal to this port).
RoutePlan PlanRoutes(const config::VirtualService* vs, const std::string& hostname, const PortModel& port);

struct WeightedEndpoint {
  IpAddr address;
  uint32_t port = 0;
  uint64_t weight = 0;   // > 0
  std::string workload;  // "ns/name" or ""
};

// Blends groups (share, endpoints) into one backend list: each group gets
// share/Σshares of the total, split among its endpoints by their own weights;
// an endpoint in several groups gets the sum. Groups without endpoints drop out
// (their share goes to the others). Weights are exact where 32 bits allow
// (least common multiple of the groups' totals, then divided by the gcd), else
// rounded (never below 1). Sorted by (address, port).
struct BlendedBackend {
  IpAddr address;
  uint32_t port = 0;
  uint32_t weight = 0;
  std::string workload;
};
std::vector<BlendedBackend> Blend(const std::vector<std::pair<uint64_t, std::vector<WeightedEndpoint>>>& groups);

}  // namespace weft::controller::compile
