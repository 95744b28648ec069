// Reading `-f` arguments the way kubectl does: a file, a directory (its
// *.yaml, *.yml and *.json files, sorted; subdirectories only with -R) or "-"
// (standard input). Names are kept as the user wrote them: they are what
// every "file:line:col" message shows.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::cli::ctl {

struct InputFile {
  std::string name;     // path as given (DIR/x.yaml for directory members), "-" for stdin
  std::string content;  // multi-document YAML
};

// Errors name the argument and the reason; an argument that yields no file
// (an empty directory) is an error too: nothing would be applied.
Result<std::vector<InputFile>> ReadInputs(const std::vector<std::string>& args, bool recursive, std::istream& stdin_);

}  // namespace weft::cli::ctl
