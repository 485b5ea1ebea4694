#include "operator/runtime/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace paddock::runtime {

// ItemExponentialBackoff

Duration ItemExponentialBackoff::when(const std::string& key) {
  int exp;
  {
    std::lock_guard lock(mu_);
    int& failures = failures_[key];
    exp = failures;
    if (failures < std::numeric_limits<int>::max()) ++failures;
  }
  // base * 2^exp > max exactly when base > floor(max / 2^exp); checked this way it cannot overflow.
  if (exp >= 63 || base_.count() > (max_.count() >> exp)) return max_;
  return Duration(base_.count() << exp);
}

void ItemExponentialBackoff::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int ItemExponentialBackoff::retries(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

// TokenBucket

TokenBucket::TokenBucket(double qps, int burst, const Clock& clock)
    : qps_(qps), burst_(std::max(burst, 1)), clock_(clock), tokens_(burst_), last_(clock.now()), last_act_(last_) {}

double TokenBucket::tokensAt(Clock::TimePoint now) const {
  if (now <= last_) return tokens_;
  double elapsed_ns = static_cast<double>(std::chrono::nanoseconds(now - last_).count());
  // Multiplying before dividing keeps whole numbers exact (100 ms at 10 qps is 1 token, not 0.99..).
  return std::min(tokens_ + elapsed_ns * qps_ / 1e9, static_cast<double>(burst_));
}

Duration TokenBucket::durationFromTokens(double tokens) const {
  double ns = std::min(tokens * 1e9 / qps_, 1e18);  // capped near 30 years, far from overflow
  return std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(std::llround(ns)));
}

Clock::TimePoint TokenBucket::reserveLocked(Clock::TimePoint now) {
  double tokens = tokensAt(now) - 1;
  Clock::TimePoint act = now;
  if (tokens < 0) act += durationFromTokens(-tokens);
  tokens_ = tokens;
  last_ = std::max(last_, now);
  last_act_ = act;
  return act;
}

Duration TokenBucket::reserve() {
  if (qps_ <= 0) return Duration::zero();
  std::lock_guard lock(mu_);
  Clock::TimePoint now = clock_.now();
  return reserveLocked(now) - now;
}

Status TokenBucket::wait(const CancelToken& cancel) {
  if (cancel.cancelled()) return Error::local("Cancelled", "cancelled while waiting for a rate limiter token");
  if (qps_ <= 0) return Ok{};
  Clock::TimePoint act;
  {
    std::lock_guard lock(mu_);
    act = reserveLocked(clock_.now());
  }
  if (clock_.sleepUntil(act, cancel)) return Ok{};

  // Give the token back, less whatever later reservations were granted against it
  // (golang.org/x/time/rate's Reservation.CancelAt).
  std::lock_guard lock(mu_);
  Clock::TimePoint now = clock_.now();
  if (act > now) {
    double later = static_cast<double>(std::chrono::nanoseconds(last_act_ - act).count()) * qps_ / 1e9;
    double restore = 1 - later;
    if (restore > 0) {
      tokens_ = std::min(tokensAt(now) + restore, static_cast<double>(burst_));
      last_ = std::max(last_, now);
      if (act == last_act_) {
        Clock::TimePoint previous = act - durationFromTokens(1);
        if (previous >= now) last_act_ = previous;
      }
    }
  }
  return Error::local("Cancelled", "cancelled while waiting for a rate limiter token");
}

// MaxOf

Duration MaxOf::when(const std::string& key) {
  Duration longest = Duration::zero();
  for (auto& limiter : limiters_) longest = std::max(longest, limiter->when(key));
  return longest;
}

void MaxOf::forget(const std::string& key) {
  for (auto& limiter : limiters_) limiter->forget(key);
}

int MaxOf::retries(const std::string& key) const {
  int most = 0;
  for (const auto& limiter : limiters_) most = std::max(most, limiter->retries(key));
  return most;
}

std::unique_ptr<RateLimiter> defaultControllerRateLimiter(const Clock& clock) {
  std::vector<std::unique_ptr<RateLimiter>> limiters;
  limiters.push_back(std::make_unique<ItemExponentialBackoff>());
  limiters.push_back(std::make_unique<BucketRateLimiter>(TokenBucket::kDefaultQps, TokenBucket::kDefaultBurst, clock));
  return std::make_unique<MaxOf>(std::move(limiters));
}

}  // namespace paddock::runtime
