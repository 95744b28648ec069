#include "agent/policy/placement.hpp"

#include <algorithm>
#include <set>

namespace weft::policy {

PlacementResult PlaceEndpoints(const PolicyDesired& desired, const RouteLookup& route,
                               const std::map<uint32_t, weft_endpoint>& live,
                               const std::map<std::string, Placement>& previous) {
  PlacementResult out;
  std::map<uint32_t, Placement> by_if;       // ifindex -> the endpoint's placement
  std::map<uint32_t, std::string> owner;     // ifindex -> the workload placed there first
  std::map<uint32_t, std::string> ifname;
  std::map<std::string, uint32_t> iface_of;  // workload -> ifindex
  for (const auto& [name, e] : desired.endpoints) {
    if (e.addresses.empty()) continue;  // nothing to route to: never placed
    auto iface = route(e.addresses.front());
    if (!iface.ok()) {
      out.unplaced[name] = {true, iface.status().message() + "; not enforced until its interface appears"};
      continue;
    }
    if (iface->kind != "veth") {
      out.unplaced[name] = {true, "route to " + e.addresses.front().ToString() + " leaves through " + iface->name +
                                      " (kind '" + iface->kind + "'), not a veth: not attaching"};
      continue;
    }
    std::vector<IpAddr> own{e.addresses.front()};
    for (size_t i = 1; i < e.addresses.size(); ++i) {
      auto r = route(e.addresses[i]);
      if (r.ok() && r->ifindex == iface->ifindex) {
        own.push_back(e.addresses[i]);
        continue;
      }
      const std::string a = e.addresses[i].ToString();
      out.notes["route " + name + " " + a] = "workload " + name + ": address " + a +
                                             " is not routed to its interface " + iface->name +
                                             ": not one of its source addresses";
    }
    auto [it, first] = owner.emplace(iface->ifindex, name);
    if (!first && !SameEndpoint(desired.endpoints.at(it->second), e)) {
      out.unplaced[name] = {false, "interface " + iface->name + " already serves workload " + it->second +
                                       " with another identity or policy: skipped"};
      continue;
    }
    Placement& p = by_if[iface->ifindex];
    p.ifindex = iface->ifindex;
    for (const IpAddr& a : own)
      if (std::find(p.addresses.begin(), p.addresses.end(), a) == p.addresses.end()) p.addresses.push_back(a);
    ifname[iface->ifindex] = iface->name;
    iface_of[name] = iface->ifindex;
  }
  for (auto& [ifx, p] : by_if) {
    if (p.addresses.size() <= WEFT_EP_MAX_ADDRS) continue;
    std::string dropped;
    for (size_t i = WEFT_EP_MAX_ADDRS; i < p.addresses.size(); ++i) dropped += " " + p.addresses[i].ToString();
    out.notes["cap " + owner[ifx]] = "workload " + owner[ifx] + ": interface " + ifname[ifx] + " has " +
                                     std::to_string(p.addresses.size()) + " addresses, an endpoint holds " +
                                     std::to_string(WEFT_EP_MAX_ADDRS) + ": not allowed as sources:" + dropped;
    p.addresses.resize(WEFT_EP_MAX_ADDRS);
  }
  // Ids: an id already used by an endpoint in the maps for another interface
  // is not reused in the same apply (its stale entries are deleted only at the end).
  std::set<uint32_t> used_ids, claimed;
  for (const auto& [ifx, ep] : live) used_ids.insert(ep.ep_id);
  for (auto& [ifx, p] : by_if)
    if (auto it = live.find(ifx); it != live.end() && claimed.insert(it->second.ep_id).second) p.ep_id = it->second.ep_id;
  for (auto& [ifx, p] : by_if) {
    if (p.ep_id != 0) continue;
    if (auto it = previous.find(owner[ifx]); it != previous.end() && it->second.ep_id != 0 &&
                                             !claimed.count(it->second.ep_id) && !used_ids.count(it->second.ep_id))
      p.ep_id = it->second.ep_id;
    uint32_t id = 1;
    while (p.ep_id == 0) {
      if (!claimed.count(id) && !used_ids.count(id)) p.ep_id = id;
      ++id;
    }
    claimed.insert(p.ep_id);
  }
  for (const auto& [name, ifx] : iface_of) {
    out.placement[name] = by_if[ifx];
    out.endpoints.push_back(EndpointStatus{name, ifx, ifname[ifx], by_if[ifx].ep_id});
  }
  return out;
}

std::set<IpAddr> UnplacedAddresses(const PolicyDesired& desired, const PlacementResult& placed) {
  std::set<IpAddr> out, held;
  for (const auto& [name, p] : placed.placement) held.insert(p.addresses.begin(), p.addresses.end());
  for (const auto& [name, u] : placed.unplaced) {
    if (!u.no_interface) continue;
    auto it = desired.endpoints.find(name);
    if (it == desired.endpoints.end()) continue;
    for (const IpAddr& a : it->second.addresses)
      if (!held.count(a)) out.insert(a);
  }
  return out;
}

}  // namespace weft::policy
