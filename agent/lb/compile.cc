#include "agent/lb/compile.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <limits>

namespace weft::lb {
namespace {

using config::Workload;

bool Selects(const config::Service& svc, const Workload& w) {
  if (svc.selector.empty() || w.ns != svc.ns) return false;
  return std::all_of(svc.selector.begin(), svc.selector.end(), [&](const auto& kv) {
    auto it = w.labels.find(kv.first);
    return it != w.labels.end() && it->second == kv.second;
  });
}

// The workload's port for a Service port; 0 if it has no port of that name.
uint16_t ResolveTargetPort(const config::ServicePort& port, const Workload& w) {
  if (port.target.name.empty()) return port.target.number;
  auto it = w.ports.find(port.target.name);
  return it == w.ports.end() ? 0 : it->second;
}

// Sorted by (addr, port); the same endpoint listed twice gets both weights.
std::vector<Backend> Endpoints(const config::Service& svc, const config::ServicePort& port, bool v4,
                               const std::vector<const Workload*>& workloads) {
  std::map<std::pair<IpAddr, uint16_t>, uint64_t> weights;
  for (const Workload* w : workloads) {
    uint16_t target = ResolveTargetPort(port, *w);
    if (w->weight == 0 || target == 0 || !Selects(svc, *w)) continue;
    for (const auto& addr : w->addresses) {
      if (addr.is_v4() == v4) weights[{addr, target}] += w->weight;
    }
  }
  std::vector<Backend> out;
  for (const auto& [endpoint, weight] : weights) {
    uint64_t capped = std::min<uint64_t>(weight, std::numeric_limits<uint32_t>::max());
    out.push_back({endpoint.first, endpoint.second, static_cast<uint32_t>(capped)});
  }
  return out;
}

ServiceEntry MakeEntry(const config::Service& svc, const config::ServicePort& port) {
  ServiceEntry e;
  e.name = svc.ns + "/" + svc.name + ":" + (port.name.empty() ? std::to_string(port.port) : port.name);
  if (svc.algorithm == config::LbAlgorithm::kMaglev) {
    e.algo = WEFT_LB_MAGLEV;
    if (svc.maglev_table_size != 0) e.maglev_table_size = static_cast<uint16_t>(svc.maglev_table_size);
  }
  if (svc.steer_to_proxy) e.flags |= WEFT_SVC_F_STEER_PROXY;
  return e;
}

}  // namespace

DesiredState Compile(const config::Config& config, const std::vector<Workload>& extra) {
  std::vector<const Workload*> workloads;
  for (const auto& w : config.workloads) workloads.push_back(&w);
  for (const auto& w : extra) workloads.push_back(&w);
  DesiredState state;
  for (const auto& svc : config.services) {
    for (const auto& vip : svc.vips) {
      for (const auto& port : svc.ports) {
        uint8_t proto = port.protocol == config::Protocol::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
        ServiceEntry entry = MakeEntry(svc, port);
        entry.backends = Endpoints(svc, port, vip.is_v4(), workloads);
        state.services.emplace(MakeServiceKey(vip, port.port, proto), std::move(entry));
      }
    }
  }
  return state;
}

}  // namespace weft::lb
