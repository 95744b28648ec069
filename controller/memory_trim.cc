#include "controller/memory_trim.hpp"

#include <malloc.h>

// In a build with AddressSanitizer (scripts/test.sh's) the heap is ASan's, not
// glibc's: malloc_trim and mallinfo2 see nothing there, and freed memory waits
// in ASan's quarantine. Its purge and its count are the same steps for that
// allocator.
#include "weft/sanitizers.hpp"
#ifdef WEFT_ASAN
#include <sanitizer/allocator_interface.h>
#endif

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
#ifdef WEFT_ASAN
  __sanitizer_purge_allocator();
#else
  struct mallinfo2 mi = mallinfo2();
  if (mi.fordblks > kAboveFreeBytes) malloc_trim(0);
#endif
}

size_t MemoryTrimmer::HeapInUseBytes() {
#ifdef WEFT_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
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
