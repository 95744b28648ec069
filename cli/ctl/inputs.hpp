// Reading `-f` arguments the way kubectl does: a file, a directory (its
// *.yaml, *.yml and *.json files, sorted; subdirectories only with -R) or "-"
// (standard input). Names are kept as the user wrote them: they are what
// every "file:line:col" message shows.
//
// Bounded: all files together hold at most config::kMaxRequestBytes (what one
// Admin request may carry), and reading stops one byte past it (`-f /dev/zero`
// is refused, not read until memory runs out). Each file must be text YAML may
// hold (config::CheckText: UTF-8, no control characters), checked here so that
// apply/diff/delete refuse it with its line and column before any RPC.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "weft/status.hpp"

namespace weft::cli::ctl {

struct InputFile {
  std::string name;     // path as given (DIR/x.yaml for directory members), "-" for stdin
  std::string content;  // multi-document YAML
};

// Errors name the argument and the reason; an argument that yields no file
// (an empty directory) is an error too: nothing would be applied. `max_bytes`
// is for tests.
Result<std::vector<InputFile>> ReadInputs(const std::vector<std::string>& args, bool recursive, std::istream& stdin_,
                                          size_t max_bytes = config::kMaxRequestBytes);

// Writes prefix + msg (+ "\n") to stderr, whole: printf's %s would stop at a NUL.
void PrintMessage(const std::string& prefix, const std::string& msg);
// A ReadInputs error: "weftctl: -f x: ..." for a file that cannot be read,
// verbatim for a text refused by CheckText (its lines start "file:line:col:").
void PrintInputError(const Status& st);

}  // namespace weft::cli::ctl
