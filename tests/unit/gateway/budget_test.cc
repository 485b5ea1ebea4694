#include "gateway/budget.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace paddock::gateway {
namespace {

const Price kPrice{3000, 15000, 300, 3750};  // $3, $15, $0.30, $3.75 per million tokens

TEST(Budget, CostIsExactPerTokenClass) {
  EXPECT_EQ(costNano(kPrice, Usage{1000, 100, 10, 1}), 1000 * 3000 + 100 * 15000 + 10 * 300 + 3750);
}

TEST(Budget, ReservationTable) {
  struct Case {
    const char* name;
    Account account;
    int64_t input, max_tokens;
    bool granted;
    int64_t granted_max;
  };
  const std::vector<Case> cases = {
      {"no caps: the request as asked", {}, 500, 32000, true, 32000},
      {"token cap clamps output", {{10000, 0}}, 2000, 32000, true, 8000},
      {"spent and reserved both count", {{10000, 0}, 3000, 0, 4000, 0}, 2000, 32000, true, 1000},
      {"cost cap clamps output at the output price", {{0, 1000000000}}, 1000, 200000, true,
       (1000000000 - 1000 * 3750) / 15000},
      {"input alone exceeds what is left: refused", {{1000, 0}}, 1000, 10, false, 0},
      {"nothing left: refused", {{10000, 0}, 10000}, 1, 1, false, 0},
      {"exactly one output token left", {{10000, 0}, 8999}, 1000, 50, true, 1},
      {"cost spent exactly: refused", {{0, 5000000}, 0, 5000000}, 1, 1, false, 0},
  };
  for (const auto& c : cases) {
    auto d = decideReservation(c.account, kPrice, c.input, c.max_tokens);
    ASSERT_EQ(std::holds_alternative<Grant>(d), c.granted) << c.name;
    if (!c.granted) {
      EXPECT_NE(std::get<Refusal>(d).message.find("budget is spent"), std::string::npos) << c.name;
      continue;
    }
    const Grant& g = std::get<Grant>(d);
    EXPECT_EQ(g.max_tokens, c.granted_max) << c.name;
    EXPECT_EQ(g.clamped, c.granted_max < c.max_tokens) << c.name;
    EXPECT_EQ(g.reserved_tokens, c.input + g.max_tokens) << c.name;
    EXPECT_EQ(g.reserved_nano, c.input * 3750 + g.max_tokens * 15000) << c.name;
  }
}

TEST(Budget, SettleReleasesTheReservationAndChargesTheUsage) {
  Ledger ledger;
  ledger.setLimits("ns/run", Limits{100000, 0});
  auto d = ledger.reserve("ns/run", kPrice, 1000, 4000);
  ASSERT_TRUE(std::holds_alternative<Grant>(d));
  EXPECT_EQ(ledger.account("ns/run").reserved_tokens, 5000);
  auto s = ledger.settle("ns/run", std::get<Grant>(d), kPrice, Usage{800, 120, 0, 0});
  EXPECT_EQ(s.tokens, 920);
  EXPECT_EQ(s.over_tokens, 0);
  Account a = ledger.account("ns/run");
  EXPECT_EQ(a.reserved_tokens, 0);
  EXPECT_EQ(a.reserved_nano, 0);
  EXPECT_EQ(a.spent_tokens, 920);
  EXPECT_EQ(a.spent_nano, 800 * 3000 + 120 * 15000);
}

TEST(Budget, UsageBeyondTheReservationIsChargedAndReported) {
  Ledger ledger;
  auto d = ledger.reserve("r", kPrice, 10, 10);
  auto s = ledger.settle("r", std::get<Grant>(d), kPrice, Usage{50, 10, 0, 0});
  EXPECT_EQ(s.over_tokens, 40);
  EXPECT_EQ(ledger.account("r").spent_tokens, 60);
}

TEST(Budget, PercentUsedIsTheTightestCap) {
  EXPECT_EQ(percentUsed(Account{{1000, 0}, 600}), 60);
  EXPECT_EQ(percentUsed(Account{{1000, 1000}, 100, 700}), 70);
  EXPECT_EQ(percentUsed(Account{}), 0);
}

// Fifty calls race for a run's last tokens: whatever each is granted and then spends in full,
// the run never spends more than its cap.
TEST(Budget, ConcurrentCallsNeverOverspendTogether) {
  Ledger ledger;
  const int64_t cap = 100000;
  ledger.setLimits("r", Limits{cap, 0});
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 50; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto d = ledger.reserve("r", kPrice, 300, 4000);
        if (auto* g = std::get_if<Grant>(&d)) {
          ++granted;
          ledger.settle("r", *g, kPrice, Usage{300, g->max_tokens, 0, 0});  // the worst case happens
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Account a = ledger.account("r");
  EXPECT_GT(granted.load(), 20);
  EXPECT_LE(a.spent_tokens, cap);
  EXPECT_EQ(a.reserved_tokens, 0);
  EXPECT_GE(a.spent_tokens, cap - 300);  // what is left cannot hold one more call's input and a token
}

}  // namespace
}  // namespace paddock::gateway
