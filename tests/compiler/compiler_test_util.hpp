// Lookups over compiled NodeConfigs shared by the compiler tests.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include "controller/compiler.hpp"
#include "weft/ip.hpp"

namespace weft::controller::testing {

inline const v1::Service& FindService(const v1::NodeConfig& c, const std::string& key) {
  for (const auto& s : c.services()) {
    if (s.namespace_() + "/" + s.name() == key) return s;
  }
  throw std::runtime_error("no service " + key);
}

inline bool HasService(const v1::NodeConfig& c, const std::string& key) {
  for (const auto& s : c.services()) {
    if (s.namespace_() + "/" + s.name() == key) return true;
  }
  return false;
}

inline std::string AddrText(const std::string& bytes) {
  uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (bytes.size() == 4) {
    std::copy(bytes.begin(), bytes.end(), b + 12);
  } else if (bytes.size() == 16) {
    std::copy(bytes.begin(), bytes.end(), b);
  } else {
    return "<" + std::to_string(bytes.size()) + " bytes>";
  }
  return IpAddr::FromBytes(b).ToString();
}

// The first port (any VIP of the given family) with this number.
inline const v1::ServicePort& FindPort(const v1::Service& s, uint32_t port, bool v4 = true,
                                       v1::Protocol proto = v1::TCP) {
  for (const auto& p : s.ports()) {
    if (p.port() == port && (p.vip().size() == 4) == v4 && p.protocol() == proto) return p;
  }
  throw std::runtime_error("no port " + std::to_string(port) + " in " + s.name());
}

// workload (or address:port when the backend has no workload) -> weight
inline std::map<std::string, uint32_t> Weights(const v1::ServicePort& p) {
  std::map<std::string, uint32_t> out;
  for (const auto& b : p.backends()) {
    std::string k = b.workload().empty() ? AddrText(b.address()) + ":" + std::to_string(b.port()) : b.workload();
    out[k] += b.weight();
  }
  return out;
}

}  // namespace weft::controller::testing
