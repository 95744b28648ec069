// Small helpers shared by the kernel-level test binaries that run real Weft
// processes (agent end-to-end, weftctl bpf): CI detection, unique names, files.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace weft::testing {

// CI=true in the environment: a missing prerequisite fails instead of skipping.
inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Eight random hex digits, for per-run names (cgroups, pin roots).
inline std::string RandomHex() {
  std::random_device rd;
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", rd());
  return buf;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace weft::testing
