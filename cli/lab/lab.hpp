// `weftctl lab ...`: a Weft cluster built out of network namespaces on one
// machine (nodes, pods, a fabric), with one weft-agent per node.
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli::lab {

void Register(CLI::App& root, int* exit_code);

// Makes the labs' state the hint source of weftctl bpf/flows/trace
// (bpf::SetHintSource): --lab NAME, or the one lab running. (Register does.)
void RegisterHints();

}  // namespace weft::cli::lab
