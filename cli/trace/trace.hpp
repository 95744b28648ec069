// `weftctl trace`: explains one prospective flow from the live data plane.
//   weftctl trace --from POD --to SERVICE|POD|IP[:PORT] [--proto tcp|udp] [-6] [-o table|json]
//                 [--lab LAB] [--pin-root DIR] [--state-dir DIR] [--netns [NODE=]NS]...
// Steps: (a) socket-LB from the source node's weft_services/slots/backends;
// (b) identities from the live weft_identity LPM tries; (c) the policy entries
// in the kernel's lookup order for the destination (and source) endpoint;
// (d) BPF_PROG_TEST_RUN of the pinned TC programs on a synthetic packet in
// trace mode (weft/bpf_abi.h WEFT_TRACE_*), whose answer is the verdict.
// Exit: 0 whatever the verdict, 1 unknown pod/service (close names listed),
// 2 maps or pins unreadable. See cli/trace/README.md.
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli::trace {

void Register(CLI::App& root, int* exit_code);

}  // namespace weft::cli::trace
