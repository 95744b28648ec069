// "90s", "30m", "24h", "7d" or plain seconds -> std::chrono::seconds, for
// flags such as --ttl and --node-cert-ttl.
#pragma once

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>

#include "weft/status.hpp"

namespace weft {

inline Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return Status::Error("duration \"" + std::string(text.substr(0, 32)) +
                             "\": expected a positive number with an optional unit s, m, h or d (e.g. 90s, 24h)",
                         EINVAL);
  };
  if (text.empty() || text.size() > 12) return bad();
  int64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  if (text.empty()) return bad();
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
  }
  if (n <= 0 || n > 100LL * 365 * 86400 / unit) return bad();
  return std::chrono::seconds(n * unit);
}

}  // namespace weft
