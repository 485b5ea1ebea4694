#include "operator/runtime/workqueue.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/operator/common/fake_clock.h"

namespace paddock::runtime {
namespace {
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A generous bound on waits for something that should happen at once: a guard against hanging,
// never what a test relies on to pass.
constexpr auto kGuard = seconds(10);

WorkQueueOptions withClock(const Clock& clock) {
  WorkQueueOptions options;
  options.clock = &clock;
  return options;
}

// get() for single-threaded tests: nullopt when no key is ready instead of blocking, so a
// broken queue fails the test rather than hanging it.
std::optional<std::string> take(WorkQueue& q) {
  if (q.len() == 0 && !q.shuttingDown()) return std::nullopt;
  return q.get();
}

TEST(WorkQueue, AddDeduplicatesAndKeepsFifoOrder) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.add("b");
  q.add("a");
  q.add("b");
  q.add("c");
  q.add("a");
  EXPECT_EQ(q.len(), 3u);
  EXPECT_EQ(take(q), "b");
  EXPECT_EQ(take(q), "a");
  EXPECT_EQ(take(q), "c");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, KeyAddedWhileProcessingIsQueuedAgainOnlyWhenDone) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.add("a");
  ASSERT_EQ(take(q), "a");
  q.add("a");
  q.add("a");
  EXPECT_EQ(q.len(), 0u) << "a key being processed must not be handed out again";
  q.add("b");
  ASSERT_EQ(take(q), "b");
  q.done("b");
  EXPECT_EQ(q.len(), 0u);
  q.done("a");
  EXPECT_EQ(q.len(), 1u) << "the add during processing must not be lost";
  EXPECT_EQ(take(q), "a");
  q.done("a");
  EXPECT_EQ(q.len(), 0u) << "processed once more, not once per add";
}

TEST(WorkQueue, DoneWithoutChangesDoesNotRequeue) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.add("a");
  ASSERT_EQ(take(q), "a");
  q.done("a");
  q.done("a");        // twice: ignored
  q.done("unknown");  // never taken: ignored
  EXPECT_EQ(q.len(), 0u);
  q.add("a");
  EXPECT_EQ(q.len(), 1u);
}

TEST(WorkQueue, AddAfterWaitsForTheFakeClock) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.addAfter("a", seconds(1));
  EXPECT_EQ(q.len(), 0u);
  clock.advance(milliseconds(999));
  EXPECT_EQ(q.len(), 0u);
  q.add("now");
  EXPECT_EQ(take(q), "now");
  clock.advance(milliseconds(1));
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(take(q), "a");
}

TEST(WorkQueue, AddAfterKeepsTheEarlierTime) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.addAfter("sooner-second", seconds(10));
  q.addAfter("sooner-second", seconds(1));
  q.addAfter("later-second", seconds(2));
  q.addAfter("later-second", seconds(20));
  clock.advance(seconds(1));
  EXPECT_EQ(q.len(), 1u);
  clock.advance(seconds(1));
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(take(q), "sooner-second");
  EXPECT_EQ(take(q), "later-second");
  q.done("sooner-second");
  q.done("later-second");
  clock.advance(seconds(30));
  EXPECT_EQ(q.len(), 0u) << "the replaced later times must not fire";
}

TEST(WorkQueue, DelayedKeysComeOutInDueOrder) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.addAfter("third", seconds(3));
  q.addAfter("first", seconds(1));
  q.addAfter("second", seconds(2));
  q.addAfter("immediate", Duration::zero());
  clock.advance(seconds(5));
  EXPECT_EQ(take(q), "immediate");
  EXPECT_EQ(take(q), "first");
  EXPECT_EQ(take(q), "second");
  EXPECT_EQ(take(q), "third");
}

TEST(WorkQueue, DelayedKeyAlreadyQueuedIsNotDuplicated) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.addAfter("a", seconds(1));
  q.add("a");
  clock.advance(seconds(1));
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(take(q), "a");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, BlockedGetWakesWhenTheFakeClockReachesADelayedKey) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  // An hour: if advance() failed to wake the getter it would wait an hour of real time, and
  // the guard below would fail the test.
  q.addAfter("a", hours(1));
  auto got = std::async(std::launch::async, [&] { return q.get(); });
  clock.advance(hours(1) - milliseconds(1));
  EXPECT_EQ(got.wait_for(milliseconds(50)), std::future_status::timeout) << "handed out before it was due";
  clock.advance(milliseconds(1));
  bool ready = got.wait_for(kGuard) == std::future_status::ready;
  if (!ready) q.shutDown();  // release the getter so the test can end
  ASSERT_TRUE(ready);
  EXPECT_EQ(got.get(), "a");
}

