// A Clock for tests whose time moves only when the test calls advance(). Threads blocked in
// sleepUntil wake when the fake time reaches their deadline; onAdvance subscribers (such as a
// WorkQueue waiting for a delayed key) are told after every advance.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "operator/common/cancel.h"
#include "operator/common/clock.h"

namespace paddock {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}

  TimePoint now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }

  bool sleepUntil(TimePoint deadline, const CancelToken& cancel) const override {
    auto reg = cancel.onCancel([this] {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
    std::unique_lock lock(mu_);
    ++sleepers_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return cancel.cancelled() || now_ >= deadline; });
    --sleepers_;
    return !cancel.cancelled();
  }

  Subscription onAdvance(std::function<void()> fn) const override {
    std::lock_guard lock(subscribers_->mu);
    int id = subscribers_->next_id++;
    subscribers_->fns.emplace(id, std::move(fn));
    std::weak_ptr<Subscribers> weak = subscribers_;
    return Subscription(std::shared_ptr<void>(nullptr, [weak, id](void*) {
      if (auto s = weak.lock()) {
        std::lock_guard l(s->mu);
        s->fns.erase(id);
      }
    }));
  }

  // Moves the time forward by `d`, wakes sleepers whose deadline has come, then runs the
  // onAdvance subscribers.
  void advance(Duration d) {
    {
      std::lock_guard lock(mu_);
      if (d > Duration::zero()) now_ += d;
    }
    cv_.notify_all();
    // Held while calling, so unsubscribing waits for a callback in flight to finish.
    std::lock_guard lock(subscribers_->mu);
    for (auto& [id, fn] : subscribers_->fns) fn();
  }

  // Waits, in real time and at most `timeout`, until at least `n` threads are blocked in
  // sleepUntil, so a test can advance the time knowing a sleeper is there to see it.
  bool awaitSleepers(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return sleepers_ >= n; });
  }

 private:
  struct Subscribers {
    std::mutex mu;
    std::map<int, std::function<void()>> fns;
    int next_id = 0;
  };

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  TimePoint now_;         // guarded by mu_
  mutable int sleepers_ = 0;  // guarded by mu_
  std::shared_ptr<Subscribers> subscribers_ = std::make_shared<Subscribers>();
};

}  // namespace paddock
