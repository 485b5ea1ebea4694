// AgentRuns end to end: paddock-operator as a process, a policy, runs in a namespace that
// enforces PSA restricted, kwok playing the agent. Pending -> Running -> Succeeded, a failing
// agent, a cancelled run and a refused image, each with conditions and Events a person can act on.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "e2e/tests/run_fixture.h"
#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentruns;

TEST_F(RunE2E, SucceedsWithItsChildrenConditionsAndEvents) {
  auto run = create("ok");
  // The NetworkPolicy exists before the pod does: look for it the moment the pod appears.
  auto pod = watchUntil(*rest, kube::resources::pods.path(ns->name()) + "?fieldSelector=metadata.name%3Dok-agent",
                        run["metadata"]["resourceVersion"], [](const std::string& type, const json&) { return type == "ADDED"; },
                        std::chrono::seconds(60));
  ASSERT_FALSE(pod.is_null()) << testing::PrintToString(op->lines());
  EXPECT_TRUE(client.get(kube::resources::networkpolicies, ns->name(), "paddock-" + team).ok())
      << "the agent pod exists without its team's NetworkPolicy";
  // Its first status write comes with the pod's first event, so it may skip Pending.
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(running, "Admitted")["status"], "True");
  EXPECT_EQ(running["status"]["policy"], team);
  EXPECT_EQ(running["status"]["stages"][0]["pod"], "ok-agent");
  // The task reaches the pod as its own annotation (a downward-API file), with no ConfigMap to write.
  auto agent_pod = client.get(kube::resources::pods, ns->name(), "ok-agent");
  ASSERT_TRUE(agent_pod.ok());
  EXPECT_FALSE(agent_pod->value(json::json_pointer("/metadata/annotations/paddock.dev~1task"), std::string()).empty()) << agent_pod->dump();
  // The team's NetworkPolicy is put back when it is deleted while the run is live.
  ASSERT_TRUE(client.remove(kube::resources::networkpolicies, ns->name(), "paddock-" + team).ok());
  EXPECT_TRUE(eventually([&] { return client.get(kube::resources::networkpolicies, ns->name(), "paddock-" + team).ok(); },
                         std::chrono::seconds(30)))
      << "a live run's NetworkPolicy was deleted and not put back";
  ASSERT_TRUE(eventually([&] { return client.get(kube::resources::pods, ns->name(), "ok-agent").ok(); },
                         std::chrono::seconds(10)));
  // The sample's host rule is not enforced by the NetworkPolicy, and the run says so.
  EXPECT_EQ(condition(running, "HostEgressEnforced")["status"], "False");
  agentExits("ok", 0);
  auto done = waitRun(running, [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(condition(done, "Succeeded")["status"], "True");
  EXPECT_FALSE(done["status"].value("completionTime", "").empty());
  EXPECT_TRUE(eventually([&] {
    auto reasons = eventReasons("ok");
    return std::find(reasons.begin(), reasons.end(), "Completed") != reasons.end();
  }, std::chrono::seconds(30))) << testing::PrintToString(eventReasons("ok"));
  // One Event when the pod was created and one when the run ended; routine progress costs none.
  auto reasons = eventReasons("ok");
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "PodCreated"), reasons.end()) << testing::PrintToString(reasons);
  EXPECT_EQ(std::find(reasons.begin(), reasons.end(), "AgentRunning"), reasons.end()) << testing::PrintToString(reasons);
}

TEST_F(RunE2E, AFailingAgentFailsTheRunWithItsExitCode) {
  auto run = create("bad");
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  ASSERT_TRUE(eventually([&] { return client.get(kube::resources::pods, ns->name(), "bad-agent").ok(); },
                         std::chrono::seconds(10)));
  agentExits("bad", 3);
  auto failed = waitRun(running, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null());
  auto c = condition(failed, "Succeeded");
  EXPECT_EQ(c["reason"], "AgentFailed");
  EXPECT_NE(c["message"].get<std::string>().find("exited with code 3"), std::string::npos) << c.dump();
}

