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
#include <thread>

namespace paddock {

class CancelToken {
 public:
  CancelToken() : state_(std::make_shared<State>()) {}

  void cancel() const;
  bool cancelled() const { return state_->cancelled.load(); }

  // Waits until cancelled or until `d` has passed; true when cancelled.
  bool waitFor(std::chrono::steady_clock::duration d) const;

  // Runs `fn` when cancelled: on the cancelling thread, or at once on this thread if already
  // cancelled. The returned registration removes the callback when destroyed; if the callback
  // is running on another thread at that moment, the destructor waits for it to finish (as
  // std::stop_callback does), so a callback never outlives what it captured.
  class Registration {
   public:
    Registration() = default;
    explicit Registration(std::shared_ptr<void> remover) : remover_(std::move(remover)) {}
   private:
    std::shared_ptr<void> remover_;
  };
  [[nodiscard]] Registration onCancel(std::function<void()> fn) const;

 private:
  struct State {
    std::atomic<bool> cancelled{false};
    std::mutex mu;
    std::condition_variable cv;
    std::map<int, std::function<void()>> callbacks;  // guarded by mu
    int next_id = 0;                                  // guarded by mu
    int running_id = -1;                              // the callback cancel() is running, guarded by mu
    std::thread::id running_thread;                   // guarded by mu
  };
  std::shared_ptr<State> state_;
};

inline void CancelToken::cancel() const {
  std::unique_lock lock(state_->mu);
  if (state_->cancelled.exchange(true)) return;
  state_->cv.notify_all();
  // One callback at a time, each marked as running so its registration can wait for it.
  while (!state_->callbacks.empty()) {
    auto it = state_->callbacks.begin();
    int id = it->first;
    auto fn = std::move(it->second);
    state_->callbacks.erase(it);
    state_->running_id = id;
    state_->running_thread = std::this_thread::get_id();
    lock.unlock();
    try {
      fn();
    } catch (...) {
      // A failing callback must not stop the others or throw into the canceller.
    }
    lock.lock();
    state_->running_id = -1;
    state_->cv.notify_all();
  }
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
    auto s = weak.lock();
    if (!s) return;
    std::unique_lock l(s->mu);
    if (s->callbacks.erase(id)) return;
    s->cv.wait(l, [&] { return s->running_id != id || s->running_thread == std::this_thread::get_id(); });
  }));
}

}  // namespace paddock
