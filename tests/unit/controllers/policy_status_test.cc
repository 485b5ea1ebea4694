#include "controllers/policy_status.h"

#include "controllers/policy_checks.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

using nlohmann::json;

json conditionOf(const json& status, const std::string& type) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == type) return c;
  }
  return nullptr;
}

PolicyObservation valid() {
  PolicyObservation seen;
  seen.queries["spec.budgets.metrics.tokens"] = {QueryVerdict::Kind::Valid, "", 0};
  seen.queries["spec.budgets.metrics.costUSD"] = {QueryVerdict::Kind::Valid, "", 0};
  return seen;
}

TEST(PlanPolicyStatus, QueriesValidNamesTheFieldAndPrometheussError) {
  AgentPolicy policy;
  policy.name = "team";
  struct Case {
    const char* name;
    std::function<void(PolicyObservation&)> change;
    const char* status;
    const char* reason;
    std::vector<const char*> in_message;
  };
  const Case cases[] = {
      {"both accepted", [](PolicyObservation&) {}, "True", "Valid", {"spec.budgets.metrics.tokens"}},
      {"a parse error",
       [](PolicyObservation& s) {
         s.queries["spec.budgets.metrics.tokens"] = {QueryVerdict::Kind::Invalid,
                                                     "the query failed: invalid parameter \"query\": 1:15: parse error: "
                                                     "unclosed left parenthesis", 0};
       },
       "False", "InvalidQuery",
       {"spec.budgets.metrics.tokens: the query failed: invalid parameter \"query\": 1:15: parse error",
        "summed by namespace, pod and pod_uid", "whenMetricsUnavailable"}},
      {"series without the pod labels",
       [](PolicyObservation& s) { s.queries["spec.budgets.metrics.costUSD"].unlabelled = 2; },
       "False", "NotGroupedByPod", {"spec.budgets.metrics.costUSD returns 2 series without them"}},
      {"Prometheus not reached yet",
       [](PolicyObservation& s) { s.queries["spec.budgets.metrics.tokens"] = {QueryVerdict::Kind::Unchecked, "refused", 0}; },
       "False", "NotChecked", {"spec.budgets.metrics.tokens: refused"}},
      {"no Prometheus", [](PolicyObservation& s) { s.prometheus = false; }, "False", "NoPrometheus", {"--prometheus-url"}},
  };
  for (const auto& c : cases) {
    auto seen = valid();
    c.change(seen);
    json status = planPolicyStatus(policy, 3, seen, json::object(), "2026-12-07T03:00:00Z");
    json q = conditionOf(status, "QueriesValid");
    ASSERT_FALSE(q.is_null()) << c.name;
    EXPECT_EQ(q["status"], c.status) << c.name;
    EXPECT_EQ(q["reason"], c.reason) << c.name;
    EXPECT_EQ(q["observedGeneration"], 3) << c.name;
    for (const char* part : c.in_message) {
      EXPECT_NE(q["message"].get<std::string>().find(part), std::string::npos) << c.name << ": " << q["message"];
    }
  }
}

TEST(PlanPolicyStatus, RunsModelPinAndGenerationAndNoChangeWhenNothingMoved) {
  AgentPolicy policy;
  policy.name = "team";
  policy.model_pin = "claude-sonnet-4-5";
  auto seen = valid();
  seen.runs = 5;
  seen.active = 2;
  json first = planPolicyStatus(policy, 4, seen, json::object(), "2026-12-07T03:00:00Z");
  EXPECT_EQ(first["runs"], (json{{"governed", 5}, {"active", 2}}));
  EXPECT_EQ(first["modelPin"], "claude-sonnet-4-5");
  EXPECT_EQ(first["observedGeneration"], 4);
  // Later, nothing changed: the same status (the condition keeps its time), so nothing is written.
  EXPECT_EQ(planPolicyStatus(policy, 4, seen, first, "2026-12-07T03:05:00Z"), first);
  policy.model_pin.clear();
  EXPECT_FALSE(planPolicyStatus(policy, 5, seen, first, "2026-12-07T03:05:00Z").contains("modelPin"));
}

