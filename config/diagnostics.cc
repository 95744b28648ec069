#include "config/diagnostics.hpp"

#include <algorithm>
#include <tuple>

#include "config/resources.hpp"

namespace weft::config {

void Diagnostics::Add(Location at, std::string_view subject, std::string_view message) {
  // Control characters (a NUL from "\0" in a quoted scalar, a newline in a
  // key) would cut the line short or split it: DisplayName writes them as \xNN.
  std::string line = DisplayName(file_) + ":" + std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1) +
                     ": " + DisplayName(subject) + ": " + DisplayName(message);
  lines_.push_back({at, std::move(line)});
}

Status Diagnostics::ToStatus() const {
  if (lines_.empty()) return Status::Ok();
  std::vector<Entry> sorted = lines_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
  });
  std::string msg;
  for (const auto& e : sorted) {
    if (!msg.empty()) msg += '\n';
    msg += e.text;
  }
  return Status::Error(msg, EINVAL);
}

}  // namespace weft::config
