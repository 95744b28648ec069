// The agent's file mode (--config FILE): the file's validated resources
// (config::LoadConfigFile) are compiled by the controller's compiler, in
// process (controller/compiler.hpp: the same code that compiles for agents),
// and the snapshot it gives is converted into the LB maps' desired state as a
// pushed snapshot's services are (proto_convert.hpp: ToDesiredState; the node
// state takes it with NodeState::ReplaceServices). So a file means in
// file mode what it means applied to a controller (which would allocate the
// VIPs the file leaves out: here a Service without spec.clusterIP has none).
// File mode programs services only: no workload is local (no policy).
#pragma once

#include <vector>

#include "agent/lb/desired_state.hpp"
#include "config/resource.hpp"
#include "weft/status.hpp"

namespace weft::agent {

// Fails only when two services claim one VIP:port/protocol (a ServiceEntry
// address equal to a Service's VIP), naming both.
Result<lb::DesiredState> CompileFileConfig(const std::vector<config::Resource>& resources);

}  // namespace weft::agent
