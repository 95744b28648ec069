#include "controller/memory_trim.hpp"

#include <malloc.h>

namespace weft::controller {

MemoryTrimmer::MemoryTrimmer() : thread_([this] { Run(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void MemoryTrimmer::Request() {
  {
    std::lock_guard lock(mu_);
    due_ = std::chrono::steady_clock::now() + kQuiet;
  }
  cv_.notify_all();
}

void MemoryTrimmer::TrimIfWorthIt() {
  struct mallinfo2 mi = mallinfo2();
  if (mi.fordblks > kAboveFreeBytes) malloc_trim(0);
}

void MemoryTrimmer::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || due_.has_value(); });
    if (stop_) return;
    if (std::chrono::steady_clock::now() < *due_) {
      cv_.wait_until(lock, *due_);  // a later Request() moves due_: look again
      continue;
    }
    due_.reset();
    lock.unlock();
    TrimIfWorthIt();
    lock.lock();
  }
}

}  // namespace weft::controller
