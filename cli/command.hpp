// How weftctl's command groups plug in: each group (lab, later apply, get,
// flows, trace, bpf) lives in cli/<group>/ and exposes one Register function
// that adds its subcommands to the root app. Callbacks report their result by
// setting *exit_code to one of ExitCode.
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitBadInput = 1,  // bad arguments or input files: the message names which and why
  kExitEnv = 2,       // the environment failed: missing root/BPF, a command failed, ...
};

using RegisterFn = void (*)(CLI::App& root, int* exit_code);

}  // namespace weft::cli