TEST(WorkQueue, RateLimitedAddsBackOffPerKey) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.addRateLimited("a");
  EXPECT_EQ(q.numRequeues("a"), 1);
  clock.advance(milliseconds(4));
  EXPECT_EQ(q.len(), 0u);
  clock.advance(milliseconds(1));
  ASSERT_EQ(take(q), "a");
  q.done("a");
  q.addRateLimited("a");  // second retry: 10 ms
  clock.advance(milliseconds(9));
  EXPECT_EQ(q.len(), 0u);
  clock.advance(milliseconds(1));
  ASSERT_EQ(take(q), "a");
  q.done("a");
  EXPECT_EQ(q.numRequeues("a"), 2);
  q.forget("a");
  EXPECT_EQ(q.numRequeues("a"), 0);
  q.addRateLimited("a");  // back to 5 ms
  clock.advance(milliseconds(5));
  EXPECT_EQ(q.len(), 1u);
}

TEST(WorkQueue, UsesTheInjectedRateLimiter) {
  FakeClock clock;
  WorkQueueOptions options = withClock(clock);
  options.rate_limiter = std::make_unique<ItemExponentialBackoff>(seconds(1), seconds(2));
  WorkQueue q(std::move(options));
  q.addRateLimited("a");
  clock.advance(milliseconds(999));
  EXPECT_EQ(q.len(), 0u);
  clock.advance(milliseconds(1));
  EXPECT_EQ(q.len(), 1u);
}

TEST(WorkQueue, ShutDownWakesBlockedGetters) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.addAfter("far", hours(1));  // a getter waiting for a delayed key must wake too
  std::vector<std::future<std::optional<std::string>>> getters;
  for (int i = 0; i < 3; ++i) getters.push_back(std::async(std::launch::async, [&] { return q.get(); }));
  EXPECT_EQ(getters[0].wait_for(milliseconds(20)), std::future_status::timeout);
  q.shutDown();
  EXPECT_TRUE(q.shuttingDown());
  for (auto& g : getters) {
    ASSERT_EQ(g.wait_for(kGuard), std::future_status::ready);
    EXPECT_EQ(g.get(), std::nullopt);
  }
  clock.advance(hours(2));
  EXPECT_EQ(q.len(), 0u) << "delayed keys are dropped at shutdown";
}

TEST(WorkQueue, ShutDownDrainsReadyKeysAndRefusesNewOnes) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  q.add("a");
  q.add("b");
  q.add("c");
  ASSERT_EQ(take(q), "a");
  q.add("a");  // dirty while processing
  q.shutDown();
  q.add("d");
  q.addAfter("e", Duration::zero());
  q.addRateLimited("f");
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(take(q), "b");
  EXPECT_EQ(take(q), "c");
  q.done("a");  // the add before shutdown still counts
  EXPECT_EQ(take(q), "a");
  EXPECT_EQ(take(q), std::nullopt);
  EXPECT_EQ(take(q), std::nullopt);
}

TEST(WorkQueue, CancelStopsGetAtOnce) {
  FakeClock clock;
  WorkQueue q(withClock(clock));
  CancelToken cancel;
  auto got = std::async(std::launch::async, [&] { return q.get(cancel); });
  EXPECT_EQ(got.wait_for(milliseconds(20)), std::future_status::timeout);
  cancel.cancel();
  bool ready = got.wait_for(kGuard) == std::future_status::ready;
  if (!ready) q.shutDown();  // release the getter so the test can end
  ASSERT_TRUE(ready);
  EXPECT_EQ(got.get(), std::nullopt);
  q.add("a");
  EXPECT_EQ(q.get(cancel), std::nullopt) << "a cancelled get does not take ready keys";
  EXPECT_EQ(take(q), "a");
}

