// `weftctl lab ...`: a Weft cluster built out of network namespaces on one
// machine (nodes, pods, a fabric), with one weft-agent per node.
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli::lab {

void Register(CLI::App& root, int* exit_code);

}  // namespace weft::cli::lab
