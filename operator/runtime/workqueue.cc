#include "operator/runtime/workqueue.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace paddock::runtime {
namespace {

// Longer delays are cut to this, so that now() + delay cannot overflow.
constexpr Duration kMaxDelay = std::chrono::hours(24 * 365 * 10);
// The longest a get() waits on its condition variable before looking at the clock again. Only
// a bound: it is woken by adds, shutdown, cancellation, fake clock jumps and its own deadline.
constexpr Duration kMaxWait = std::chrono::hours(1);

}  // namespace

WorkQueue::WorkQueue(WorkQueueOptions options)
    : clock_(options.clock ? *options.clock : systemClock()),
      rate_limiter_(options.rate_limiter ? std::move(options.rate_limiter) : defaultControllerRateLimiter(clock_)),
      metrics_(std::move(options.metrics)) {
  advance_subscription_ = clock_.onAdvance([this] {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  });
}

WorkQueue::~WorkQueue() {
  // Unsubscribe before the members the callback touches are destroyed.
  advance_subscription_ = {};
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  Clock::TimePoint now = clock_.now();
  promoteLocked(now);
  addLocked(key, now);
}

void WorkQueue::addLocked(const std::string& key, Clock::TimePoint now) {
  if (shutting_down_) return;
  if (!dirty_.emplace(key, now).second) return;
  if (metrics_) metrics_->added();
  if (processing_.contains(key)) return;  // done() queues it
  queue_.push_back(key);
  reportDepthLocked();
  cv_.notify_one();
}

void WorkQueue::addAfter(const std::string& key, Duration delay) {
  if (delay <= Duration::zero()) return add(key);
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  Clock::TimePoint now = clock_.now();
  promoteLocked(now);
  Clock::TimePoint due = now + std::min(delay, kMaxDelay);
  if (auto it = waiting_index_.find(key); it != waiting_index_.end()) {
    if (it->second->first <= due) return;
    waiting_.erase(it->second);
    it->second = waiting_.emplace(due, key);
  } else {
    waiting_index_.emplace(key, waiting_.emplace(due, key));
  }
  // A getter waiting for a later key must shorten its wait.
  cv_.notify_all();
}

void WorkQueue::promoteLocked(Clock::TimePoint now) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    auto node = waiting_.extract(waiting_.begin());
    waiting_index_.erase(node.mapped());
    addLocked(node.mapped(), now);
  }
}

void WorkQueue::addRateLimited(const std::string& key) {
  Duration delay = rate_limiter_->when(key);
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) return;
    if (metrics_) metrics_->retried();
  }
  addAfter(key, delay);
}

void WorkQueue::forget(const std::string& key) { rate_limiter_->forget(key); }

int WorkQueue::numRequeues(const std::string& key) const { return rate_limiter_->retries(key); }

std::optional<std::string> WorkQueue::get(const CancelToken& cancel) {
  // Registered before taking mu_: the callback takes it, and runs at once if already cancelled.
  auto registration = cancel.onCancel([this] {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  });
  std::unique_lock lock(mu_);
  while (true) {
    if (cancel.cancelled()) return std::nullopt;
    Clock::TimePoint now = clock_.now();
    promoteLocked(now);
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      auto added = dirty_.extract(key);
      reportDepthLocked();
      if (metrics_) metrics_->queueLatency(now - added.mapped());
      processing_.emplace(key, now);
      return key;
    }
    if (shutting_down_) return std::nullopt;
    if (waiting_.empty()) {
      cv_.wait(lock);
    } else {
      // Measured in real time; with a fake clock, advance() wakes us through the subscription.
      cv_.wait_for(lock, std::min(waiting_.begin()->first - now, kMaxWait));
    }
  }
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  Clock::TimePoint now = clock_.now();
  auto it = processing_.find(key);
  if (it == processing_.end()) return;
  if (metrics_) metrics_->workDuration(now - it->second);
  processing_.erase(it);
  if (dirty_.contains(key)) {
    queue_.push_back(key);
    reportDepthLocked();
    cv_.notify_one();
  }
  promoteLocked(now);
}

void WorkQueue::shutDown() {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  promoteLocked(clock_.now());
  shutting_down_ = true;
  waiting_.clear();
  waiting_index_.clear();
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

std::size_t WorkQueue::len() const {
  std::lock_guard lock(mu_);
  Clock::TimePoint now = clock_.now();
  std::size_t n = queue_.size();
  // Due keys that promotion would queue: not already waiting to be processed or being processed.
  for (auto it = waiting_.begin(); it != waiting_.end() && it->first <= now; ++it) {
    if (!dirty_.contains(it->second) && !processing_.contains(it->second)) ++n;
  }
  return n;
}

void WorkQueue::reportDepthLocked() {
  if (metrics_) metrics_->depth(queue_.size());
}

void runWorkers(WorkQueue& queue, int workers, const std::function<void(const std::string&)>& process,
                const CancelToken& cancel) {
  std::vector<std::jthread> threads;
  threads.reserve(std::max(workers, 0));
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&] {
      while (auto key = queue.get(cancel)) {
        process(*key);
        queue.done(*key);
      }
    });
  }
}

}  // namespace paddock::runtime
