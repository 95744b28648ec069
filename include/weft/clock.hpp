// Wall-clock time, injected: the one clock interface of Weft's user space for
// everything that expires or renews (certificates and their renewal, join
// tokens, the controller's node registry). Production code uses
// SystemClock(); tests hand a FakeClock to the same code and move time by
// hours in microseconds, so expiry and renewal are tested without waiting.
//
// Deadlines that only bound how long a call may block (poll timeouts, gRPC
// deadlines, back-off) stay on std::chrono::steady_clock: they are not
// validity.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

namespace weft {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  int64_t NowUnixMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Now().time_since_epoch()).count();
  }
  // Waits on `cv` (with `lock` held, as condition_variable::wait_until)
  // until `stop()` is true or Now() reaches `deadline`. True if stop() is.
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, TimePoint deadline,
                         const std::function<bool()>& stop) const = 0;
};

// The system's wall clock (std::chrono::system_clock).
const Clock& SystemClock();

// A clock that moves only when told. Waiters see a move within about a
// millisecond (they re-check their deadline at that pace).
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start = std::chrono::system_clock::now()) : now_(start) {}
  TimePoint Now() const override;
  void Set(TimePoint t);
  void Advance(std::chrono::nanoseconds d);
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, TimePoint deadline,
                 const std::function<bool()>& stop) const override;
  // The earliest deadline a WaitUntil is waiting for now (TimePoint::max()
  // when none): a test can see that a loop is waiting, and for what.
  TimePoint NextDeadline() const;

 private:
  mutable std::mutex mu_;
  TimePoint now_;
  mutable std::multiset<TimePoint> waiting_;  // deadlines of the WaitUntil calls in progress
};

}  // namespace weft
