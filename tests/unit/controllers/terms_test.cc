#include "controllers/terms.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

AgentPolicy policy(int64_t max_tokens, const char* name = "payments") {
  json spec = json::parse(R"js({
      "namespaceSelector": {"matchLabels": {"paddock.dev/team": "payments"}},
      "images": {"default": "registry.example.com/payments/agent:2.1.4"},
      "model": {"pin": "claude-sonnet-4-5"},
      "egress": [{"cidr": "140.82.112.0/20", "ports": [443]}],
      "budgets": {"default": {"tokens": 1000, "costUSD": "1", "wallClock": "45m"},
                  "checkpointPercent": 70,
                  "metrics": {"tokens": "sum by (agentrun, namespace) (my_tokens)"},
                  "whenMetricsUnavailable": {"after": "2m", "action": "Continue"}},
      "stages": [{"name": "pr", "image": "registry.example.com/platform/paddock-stage:1.0",
                  "approval": {"approvers": {"groups": ["leads"]}}}]
    })js");
  spec["budgets"]["max"] = {{"tokens", max_tokens}};
  auto p = parseAgentPolicy({{"metadata", {{"name", name}}}, {"spec", spec}});
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

AgentRun run(int64_t tokens = 5000) {
  auto r = parseAgentRun({{"metadata", {{"name", "fix"}, {"namespace", "payments"}, {"uid", "run-uid"}}},
                          {"spec", {{"task", "Fix it."}, {"repository", {{"url", "https://github.com/acme/payments"}}},
                                    {"budget", {{"tokens", tokens}}}, {"stages", {"pr"}}}}});
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.value();
}

PolicyChoice governs(const AgentPolicy& p) { return {p, "PolicyResolved", "AgentPolicy " + p.name + " governs namespace payments"}; }
PolicyChoice nobody() { return {std::nullopt, "NoPolicy", "no AgentPolicy selects namespace payments"}; }

// The terms as status.terms holds them after the first write.
Terms recordedAt(int64_t max_tokens) {
  auto p = policy(max_tokens);
  auto r = run();
  auto terms = parseTerms(json{{"terms", termsJson(termsOf(r, p, admit(r, p).effective))}});
  EXPECT_TRUE(terms.has_value());
  return *terms;
}

TEST(Terms, RoundTripThroughStatus) {
  auto t = recordedAt(10000);
  EXPECT_EQ(t.policy, "payments");
  EXPECT_EQ(t.effective.image, "registry.example.com/payments/agent:2.1.4");
  EXPECT_EQ(t.effective.model, "claude-sonnet-4-5");
  EXPECT_EQ(t.effective.tokens, 5000);
  EXPECT_EQ(t.effective.cost_cents, 100);
  EXPECT_EQ(t.effective.wall_clock, std::chrono::minutes(45));
  EXPECT_EQ(t.stages, std::vector<std::string>{"pr"});
  EXPECT_EQ(t.checkpoint_percent, 70);
  EXPECT_EQ(t.tokens_query, "sum by (agentrun, namespace) (my_tokens)");
  EXPECT_EQ(t.metrics_grace, std::chrono::minutes(2));
  EXPECT_TRUE(t.continue_without_metrics);
  EXPECT_FALSE(parseTerms(json::object()).has_value());
  EXPECT_FALSE(parseTerms(json{{"terms", {{"policy", "payments"}}}}).has_value()) << "an unreadable record is no record";
}

TEST(DecideTerms, APolicyEditDecidesOnlyForRunsThatHaveNotStarted) {
  struct Case {
    const char* name;
    bool started;
    bool recorded;
    std::optional<int64_t> max_now;  // the policy's budgets.max.tokens now; nullopt: no policy governs
    bool admitted;
    std::string reason;
    bool changed;
    std::string changed_reason;
  };
  std::vector<Case> cases = {
      {"new run, policy allows", false, false, 10000, true, "Admitted", false, ""},
      {"new run, policy lowered", false, true, 1000, false, "BudgetOverMax", false, ""},
      {"new run, no policy", false, false, std::nullopt, false, "NoPolicy", false, ""},
      {"started, policy unchanged", true, true, 10000, true, "Admitted", false, ""},
      {"started, policy lowered below its budget", true, true, 1000, true, "Admitted", true, "BudgetOverMax"},
      {"started, policy deleted", true, true, std::nullopt, true, "Admitted", true, "NoPolicy"},
      {"started before its terms were recorded", true, false, 10000, true, "Admitted", false, ""},
      {"started, unrecorded, policy lowered", true, false, 1000, true, "Admitted", true, "BudgetOverMax"},
      {"started, unrecorded, no policy", true, false, std::nullopt, false, "NoTerms", false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = run();
    std::optional<AgentPolicy> now;
    if (c.max_now) now = policy(*c.max_now);
    auto choice = now ? governs(*now) : nobody();
    TermsInput in;
    in.run = &r;
    in.started = c.started;
    if (c.recorded) in.recorded = recordedAt(10000);
    in.choice = &choice;
    in.admitted_under = now ? &*now : nullptr;
    auto d = decideTerms(in);
    EXPECT_EQ(d.admitted, c.admitted);
    EXPECT_EQ(d.reason, c.reason) << d.message;
    EXPECT_EQ(d.policy_changed, c.changed) << d.changed_message;
    EXPECT_EQ(d.changed_reason, c.changed_reason);
    if (d.admitted) {
      EXPECT_EQ(d.terms.effective.tokens, 5000) << "the run keeps its own budget";
    }
  }
}

TEST(DecideTerms, AStartedRunKeepsItsRecordedTermsWhateverTheSpecOrPolicySaysNow) {
  auto recorded = recordedAt(10000);
  auto r = run(9000);  // the run's spec raised its own budget after it started
  auto lowered = policy(1000);
  lowered.checkpoint_percent = 10;
  lowered.tokens_query = "vector(0)";
  auto choice = governs(lowered);
  TermsInput in{&r, true, recorded, &choice, &lowered};
  auto d = decideTerms(in);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(d.terms.effective.tokens, 5000);
  EXPECT_EQ(d.policy.checkpoint_percent, 70) << "budgets are read and acted on as recorded";
  EXPECT_EQ(d.policy.tokens_query, "sum by (agentrun, namespace) (my_tokens)");
  EXPECT_EQ(d.policy.egress.size(), 1u) << "the rest comes from the policy as it is now";
  EXPECT_NE(d.changed_message.find("AgentPolicy payments changed and would not admit this run now"), std::string::npos)
      << d.changed_message;
  EXPECT_NE(d.changed_message.find("status.terms"), std::string::npos) << d.changed_message;
}

TEST(DecideTerms, WithItsPolicyGoneAStartedRunKeepsOnlyWhatItsTermsGrant) {
  auto recorded = recordedAt(10000);
  auto r = run();
  auto other = policy(10000, "platform");
  auto choice = governs(other);
  TermsInput in{&r, true, recorded, &choice, nullptr};
  auto d = decideTerms(in);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(d.policy.name, "payments") << "its pods keep their team and NetworkPolicy";
  EXPECT_TRUE(d.policy.egress.empty()) << "egress shrinks to DNS";
  EXPECT_TRUE(d.policy.stages.empty()) << "no gated stage that has not started";
  EXPECT_EQ(d.policy.checkpoint_percent, 70);
  EXPECT_EQ(d.changed_reason, "PolicyReplaced");
  EXPECT_NE(d.changed_message.find("now governed by AgentPolicy platform"), std::string::npos) << d.changed_message;
}

}  // namespace
}  // namespace paddock::controllers
