#include "operator/common/cancel.h"

#include <gtest/gtest.h>

#include <thread>

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

}  // namespace
}  // namespace paddock
