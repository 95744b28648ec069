// What the LB maps should hold, before ids are assigned: per service VIP key,
// the algorithm and the weighted backend list. Built by Compile (compile.hpp),
// written by the Reconciler (agent/reconcile.hpp).
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/datapath/map_state.hpp"
#include "weft/bpf_abi.h"
#include "weft/ip.hpp"

namespace weft::lb {

struct Backend {
  IpAddr addr;
  uint16_t port = 0;  // host byte order
  uint32_t weight = 1;

  // Stable across restarts and machines: "10.0.0.1:8080", "[fd00::1]:8080".
  std::string StableName() const;
  auto operator<=>(const Backend&) const = default;
};

struct ServiceEntry {
  std::string name;  // "namespace/name:port-name" for logs and metrics
  weft_lb_algo algo = WEFT_LB_RANDOM;
  uint8_t flags = 0;  // enum weft_svc_flags
  uint16_t maglev_table_size = WEFT_MAGLEV_DEFAULT_SIZE;  // a prime; used by WEFT_LB_MAGLEV
  std::vector<Backend> backends;  // sorted by (addr, port); weight > 0
};

using ServiceKeyLess = datapath::BytesLess<weft_svc_key>;

struct DesiredState {
  std::map<weft_svc_key, ServiceEntry, ServiceKeyLess> services;
};

// `d` without the backends at `addrs` (any port); *removed counts them. A
// service left with none keeps its entry with no backends (connects refused).
DesiredState WithoutBackends(const DesiredState& d, const std::set<IpAddr>& addrs, size_t* removed);

// port in host byte order; proto IPPROTO_TCP or IPPROTO_UDP.
weft_svc_key MakeServiceKey(const IpAddr& vip, uint16_t port, uint8_t proto);

}  // namespace weft::lb
