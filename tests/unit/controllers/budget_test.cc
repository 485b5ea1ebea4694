#include "controllers/budget.h"

#include <gtest/gtest.h>

#include <cmath>

namespace paddock::controllers {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

TEST(Counter, NeverGoesBackwardsWhenTheAgentsCountersRestart) {
  Counter c;
  c = advance(c, 100);
  c = advance(c, 250);
  EXPECT_DOUBLE_EQ(c.total, 250);
  c = advance(c, 40);  // the agent restarted and has used 40 since
  EXPECT_DOUBLE_EQ(c.total, 290);
  c = advance(c, 40);
  EXPECT_DOUBLE_EQ(c.total, 290);
  c = advance(c, 60);
  EXPECT_DOUBLE_EQ(c.total, 310);
  c = advance(c, -5);  // nonsense is ignored
  c = advance(c, std::nan(""));
  EXPECT_DOUBLE_EQ(c.total, 310);
  EXPECT_DOUBLE_EQ(c.last_reading, 60);
}

TEST(Counter, CarriesTheTotalAcrossAnOperatorRestartFromTheSavedPair) {
  // Saved in status: total 1000 at reading 400. The agent has gone on to 700.
  Counter saved{1000, 400};
  EXPECT_DOUBLE_EQ(advance(saved, 700).total, 1300);
  // Or its counters restarted and it is at 50 now.
  EXPECT_DOUBLE_EQ(advance(saved, 50).total, 1050);
}

BudgetInput base() {
  BudgetInput in;
  in.tokens_limit = 1000;
  in.cost_limit_cents = 600;
  in.wall_clock_limit = 100s;
  in.checkpoint_percent = 60;
  return in;
}

TEST(DecideBudget, Table) {
  struct Case {
    const char* name;
    double tokens, usd;
    milliseconds elapsed;
    bool requested;
    std::optional<Metric> exceeded, checkpoint;
    const char* in_message;
  };
  const Case cases[] = {
      {"fresh run", 0, 0, 0s, false, std::nullopt, std::nullopt, ""},
      {"below the soft limit", 599, 3.5, 59s, false, std::nullopt, std::nullopt, ""},
      {"tokens at 60 %", 600, 0, 1s, false, std::nullopt, Metric::Tokens, "spec.budget.tokens is 60% used (600 of 1000 tokens)"},
      {"cost at 75 %", 10, 4.5, 1s, false, std::nullopt, Metric::CostUSD, "spec.budget.costUSD is 75% used ($4.5 of $6)"},
      {"wall clock at 60 %", 0, 0, 60s, false, std::nullopt, Metric::WallClock, "(1m of 1m40s)"},
      {"checkpoint asked once only", 700, 0, 1s, true, std::nullopt, std::nullopt, ""},
      {"tokens spent", 1000, 1, 1s, true, Metric::Tokens, std::nullopt, "spec.budget.tokens is spent: 1000 of 1000 tokens used"},
      {"cost spent before a checkpoint", 0, 6.01, 1s, false, Metric::CostUSD, std::nullopt, "$6.01 of $6"},
      {"the most overspent is named", 1100, 9, 1s, true, Metric::CostUSD, std::nullopt, "spec.budget.costUSD"},
      {"wall clock spent", 0, 0, 100s, true, Metric::WallClock, std::nullopt, "spec.budget.wallClock is spent"},
  };
  for (const auto& c : cases) {
    auto in = base();
    in.tokens = c.tokens;
    in.cost_usd = c.usd;
    in.elapsed = c.elapsed;
    in.checkpoint_requested = c.requested;
    auto d = decideBudget(in);
    EXPECT_EQ(d.exceeded, c.exceeded) << c.name;
    EXPECT_EQ(d.checkpoint, c.checkpoint) << c.name;
    EXPECT_FALSE(d.stop_unreadable) << c.name;
    EXPECT_NE(d.message.find(c.in_message), std::string::npos) << c.name << ": " << d.message;
  }
}

TEST(DecideBudget, UnreadableMetricsStopTheRunAfterTheGraceUnlessThePolicySaysContinue) {
  auto in = base();
  in.grace = 30s;
  in.unreadable_for = 10s;
  auto d = decideBudget(in);
  EXPECT_FALSE(d.stop_unreadable);
  ASSERT_TRUE(d.recheck_after.has_value());
  EXPECT_EQ(*d.recheck_after, 20s) << "looks again when the grace ends";
  in.unreadable_for = 30s;
  d = decideBudget(in);
  EXPECT_TRUE(d.stop_unreadable);
  EXPECT_NE(d.message.find("whenMetricsUnavailable.after (30s)"), std::string::npos) << d.message;
  in.continue_when_unreadable = true;
  d = decideBudget(in);
  EXPECT_FALSE(d.stop_unreadable);
  // The wall clock still applies without metrics.
  in.elapsed = 100s;
  EXPECT_EQ(decideBudget(in).exceeded, Metric::WallClock);
}

TEST(DecideBudget, RechecksWhenTheWallClockReachesTheNextThreshold) {
  auto in = base();
  in.elapsed = 10s;
  EXPECT_EQ(decideBudget(in).recheck_after, milliseconds(50s)) << "the checkpoint at 60 s";
  in.checkpoint_requested = true;
  EXPECT_EQ(decideBudget(in).recheck_after, milliseconds(90s)) << "the limit at 100 s";
  in.wall_clock_limit = 0s;
  EXPECT_FALSE(decideBudget(in).recheck_after.has_value());
}

TEST(DecideBudget, TheStopMessageSaysWhatIsUnreadable) {
  auto in = base();
  in.grace = 30s;
  in.unreadable_for = 31s;
  in.unreadable_cause = "spec.budgets.metrics.tokens (q) returns no series for the agent pod ns/a-agent";
  auto d = decideBudget(in);
  EXPECT_TRUE(d.stop_unreadable);
  EXPECT_NE(d.message.find("(spec.budgets.metrics.tokens (q) returns no series for the agent pod ns/a-agent)"),
            std::string::npos) << d.message;
}

TEST(UsageUnavailable, Table) {
  // A run's usage is available only when every polled query answered with a series for its pod:
  // a query without one is unreadable usage, never zero spend.
  auto q = [](Metric m, bool polled, std::string error, milliseconds failing, bool series, milliseconds missing) {
    return UsageQueryState{m, m == Metric::Tokens ? "tq" : "cq", polled, std::move(error), failing, series, missing};
  };
  struct Case {
    const char* name;
    std::vector<UsageQueryState> queries;
    std::optional<milliseconds> unreadable_for;
    const char* reason;
    std::vector<const char*> in_cause;
  };
  const Case cases[] = {
      {"not read yet: no reading either", {q(Metric::Tokens, false, "", 0s, false, 9s), q(Metric::CostUSD, true, "", 0s, true, 0s)},
       9s, "NoUsageSeries", {"spec.budgets.metrics.tokens (tq) has not been read from Prometheus yet"}},
      {"both have the run's series", {q(Metric::Tokens, true, "", 0s, true, 0s), q(Metric::CostUSD, true, "", 0s, true, 0s)},
       std::nullopt, "", {}},
      {"the agent never reported", {q(Metric::Tokens, true, "", 0s, false, 40s), q(Metric::CostUSD, true, "", 0s, false, 40s)},
       40s, "NoUsageSeries",
       {"spec.budgets.metrics.tokens (tq) returns no series for the agent pod ns/r-agent (uid u1)",
        "spec.budgets.metrics.costUSD (cq) returns no series"}},
      {"only the cost series vanished", {q(Metric::Tokens, true, "", 0s, true, 0s), q(Metric::CostUSD, true, "", 0s, false, 7s)},
       7s, "NoUsageSeries", {"spec.budgets.metrics.costUSD (cq) returns no series"}},
      {"a failing query outranks a missing series",
       {q(Metric::Tokens, true, "Prometheus:bad_data: parse error", 3s, false, 0s), q(Metric::CostUSD, true, "", 0s, false, 9s)},
       9s, "QueryFailed", {"spec.budgets.metrics.tokens (tq) fails: Prometheus:bad_data: parse error", "costUSD (cq) returns no series"}},
  };
  for (const auto& c : cases) {
    auto u = usageUnavailable(c.queries, "ns/r-agent (uid u1)");
    ASSERT_EQ(u.has_value(), c.unreadable_for.has_value()) << c.name;
    if (!u) continue;
    EXPECT_EQ(u->unreadable_for, *c.unreadable_for) << c.name;
    EXPECT_EQ(u->reason, c.reason) << c.name;
    for (const char* part : c.in_cause) EXPECT_NE(u->cause.find(part), std::string::npos) << c.name << ": " << u->cause;
  }
}

TEST(MissingSince, LastSeenElseFirstLookElseSinceRunning) {
  using Clock = std::chrono::system_clock;
  auto t = Clock::from_time_t(1'800'000'000);
  // Seen by this process: missing since then.
  EXPECT_EQ(missingSince(t + 5s, false, t + 1s, t), t + 5s);
  // Reported before this process started (status holds usage): give it a full grace from our first look.
  EXPECT_EQ(missingSince(std::nullopt, true, t + 60s, t), t + 60s);
  // Never reported: missing since the run has been running, even across an operator restart.
  EXPECT_EQ(missingSince(std::nullopt, false, t + 60s, t), t);
  EXPECT_EQ(missingSince(std::nullopt, false, t + 60s, std::nullopt), t + 60s);
}

TEST(Format, DollarsAndDurations) {
  EXPECT_EQ(formatUSD(3.1), "3.1");
  EXPECT_EQ(formatUSD(0.00421), "0.0042");
  EXPECT_EQ(formatUSD(12), "12");
  EXPECT_EQ(formatUSD(-1), "0");
  EXPECT_EQ(formatDuration(45min), "45m");
  EXPECT_EQ(formatDuration(90min), "1h30m");
  EXPECT_EQ(formatDuration(3725s), "1h2m5s");
  EXPECT_EQ(formatDuration(500ms), "500ms");
}

}  // namespace
}  // namespace paddock::controllers
