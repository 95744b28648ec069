#include "weft/clock.hpp"

namespace weft {

namespace {

class System final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, TimePoint deadline,
                 const std::function<bool()>& stop) const override {
    return cv.wait_until(lock, deadline, stop);
  }
};

}  // namespace

const Clock& SystemClock() {
  static const System clock;
  return clock;
}

Clock::TimePoint FakeClock::Now() const {
  std::lock_guard l(mu_);
  return now_;
}

void FakeClock::Set(TimePoint t) {
  std::lock_guard l(mu_);
  now_ = t;
}

void FakeClock::Advance(std::chrono::nanoseconds d) {
  std::lock_guard l(mu_);
  now_ += std::chrono::duration_cast<TimePoint::duration>(d);
}

Clock::TimePoint FakeClock::NextDeadline() const {
  std::lock_guard l(mu_);
  return waiting_.empty() ? TimePoint::max() : *waiting_.begin();
}

bool FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, TimePoint deadline,
                          const std::function<bool()>& stop) const {
  std::multiset<TimePoint>::iterator mine;
  {
    std::lock_guard l(mu_);
    mine = waiting_.insert(deadline);
  }
  bool stopped = false;
  for (;;) {
    if (stop()) {
      stopped = true;
      break;
    }
    if (Now() >= deadline) break;
    // Real time, only to notice a move of the fake one (or a notify).
    cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  std::lock_guard l(mu_);
  waiting_.erase(mine);
  return stopped;
}

}  // namespace weft
