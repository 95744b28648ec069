// `weftctl bpf ...`: read-only views of a node's pinned BPF maps, decoded
// through the structs of include/weft/bpf_abi.h (never by parsing bpftool).
//   weftctl bpf maps [--node N] [--pin-root DIR] [--lab LAB] [-o json]
//   weftctl bpf dump MAP [--node N] [--pin-root DIR] [--lab LAB] [--names-from FILE] [--raw] [-o json]
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli::bpf {

void Register(CLI::App& root, int* exit_code);

}  // namespace weft::cli::bpf
