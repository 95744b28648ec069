#include "agent/file_config.hpp"

#include "agent/proto_convert.hpp"
#include "controller/compiler.hpp"

namespace weft::agent {

Result<lb::DesiredState> CompileFileConfig(const std::vector<config::Resource>& resources) {
  controller::Compiler compiler;
  compiler.Reset(resources);
  // No node is called "": the services and the mesh-wide tables, no local workload.
  return ToDesiredState(compiler.Snapshot(""));
}

}  // namespace weft::agent
