#include "agent/file_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace fs = std::filesystem;

namespace weft::agent {

Result<FileWatch> FileWatch::Create(const std::string& path) {
  fs::path p = fs::absolute(fs::path(path)).lexically_normal();
  std::string dir = p.parent_path().string();
  std::string name = p.filename().string();
  if (name.empty()) return Status::Error("watch " + path + ": not a file path");
  UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) return Status::Errno("watch " + path + ": inotify_init1", errno);
  // CLOSE_WRITE: in-place write done; MOVED_TO/CREATE: replaced by rename or
  // recreated; MODIFY: writers that keep the file open; DELETE/MOVED_FROM:
  // removed (the reload then reports the missing file and keeps the state).
  uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB;
  if (inotify_add_watch(fd.get(), dir.c_str(), mask) < 0) return Status::Errno("watch directory " + dir, errno);
  return FileWatch(std::move(fd), std::move(dir), std::move(name));
}

Result<bool> FileWatch::Drain() {
  alignas(inotify_event) char buf[16 * 1024];
  bool relevant = false;
  for (;;) {
    ssize_t n = read(fd_.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return Status::Errno("read inotify events for " + dir_, errno);
    }
    if (n == 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->mask & IN_Q_OVERFLOW) relevant = true;  // events lost: reload to be safe
      if (ev->len > 0 && name_ == ev->name) relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  return relevant;
}

void Debouncer::Event(Clock::time_point now) {
  if (!first_) first_ = now;
  last_ = now;
}

Debouncer::Clock::time_point Debouncer::Deadline() const {
  return std::min(*last_ + quiet_, *first_ + max_delay_);
}

int Debouncer::TimeoutMs(Clock::time_point now) const {
  if (!first_) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(Deadline() - now).count();
  return static_cast<int>(std::max<int64_t>(left + 1, 0));
}

bool Debouncer::Due(Clock::time_point now) {
  if (!first_ || now < Deadline()) return false;
  first_.reset();
  last_.reset();
  return true;
}

}  // namespace weft::agent
