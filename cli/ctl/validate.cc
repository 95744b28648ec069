// weftctl validate -f FILE...: the controller's own checks, offline.
// config::ParseResources per file (every error, "file:line:col: Kind ns/name:
// field: problem") then config::Analyze over all files together (warnings).
// Exit 0 valid (warnings allowed), 1 invalid or unreadable.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/ctl/ctl.hpp"
#include "cli/ctl/inputs.hpp"
#include "config/resources.hpp"

namespace weft::cli::ctl {

namespace {

struct ValidateArgs {
  std::vector<std::string> files;
  bool recursive = false;
  bool quiet = false;
};

int DoValidate(const ValidateArgs& a) {
  auto in = ReadInputs(a.files, a.recursive, std::cin);
  if (!in.ok()) {
    PrintInputError(in.status());
    return kExitBadInput;
  }
  std::vector<config::Resource> all;
  bool invalid = false;
  for (const auto& f : *in) {
    auto rs = config::ParseResources(f.content, f.name);
    if (!rs.ok()) {
      PrintMessage("", rs.status().message());
      invalid = true;
      continue;
    }
    all.insert(all.end(), rs->begin(), rs->end());
  }
  if (invalid) return kExitBadInput;
  auto warnings = config::Analyze(all);
  for (const auto& w : warnings) std::fprintf(stderr, "Warning: %s\n", w.ToString().c_str());
  if (!a.quiet) {
    std::string note = warnings.empty() ? "" : " (" + std::to_string(warnings.size()) + " warnings)";
    std::printf("%zu resources in %zu files: valid%s\n", all.size(), in->size(), note.c_str());
  }
  return kExitOk;
}

}  // namespace

void RegisterValidate(CLI::App& root, int* exit_code) {
  auto va = std::make_shared<ValidateArgs>();
  CLI::App* c = root.add_subcommand(
      "validate", "check files offline, as the controller would (no controller needed); exit 0 valid, 1 invalid");
  c->add_option("-f,--filename", va->files, "FILE, DIR or - (repeatable)")->required();
  c->add_flag("-R,--recursive", va->recursive, "with -f DIR: also its subdirectories");
  c->add_flag("-q,--quiet", va->quiet, "print only errors and warnings");
  c->callback([va, exit_code] { *exit_code = DoValidate(*va); });
}

}  // namespace weft::cli::ctl