TEST_F(RunE2E, CancelStopsThePodAndEndsCancelled) {
  auto run = create("stop");
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  ASSERT_TRUE(client.mergePatch(agentruns, ns->name(), "stop", {{"spec", {{"cancel", true}}}}).ok());
  auto cancelled = waitRun(running, [](const json& o) { return phaseOf(o) == "Cancelled"; });
  ASSERT_FALSE(cancelled.is_null());
  EXPECT_TRUE(eventually([&] {
    auto p = client.get(kube::resources::pods, ns->name(), "stop-agent");
    return !p.ok() && p.error().code == 404;
  }, std::chrono::seconds(30))) << "the agent pod was not stopped";
}

TEST_F(RunE2E, ARunWhoseIdempotencyKeyAlreadyRanDoesNotRunAgain) {
  auto first = create("first", {{"idempotencyKey", "refund-flake-1"}});
  auto running = waitRun(first, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  agentExits("first", 0);
  ASSERT_FALSE(waitRun(running, [](const json& o) { return phaseOf(o) == "Succeeded"; }).is_null());
  // GitOps re-creates the run under another name with the same key.
  auto again = create("again", {{"idempotencyKey", "refund-flake-1"}});
  auto done = waitRun(again, [](const json& o) { return !phaseOf(o).empty(); });
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(phaseOf(done), "Succeeded");
  auto c = condition(done, "Succeeded");
  EXPECT_EQ(c["reason"], "IdempotencyKeyDone");
  EXPECT_NE(c["message"].get<std::string>().find("already run by AgentRun first"), std::string::npos) << c.dump();
  EXPECT_FALSE(client.get(kube::resources::pods, ns->name(), "again-agent").ok()) << "the task ran again";
}

// A policy asking for more CPU than any kwok node has: the scheduler can place the pod nowhere.
class UnschedulableRunE2E : public RunE2E {
  json policyChanges() override {
    return {{"resources", {{"limits", {{"cpu", "5000"}}}, {"requests", {{"cpu", "5000"}}}}}};
  }
};

TEST_F(UnschedulableRunE2E, AnUnschedulablePodFailsTheRunAfterThePendingDeadline) {
  auto run = create("huge");
  auto failed = waitRun(run, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null()) << testing::PrintToString(op->lines());
  auto c = condition(failed, "Succeeded");
  EXPECT_EQ(c["reason"], "Unschedulable");
  EXPECT_NE(c["message"].get<std::string>().find("spec.resources"), std::string::npos) << c.dump();
  EXPECT_TRUE(eventually([&] { return !client.get(kube::resources::pods, ns->name(), "huge-agent").ok(); },
                         std::chrono::seconds(30))) << "the stuck pod was not removed";
}

TEST_F(RunE2E, ADeletedPodFailsTheRunWithAReason) {
  auto run = create("gone");
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  ASSERT_TRUE(client.remove(kube::resources::pods, ns->name(), "gone-agent", {.grace_period_seconds = 0}).ok());
  auto failed = waitRun(running, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null()) << "the run did not notice its pod was deleted";
  EXPECT_EQ(condition(failed, "Succeeded")["reason"], "PodDeleted");
  // It does not start another pod behind the person who deleted it.
  EXPECT_FALSE(client.get(kube::resources::pods, ns->name(), "gone-agent").ok());
}

TEST_F(RunE2E, AnUnpullableImageFailsTheRunAfterThePendingDeadline) {
  // kwok leaves a pod whose image has the tag :unpullable Pending with ErrImagePull.
  auto run = create("pull", {{"image", "registry.example.com/sample/agent:unpullable"}});
  auto failed = waitRun(run, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null()) << testing::PrintToString(op->lines());
  auto c = condition(failed, "Succeeded");
  EXPECT_EQ(c["reason"], "ImagePullFailed");
  EXPECT_NE(c["message"].get<std::string>().find("ErrImagePull"), std::string::npos) << c.dump();
  EXPECT_NE(c["message"].get<std::string>().find("spec.image"), std::string::npos) << c.dump();
  EXPECT_TRUE(eventually([&] { return !client.get(kube::resources::pods, ns->name(), "pull-agent").ok(); },
                         std::chrono::seconds(30))) << "the stuck pod was not removed";
}

TEST_F(RunE2E, AnEvictedPodFailsTheRunWithTheKubeletsMessage) {
  auto run = create("evicted");
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  ASSERT_TRUE(client.mergePatch(kube::resources::pods, ns->name(), "evicted-agent",
                                {{"metadata", {{"annotations", {{"kwok.paddock.dev/evict", "The node was low on resource: memory."}}}}}})
                  .ok());
  auto failed = waitRun(running, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null());
  auto c = condition(failed, "Succeeded");
  EXPECT_EQ(c["reason"], "Evicted");
  EXPECT_NE(c["message"].get<std::string>().find("low on resource: memory"), std::string::npos) << c.dump();
}

TEST_F(RunE2E, ARefusedImageWaitsWithAConditionNamingTheField) {
  // The API server refuses it when it is applied (paddock-run-policy) ...
  json evil = loadYaml(repoPath("crds/samples/run.yaml"));
  evil["metadata"] = {{"name", "evil"}};
  evil["spec"]["image"] = "docker.io/evil/agent:1";
  auto applied = client.create(agentruns, ns->name(), evil);
  ASSERT_FALSE(applied.ok()) << "the API server let in an image outside the policy's allow-list";
  EXPECT_EQ(applied.error().code, 403);
  EXPECT_NE(applied.error().message.find("spec.image docker.io/evil/agent:1 is not allowed by AgentPolicy " + team),
            std::string::npos) << applied.error().describe();
  // ... and the operator refuses one that got in before its namespace joined the policy.
  auto label = [&](json value) {
    auto r = client.mergePatch(kube::resources::namespaces, "", ns->name(), {{"metadata", {{"labels", {{"paddock.dev/team", value}}}}}});
    ASSERT_TRUE(r.ok()) << r.error().describe();
  };
  label(nullptr);
  // Admission reads the namespace's labels from its own cache: it sees the label gone moments later.
  json run;
  ASSERT_TRUE(eventually([&] {
    auto r = client.create(agentruns, ns->name(), evil);
    if (r) run = *r;
    return r.ok();
  }, std::chrono::seconds(20), std::chrono::milliseconds(200))) << "the run was refused after its namespace left the policy";
  auto admitted = [](const std::string& reason) {
    return [reason](const json& o) {
      json c = condition(o, "Admitted");
      return c.is_object() && c.value("reason", "") == reason;
    };
  };
  ASSERT_FALSE(waitRun(run, admitted("NoPolicy")).is_null());
  label(team);
  auto refused = waitRun(run, admitted("ImageNotAllowed"));
  ASSERT_FALSE(refused.is_null());
  EXPECT_EQ(phaseOf(refused), "Pending");
  auto c = condition(refused, "Admitted");
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "ImageNotAllowed");
  EXPECT_NE(c["message"].get<std::string>().find("spec.image docker.io/evil/agent:1"), std::string::npos);
  EXPECT_FALSE(client.get(kube::resources::pods, ns->name(), "evil-agent").ok()) << "no pod for a refused run";
}

