// Time as an injected dependency (Envoy's TimeSource). Code that reads the time or waits for it
// takes a `const Clock&`, so tests drive it with a fake clock (tests/unit/operator/common/
// fake_clock.h) instead of sleeping. Production code passes systemClock().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <utility>

#include "operator/common/cancel.h"

namespace paddock {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  // Keeps an onAdvance callback registered; destroying it unregisters the callback.
  class Subscription {
   public:
    Subscription() = default;
    explicit Subscription(std::shared_ptr<void> remover) : remover_(std::move(remover)) {}
   private:
    std::shared_ptr<void> remover_;
  };

  virtual ~Clock() = default;

  // The current time. Never goes back.
  virtual TimePoint now() const = 0;

  // Blocks until now() reaches `deadline` or `cancel` fires. Returns false when cancelled
  // (including when `cancel` had fired before the call), true otherwise.
  virtual bool sleepUntil(TimePoint deadline, const CancelToken& cancel) const = 0;
  bool sleepFor(Duration d, const CancelToken& cancel) const { return sleepUntil(now() + d, cancel); }

  // Runs `fn` after each jump of a clock that is moved by hand (FakeClock::advance), on the
  // thread that moves it. Code that waits on its own condition variable with a timeout computed
  // from now() subscribes here and notifies that variable, so a jump wakes it to look again (see
  // WorkQueue::get). The system clock never jumps and never calls `fn`.
  //
  // Caveats: `fn` must not move the clock, nor subscribe or unsubscribe.
  [[nodiscard]] virtual Subscription onAdvance(std::function<void()> fn) const { return {}; }
};

// std::chrono::steady_clock.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  bool sleepUntil(TimePoint deadline, const CancelToken& cancel) const override;
};

// The process-wide SystemClock, the default wherever a clock can be injected.
const Clock& systemClock();

}  // namespace paddock
