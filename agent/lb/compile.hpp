// Config -> DesiredState: every (VIP, port, protocol) of every Service with the
// workloads it selects, Kubernetes-style.
#pragma once

#include <vector>

#include "config/model.hpp"
#include "agent/lb/desired_state.hpp"

namespace weft::lb {

// A Service selects the workloads of its namespace whose labels include its
// (non-empty) selector. A workload contributes, per Service port, its
// addresses of the VIP's family at the resolved targetPort; a workload without
// the named targetPort, or of weight 0, is skipped. `extra` are workloads
// registered at run time (pods), next to the config's WorkloadEntries.
DesiredState Compile(const config::Config& config, const std::vector<config::Workload>& extra);

}  // namespace weft::lb
