#include "images/agent-sim/metrics.h"

#include <gtest/gtest.h>

namespace paddock::agentsim {
namespace {

TEST(AgentSimUsage, GrowsLinearlyAndSplitsTokensIntoInputAndOutput) {
  Rates rates{1000, 0.5, 0};
  Usage u = usageAt(rates, 2.5);
  EXPECT_EQ(u.tokens(), 2500);
  EXPECT_EQ(u.output_tokens, 625);
  EXPECT_EQ(u.input_tokens, 1875);
  EXPECT_DOUBLE_EQ(u.cost_usd, 1.25);
  EXPECT_FALSE(u.reset);
  EXPECT_EQ(usageAt(rates, 0).tokens(), 0);
  EXPECT_EQ(usageAt(rates, -1).tokens(), 0);
  EXPECT_EQ(usageAt(Rates{3, 0, 0}, 1).tokens(), 3);  // 0 output, 3 input: the sum is exact
}

TEST(AgentSimUsage, ResetsOnceToZeroThenGrowsAgain) {
  Rates rates{100, 1, 10};
  EXPECT_EQ(usageAt(rates, 9.99).tokens(), 999);
  Usage after = usageAt(rates, 10);
  EXPECT_TRUE(after.reset);
  EXPECT_EQ(after.tokens(), 0);
  EXPECT_DOUBLE_EQ(after.cost_usd, 0);
  EXPECT_EQ(usageAt(rates, 25).tokens(), 1500);  // not reset a second time at 20
}

TEST(AgentSimResourceAttributes, ParsesPairsTrimmedAndPercentDecoded) {
  auto a = parseResourceAttributes(" agentrun = fix-1 ,namespace=payments,team=a%2Cb,bad,=x");
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a["agentrun"], "fix-1");
  EXPECT_EQ(a["namespace"], "payments");
  EXPECT_EQ(a["team"], "a,b");
  EXPECT_TRUE(parseResourceAttributes("").empty());
}

TEST(AgentSimMetrics, RendersClaudeCodeNamesWithTheRunsLabels) {
  Identity id{"fix-1", "payments", "claude-sonnet-4-5"};
  Usage u{750, 250, 0.125, false};
  std::string text = renderMetrics(id, u, 2);
  EXPECT_NE(text.find("# TYPE claude_code_token_usage_tokens_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("claude_code_token_usage_tokens_total{agentrun=\"fix-1\",namespace=\"payments\","
                      "model=\"claude-sonnet-4-5\",type=\"input\"} 750\n"),
            std::string::npos);
  EXPECT_NE(text.find("claude_code_token_usage_tokens_total{agentrun=\"fix-1\",namespace=\"payments\","
                      "model=\"claude-sonnet-4-5\",type=\"output\"} 250\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE claude_code_cost_usage_USD_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("claude_code_cost_usage_USD_total{agentrun=\"fix-1\",namespace=\"payments\","
                      "model=\"claude-sonnet-4-5\"} 0.125\n"),
            std::string::npos);
  EXPECT_NE(text.find("paddock_agent_checkpoints_total{agentrun=\"fix-1\",namespace=\"payments\"} 2\n"),
            std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(AgentSimMetrics, EscapesLabelValues) {
  EXPECT_EQ(escapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  std::string text = renderMetrics({"r", "n", "m\"x"}, {}, 0);
  EXPECT_NE(text.find("model=\"m\\\"x\""), std::string::npos);
}

}  // namespace
}  // namespace paddock::agentsim
