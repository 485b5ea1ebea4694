// Budgets end to end: paddock-operator reading usage from a real Prometheus (Debian's, started by
// e2e/prometheus.sh) that scrapes paddock-agent-sim processes on loopback, one per run. A
// "kubelet" thread plays the node for the kwok pods: it lists each pod's simulator as a target with
// the pod's service-discovery labels once the pod exists (as Prometheus's Kubernetes discovery
// would), projects the pod's annotations into the simulator's downward-API directory, and sends
// SIGTERM when the pod is deleted.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "e2e/gateway/harness.h"
#include "e2e/gateway/model_standin.h"
#include "e2e/tests/agent_host.h"
#include "e2e/tests/support.h"
#include "operator/kube/client.h"
#include "operator/prometheus/client.h"

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
    policy_ = *p;
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
  const std::string& policyName() const { return name_; }
  // Waits, on a watch, for the team's AgentPolicy to satisfy `done`.
  json waitPolicy(const std::function<bool(const json&)>& done, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    return watchUntil(rest_, kube::resources::agentpolicies.path("") + "?fieldSelector=metadata.name%3D" + name_,
                      policy_["metadata"]["resourceVersion"], [&](const std::string&, const json& o) { return done(o); },
                      timeout);
  }

  // Starts the run's agent (its simulator), then the run.
  AgentHost& start(const std::string& run, AgentHost::Options agent, json spec_changes = json::object()) {
    agent.agentrun = run;
    agent.ns = ns();
    {
      std::lock_guard lock(mu_);
      hosts_[run] = std::make_unique<AgentHost>(agent);
    }
    startWithoutAgent(run, spec_changes);
    std::lock_guard lock(mu_);
    return *hosts_[run];
  }
  // Starts a run whose agent never reports usage (nothing exports metrics for its pod).
  void startWithoutAgent(const std::string& run, json spec_changes = json::object()) {
    json object = loadYaml(repoPath("crds/samples/run.yaml"));
    object["metadata"] = {{"name", run}};
    object["spec"]["idempotencyKey"] = run;
    object["spec"].merge_patch(spec_changes);
    auto created = client_.create(agentruns, ns(), object);
    if (!created) throw std::runtime_error(created.error().describe());
    created_[run] = *created;
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
        bool deleting = type == "DELETED" || pod["metadata"].contains("deletionTimestamp");
        if (!deleting) host->second->registerPod(pod);  // service discovery finds the pod
        host->second->projectAnnotations(pod["metadata"].value("annotations", json::object()));
        if (deleting) host->second->terminate();
        return false;
      }, std::chrono::seconds(600), stop_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "kubelet watch: " << e.what();
    }
  }

  kube::RestClient& rest_;
  kube::Client& client_;
  std::string name_;
  json policy_;
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
        "--budget-interval", "1s", "--usage-write-interval", "1s", "--prometheus-timeout", "2s",
        "--prometheus-namespace-selector", "kubernetes.io/metadata.name=monitoring",
        "--prometheus-pod-selector", "app.kubernetes.io/name=prometheus"});
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
  // The policy says where its NetworkPolicy is applied (issue 22): in the team's namespace while
  // the run is unfinished, and nowhere needed once it is done.
  auto applied = team.waitPolicy([&](const json& p) {
    auto c = condition(p, "NetworkPoliciesApplied");
    return !c.is_null() && c["reason"] == "Applied";
  });
  ASSERT_FALSE(applied.is_null()) << "the policy never said its NetworkPolicy is applied";
  EXPECT_EQ(condition(applied, "NetworkPoliciesApplied")["status"], "True");
  EXPECT_NE(condition(applied, "NetworkPoliciesApplied")["message"].get<std::string>().find(team.ns()), std::string::npos);
  ASSERT_TRUE(client.mergePatch(pods, team.ns(), "frugal-agent",
                                {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", "0"}}}}}}).ok());
  auto done = team.waitRun("frugal", [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null());
  EXPECT_TRUE(condition(done, "BudgetExceeded").is_null());
  EXPECT_FALSE(team.waitPolicy([](const json& p) { return condition(p, "NetworkPoliciesApplied")["reason"] == "NoActiveRuns"; })
                   .is_null());
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

// Issue 23: a run whose agent never reports is not a run that spends nothing. Its usage is
// unreadable: the condition names the query that has no series for the run's pod, and after the
// policy's grace Terminate ends the run, while Continue lets it go on under its wall clock.
TEST_F(BudgetE2E, ARunWhoseAgentNeverReportsIsUnreadableNotFreeAndEndsPerThePolicy) {
  // The grace covers the time before an agent's first series too (its pod discovered, then scraped):
  // long enough for that on a loaded machine.
  Team strict(*rest, client, {{"budgets", {{"whenMetricsUnavailable", {{"after", "10s"}, {"action", "Terminate"}}}}}});
  Team lenient(*rest, client, {{"budgets", {{"whenMetricsUnavailable", {{"after", "10s"}, {"action", "Continue"}}}}}});
  startOperator();
  strict.startWithoutAgent("silent");
  lenient.startWithoutAgent("silent");

  auto unreadable = strict.waitRun("silent", [](const json& o) {
    auto c = condition(o, "BudgetMetricsAvailable");
    return !c.is_null() && c["status"] == "False" && c.value("message", "").find("returns no series") != std::string::npos;
  });
  ASSERT_FALSE(unreadable.is_null()) << "no usage series, yet the usage counts as readable; "
                                     << testing::PrintToString(op->lines());
  auto c = condition(unreadable, "BudgetMetricsAvailable");
  EXPECT_EQ(c["reason"], "NoUsageSeries");
  const std::string message = c["message"];
  EXPECT_NE(message.find("spec.budgets.metrics.tokens (sum by (namespace, pod, pod_uid)"), std::string::npos) << message;
  EXPECT_NE(message.find("returns no series for the agent pod " + strict.ns() + "/silent-agent"), std::string::npos) << message;

  auto stopped = strict.waitRun("silent", [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(stopped.is_null()) << testing::PrintToString(op->lines());
  auto ended = condition(stopped, "Succeeded");
  EXPECT_EQ(ended["reason"], "MetricsUnavailable");
  EXPECT_NE(ended["message"].get<std::string>().find("returns no series"), std::string::npos) << ended.dump();
  EXPECT_TRUE(eventually([&] { return !client.get(pods, strict.ns(), "silent-agent").ok(); }, std::chrono::seconds(30)));
  // The team's NetworkPolicy, as the API server holds it, lets only the named monitoring pods in,
  // on the agent's metrics port. (That an enforcing network then lets the scrape through needs a
  // real node; kwok's pods have no network.)
  auto np = client.get(kube::resources::networkpolicies, strict.ns(), "paddock-" + strict.policyName());
  ASSERT_TRUE(np.ok()) << np.error().describe();
  EXPECT_EQ((*np)["spec"]["ingress"],
            json::parse(R"([{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                                       "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                              "ports": [{"protocol": "TCP", "port": 9464}]}])"))
      << np->dump();

  // The lenient policy's run has had no series as long, and goes on with the condition False.
  auto lenient_now = lenient.waitRun("silent", [](const json& o) {
    auto c = condition(o, "BudgetMetricsAvailable");
    return !c.is_null() && c["status"] == "False";
  });
  ASSERT_FALSE(lenient_now.is_null());
  EXPECT_NE(condition(lenient_now, "BudgetMetricsAvailable")["message"].get<std::string>().find("Continue"), std::string::npos);
  auto still = client.get(agentruns, lenient.ns(), "silent");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(phaseOf(*still), "Running");
  EXPECT_EQ(condition(*still, "BudgetMetricsAvailable")["status"], "False");
}

// Issue 25: an agent that labels its usage with another run's name charges nobody but its own
// run. The scrape sets namespace, pod and pod_uid from the pod (the agent's own agentrun label
// becomes exported_agentrun), and the operator binds each series to the pod it made.
TEST_F(BudgetE2E, AnAgentExportingAnotherRunsNameCannotEndThatRunAndIsChargedItself) {
  Team team(*rest, client, json::object());
  startOperator();
  team.start("victim", {.tokens_per_second = 20, .usd_per_second = 0.0001}, {{"budget", {{"tokens", 6000}}}});
  ASSERT_FALSE(team.waitRun("victim", [](const json& o) {
                      return phaseOf(o) == "Running" && o.value(json::json_pointer("/status/usage/tokens"), 0) > 0;
                    }).is_null())
      << testing::PrintToString(op->lines());
  // 2000 tokens a second, all labelled agentrun=victim by the agent itself.
  team.start("spoofer", {.claims_run = "victim", .tokens_per_second = 2000, .usd_per_second = 0.0001},
             {{"budget", {{"tokens", 6000}}}});
  auto charged = team.waitRun("spoofer", [](const json& o) { return phaseOf(o) == "BudgetExceeded"; });
  ASSERT_FALSE(charged.is_null()) << "the spoofer's own run was never charged; " << testing::PrintToString(op->lines());
  EXPECT_GE(charged["status"]["usage"]["tokens"].get<int64_t>(), 6000);

  auto victim = client.get(agentruns, team.ns(), "victim");
  ASSERT_TRUE(victim.ok());
  EXPECT_EQ(phaseOf(*victim), "Running") << victim->dump();
  EXPECT_LT(victim->value(json::json_pointer("/status/usage/tokens"), int64_t{0}), 3000) << victim->dump();
  EXPECT_TRUE(condition(*victim, "BudgetExceeded").is_null()) << victim->dump();
  // Prometheus holds the spoofed label, renamed: the agent's claim is kept, but not as agentrun.
  EXPECT_TRUE(prometheusValue("sum(claude_code_token_usage_tokens_total{exported_agentrun=\"victim\",agentrun=\"spoofer\",namespace=\"" +
                              team.ns() + "\"})").has_value());
}

// Issue 25: a query Prometheus refuses is reported on the policy when it is applied (the field
// and Prometheus's error), and the policy's runs name it; a valid policy says so, with the runs it
// governs and its model pin.
TEST_F(BudgetE2E, AnInvalidQueryIsReportedOnThePolicyAndNamedByItsRuns) {
  const std::string bad = "sum by (namespace, pod, pod_uid) (claude_code_token_usage_tokens_total";
  Team broken(*rest, client, {{"budgets", {{"metrics", {{"tokens", bad}}},
                                           {"whenMetricsUnavailable", {{"after", "4s"}, {"action", "Terminate"}}}}}});
  Team fine(*rest, client, json::object());
  startOperator();
  auto queries_valid = [](const json& o) { return condition(o, "QueriesValid"); };
  auto refused = broken.waitPolicy([&](const json& o) { return !queries_valid(o).is_null(); });
  ASSERT_FALSE(refused.is_null()) << testing::PrintToString(op->lines());
  auto c = queries_valid(refused);
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "InvalidQuery");
  EXPECT_NE(c["message"].get<std::string>().find("spec.budgets.metrics.tokens: "), std::string::npos) << c.dump();
  EXPECT_NE(c["message"].get<std::string>().find("parse error"), std::string::npos) << c.dump();
  EXPECT_EQ(refused["status"]["observedGeneration"], refused["metadata"]["generation"]);

  broken.start("doomed", {.tokens_per_second = 10});
  auto unreadable = broken.waitRun("doomed", [](const json& o) {
    auto c = condition(o, "BudgetMetricsAvailable");
    return !c.is_null() && c["status"] == "False";
  });
  ASSERT_FALSE(unreadable.is_null()) << testing::PrintToString(op->lines());
  auto u = condition(unreadable, "BudgetMetricsAvailable");
  EXPECT_EQ(u["reason"], "QueryFailed");
  EXPECT_NE(u["message"].get<std::string>().find("spec.budgets.metrics.tokens (" + bad + ") fails"), std::string::npos)
      << u.dump();
  EXPECT_FALSE(broken.waitRun("doomed", [](const json& o) { return phaseOf(o) == "Failed"; }).is_null());

  fine.startWithoutAgent("counted");
  auto accepted = fine.waitPolicy([&](const json& o) {
    return queries_valid(o).value("status", "") == "True" && o.value(json::json_pointer("/status/runs/active"), 0) == 1;
  });
  ASSERT_FALSE(accepted.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(accepted["status"]["runs"]["governed"], 1);
  EXPECT_EQ(accepted["status"]["modelPin"], "claude-sonnet-4-5");
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
  // The grace covers the time before an agent's first series too (its pod discovered, then scraped):
  // long enough for that on a loaded machine.
  Team strict(*rest, client, {{"budgets", {{"whenMetricsUnavailable", {{"after", "10s"}, {"action", "Terminate"}}}}}});
  Team lenient(*rest, client, {{"budgets", {{"whenMetricsUnavailable", {{"after", "10s"}, {"action", "Continue"}}}}}});
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

// The operator as a scrape target of the e2e Prometheus's paddock-operator job (as the chart's
// ServiceMonitor makes it one), for as long as this object lives.
class OperatorTarget {
 public:
  OperatorTarget(Process& op, const std::string& name)
      : file_(env("PADDOCK_E2E_PROMETHEUS_TARGETS") + "/operator/" + name + ".json") {
    for (const auto& line : op.lines()) {
      json l = json::parse(line, nullptr, false);
      if (l.is_object() && l.value("msg", "").find("serving /healthz") != std::string::npos) port_ = l.value("port", 0);
    }
    if (port_ == 0) throw std::runtime_error("the operator never said which port it serves /metrics on");
    std::filesystem::create_directories(std::filesystem::path(file_).parent_path());
    std::ofstream(file_ + ".tmp") << json::array({{{"targets", {"127.0.0.1:" + std::to_string(port_)}}}}).dump();
    std::filesystem::rename(file_ + ".tmp", file_);
  }
  ~OperatorTarget() { std::filesystem::remove(file_); }
  int port() const { return port_; }

 private:
  std::string file_;
  int port_ = 0;
};

// The team's paddock-gateway as a process on loopback, in front of the scripted Messages API
// stand-in, serving run `run` of `ns` with credential `token` and budget `budget` (a YAML flow
// map); scraped by the e2e Prometheus like the operator, or, after scrapeAs(pod), as the gateway
// pod `pod` that Kubernetes service discovery would find.
class TeamGateway {
 public:
  TeamGateway(const std::string& ns, const std::string& run, const std::string& token = kDashboardToken,
              const std::string& budget = "{tokens: 100000}", const std::string& more_config = "")
      : dir_(std::filesystem::temp_directory_path() / ("paddock-team-gateway-" + randomSuffix())),
        file_(env("PADDOCK_E2E_PROMETHEUS_TARGETS") + "/operator/" + ns + "-gateway.json"), token_(token) {
    standin_.start();
    std::string config = "upstream: " + standin_.url() + "\nmodel: {pin: " + kModel + "}\nprices:\n  " + kModel +
                         ": {input: \"3\", output: \"15\", cacheRead: \"0.30\", cacheWrite: \"3.75\"}\nruns:\n  - {namespace: " +
                         ns + ", name: " + run + ", tokenSHA256: " + gateway::testing::sha256Hex(token) + ", budget: " + budget +
                         "}\n" + more_config;
    gateway_ = std::make_unique<gateway::testing::GatewayProcess>(PADDOCK_GATEWAY_BIN, dir_, "sk-ant-dashboard-key", config);
    writeTarget(json::array({{{"targets", {"127.0.0.1:" + std::to_string(gateway_->port())}}}}));
  }
  ~TeamGateway() {
    std::filesystem::remove(file_);
    gateway_.reset();
    standin_.stop();
    std::filesystem::remove_all(dir_);
  }
  bool ready() const { return gateway_->ready(); }
  std::string log() const { return gateway_->log(); }
  double metric(const std::string& prefix) const { return gateway_->metric(prefix); }
  gateway::testing::ModelStandin& standin() { return standin_; }
  // Scraped from now on by the agents' job, as paddock-gateway's pod `pod` on its http port.
  void scrapeAs(const json& pod) {
    const json& meta = pod["metadata"];
    json labels = {{"__meta_kubernetes_namespace", meta["namespace"]}, {"__meta_kubernetes_pod_name", meta["name"]},
                   {"__meta_kubernetes_pod_uid", meta["uid"]}, {"__meta_kubernetes_pod_container_port_name", "http"}};
    const json pod_labels = meta.value("labels", json::object());
    for (const auto& [k, v] : pod_labels.items()) {
      std::string name = "__meta_kubernetes_pod_label_";
      for (char c : k) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      labels[name] = v;
    }
    std::filesystem::remove(file_);
    file_ = env("PADDOCK_E2E_PROMETHEUS_TARGETS") + "/" + meta["namespace"].get<std::string>() + "_gateway.json";
    writeTarget(json::array({{{"targets", {"127.0.0.1:" + std::to_string(gateway_->port())}}, {"labels", labels}}}));
  }
  // The body of a model call for `model`.
  static std::string requestBody(const std::string& model, int64_t max_tokens) {
    return json{{"model", model}, {"max_tokens", max_tokens}, {"stream", true},
                {"messages", {{{"role", "user"}, {"content", "Summarise the change."}}}}}.dump();
  }
  // One model call for `model`; the status the agent got.
  int call(const std::string& model, int64_t max_tokens = 64) {
    return gateway::testing::httpRequest(gateway_->port(), "POST", "/v1/messages",
                                         {{"x-api-key", token_}, {"content-type", "application/json"},
                                          {"anthropic-version", "2023-06-01"}},
                                         requestBody(model, max_tokens)).status;
  }

  static constexpr const char* kModel = "claude-sonnet-4-5";

 private:
  static constexpr const char* kDashboardToken = "paddock-run-dashboard-token";
  void writeTarget(const json& targets) {
    std::filesystem::create_directories(std::filesystem::path(file_).parent_path());
    std::ofstream(file_ + ".tmp") << targets.dump();
    std::filesystem::rename(file_ + ".tmp", file_);
  }
  std::filesystem::path dir_;
  std::string file_;
  std::string token_;
  gateway::testing::ModelStandin standin_;
  std::unique_ptr<gateway::testing::GatewayProcess> gateway_;
};

// Issue 17: under a policy with spec.gateway, a run's usage is what the team's paddock-gateway
// counted as it relayed the run's model calls (the default budget queries read its counters),
// not what the agent says of itself: here the agent reports 20,000 tokens a second and the run
// is charged exactly what the gateway relayed, checkpointed past 60 %, and ended at 100 %, where
// the gateway refuses further calls. The gateway runs as a process with the run's real credential
// (from the Secret the operator made), scraped as the gateway pod that kwok runs.
TEST_F(BudgetE2E, OnTheGatewayPathUsageIsWhatTheGatewayCountedNotWhatTheAgentReports) {
  Team team(*rest, client,
            json::parse(R"({"budgets": {"checkpointPercent": 60, "metrics": null},
                            "gateway": {"modelKey": {"secretName": "anthropic-api-key", "key": "api-key"},
                                        "prices": {"claude-sonnet-4-5": {"input": "3", "output": "15",
                                                                         "cacheRead": "0.30", "cacheWrite": "3.75"}}}})"));
  startOperator();
  team.start("metered", {.tokens_per_second = 20000, .usd_per_second = 0.0001}, {{"budget", {{"tokens", 1000}}}});
  auto issued = team.waitRun("metered", [](const json& o) {
    return o.value(json::json_pointer("/status/gateway/credentialSHA256"), std::string()).size() == 64;
  });
  ASSERT_FALSE(issued.is_null()) << testing::PrintToString(op->lines());
  const std::string sha = issued["status"]["gateway"]["credentialSHA256"];
  auto secret = client.get(kube::Resource{"", "v1", "secrets", true}, team.ns(), issued["status"]["gateway"]["credentialSecret"]);
  ASSERT_TRUE(secret.ok()) << secret.error().describe();
  const std::string token = base64Decode((*secret)["data"]["credential"]);
  ASSERT_EQ(gateway::testing::sha256Hex(token), sha);

  // The gateway pod the namespace's Deployment made (kwok runs it).
  json gateway_pod;
  ASSERT_TRUE(eventually([&] {
    auto list = client.list(pods, team.ns(), {.label_selector = "paddock.dev/component=gateway"});
    if (!list || list->items.empty()) return false;
    gateway_pod = list->items[0];
    return true;
  }, std::chrono::seconds(60))) << "the namespace's paddock-gateway has no pod";
  // Without the input allowance (inputOverheadTokens), a call reserves its body's bytes and its max_tokens.
  TeamGateway gateway(team.ns(), "metered", token, "{tokens: 1000}", "inputOverheadTokens: 0\n");
  ASSERT_TRUE(gateway.ready()) << gateway.log();
  gateway.scrapeAs(gateway_pod);

  // The run has made no call: the gateway's counters read 0, and that is a reading.
  auto zero = team.waitRun("metered", [](const json& o) {
    return condition(o, "BudgetMetricsAvailable")["status"] == "True" && phaseOf(o) == "Running";
  });
  ASSERT_FALSE(zero.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(zero.value(json::json_pointer("/status/usage/tokens"), int64_t{-1}), 0) << zero["status"].dump();

  // 700 tokens relayed: past the 60 % checkpoint.
  gateway::testing::Turn turn;
  turn.input_tokens = 400;
  turn.output_tokens = 300;
  gateway.standin().setScript({turn});
  ASSERT_EQ(gateway.call(TeamGateway::kModel, 300), 200) << gateway.log();
  auto checkpointed = team.waitRun("metered", [](const json& o) { return !condition(o, "BudgetCheckpoint").is_null(); });
  ASSERT_FALSE(checkpointed.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(checkpointed["status"]["usage"]["tokens"], 700) << "the gateway relayed 700 tokens; the agent claims far more";
  EXPECT_EQ(phaseOf(checkpointed), "Running");
  // A call the gateway refuses (not the pinned model) shows in the run's status by its reason.
  EXPECT_EQ(gateway.call("claude-opus-4-1"), 403) << gateway.log();
  auto refused = team.waitRun("metered", [](const json& o) {
    return o.value(json::json_pointer("/status/usage/refusals/model"), int64_t{0}) == 1;
  });
  ASSERT_FALSE(refused.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(refused["status"]["usage"]["refusals"].size(), 1u) << refused["status"]["usage"].dump();
  // The control: Prometheus holds the agent's own, far larger report for its pod all along.
  auto prometheus = promapi::PrometheusClient::create({env("PADDOCK_E2E_PROMETHEUS_URL")});
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().describe();
  double claimed = 0;
  EXPECT_TRUE(eventually([&] {
    auto r = (*prometheus)->query("sum(claude_code_token_usage_tokens_total{namespace=\"" + team.ns() + "\",pod=\"metered-agent\"})");
    if (!r || r->samples.empty()) return false;
    claimed = r->samples[0].value;
    return claimed > 1000;
  }, std::chrono::seconds(20))) << "the agent's own report never reached Prometheus: " << claimed;

  // The next call may spend only what is left: the gateway clamps its max_tokens to 300 less its
  // input's bound, the answer spends all of it, and the run is at 100 %.
  gateway::testing::Turn rest_of_it;
  rest_of_it.spend_all = true;
  rest_of_it.input_tokens = static_cast<int64_t>(TeamGateway::requestBody(TeamGateway::kModel, 4096).size());
  gateway.standin().setScript({rest_of_it});
  ASSERT_EQ(gateway.call(TeamGateway::kModel, 4096), 200) << gateway.log();
  const double relayed = gateway.metric("paddock_gateway_tokens_total{agentrun=\"metered\"");
  EXPECT_EQ(relayed, 1000) << "the gateway relays up to the cap, not past it";
  auto exceeded = team.waitRun("metered", [](const json& o) { return phaseOf(o) == "BudgetExceeded"; });
  ASSERT_FALSE(exceeded.is_null()) << "relayed " << relayed << "; " << testing::PrintToString(op->lines());
  EXPECT_EQ(exceeded["status"]["usage"]["tokens"].get<double>(), relayed);
  EXPECT_NE(condition(exceeded, "BudgetExceeded")["message"].get<std::string>().find("spec.budget.tokens is spent"), std::string::npos);
  EXPECT_NE(gateway.call(TeamGateway::kModel), 200) << "the gateway relays a call of a run with nothing left";
  EXPECT_EQ(gateway.metric("paddock_gateway_tokens_total{agentrun=\"metered\""), relayed);
}

// Issue 22: every panel of the Grafana dashboard the chart ships returns series from a real
// Prometheus that scrapes the operator, the agents and the team's gateway, after a run was
// checkpointed and then ended for its budget, and the gateway relayed a model call and refused
// one; and scripts/dashboard-png renders the main panels from the same queries.
TEST_F(BudgetE2E, EveryDashboardPanelReturnsSeriesAfterARunAndRendersToPng) {
  Team team(*rest, client, {{"budgets", {{"checkpointPercent", 60}}}});
  startOperator();
  OperatorTarget target(*op, lease_ns->name());
  TeamGateway gateway(team.ns(), "dashboard");
  ASSERT_TRUE(gateway.ready()) << gateway.log();
  EXPECT_EQ(gateway.call("claude-sonnet-4-5"), 200) << gateway.log();
  EXPECT_EQ(gateway.call("claude-opus-4-1"), 403) << "not the pinned model";
  json dashboard = json::parse(readFile(repoPath("charts/paddock/dashboards/paddock.json")));
  std::map<std::string, std::string> empty;  // target's expression -> its panel, until it returns series
  auto query = [&](const json& target) {
    std::string expr = target["expr"];
    for (size_t at; (at = expr.find("$namespace")) != std::string::npos;) expr.replace(at, 10, team.ns());
    return expr;
  };
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& t : panel["targets"]) empty[query(t)] = panel["title"];
  }
  auto look = [&] {
    for (auto it = empty.begin(); it != empty.end();) it = prometheusQuery(it->first).empty() ? std::next(it) : empty.erase(it);
    return empty.empty();
  };

  const auto started = std::chrono::system_clock::now();
  team.start("dashboard", {.tokens_per_second = 400, .usd_per_second = 0.0001}, {{"budget", {{"tokens", 6000}}}});
  // While the run runs: the per-run panels (a run's budget ratio is exported until it ends).
  eventually([&] {
    auto run = client.get(kube::resources::agentruns, team.ns(), "dashboard");
    return look() || (run.ok() && phaseOf(*run) == "BudgetExceeded");
  }, std::chrono::seconds(60));
  ASSERT_FALSE(team.waitRun("dashboard", [](const json& o) { return phaseOf(o) == "BudgetExceeded"; }).is_null())
      << testing::PrintToString(op->lines());
  // After its end: the counters' rates need two scrapes after the event; Prometheus scrapes once a second.
  eventually(look, std::chrono::seconds(60));
  for (const auto& [expr, panel] : empty) ADD_FAILURE() << "panel \"" << panel << "\" returns no series: " << expr;

  auto png = std::filesystem::temp_directory_path() / ("paddock-dashboard-" + randomSuffix() + ".png");
  auto epoch = [](auto t) { return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count()); };
  Process render({repoPath("scripts/dashboard-png"), "--prometheus", env("PADDOCK_E2E_PROMETHEUS_URL"), "--out", png.string(),
                  "--namespace", team.ns(), "--start", epoch(started - std::chrono::seconds(5)),
                  "--end", epoch(std::chrono::system_clock::now())});
  EXPECT_EQ(render.wait(std::chrono::seconds(60)), 0) << testing::PrintToString(render.lines());
  EXPECT_EQ(readFile(png.string()).substr(0, 4), "\x89PNG") << "not a PNG: " << png;
  // PADDOCK_DASHBOARD_PNG=<path> keeps the picture (the README's docs/dashboard.png is made so).
  if (const char* keep = std::getenv("PADDOCK_DASHBOARD_PNG")) std::filesystem::copy_file(png, keep, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(png);
}

}  // namespace
}  // namespace paddock::e2e
