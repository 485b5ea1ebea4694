#include "operator/common/cancel.h"

#include <gtest/gtest.h>

#include <thread>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <atomic>

namespace paddock {
namespace {

TEST(CancelToken, RunsCallbacksOnceAndWakesWaiters) {
  CancelToken token;
  int calls = 0;
  auto reg = token.onCancel([&] { ++calls; });
  std::thread waiter([&] { EXPECT_TRUE(token.waitFor(std::chrono::minutes(1))); });
  token.cancel();
  token.cancel();
  waiter.join();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(token.cancelled());
}

TEST(CancelToken, DroppedRegistrationIsNotCalled) {
  CancelToken token;
  int calls = 0;
  { auto reg = token.onCancel([&] { ++calls; }); }
  token.cancel();
  EXPECT_EQ(calls, 0);
}

TEST(CancelToken, RegisteringAfterCancelRunsAtOnce) {
  CancelToken token;
  token.cancel();
  int calls = 0;
  auto reg = token.onCancel([&] { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(CancelToken().waitFor(std::chrono::milliseconds(1)));
}

TEST(CancelToken, DroppingARegistrationWaitsForItsRunningCallback) {
  CancelToken token;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false, finished = false;
  auto reg = std::make_unique<CancelToken::Registration>(token.onCancel([&] {
    std::unique_lock lock(mu);
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    finished = true;
  }));
  std::thread canceller([&] { token.cancel(); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return started; }));
  }
  std::atomic<bool> dropped{false};
  std::thread dropper([&] {
    reg.reset();  // must block until the callback returns
    dropped = true;
  });
  // Without waiting, the drop would finish at once; give it 300 ms to show it does not.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (!dropped.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_FALSE(dropped.load()) << "the registration was dropped while its callback was still running";
  {
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  }
  dropper.join();
  canceller.join();
  EXPECT_TRUE(finished);
  EXPECT_TRUE(dropped.load());
}

TEST(CancelToken, AThrowingCallbackDoesNotStopTheOthers) {
  CancelToken token;
  int calls = 0;
  auto a = token.onCancel([] { throw std::runtime_error("boom"); });
  auto b = token.onCancel([&] { ++calls; });
  token.cancel();
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace paddock
