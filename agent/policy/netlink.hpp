// A small rtnetlink helper (no libnl): the route to a workload's address in
// the agent's network namespace, the interface behind it, and how many tc
// filters an interface's clsact hook holds. One request, one socket, every
// call; errors name the request and the object.
#pragma once

#include <cstdint>
#include <string>

#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::policy {

struct Interface {
  uint32_t ifindex = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "veth", ... ("" for none)
};

// RTM_GETROUTE for `addr`: the output interface of a directly connected
// route (a route through a gateway is an error: a workload's host-side veth
// is always on-link).
Result<Interface> RouteToInterface(const IpAddr& addr);

// RTM_GETLINK by index.
Result<Interface> InterfaceByIndex(uint32_t ifindex);

// Number of tc filters on the clsact ingress (egress=false) or egress hook of
// `ifindex` (RTM_GETTFILTER dump); 0 if there is no clsact qdisc.
Result<int> CountTcFilters(uint32_t ifindex, bool egress);

}  // namespace weft::policy
