#include "operator/common/duration.h"

#include <gtest/gtest.h>

namespace paddock {
namespace {
using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsGoStyleDurations) {
  struct Case { const char* text; int64_t ms; } cases[] = {
      {"0", 0}, {"0s", 0}, {"250ms", 250}, {"10s", 10'000}, {"45m", 2'700'000},
      {"1h", 3'600'000}, {"1h30m", 5'400'000}, {"1.5h", 5'400'000}, {"2m3s", 123'000},
  };
  for (const auto& c : cases) {
    auto d = parseDuration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDuration, RejectsMalformedText) {
  for (const char* text : {"", "10", "m", "10x", "-5s", "1h-", ".s", "1..5s", "s10", "1 h"}) {
    EXPECT_FALSE(parseDuration(text).has_value()) << text;
  }
}

TEST(ParseDuration, ANumberPastADoublesRangeIsRefusedNotThrown) {
  // The fuzzer's find: 400 digits, then a unit.
  EXPECT_FALSE(parseDuration(std::string(400, '9') + "s").has_value());
  EXPECT_FALSE(parseDuration("1" + std::string(320, '0') + "ms").has_value());
}

TEST(FormatDuration, RoundTrips) {
  for (int64_t ms : {0, 1, 999, 1000, 1500, 61'000, 3'600'000, 5'400'000, 86'400'000}) {
    auto text = formatDuration(milliseconds(ms));
    auto back = parseDuration(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(back->count(), ms) << text;
  }
  EXPECT_EQ(formatDuration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1.5s");
}

}  // namespace
}  // namespace paddock
