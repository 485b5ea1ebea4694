// Budgets end to end: paddock-operator reading usage from a real Prometheus (Debian's, started by
// e2e/prometheus.sh) that scrapes paddock-agent-sim processes on loopback, one per run. A
// "kubelet" thread plays the node for the kwok pods: it projects each pod's annotations into its
// simulator's downward-API directory and sends SIGTERM when the pod is deleted.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "e2e/tests/agent_host.h"
#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentruns;
using kube::resources::pods;

// One team: a namespace, its policy, and the simulators standing in for its agents.
class Team {
 public:
  Team(kube::RestClient& rest, kube::Client& client, const json& policy_changes)
      : rest_(rest), client_(client), name_("budget-" + randomSuffix()),
        ns_(rest, "budget", json{{"paddock.dev/team", name_}, {"pod-security.kubernetes.io/enforce", "restricted"}}) {
    json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
    policy["metadata"] = {{"name", name_}};
    policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", name_}}}};
    policy["spec"].merge_patch(policy_changes);
    auto p = client_.create(kube::resources::agentpolicies, "", policy);
    if (!p) throw std::runtime_error(p.error().describe());
    auto start = client_.list(pods, ns_.name());
    if (!start) throw std::runtime_error(start.error().describe());
    kubelet_ = std::thread([this, rv = start->resource_version] { playKubelet(rv); });
  }
  ~Team() {
    stop_.cancel();
    kubelet_.join();
    client_.remove(kube::resources::agentpolicies, "", name_).ok();
  }
  const std::string& ns() const { return ns_.name(); }

  // Starts the run's agent (its simulator), then the run.
  AgentHost& start(const std::string& run, AgentHost::Options agent, json spec_changes = json::object()) {
    agent.agentrun = run;
    agent.ns = ns();
    {
      std::lock_guard lock(mu_);
      hosts_[run] = std::make_unique<AgentHost>(agent);
    }
    json object = loadYaml(repoPath("crds/samples/run.yaml"));
    object["metadata"] = {{"name", run}};
    object["spec"]["idempotencyKey"] = run;
    object["spec"].merge_patch(spec_changes);
    auto created = client_.create(agentruns, ns(), object);
    if (!created) throw std::runtime_error(created.error().describe());
    created_[run] = *created;
    std::lock_guard lock(mu_);
    return *hosts_[run];
  }
  // Waits, on a watch, for the run to satisfy `done`.
  json waitRun(const std::string& run, const std::function<bool(const json&)>& done, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    return watchUntil(rest_, agentruns.path(ns()) + "?fieldSelector=metadata.name%3D" + run,
                      created_[run]["metadata"]["resourceVersion"], [&](const std::string&, const json& o) { return done(o); },
                      timeout);
  }
  std::vector<std::string> eventReasons(const std::string& run) {
    std::vector<std::string> out;
    if (auto list = client_.list(kube::resources::events, ns(), {.field_selector = "regarding.name=" + run})) {
      for (const auto& e : list->items) out.push_back(e.value("reason", ""));
    }
    return out;
  }

 private:
  // The node's side of each agent pod: annotations into the downward-API file, SIGTERM on delete.
  void playKubelet(const std::string& rv) {
    try {
      watchUntil(rest_, pods.path(ns()), rv, [&](const std::string& type, const json& pod) {
        std::string run = pod.value(json::json_pointer("/metadata/labels/paddock.dev~1run"), std::string());
        std::lock_guard lock(mu_);
        auto host = hosts_.find(run);
        if (host == hosts_.end()) return false;
        host->second->projectAnnotations(pod["metadata"].value("annotations", json::object()));
        if (type == "DELETED" || pod["metadata"].contains("deletionTimestamp")) host->second->terminate();
        return false;
      }, std::chrono::seconds(600), stop_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "kubelet watch: " << e.what();
    }
  }

  kube::RestClient& rest_;
  kube::Client& client_;
  std::string name_;
  TempNamespace ns_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<AgentHost>> hosts_;  // guarded by mu_
  std::map<std::string, json> created_;
  CancelToken stop_;
  std::thread kubelet_;
};

class BudgetE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    lease_ns = std::make_unique<TempNamespace>(*rest, "budget-lease");
  }
  void startOperator() {
    op = std::make_unique<Process>(std::vector<std::string>{
        env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address", "127.0.0.1:0",
        "--leader-election-namespace", lease_ns->name(), "--prometheus-url", env("PADDOCK_E2E_PROMETHEUS_URL"),
        "--budget-interval", "1s", "--usage-write-interval", "1s", "--prometheus-timeout", "2s"});
    ASSERT_TRUE(reconciling(*op))
        << testing::PrintToString(op->lines());
  }
  void TearDown() override {
    if (op) {
      stopOperator(*op);
    }
    lease_ns.reset();
  }

  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, {.qps = 0}};
  std::unique_ptr<TempNamespace> lease_ns;
  std::unique_ptr<Process> op;
};

