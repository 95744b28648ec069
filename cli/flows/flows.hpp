// `weftctl flows`: what the TC policy programs saw, from the live maps.
//   weftctl flows [--follow] [--from POD|SA] [--to POD|SERVICE] [--verdict allowed|denied]
//                 [--since DURATION] [--count N] [--duration D] [-o table|json]
//                 [--node N] [--lab LAB] [--pin-root DIR] [--state-dir DIR]
// Without --follow: the exact aggregates of weft_flows (summed over CPUs), one
// line each. With --follow: the events of weft_flow_ev as they arrive, and the
// lost-event counter (weft_ev_stats) at start, on every change and at exit.
// See cli/flows/README.md.
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli::flows {

void Register(CLI::App& root, int* exit_code);

}  // namespace weft::cli::flows