// One run at a time for the team.
class OneAtATimeRunE2E : public RunE2E {
  json policyChanges() override { return {{"concurrency", {{"maxRunning", 1}}}}; }
};

TEST_F(OneAtATimeRunE2E, ARunWaitsForASlotAndStartsWhenTheRunBeforeItFinishes) {
  auto first = create("first");
  auto running = waitRun(first, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  auto second = create("second");
  auto waiting = waitRun(second, [](const json& o) { return !condition(o, "Running").is_null(); });
  ASSERT_FALSE(waiting.is_null());
  EXPECT_EQ(phaseOf(waiting), "Pending");
  auto c = condition(waiting, "Running");
  EXPECT_EQ(c["reason"], "WaitingForSlot");
  EXPECT_NE(c["message"].get<std::string>().find("spec.concurrency.maxRunning"), std::string::npos) << c.dump();
  EXPECT_FALSE(client.get(kube::resources::pods, ns->name(), "second-agent").ok()) << "the slot was not respected";
  agentExits("first", 0);
  // The finished run wakes the waiting one: it starts well before its own 10 s recheck.
  auto started = watchUntil(*rest, kube::resources::pods.path(ns->name()) + "?fieldSelector=metadata.name%3Dsecond-agent",
                            waiting["metadata"]["resourceVersion"],
                            [](const std::string& type, const json&) { return type == "ADDED"; }, std::chrono::seconds(5));
  EXPECT_FALSE(started.is_null()) << "the waiting run did not start when the slot freed";
}

// 200 runs in flight when the operator is killed: a new one takes over from the API server's state.
class RestartRunE2E : public RunE2E {
  json policyChanges() override { return {{"concurrency", {{"maxRunning", 500}}}}; }
  std::vector<std::string> operatorArgs() override {
    return {"--kube-api-qps", "200", "--kube-api-burst", "400", "--leader-election-lease-duration", "4s",
            "--leader-election-renew-deadline", "3s", "--leader-election-retry-period", "500ms"};
  }
};

TEST_F(RestartRunE2E, NoRunEverHasTwoPodsAndEveryRunFinishesAcrossAKill) {
  constexpr int kRuns = 200;
  auto start = client.list(kube::resources::pods, ns->name());
  ASSERT_TRUE(start.ok());
  // Plays the agents: every pod that runs is told to exit, run-<i> with code 3 when i % 10 == 0.
  // Records every pod ever seen per run, by UID.
  std::mutex mu;
  std::map<std::string, std::set<std::string>> pod_uids;  // run -> pod UIDs
  std::set<std::string> told, finished_pods;
  std::atomic<int> pods_seen{0};
  std::thread agents([&] {
    auto agent_client = adminClient();
    kube::Client c{*agent_client, {.qps = 0}};
    watchUntil(*agent_client, kube::resources::pods.path(ns->name()), start->resource_version,
               [&](const std::string& type, const json& pod) {
                 std::string run = pod.value(json::json_pointer("/metadata/labels/paddock.dev~1run"), std::string());
                 std::string name = pod["metadata"].value("name", "");
                 std::string phase = pod.value(json::json_pointer("/status/phase"), std::string());
                 std::lock_guard lock(mu);
                 if (pod_uids[run].insert(pod["metadata"].value("uid", "")).second) ++pods_seen;
                 if (phase == "Running" && told.insert(name).second) {
                   int i = std::stoi(run.substr(run.find('-') + 1));
                   c.mergePatch(kube::resources::pods, ns->name(), name,
                                {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", i % 10 == 0 ? "3" : "0"}}}}}})
                       .ok();
                 }
                 if (phase == "Succeeded" || phase == "Failed") finished_pods.insert(name);
                 return static_cast<int>(finished_pods.size()) == kRuns;
               },
               std::chrono::seconds(240));
  });
  for (int i = 0; i < kRuns; ++i) create("run-" + std::to_string(i));
  // Kill the operator without warning while runs are at every step: waiting, with a pod, done.
  ASSERT_TRUE(eventually([&] { return pods_seen >= kRuns / 3; }, std::chrono::seconds(120)))
      << testing::PrintToString(op->lines());
  op->signal(SIGKILL);
  ASSERT_EQ(op->wait(std::chrono::seconds(10)), 128 + SIGKILL);
  int at_kill = pods_seen;
  op = startOperator();
  ASSERT_TRUE(reconciling(*op))
      << testing::PrintToString(op->lines());

  // Every run reaches the phase its agent's exit code says.
  std::map<std::string, std::string> phases;
  auto list = client.list(agentruns, ns->name());
  ASSERT_TRUE(list.ok());
  auto finished = [&] {
    return std::count_if(phases.begin(), phases.end(),
                         [](const auto& p) { return p.second == "Succeeded" || p.second == "Failed"; }) == kRuns;
  };
  for (const auto& run : list->items) phases[run["metadata"]["name"]] = phaseOf(run);
  if (!finished()) {
    watchUntil(*rest, agentruns.path(ns->name()), list->resource_version, [&](const std::string&, const json& run) {
      phases[run["metadata"]["name"]] = phaseOf(run);
      return finished();
    }, std::chrono::seconds(240));
  }
  agents.join();
  list = client.list(agentruns, ns->name());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), static_cast<size_t>(kRuns));
  for (const auto& run : list->items) {
    std::string name = run["metadata"]["name"];
    int i = std::stoi(name.substr(name.find('-') + 1));
    EXPECT_EQ(phaseOf(run), i % 10 == 0 ? "Failed" : "Succeeded") << name << ": " << run["status"].dump();
    std::lock_guard lock(mu);
    EXPECT_EQ(pod_uids[name].size(), 1u) << name << " had " << pod_uids[name].size() << " pods";
  }
  std::cout << "operator killed with " << at_kill << " of " << kRuns << " agent pods created; every run finished\n";
  EXPECT_GT(at_kill, 0);
  EXPECT_LT(at_kill, kRuns) << "the kill came after every pod existed; it should land mid-flight";
}

}  // namespace
}  // namespace paddock::e2e
