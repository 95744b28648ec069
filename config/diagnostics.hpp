// Collects every error found in one config file, each as
// "<file>:<line>:<column>: <resource>: <field path>: <message>" (1-based).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "weft/status.hpp"

namespace weft::config {

struct Location {
  int line = 0;    // 0-based, as yaml-cpp's Mark
  int column = 0;  // 0-based
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string_view file) : file_(file) {}
  // `subject` is "<resource>: <field path>" or any other prefix naming the object.
  void Add(Location at, std::string_view subject, std::string_view message);
  bool empty() const { return lines_.empty(); }
  // All errors, one per line, in file order.
  Status ToStatus() const;

 private:
  struct Entry {
    Location at;
    std::string text;
  };
  std::string file_;
  std::vector<Entry> lines_;
};

}  // namespace weft::config
