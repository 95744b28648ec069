// Watches one file through inotify on its parent directory, so that editors
// and tools that replace the file (write a temp file, rename it over) are seen
// as well as in-place writes. The caller polls fd() and calls Drain(); bursts
// are coalesced by the caller's Debouncer.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

namespace weft::agent {

class FileWatch {
 public:
  static Result<FileWatch> Create(const std::string& path);
  int fd() const { return fd_.get(); }
  // Reads every pending event (non-blocking). True if one concerned the file.
  Result<bool> Drain();

 private:
  FileWatch(UniqueFd fd, std::string dir, std::string name)
      : fd_(std::move(fd)), dir_(std::move(dir)), name_(std::move(name)) {}
  UniqueFd fd_;
  std::string dir_;
  std::string name_;
};

// Fires `quiet` after the last event of a burst, but no later than `max_delay`
// after its first event (a file rewritten continuously is still picked up).
class Debouncer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Debouncer(std::chrono::milliseconds quiet = std::chrono::milliseconds(50),
                     std::chrono::milliseconds max_delay = std::chrono::milliseconds(1000))
      : quiet_(quiet), max_delay_(max_delay) {}
  void Event(Clock::time_point now);
  bool pending() const { return first_.has_value(); }
  // Milliseconds until Due() (for poll), -1 if nothing is pending.
  int TimeoutMs(Clock::time_point now) const;
  // True (and resets) when the burst is over.
  bool Due(Clock::time_point now);

 private:
  Clock::time_point Deadline() const;
  std::chrono::milliseconds quiet_, max_delay_;
  std::optional<Clock::time_point> first_, last_;
};

}  // namespace weft::agent
