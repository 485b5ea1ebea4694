// The agent simulator scraped by a real Prometheus (e2e/prometheus.sh, CTest fixture
// "prometheus"), with AgentHost playing the kubelet. No Kubernetes cluster is needed.
#include <gtest/gtest.h>

#include "controllers/api.h"
#include "controllers/usage.h"
#include "e2e/tests/agent_host.h"
#include "operator/prometheus/client.h"

namespace paddock::e2e {
namespace {

using namespace std::chrono_literals;

std::string tokensQuery(const AgentHost::Options& o) {
  return "sum by (agentrun, namespace) (claude_code_token_usage_tokens_total{agentrun=\"" + o.agentrun +
         "\",namespace=\"" + o.ns + "\"})";
}

// Options for a simulator of a fresh run.
AgentHost::Options freshRun() {
  AgentHost::Options o;
  o.agentrun = "sim-" + randomSuffix();
  o.ns = "team-sim";
  return o;
}

TEST(AgentSimPrometheus, ScrapedThenCheckpointsOnTheAnnotationThenStopsOnSigterm) {
  AgentHost::Options o = freshRun();
  o.tokens_per_second = 1000;
  o.usd_per_second = 0.5;
  AgentHost agent(o);
  agent.registerPod(standInPod(o.ns, o.agentrun));

  // Prometheus reads the new target file and scrapes it once a second.
  double first = 0;
  ASSERT_TRUE(eventually([&] { return (first = prometheusValue(tokensQuery(o)).value_or(0)) > 0; }, 15s, 200ms))
      << "Prometheus never had tokens for " << o.agentrun;
  double later = 0;
  EXPECT_TRUE(eventually([&] { return (later = prometheusValue(tokensQuery(o)).value_or(0)) > first; }, 5s, 200ms))
      << "tokens did not grow past " << first;
  std::string cost = "sum by (agentrun, namespace) (claude_code_cost_usage_USD_total{agentrun=\"" + o.agentrun + "\"})";
  EXPECT_GT(prometheusValue(cost).value_or(0), 0);

  // The operator annotates the pod; the kubelet projects it; the agent checkpoints once per request.
  agent.projectAnnotations({{"paddock.dev/checkpoint", "60"}, {"other", "kept"}});
  json checkpoint;
  ASSERT_TRUE(eventually([&] { return !(checkpoint = agent.workspaceFile("checkpoint.json")).is_null(); }, 5s));
  EXPECT_EQ(checkpoint.value("request", ""), "60");
  EXPECT_EQ(checkpoint.value("agentrun", ""), o.agentrun);
  EXPECT_GT(checkpoint.value("tokens", 0), 0);
  EXPECT_FALSE(agent.process().waitForLine([](const std::string& l) { return l.find("\"msg\":\"checkpointed\"") != std::string::npos; }, 5s).empty());
  std::string checkpoints = "paddock_agent_checkpoints_total{agentrun=\"" + o.agentrun + "\",namespace=\"" + o.ns + "\"}";
  EXPECT_TRUE(eventually([&] { return prometheusValue(checkpoints).value_or(0) == 1; }, 5s, 200ms));

  // The pod is deleted: SIGTERM, work in progress written, exit 0, promptly.
  auto stop = std::chrono::steady_clock::now();
  agent.terminate();
  EXPECT_EQ(agent.wait(10s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stop, 2s);
  json wip = agent.workspaceFile("wip.json");
  ASSERT_FALSE(wip.is_null());
  EXPECT_EQ(wip.value("reason", ""), "SIGTERM");
  EXPECT_EQ(wip.value("checkpoints", 0), 1);
  EXPECT_GE(wip.value("tokens", 0), checkpoint.value("tokens", 0));
}

TEST(AgentSimPrometheus, ACounterResetIsSeenAsOneByPrometheus) {
  AgentHost::Options o = freshRun();
  o.tokens_per_second = 1000;
  o.reset_after = 6;  // Prometheus finds a new target within about 2 s: it sees counters before the reset
  AgentHost agent(o);
  agent.registerPod(standInPod(o.ns, o.agentrun));

  double peak = 0;
  ASSERT_TRUE(eventually([&] { return (peak = prometheusValue(tokensQuery(o)).value_or(0)) > 0; }, 15s, 200ms));
  ASSERT_TRUE(agent.process().lines().size() > 0);
  for (const auto& l : agent.process().lines()) {
    ASSERT_EQ(l.find("counters reset"), std::string::npos) << "Prometheus saw the agent only after its reset";
  }
  ASSERT_FALSE(agent.process().waitForLine([](const std::string& l) { return l.find("counters reset") != std::string::npos; }, 10s).empty());
  // The sum goes backwards: what the operator must not copy into a run's usage.
  EXPECT_TRUE(eventually([&] {
    double now = prometheusValue(tokensQuery(o)).value_or(0);
    peak = std::max(peak, now);
    return now < peak;
  }, 10s, 200ms));
  std::string resets = "sum(resets(claude_code_token_usage_tokens_total{agentrun=\"" + o.agentrun + "\"}[1m]))";
  EXPECT_TRUE(eventually([&] { return prometheusValue(resets).value_or(0) > 0; }, 5s, 200ms));
}

TEST(AgentSimPrometheus, ExitsWithItsExitCodeAfterItsDuration) {
  AgentHost::Options o = freshRun();
  o.duration = 0.5;
  o.exit_code = 3;
  AgentHost agent(o);
  agent.registerPod(standInPod(o.ns, o.agentrun));
  EXPECT_EQ(agent.wait(10s), 3);
  EXPECT_TRUE(agent.workspaceFile("wip.json").is_null());
}

// Issue 25: an agent that labels its usage with another run's name. The scrape (the shipped
// relabelling, honor_labels false) keeps the pod's own namespace, pod and pod_uid, renaming the
// agent's claim exported_agentrun; the operator's default query and binding then charge each
// series to the pod that exported it.
TEST(AgentSimPrometheus, ASpoofedRunLabelIsRenamedAndTheDefaultQueryChargesTheExportingPod) {
  AgentHost::Options victim_options = freshRun();
  victim_options.tokens_per_second = 10;
  AgentHost::Options spoofer_options = freshRun();
  spoofer_options.claims_run = victim_options.agentrun;
  spoofer_options.tokens_per_second = 5000;
  AgentHost victim(victim_options), spoofer(spoofer_options);
  json victim_pod = standInPod(victim_options.ns, victim_options.agentrun);
  json spoofer_pod = standInPod(spoofer_options.ns, spoofer_options.agentrun);
  victim.registerPod(victim_pod);
  spoofer.registerPod(spoofer_pod);

  auto client = promapi::PrometheusClient::create({env("PADDOCK_E2E_PROMETHEUS_URL")});
  ASSERT_TRUE(client.ok()) << client.error().describe();
  const std::string victim_key = victim_options.ns + "/" + victim_options.agentrun;
  const std::string spoofer_key = spoofer_options.ns + "/" + spoofer_options.agentrun;
  controllers::RunOfSeries run_of = [&](const controllers::SeriesSource& s) -> std::optional<std::string> {
    for (const json* p : {&victim_pod, &spoofer_pod}) {
      const json& m = (*p)["metadata"];
      if (m["namespace"] == s.ns && m["name"] == s.pod && m["uid"] == s.uid) {
        return s.ns + "/" + m["labels"]["paddock.dev/run"].get<std::string>();
      }
    }
    return std::nullopt;
  };
  controllers::BoundUsage bound;
  ASSERT_TRUE(eventually([&] {
    auto r = (*client)->query(controllers::kDefaultTokensQuery);
    if (!r) return false;
    bound = controllers::bindToRuns(r->samples, run_of);
    return bound.by_run.count(victim_key) && bound.by_run.count(spoofer_key) && bound.by_run[spoofer_key] > 5000;
  }, 15s, 200ms)) << "both agents were never read";
  EXPECT_LT(bound.by_run[victim_key], 1000) << "the spoofer's usage reached the victim";
  EXPECT_EQ(bound.unlabelled, 0);
  // The claim is kept, renamed, beside the labels from the pod.
  std::string renamed = "sum(claude_code_token_usage_tokens_total{exported_agentrun=\"" + victim_options.agentrun +
                        "\",agentrun=\"" + spoofer_options.agentrun + "\",pod_uid=\"" +
                        spoofer_pod["metadata"]["uid"].get<std::string>() + "\"})";
  EXPECT_GT(prometheusValue(renamed).value_or(0), 5000);
}

// Issue 25: how a policy's query is checked. Evaluated at a time before any data, a query
// Prometheus cannot parse comes back as bad_data naming the problem; a valid one costs nothing.
TEST(AgentSimPrometheus, AQueryIsCheckedByEvaluatingItBeforeAnyData) {
  auto client = promapi::PrometheusClient::create({env("PADDOCK_E2E_PROMETHEUS_URL")});
  ASSERT_TRUE(client.ok()) << client.error().describe();
  EXPECT_TRUE((*client)->query(controllers::kDefaultTokensQuery, {}, 1.0).ok());
  auto bad = (*client)->query("sum by (namespace, pod, pod_uid) (claude_code_token_usage_tokens_total", {}, 1.0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().reason, "Prometheus:bad_data");
  EXPECT_EQ(bad.error().code, 400);
  EXPECT_NE(bad.error().message.find("parse error"), std::string::npos) << bad.error().message;
  auto matrix = (*client)->query("claude_code_token_usage_tokens_total[5m]", {}, 1.0);
  ASSERT_FALSE(matrix.ok());
  EXPECT_EQ(matrix.error().reason, "BadResultType");
}

}  // namespace
}  // namespace paddock::e2e