TEST(PlanPolicyStatus, PermissiveSaysWhatThePolicyOpensToEverything) {
  AgentPolicy policy;
  policy.name = "team";
  EgressRule everywhere;
  everywhere.cidr = "0.0.0.0/0";
  everywhere.ports = {443};
  policy.egress = {everywhere};
  json open = planPolicyStatus(policy, 1, valid(), json::object(), "2026-12-07T03:00:00Z");
  EXPECT_EQ(conditionOf(open, "Permissive")["status"], "True");
  EXPECT_EQ(conditionOf(open, "Permissive")["reason"], "OpenToAll");
  EXPECT_NE(conditionOf(open, "Permissive")["message"].get<std::string>().find("spec.egress[0]"), std::string::npos)
      << conditionOf(open, "Permissive").dump();
  EXPECT_EQ(conditionOf(open, "Permissive")["message"], [&] {
    std::string m;
    for (const auto& f : permissivePolicyFindings(policy)) m += (m.empty() ? "" : "; ") + f.message;
    return m;
  }()) << "every finding, in order";
}

TEST(VerdictOf, PrometheussVerdictOnTheQueryIsFinalATransportFailureIsNot) {
  using K = QueryVerdict::Kind;
  EXPECT_EQ(verdictOf(promapi::QueryResult{}).kind, K::Valid);
  auto parse = verdictOf(Error{400, "Prometheus:bad_data", "the query failed: 1:15: parse error", std::nullopt});
  EXPECT_EQ(parse.kind, K::Invalid);
  EXPECT_EQ(parse.detail, "the query failed: 1:15: parse error");
  EXPECT_EQ(verdictOf(Error::local("BadResultType", "a matrix")).kind, K::Invalid);
  EXPECT_EQ(verdictOf(Error{401, "BadResponse", "not JSON", std::nullopt}).kind, K::Unchecked) << "a wrong token is not a wrong query";
  EXPECT_EQ(verdictOf(Error::local("ConnectionRefused", "refused")).kind, K::Unchecked);
}

kube::InformerEvent upsert(const std::string& key, const std::string& policy, const std::string& phase) {
  auto o = std::make_shared<const json>(json{{"status", {{"policy", policy}, {"phase", phase}}}});
  return {kube::InformerEvent::Type::Upsert, key, o, nullptr};
}

