// Cancellation shared between the code that stops work (shutdown, a replaced watch) and the
// code doing it. Callbacks registered with onCancel run once, on the thread that cancels.
#pragma once

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace paddock {

class CancelToken {
 public:
  CancelToken() : state_(std::make_shared<State>()) {}

  void cancel() const;
  bool cancelled() const { return state_->cancelled.load(); }

  // Waits until cancelled or until `d` has passed; true when cancelled.
  bool waitFor(std::chrono::steady_clock::duration d) const;

  // Runs `fn` when cancelled (at once if already cancelled). The returned registration
  // removes the callback when destroyed.
  class Registration {
   public:
    Registration() = default;
    Registration(std::shared_ptr<void> remover) : remover_(std::move(remover)) {}
   private:
    std::shared_ptr<void> remover_;
  };
  [[nodiscard]] Registration onCancel(std::function<void()> fn) const;

 private:
  struct State {
    std::atomic<bool> cancelled{false};
    std::mutex mu;
    std::condition_variable cv;
    std::map<int, std::function<void()>> callbacks;
    int next_id = 0;
  };
  std::shared_ptr<State> state_;
};

inline void CancelToken::cancel() const {
  std::map<int, std::function<void()>> callbacks;
  {
    std::lock_guard lock(state_->mu);
    if (state_->cancelled.exchange(true)) return;
    callbacks.swap(state_->callbacks);
  }
  state_->cv.notify_all();
  for (auto& [id, fn] : callbacks) fn();
}

inline bool CancelToken::waitFor(std::chrono::steady_clock::duration d) const {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, d, [&] { return state_->cancelled.load(); });
}

inline CancelToken::Registration CancelToken::onCancel(std::function<void()> fn) const {
  std::unique_lock lock(state_->mu);
  if (state_->cancelled) {
    lock.unlock();
    fn();
    return {};
  }
  int id = state_->next_id++;
  state_->callbacks.emplace(id, std::move(fn));
  std::weak_ptr<State> weak = state_;
  return Registration(std::shared_ptr<void>(nullptr, [weak, id](void*) {
    if (auto s = weak.lock()) {
      std::lock_guard l(s->mu);
      s->callbacks.erase(id);
    }
  }));
}

}  // namespace paddock