struct RecordingMetrics : WorkQueueMetrics {
  std::mutex mu;
  std::vector<std::size_t> depths;
  int adds = 0, retries = 0;
  std::vector<Duration> latencies, work;
  void depth(std::size_t n) override { std::lock_guard l(mu); depths.push_back(n); }
  void added() override { std::lock_guard l(mu); ++adds; }
  void retried() override { std::lock_guard l(mu); ++retries; }
  void queueLatency(Duration d) override { std::lock_guard l(mu); latencies.push_back(d); }
  void workDuration(Duration d) override { std::lock_guard l(mu); work.push_back(d); }
};

TEST(WorkQueue, ReportsMetrics) {
  FakeClock clock;
  auto owned = std::make_unique<RecordingMetrics>();
  RecordingMetrics& m = *owned;
  WorkQueueOptions options = withClock(clock);
  options.metrics = std::move(owned);
  WorkQueue q(std::move(options));

  q.add("a");
  q.add("a");  // deduplicated: not an add
  q.add("b");
  clock.advance(milliseconds(3));
  ASSERT_EQ(take(q), "a");
  clock.advance(milliseconds(7));
  q.done("a");
  q.addRateLimited("c");  // 5 ms
  clock.advance(milliseconds(5));
  ASSERT_EQ(take(q), "b");
  ASSERT_EQ(take(q), "c");

  EXPECT_EQ(m.adds, 3);
  EXPECT_EQ(m.retries, 1);
  EXPECT_EQ(m.depths, (std::vector<std::size_t>{1, 2, 1, 2, 1, 0}));
  EXPECT_EQ(m.latencies, (std::vector<Duration>{milliseconds(3), milliseconds(15), Duration::zero()}));
  EXPECT_EQ(m.work, (std::vector<Duration>{milliseconds(7)}));
}

// Many producers and workers on a few keys: a key is never processed by two workers at once,
// and every add is followed by a processing that saw it.
TEST(WorkQueue, NeverHandsAKeyToTwoWorkersAtOnce) {
  constexpr int kKeys = 8, kProducers = 2, kAddsPerProducer = 20'000, kWorkers = 4;
  WorkQueue q;  // the system clock: nothing here waits for time
  std::array<std::atomic<int>, kKeys> in_flight{};
  std::array<std::atomic<int>, kKeys> version{};  // bumped before each add
  std::array<std::atomic<int>, kKeys> seen{};     // the version a processing started from
  std::atomic<int> overlaps{0}, processed{0};

  std::vector<std::jthread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.get()) {
        int k = std::stoi(*key);
        if (in_flight[k].fetch_add(1) != 0) overlaps++;
        int v = version[k].load();
        if (v > seen[k].load()) seen[k].store(v);  // only this worker holds k now
        std::this_thread::yield();
        in_flight[k].fetch_sub(1);
        processed++;
        q.done(*key);
      }
    });
  }
  {
    std::vector<std::jthread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p] {
        for (int i = 0; i < kAddsPerProducer; ++i) {
          int k = (i * 7 + p) % kKeys;
          version[k]++;
          q.add(std::to_string(k));
        }
      });
    }
  }
  q.shutDown();  // drains: every pending key is still processed
  workers.clear();

  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(processed.load(), 0);
  EXPECT_LE(processed.load(), kProducers * kAddsPerProducer);
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(seen[k].load(), version[k].load()) << "key " << k << " lost its last add";
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueueRunWorkers, ProcessesUntilShutDownAndDrained) {
  WorkQueue q;
  for (int i = 0; i < 50; ++i) q.add(std::to_string(i));
  q.shutDown();
  std::mutex mu;
  std::vector<std::string> seen;
  runWorkers(q, 3, [&](const std::string& key) {
    std::lock_guard lock(mu);
    seen.push_back(key);
  });
  EXPECT_EQ(seen.size(), 50u);
}

TEST(WorkQueueRunWorkers, StopsWhenCancelled) {
  WorkQueue q;
  CancelToken cancel;
  std::atomic<int> calls{0};
  auto run = std::async(std::launch::async, [&] {
    runWorkers(q, 2, [&](const std::string&) {
      if (++calls == 3) cancel.cancel();
    }, cancel);
  });
  for (int i = 0; i < 3; ++i) q.add(std::to_string(i));
  bool ready = run.wait_for(kGuard) == std::future_status::ready;
  if (!ready) q.shutDown();  // release the workers so the test can end
  ASSERT_TRUE(ready);
  EXPECT_EQ(calls.load(), 3);
}

}  // namespace
}  // namespace paddock::runtime
