#include "operator/runtime/rate_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/unit/operator/common/fake_clock.h"

namespace paddock::runtime {
namespace {
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ItemExponentialBackoff, DoublesFromFiveMillisecondsToTheCap) {
  ItemExponentialBackoff backoff;
  Duration expected = milliseconds(5);
  for (int i = 0; i < 18; ++i) {  // 5 ms * 2^17 = 655.36 s, the last step under 1000 s
    EXPECT_EQ(backoff.when("a"), expected) << "retry " << i;
    expected *= 2;
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(backoff.when("a"), seconds(1000)) << "retry " << 18 + i;
  EXPECT_EQ(backoff.retries("a"), 118);
}

TEST(ItemExponentialBackoff, CustomBaseAndMax) {
  ItemExponentialBackoff backoff(milliseconds(1), milliseconds(10));
  std::vector<Duration> got;
  for (int i = 0; i < 6; ++i) got.push_back(backoff.when("k"));
  std::vector<Duration> want = {milliseconds(1), milliseconds(2), milliseconds(4),
                                milliseconds(8), milliseconds(10), milliseconds(10)};
  EXPECT_EQ(got, want);
}

TEST(ItemExponentialBackoff, ForgetStartsOverAndKeysAreIndependent) {
  ItemExponentialBackoff backoff;
  backoff.when("a");
  backoff.when("a");
  EXPECT_EQ(backoff.when("b"), milliseconds(5));
  EXPECT_EQ(backoff.retries("a"), 2);
  EXPECT_EQ(backoff.retries("b"), 1);
  backoff.forget("a");
  EXPECT_EQ(backoff.retries("a"), 0);
  EXPECT_EQ(backoff.when("a"), milliseconds(5));
  EXPECT_EQ(backoff.when("b"), milliseconds(10));
  EXPECT_EQ(backoff.retries("never"), 0);
}

TEST(TokenBucket, BurstThenSpacedByQps) {
  FakeClock clock;
  TokenBucket bucket(10, 3, clock);
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  // Empty: each further token is owed 100 ms after the one before.
  EXPECT_EQ(bucket.reserve(), milliseconds(100));
  EXPECT_EQ(bucket.reserve(), milliseconds(200));
  // 200 ms pays both debts; the next token is 100 ms away again.
  clock.advance(milliseconds(200));
  EXPECT_EQ(bucket.reserve(), milliseconds(100));
  clock.advance(milliseconds(150));
  EXPECT_EQ(bucket.reserve(), milliseconds(50));
}

TEST(TokenBucket, RefillsUpToBurstOnly) {
  FakeClock clock;
  TokenBucket bucket(4, 2, clock);
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), milliseconds(250));
  clock.advance(std::chrono::hours(1));
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), milliseconds(250));
}

TEST(TokenBucket, NonPositiveQpsIsUnlimited) {
  FakeClock clock;
  TokenBucket bucket(0, 1, clock);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_TRUE(bucket.wait().ok());
}

TEST(TokenBucket, ConcurrentReservationsEachGetTheirOwnSlot) {
  FakeClock clock;
  constexpr int kBurst = 5, kThreads = 4, kPerThread = 50;
  TokenBucket bucket(10, kBurst, clock);
  std::mutex mu;
  std::vector<Duration> delays;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) {
          Duration d = bucket.reserve();
          std::lock_guard lock(mu);
          delays.push_back(d);
        }
      });
    }
  }
  // The time is frozen, so the delays are exactly burst zeros then 100 ms, 200 ms, ...
  std::sort(delays.begin(), delays.end());
  ASSERT_EQ(delays.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < delays.size(); ++i) {
    Duration want = i < kBurst ? Duration::zero() : milliseconds(100) * static_cast<int>(i - kBurst + 1);
    ASSERT_EQ(delays[i], want) << "reservation " << i;
  }
}

TEST(TokenBucket, WaitBlocksUntilTheClockReachesTheToken) {
  FakeClock clock;
  TokenBucket bucket(10, 1, clock);
  ASSERT_TRUE(bucket.wait().ok());  // the burst token: no waiting
  auto waited = std::async(std::launch::async, [&] { return bucket.wait(); });
  ASSERT_TRUE(clock.awaitSleepers(1));
  clock.advance(milliseconds(99));
  EXPECT_EQ(waited.wait_for(milliseconds(50)), std::future_status::timeout) << "woke before its token";
  clock.advance(milliseconds(1));
  ASSERT_EQ(waited.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_TRUE(waited.get().ok());
}

TEST(TokenBucket, CancelledWaitFailsAndGivesTheTokenBack) {
  FakeClock clock;
  TokenBucket bucket(10, 1, clock);
  ASSERT_EQ(bucket.reserve(), Duration::zero());
  CancelToken cancel;
  auto waited = std::async(std::launch::async, [&] { return bucket.wait(cancel); });
  ASSERT_TRUE(clock.awaitSleepers(1));
  cancel.cancel();
  ASSERT_EQ(waited.wait_for(seconds(10)), std::future_status::ready);
  Status status = waited.get();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().reason, "Cancelled");
  // The cancelled reservation no longer counts: the next token is 100 ms away, not 200 ms.
  EXPECT_EQ(bucket.reserve(), milliseconds(100));
  EXPECT_FALSE(bucket.wait(cancel).ok());
}

TEST(BackoffAndBucketMaxOf, DefaultControllerLimiterIsBackoffUntilTheBucketRunsDry) {
  FakeClock clock;
  auto limiter = defaultControllerRateLimiter(clock);
  // 100 distinct keys use up the burst; the per-key backoff (5 ms) is the longer delay.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(limiter->when("key-" + std::to_string(i)), milliseconds(5)) << i;
  // Now the bucket (100 ms per token at 10 qps) is longer than a first backoff.
  EXPECT_EQ(limiter->when("key-100"), milliseconds(100));
  EXPECT_EQ(limiter->when("key-0"), milliseconds(200));
  // Backoff grows past the bucket's debt once the bucket has refilled.
  clock.advance(seconds(100));
  EXPECT_EQ(limiter->when("key-0"), milliseconds(20));
  EXPECT_EQ(limiter->retries("key-0"), 3);
  limiter->forget("key-0");
  EXPECT_EQ(limiter->retries("key-0"), 0);
  EXPECT_EQ(limiter->when("key-0"), milliseconds(5));
}

TEST(BackoffAndBucketMaxOf, TakesTheLongestAndTellsEveryLimiter) {
  std::vector<std::unique_ptr<RateLimiter>> parts;
  parts.push_back(std::make_unique<ItemExponentialBackoff>(milliseconds(1), seconds(1)));
  parts.push_back(std::make_unique<ItemExponentialBackoff>(milliseconds(3), milliseconds(5)));
  MaxOf limiter(std::move(parts));
  std::vector<Duration> got;
  for (int i = 0; i < 4; ++i) got.push_back(limiter.when("k"));
  // max(1,3), max(2,5), max(4,5), max(8,5)
  std::vector<Duration> want = {milliseconds(3), milliseconds(5), milliseconds(5), milliseconds(8)};
  EXPECT_EQ(got, want);
  EXPECT_EQ(limiter.retries("k"), 4);
}

}  // namespace
}  // namespace paddock::runtime
