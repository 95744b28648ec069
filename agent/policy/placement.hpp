// Placement and endpoint ids: which host-side interface serves each local
// workload, which of its addresses are its own sources, and the small stable
// endpoint id of each interface. Pure: the route lookup is a parameter
// (netlink's RouteToInterface in the agent, a table in tests).
//
// A workload's interface is the route to its first address, which must be an
// on-link veth (a gateway route or another kind is refused: we never attach
// to an uplink). Its source addresses are those of its addresses that the node
// routes to that interface (so no WorkloadEntry can make another pod's address
// its own source), at most WEFT_EP_MAX_ADDRS per interface. Workloads on one
// interface are one endpoint when they are the same endpoint (SameEndpoint: a
// dual-stack pod as two WorkloadEntries), with the union of their addresses;
// otherwise the first by name keeps it and the other is reported.
//
// Endpoint ids (per interface): the id of the interface's entry in the maps,
// else the workload's id of the last placement, else the smallest id that is
// neither in the maps nor claimed in this placement (an id the maps still hold
// for another interface is not reused until its entries are gone).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/policy/desired.hpp"
#include "agent/policy/netlink.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::policy {

using RouteLookup = std::function<Result<Interface>(const IpAddr&)>;

struct EndpointStatus {
  std::string workload;
  uint32_t ifindex = 0;
  std::string ifname;
  uint32_t ep_id = 0;
};

struct Unplaced {
  bool no_interface = false;  // false: its interface serves another workload
  std::string why;            // as logged (once while it lasts)
};

struct PlacementResult {
  std::map<std::string, Placement> placement;  // by workload (placed ones only)
  std::map<std::string, Unplaced> unplaced;    // by workload
  std::map<std::string, std::string> notes;    // other conditions: key -> message
  std::vector<EndpointStatus> endpoints;       // placed workloads, by name
};

// `live`: the endpoints the maps hold (host-side ifindex -> entry);
// `previous`: the last placement (by workload).
PlacementResult PlaceEndpoints(const PolicyDesired& desired, const RouteLookup& route,
                               const std::map<uint32_t, weft_endpoint>& live,
                               const std::map<std::string, Placement>& previous);

// The addresses of workloads that have no interface here, less those a placed
// endpoint holds: a backend at one of them is not served by this node.
std::set<IpAddr> UnplacedAddresses(const PolicyDesired& desired, const PlacementResult& placed);

}  // namespace weft::policy
