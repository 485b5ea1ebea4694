// The work queue between watches and reconcilers: keys ("namespace/name") go in when something
// changes, workers take them out and reconcile. Semantics of client-go's workqueue:
//
// Guarantees
// - A key waiting to be processed is queued once, however often it is added.
// - A key is never handed to two workers at once. A key added while it is being processed is
//   marked dirty and queued again when its worker calls done(), so the change is not lost.
// - Distinct keys are handed out in the order they were added (delayed keys: when they fell due).
// - Delays (addAfter, addRateLimited) are measured on the injected Clock; nothing sleeps on the
//   real clock, so tests move time with a fake clock.
//
// Caveats
// - There is no timer thread: a delayed key moves to the ready queue when it is due and the queue
//   is next touched (get, add, done). Workers blocked in get() wake for it on time, so this only
//   shows in the depth metric, which can lag while every worker is busy.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "operator/common/cancel.h"
#include "operator/common/clock.h"
#include "operator/runtime/rate_limiter.h"

namespace paddock::runtime {

// What a queue reports as it works, for Prometheus (workqueue_depth, workqueue_adds_total,
// workqueue_retries_total, workqueue_queue_duration_seconds, workqueue_work_duration_seconds).
// Every method is called with the queue's lock held: be quick and do not call back into the queue.
class WorkQueueMetrics {
 public:
  virtual ~WorkQueueMetrics() = default;

  // The number of keys ready to be handed out changed to `n`.
  virtual void depth(std::size_t n) {}
  // A key was added that was not already waiting to be processed.
  virtual void added() {}
  // addRateLimited was called.
  virtual void retried() {}
  // A key was handed out `d` after it was added (or fell due).
  virtual void queueLatency(Duration d) {}
  // A worker called done() `d` after it took the key.
  virtual void workDuration(Duration d) {}
};

struct WorkQueueOptions {
  // Where time comes from; systemClock() when null. Must outlive the queue.
  const Clock* clock = nullptr;
  // The delays of addRateLimited; defaultControllerRateLimiter(*clock) when null.
  std::unique_ptr<RateLimiter> rate_limiter;
  // Told about depth, adds, retries and latencies; nothing is reported when null.
  std::unique_ptr<WorkQueueMetrics> metrics;
};

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` unless it is already waiting to be processed. If it is being processed, marks
  // it to be queued again when done() is called. Ignored after shutDown().
  void add(const std::string& key);

  // Adds `key` once `delay` has passed on the clock (at once when delay <= 0). If `key` is
  // already waiting for a delay, the earlier of the two times is kept. Ignored after shutDown().
  void addAfter(const std::string& key, Duration delay);

  // Adds `key` after the rate limiter's delay for it (per-key backoff, overall bucket), and counts
  // a retry. Call forget() once the key is processed successfully so its backoff starts over.
  void addRateLimited(const std::string& key);

  // Resets the rate limiter's backoff for `key`. Does not remove it from the queue.
  void forget(const std::string& key);

  // How many times `key` was added with addRateLimited since it was last forgotten.
  int numRequeues(const std::string& key) const;

  // Blocks until a key is ready and returns it; the caller owns it until it calls done(key).
  // Returns nullopt at once when `cancel` has fired (even if keys are ready), and after
  // shutDown() once no key is ready: shutting down drains the ready keys, cancelling does not.
  std::optional<std::string> get(const CancelToken& cancel = {});

  // Marks `key`, taken with get(), as processed. If it was added meanwhile, it is queued again.
  // Does nothing for a key that is not being processed.
  void done(const std::string& key);

  // Stops accepting keys and wakes every get(). Keys already ready are still handed out (and
  // keys added while being processed are still queued again by done()); delayed keys not yet
  // due are dropped. get() returns nullopt once nothing is ready.
  void shutDown();
  bool shuttingDown() const;

  // How many keys are ready to be handed out (delayed keys that are due included; keys being
  // processed and keys still waiting for their delay excluded).
  std::size_t len() const;

 private:
  // Queues `key` as add() does. Requires mu_.
  void addLocked(const std::string& key, Clock::TimePoint now);
  // Moves delayed keys that are due at `now` into the ready queue. Requires mu_.
  void promoteLocked(Clock::TimePoint now);
  void reportDepthLocked();

  const Clock& clock_;
  std::unique_ptr<RateLimiter> rate_limiter_;
  std::unique_ptr<WorkQueueMetrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Keys ready to be handed out, in order. Every key in it is in dirty_ and not in processing_.
  std::deque<std::string> queue_;  // guarded by mu_
  // Keys that need processing (queued, or added while being processed), with when they were added.
  std::unordered_map<std::string, Clock::TimePoint> dirty_;  // guarded by mu_
  // Keys handed out and not yet done, with when they were handed out.
  std::unordered_map<std::string, Clock::TimePoint> processing_;  // guarded by mu_
  // Delayed keys by the time they are due, each key at most once, and an index of them by key.
  std::multimap<Clock::TimePoint, std::string> waiting_;  // guarded by mu_
  std::unordered_map<std::string, std::multimap<Clock::TimePoint, std::string>::iterator> waiting_index_;  // guarded by mu_
  bool shutting_down_ = false;  // guarded by mu_

  // Last, so it is dropped first: a fake clock's advance() must not reach a half-destroyed queue.
  Clock::Subscription advance_subscription_;
};

// Runs `workers` threads that each take a key, call `process(key)` and mark it done, until get()
// returns nullopt (the queue is shut down and drained, or `cancel` fired). Returns when all of
// them have. `process` must not throw.
void runWorkers(WorkQueue& queue, int workers, const std::function<void(const std::string&)>& process,
                const CancelToken& cancel = {});

}  // namespace paddock::runtime
