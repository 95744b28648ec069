// names.json (<state-dir>/<node>/names.json): identities, policies and
// endpoints by number, for weftctl flows/trace to decode what the maps hold.
// Written after every applied policy state that changed it (tmp + fsync +
// rename, 0600 in a 0700 directory); the format is in docs/ARCHITECTURE.md.
// A thin unit on purpose: the node-local contract library takes it over.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/policy/desired.hpp"
#include "agent/policy/placement.hpp"
#include "weft/status.hpp"

namespace weft::policy {

class NamesFile {
 public:
  // "" state_dir: never written (file mode has no policy, so no names).
  NamesFile(std::string state_dir, std::string node);
  // `endpoints`: the placed workloads (unplaced ones are listed with ifindex 0).
  Status Write(const PolicyDesired& desired, const std::vector<EndpointStatus>& endpoints, uint64_t version);

 private:
  std::string dir_, path_;
  std::string last_;  // the text last written
};

}  // namespace weft::policy
