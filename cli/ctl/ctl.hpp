// weftctl's control-plane commands: apply, delete, get, diff, status (through
// the controller's Admin API) and validate (offline).
#pragma once

#include <CLI/CLI.hpp>

namespace weft::cli::ctl {

void Register(CLI::App& root, int* exit_code);

// `weftctl validate`: registered separately so a build without weft_config
// still has the other commands.
void RegisterValidate(CLI::App& root, int* exit_code);

}  // namespace weft::cli::ctl