TEST_F(BudgetE2E, CheckpointAtTheSoftLimitThenStoppedAtTheLimitNamingTheMetric) {
  Team team(*rest, client, {{"budgets", {{"checkpointPercent", 60}}}});
  startOperator();
  // 400 tokens a second against 6000: the checkpoint near 9 s, the limit near 15 s.
  auto& agent = team.start("spender", {.tokens_per_second = 400, .usd_per_second = 0.0001}, {{"budget", {{"tokens", 6000}}}});
  auto checkpointed = team.waitRun("spender", [](const json& o) { return !condition(o, "BudgetCheckpoint").is_null(); });
  ASSERT_FALSE(checkpointed.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(phaseOf(checkpointed), "Running");
  auto c = condition(checkpointed, "BudgetCheckpoint");
  EXPECT_EQ(c["status"], "True");
  EXPECT_NE(c["message"].get<std::string>().find("spec.budget.tokens"), std::string::npos) << c.dump();
  // The agent sees the request through its downward-API file and checkpoints.
  ASSERT_TRUE(eventually([&] { return !agent.workspaceFile("checkpoint.json").is_null(); }, std::chrono::seconds(20)))
      << "the agent never saw the checkpoint request";

  auto exceeded = team.waitRun("spender", [](const json& o) { return phaseOf(o) == "BudgetExceeded"; });
  ASSERT_FALSE(exceeded.is_null()) << testing::PrintToString(op->lines());
  auto e = condition(exceeded, "BudgetExceeded");
  EXPECT_EQ(e["status"], "True");
  EXPECT_NE(e["message"].get<std::string>().find("spec.budget.tokens is spent"), std::string::npos) << e.dump();
  EXPECT_GE(exceeded["status"]["usage"]["tokens"].get<int64_t>(), 6000);
  // The pod is deleted with a grace period; the agent gets SIGTERM and saves its work.
  EXPECT_EQ(agent.wait(std::chrono::seconds(30)), 0);
  EXPECT_FALSE(agent.workspaceFile("wip.json").is_null()) << "no work in progress saved on SIGTERM";
  EXPECT_TRUE(eventually([&] { return !client.get(pods, team.ns(), "spender-agent").ok(); }, std::chrono::seconds(30)));
  EXPECT_TRUE(eventually([&] {
    auto r = team.eventReasons("spender");
    return std::count(r.begin(), r.end(), "CheckpointRequested") == 1 && std::count(r.begin(), r.end(), "BudgetExceeded") == 1;
  }, std::chrono::seconds(30))) << testing::PrintToString(team.eventReasons("spender"));
}

TEST_F(BudgetE2E, ARunWithinItsBudgetSucceedsWithItsUsageInStatus) {
  Team team(*rest, client, json::object());
  startOperator();
  team.start("frugal", {.tokens_per_second = 50, .usd_per_second = 0.001});
  auto counted = team.waitRun("frugal", [](const json& o) {
    return o.value(json::json_pointer("/status/usage/tokens"), 0) > 0 && phaseOf(o) == "Running";
  });
  ASSERT_FALSE(counted.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(counted, "BudgetMetricsAvailable")["status"], "True");
  EXPECT_TRUE(condition(counted, "BudgetCheckpoint").is_null());
  ASSERT_TRUE(client.mergePatch(pods, team.ns(), "frugal-agent",
                                {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", "0"}}}}}}).ok());
  auto done = team.waitRun("frugal", [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null());
  EXPECT_TRUE(condition(done, "BudgetExceeded").is_null());
}

TEST_F(BudgetE2E, AnAgentWhoseCountersResetNeverMakesUsageGoBackwards) {
  Team team(*rest, client, json::object());
  startOperator();
  // 200 tokens a second; the agent's counters start again from zero after 15 s, well after the
  // operator has read them while the run is Running (under load that can take several seconds).
  team.start("restarts", {.tokens_per_second = 200, .usd_per_second = 0.001, .reset_after = 15});
  int64_t seen = 0, dropped_to = -1;
  // Usage only grows, and once the reset is behind it, the total is the reading behind it (the
  // counter since the reset) plus what was spent before: at least 400 tokens more.
  auto carried = team.waitRun("restarts", [&](const json& o) {
    int64_t total = o.value(json::json_pointer("/status/usage/tokens"), int64_t{0});
    double reading = o.value(json::json_pointer("/status/usage/readings/tokens"), 0.0);
    if (total < seen) dropped_to = total;
    seen = std::max(seen, total);
    return reading > 0 && static_cast<double>(total) >= reading + 400;
  });
  ASSERT_FALSE(carried.is_null()) << "usage never carried the spend from before the reset; last total " << seen << "; "
                                  << testing::PrintToString(op->lines());
  EXPECT_EQ(dropped_to, -1) << "usage went backwards to " << dropped_to;
}

// Stops the test Prometheus, and starts it again however the test ends.
class PrometheusOutage {
 public:
  PrometheusOutage() { EXPECT_EQ(run("down"), 0); }
  ~PrometheusOutage() { EXPECT_EQ(run("up"), 0); }

 private:
  static int run(const std::string& cmd) {
    // The instance's name is its state directory's: $PADDOCK_CACHE/prometheus/NAME/targets.
    std::string targets = env("PADDOCK_E2E_PROMETHEUS_TARGETS");
    std::string dir = targets.substr(0, targets.rfind('/'));
    std::string url = env("PADDOCK_E2E_PROMETHEUS_URL");
    Process p({repoPath("e2e/prometheus.sh"), cmd, "--name", dir.substr(dir.rfind('/') + 1), "--port",
               url.substr(url.rfind(':') + 1)});
    return p.wait(std::chrono::seconds(60));
  }
};

TEST_F(BudgetE2E, WithPrometheusDownTerminateEndsTheRunContinueDoesNotAndTheWallClockStillRules) {
  Team strict(*rest, client, {{"budgets", {{"whenMetricsUnavailable", {{"after", "4s"}, {"action", "Terminate"}}}}}});
  Team lenient(*rest, client, {{"budgets", {{"whenMetricsUnavailable", {{"after", "4s"}, {"action", "Continue"}}}}}});
  startOperator();
  strict.start("strict", {.tokens_per_second = 10});
  lenient.start("lenient", {.tokens_per_second = 10});
  lenient.start("short", {.tokens_per_second = 10}, {{"budget", {{"wallClock", "20s"}}}});
  for (auto [team, run] : {std::pair{&strict, "strict"}, std::pair{&lenient, "lenient"}, std::pair{&lenient, "short"}}) {
    ASSERT_FALSE(team->waitRun(run, [](const json& o) {
                       return phaseOf(o) == "Running" && o.value(json::json_pointer("/status/usage/tokens"), 0) > 0;
                     }).is_null())
        << run;
  }
  PrometheusOutage outage;
  auto unreadable = strict.waitRun("strict", [](const json& o) {
    auto c = condition(o, "BudgetMetricsAvailable");
    return !c.is_null() && c["status"] == "False";
  });
  ASSERT_FALSE(unreadable.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(phaseOf(unreadable), "Running") << "the grace applies first";
  EXPECT_NE(condition(unreadable, "BudgetMetricsAvailable")["message"].get<std::string>().find("Terminate"), std::string::npos);

  auto stopped = strict.waitRun("strict", [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(stopped.is_null());
  auto c = condition(stopped, "Succeeded");
  EXPECT_EQ(c["reason"], "MetricsUnavailable");
  EXPECT_NE(c["message"].get<std::string>().find("whenMetricsUnavailable"), std::string::npos) << c.dump();

  // The lenient team's run has been unreadable as long, and goes on.
  auto lenient_now = client.get(agentruns, lenient.ns(), "lenient");
  ASSERT_TRUE(lenient_now.ok());
  EXPECT_EQ(phaseOf(*lenient_now), "Running");
  EXPECT_EQ(condition(*lenient_now, "BudgetMetricsAvailable")["status"], "False");

  // Its 20 s wall clock is enforced by the operator's own timer all the same.
  auto timed_out = lenient.waitRun("short", [](const json& o) { return phaseOf(o) == "TimedOut"; });
  ASSERT_FALSE(timed_out.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(timed_out, "BudgetExceeded")["reason"], "WallClockExceeded");
  EXPECT_TRUE(eventually([&] { return !client.get(pods, lenient.ns(), "short-agent").ok(); }, std::chrono::seconds(30)));
  EXPECT_EQ(phaseOf(*client.get(agentruns, lenient.ns(), "lenient")), "Running");
}

}  // namespace
}  // namespace paddock::e2e
