// Rate limiters: how long to wait before doing something (again). Per-key exponential backoff
// for retries of failed work, a token bucket for overall throughput (work queue retries, and
// requests to the API server), and MaxOf to combine them. Semantics and defaults follow
// client-go's workqueue rate limiters; defaultControllerRateLimiter is its
// DefaultControllerRateLimiter (5 ms doubling to 1000 s per key, 10 qps / burst 100 overall).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "operator/common/cancel.h"
#include "operator/common/clock.h"
#include "operator/common/result.h"

namespace paddock::runtime {

using Duration = Clock::Duration;

// Decides how long a key waits before it is retried. Implementations are thread-safe.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;

  // The delay before `key` is retried this time. Counts one more retry of `key`.
  virtual Duration when(const std::string& key) = 0;
  // Stops tracking `key` (its work succeeded): its next when() starts over.
  virtual void forget(const std::string& key) = 0;
  // How many times when() was called for `key` since it was last forgotten.
  virtual int retries(const std::string& key) const = 0;
};

// Per-key exponential backoff: the n-th when(key) since forget(key) returns base * 2^(n-1),
// at most `max`.
class ItemExponentialBackoff final : public RateLimiter {
 public:
  static constexpr Duration kDefaultBase = std::chrono::milliseconds(5);
  static constexpr Duration kDefaultMax = std::chrono::seconds(1000);

  explicit ItemExponentialBackoff(Duration base = kDefaultBase, Duration max = kDefaultMax)
      : base_(base), max_(max) {}

  Duration when(const std::string& key) override;
  void forget(const std::string& key) override;
  int retries(const std::string& key) const override;

 private:
  const Duration base_;
  const Duration max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> failures_;  // guarded by mu_
};

// A token bucket (golang.org/x/time/rate, which client-go's BucketRateLimiter wraps): holds up
// to `burst` tokens, starts full and refills at `qps` tokens a second. Thread-safe; used on its
// own to pace API requests and, through BucketRateLimiter, as the overall limit of a work queue.
class TokenBucket {
 public:
  static constexpr double kDefaultQps = 10;
  static constexpr int kDefaultBurst = 100;

  // qps <= 0 means no limit. burst < 1 is taken as 1.
  TokenBucket(double qps, int burst, const Clock& clock = systemClock());

  // Takes the next token and returns how long the caller must wait before acting on it: zero
  // while the bucket has tokens, otherwise the time until that token has been refilled.
  // Tokens taken ahead of time are owed, so every caller that reserves must wait its turn: with
  // qps 10 and an empty bucket, three calls at once return 100 ms, 200 ms and 300 ms.
  Duration reserve();

  // Reserves a token and sleeps on the clock until it may be used. If `cancel` fires first,
  // returns a "Cancelled" error and gives the token back when no later reservation depends on it.
  Status wait(const CancelToken& cancel = {});

  double qps() const { return qps_; }
  int burst() const { return burst_; }

 private:
  // Takes a token at `now`; returns when its holder may act. Requires mu_.
  Clock::TimePoint reserveLocked(Clock::TimePoint now);
  // Tokens in the bucket at `now` (negative when owed): tokens_ plus the refill since last_.
  double tokensAt(Clock::TimePoint now) const;
  Duration durationFromTokens(double tokens) const;

  const double qps_;
  const int burst_;
  const Clock& clock_;
  std::mutex mu_;
  double tokens_;              // guarded by mu_; at last_
  Clock::TimePoint last_;      // guarded by mu_
  Clock::TimePoint last_act_;  // guarded by mu_; when the latest reservation may act
};

// One TokenBucket shared by all keys: when() is reserve(); keeps no per-key state.
class BucketRateLimiter final : public RateLimiter {
 public:
  BucketRateLimiter(double qps, int burst, const Clock& clock = systemClock()) : bucket_(qps, burst, clock) {}

  Duration when(const std::string&) override { return bucket_.reserve(); }
  void forget(const std::string&) override {}
  int retries(const std::string&) const override { return 0; }

 private:
  TokenBucket bucket_;
};

// The longest delay of several limiters. when() asks every one of them (so each counts the
// retry); forget() forgets in all; retries() is the largest count.
class MaxOf final : public RateLimiter {
 public:
  explicit MaxOf(std::vector<std::unique_ptr<RateLimiter>> limiters) : limiters_(std::move(limiters)) {}

  Duration when(const std::string& key) override;
  void forget(const std::string& key) override;
  int retries(const std::string& key) const override;

 private:
  std::vector<std::unique_ptr<RateLimiter>> limiters_;
};

// MaxOf(ItemExponentialBackoff(5 ms, 1000 s), BucketRateLimiter(10 qps, burst 100)).
std::unique_ptr<RateLimiter> defaultControllerRateLimiter(const Clock& clock = systemClock());

}  // namespace paddock::runtime
