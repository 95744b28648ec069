// Reading the YAML corpora under tests/testdata and ../shared.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace weft::testutil {

namespace fs = std::filesystem;

// *.yaml files under `dir` (recursively when asked), as paths relative to `dir`, sorted.
inline std::vector<std::string> YamlFiles(const std::string& dir, bool recursive = false) {
  std::vector<std::string> out;
  auto add = [&](const fs::directory_entry& e) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") out.push_back(fs::relative(e.path(), dir).string());
  };
  if (!fs::is_directory(dir)) return out;
  if (recursive) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) add(e);
  } else {
    for (const auto& e : fs::directory_iterator(dir)) add(e);
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The "# expect: <message>" lines of a corpus file.
inline std::vector<std::string> Expectations(const std::string& text) {
  std::vector<std::string> out;
  const std::string marker = "# expect: ";
  for (const auto& line : Lines(text)) {
    if (line.rfind(marker, 0) == 0) out.push_back(line.substr(marker.size()));
  }
  return out;
}

// A gtest parameter name from a file name: "a/b-c.yaml" -> "a_b_c".
inline std::string TestName(std::string path) {
  path = fs::path(path).replace_extension().string();
  std::replace_if(path.begin(), path.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return path;
}

}  // namespace weft::testutil
