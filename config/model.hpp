// The agent's validated view of the mesh: Services and the workloads they
// select. Produced by the file config source (loader.hpp) and by callers that
// register workloads programmatically (the lab registers pods).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "weft/ip.hpp"

namespace weft::config {

using Labels = std::map<std::string, std::string>;

enum class Protocol : uint8_t { kTcp, kUdp };
enum class LbAlgorithm : uint8_t { kRandom, kMaglev };

// A Service port's targetPort: a number, or a port name resolved per workload.
struct TargetPort {
  uint16_t number = 0;  // set when name is empty
  std::string name;
};

struct ServicePort {
  std::string name;  // may be empty for a single-port Service
  uint16_t port = 0;
  TargetPort target;
  Protocol protocol = Protocol::kTcp;
  std::string app_protocol;
};

struct Service {
  std::string name;
  std::string ns;
  std::vector<IpAddr> vips;  // from spec.clusterIP(s); empty: headless or none in file mode
  std::vector<ServicePort> ports;
  Labels selector;  // empty: selects nothing (like a Kubernetes Service without selector)
  LbAlgorithm algorithm = LbAlgorithm::kRandom;
  uint32_t maglev_table_size = 0;  // 0: the default size; only for kMaglev
  bool steer_to_proxy = false;
};

// A workload instance: an Istio WorkloadEntry (one address) or a registered pod.
struct Workload {
  std::string name;
  std::string ns;
  std::vector<IpAddr> addresses;  // v4 and/or v6
  Labels labels;
  std::map<std::string, uint16_t> ports;  // named ports, resolve a string targetPort
  uint32_t weight = 1;                    // 0: excluded from load balancing
  std::string service_account;
  std::string network;
  std::string locality;
};

struct Config {
  std::vector<Service> services;
  std::vector<Workload> workloads;  // from WorkloadEntries
};

}  // namespace weft::config
