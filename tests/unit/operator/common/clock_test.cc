#include "operator/common/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "tests/unit/operator/common/fake_clock.h"

namespace paddock {
namespace {
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(SystemClock, SleepUntilReturnsAtOnceForAPastDeadlineAndFailsWhenCancelled) {
  const Clock& clock = systemClock();
  auto before = clock.now();
  EXPECT_TRUE(clock.sleepUntil(before - seconds(1), {}));
  EXPECT_TRUE(clock.sleepFor(milliseconds(1), {}));
  EXPECT_GE(clock.now(), before + milliseconds(1));

  CancelToken cancelled;
  cancelled.cancel();
  EXPECT_FALSE(clock.sleepFor(hours(1), cancelled));
  EXPECT_FALSE(clock.sleepUntil(before - seconds(1), cancelled));
}

TEST(SystemClock, CancelWakesASleeper) {
  CancelToken cancel;
  auto slept = std::async(std::launch::async, [&] { return systemClock().sleepFor(hours(1), cancel); });
  cancel.cancel();
  ASSERT_EQ(slept.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_FALSE(slept.get());
}

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  auto start = clock.now();
  EXPECT_EQ(clock.now(), start);
  clock.advance(milliseconds(250));
  EXPECT_EQ(clock.now() - start, milliseconds(250));
  clock.advance(-seconds(1));  // never backwards
  EXPECT_EQ(clock.now() - start, milliseconds(250));
}

TEST(FakeClock, SleeperWakesWhenTheTimeReachesItsDeadline) {
  FakeClock clock;
  auto deadline = clock.now() + seconds(10);
  auto slept = std::async(std::launch::async, [&] { return clock.sleepUntil(deadline, {}); });
  ASSERT_TRUE(clock.awaitSleepers(1));
  clock.advance(seconds(9));
  EXPECT_EQ(slept.wait_for(milliseconds(50)), std::future_status::timeout) << "woke before its deadline";
  clock.advance(seconds(1));
  ASSERT_EQ(slept.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_TRUE(slept.get());
}

TEST(FakeClock, CancelWakesASleeper) {
  FakeClock clock;
  CancelToken cancel;
  auto slept = std::async(std::launch::async, [&] { return clock.sleepFor(hours(1), cancel); });
  ASSERT_TRUE(clock.awaitSleepers(1));
  cancel.cancel();
  ASSERT_EQ(slept.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_FALSE(slept.get());
}

TEST(FakeClock, TellsSubscribersOfEachAdvanceUntilUnsubscribed) {
  FakeClock clock;
  int calls = 0;
  {
    auto subscription = clock.onAdvance([&] { ++calls; });
    clock.advance(seconds(1));
    clock.advance(seconds(1));
    EXPECT_EQ(calls, 2);
  }
  clock.advance(seconds(1));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace paddock