TEST(PolicyRunCounter, CountsGovernedAndUnfinishedRunsAndNamesThePoliciesThatMoved) {
  PolicyRunCounter counter;
  EXPECT_EQ(counter.observe(upsert("a/one", "team", "Running")), std::vector<std::string>{"team"});
  EXPECT_EQ(counter.observe(upsert("a/two", "team", "Pending")), std::vector<std::string>{"team"});
  EXPECT_EQ(counter.observe(upsert("a/two", "team", "Pending")), std::vector<std::string>{}) << "no change, no wake";
  EXPECT_EQ(counter.counts("team"), (std::pair<int64_t, int64_t>{2, 2}));
  EXPECT_EQ(counter.observe(upsert("a/one", "team", "Succeeded")), std::vector<std::string>{"team"});
  EXPECT_EQ(counter.counts("team"), (std::pair<int64_t, int64_t>{2, 1}));
  EXPECT_EQ(counter.observe(upsert("a/two", "other", "Running")), (std::vector<std::string>{"team", "other"}));
  EXPECT_EQ(counter.counts("other"), (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(counter.observe({kube::InformerEvent::Type::Delete, "a/one", nullptr, nullptr}), std::vector<std::string>{"team"});
  EXPECT_EQ(counter.counts("team"), (std::pair<int64_t, int64_t>{0, 0}));
  EXPECT_EQ(counter.observe(upsert("a/three", "", "Pending")), std::vector<std::string>{}) << "no policy yet";
}


TEST(PlanPolicyStatus, NetworkPoliciesAppliedNamesEveryNamespaceWhereTheTeamPolicyIsMissingOrDiffers) {
  AgentPolicy policy;
  policy.name = "team";
  struct Case {
    const char* name;
    std::vector<NetworkPolicyState> seen;
    const char* status;
    const char* reason;
    std::vector<const char*> in_message;
  };
  const std::vector<Case> cases = {
      {"no unfinished runs", {}, "True", "NoActiveRuns", {"NetworkPolicy paddock-team", "before its first run's pod starts"}},
      {"applied everywhere", {{"a", false, {}}, {"b", false, {}}}, "True", "Applied", {"paddock-team", ": a, b"}},
      {"missing in one", {{"a", false, {}}, {"b", true, {}}}, "False", "NotApplied", {"b (missing)", "holds new pods back"}},
      {"edited in one", {{"a", false, {"spec.egress", "spec.ingress"}}}, "False", "NotApplied",
       {"a (differs in spec.egress, spec.ingress)", "networkpolicies"}},
  };
  for (const auto& c : cases) {
    auto seen = valid();
    seen.network_policies = c.seen;
    json np = conditionOf(planPolicyStatus(policy, 2, seen, json::object(), "2026-12-07T03:00:00Z"), "NetworkPoliciesApplied");
    ASSERT_FALSE(np.is_null()) << c.name;
    EXPECT_EQ(np["status"], c.status) << c.name;
    EXPECT_EQ(np["reason"], c.reason) << c.name;
    for (const char* part : c.in_message) {
      EXPECT_NE(np["message"].get<std::string>().find(part), std::string::npos) << c.name << ": " << np["message"];
    }
    if (std::string(c.reason) == "NotApplied") {
      EXPECT_EQ(np["message"].get<std::string>().find(": a, b"), std::string::npos) << "applied ones are not listed as wrong";
    }
  }
}

TEST(PlanPolicyStatus, GatewaysAppliedNamesEveryNamespaceWhoseGatewayIsNotReady) {
  AgentPolicy policy;
  policy.name = "team";
  // Without spec.gateway the condition is absent, and one left from an earlier spec goes.
  json stale = {{"conditions", {{{"type", "GatewaysApplied"}, {"status", "False"}, {"reason", "NotReady"}}}}};
  EXPECT_TRUE(conditionOf(planPolicyStatus(policy, 2, valid(), stale, "2026-12-07T03:00:00Z"), "GatewaysApplied").is_null());

  policy.gateway = GatewaySpec{.key_secret = "model-key", .key_key = "key"};
  struct Case {
    const char* name;
    std::vector<GatewayState> seen;
    const char* status;
    const char* reason;
    std::vector<const char*> in_message;
  };
  const std::vector<Case> cases = {
      {"no unfinished runs", {}, "True", "NoActiveRuns", {"paddock-gateway is applied in a namespace with its first run"}},
      {"ready everywhere", {{"a", true, "Available", ""}, {"b", true, "Available", ""}}, "True", "Available", {": a, b"}},
      {"not ready in one",
       {{"a", true, "Available", ""}, {"b", false, "ProgressDeadlineExceeded", "the paddock-gateway Deployment has no ready replica"}},
       "False", "NotReady", {"b: ProgressDeadlineExceeded, the paddock-gateway Deployment has no ready replica", "wait for it"}},
  };
  for (const auto& c : cases) {
    auto seen = valid();
    seen.gateways = c.seen;
    json g = conditionOf(planPolicyStatus(policy, 2, seen, json::object(), "2026-12-07T03:00:00Z"), "GatewaysApplied");
    ASSERT_FALSE(g.is_null()) << c.name;
    EXPECT_EQ(g["status"], c.status) << c.name;
    EXPECT_EQ(g["reason"], c.reason) << c.name;
    EXPECT_EQ(g["observedGeneration"], 2) << c.name;
    for (const char* part : c.in_message) {
      EXPECT_NE(g["message"].get<std::string>().find(part), std::string::npos) << c.name << ": " << g["message"];
    }
  }
}

TEST(PolicyRunCounter, ActiveNamespacesAreThoseWithUnfinishedRunsOfThePolicy) {
  PolicyRunCounter counter;
  counter.observe(upsert("b/one", "team", "Running"));
  counter.observe(upsert("a/one", "team", "Pending"));
  counter.observe(upsert("a/two", "team", "Running"));
  counter.observe(upsert("c/one", "team", "Succeeded"));
  counter.observe(upsert("d/one", "other", "Running"));
  EXPECT_EQ(counter.activeNamespaces("team"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(counter.activeNamespaces("other"), std::vector<std::string>{"d"});
  EXPECT_TRUE(counter.activeNamespaces("none").empty());
}

}  // namespace
}  // namespace paddock::controllers
