#include "controllers/usage.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

using namespace std::chrono_literals;

TEST(UsageBoard, PublishesReadingsAndNamesTheRunsWhoseReadingMoved) {
  UsageBoard board;
  auto t0 = UsageBoard::Clock::now();
  EXPECT_FALSE(board.read("q", "ns/a").polled);
  auto changed = board.publish("q", {{"ns/a", 10}, {"ns/b", 5}}, t0);
  EXPECT_EQ(changed, (std::vector<std::string>{"ns/a", "ns/b"}));
  changed = board.publish("q", {{"ns/a", 12}, {"ns/b", 5}}, t0 + 1s);
  EXPECT_EQ(changed, std::vector<std::string>{"ns/a"}) << "an unchanged reading wakes nobody";
  changed = board.publish("q", {{"ns/a", 12}}, t0 + 2s);
  EXPECT_EQ(changed, std::vector<std::string>{"ns/b"}) << "a vanished series is a change";
  auto r = board.read("q", "ns/a");
  EXPECT_TRUE(r.polled);
  EXPECT_TRUE(r.readable);
  EXPECT_EQ(r.value, 12);
  EXPECT_FALSE(board.read("q", "ns/b").value.has_value());
  EXPECT_FALSE(board.read("other", "ns/a").polled);
}

TEST(UsageBoard, AFailingQueryKeepsTheTimeItStartedFailing) {
  UsageBoard board;
  auto t0 = UsageBoard::Clock::now();
  board.publish("q", {{"ns/a", 10}}, t0);
  EXPECT_TRUE(board.fail("q", "connection refused", t0 + 1s)) << "the first failure is a flip";
  EXPECT_FALSE(board.fail("q", "connection refused", t0 + 2s));
  auto r = board.read("q", "ns/a");
  EXPECT_FALSE(r.readable);
  EXPECT_EQ(r.unreadable_since, t0 + 1s);
  EXPECT_EQ(r.error, "connection refused");
  board.publish("q", {{"ns/a", 11}}, t0 + 3s);
  EXPECT_TRUE(board.read("q", "ns/a").readable);
  EXPECT_TRUE(board.fail("q", "timeout", t0 + 4s));
  EXPECT_EQ(board.read("q", "ns/a").unreadable_since, t0 + 4s) << "a new outage starts its own clock";
}

}  // namespace
}  // namespace paddock::controllers
