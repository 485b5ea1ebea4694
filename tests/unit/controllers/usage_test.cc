#include "controllers/usage.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

using nlohmann::json;

using namespace std::chrono_literals;

TEST(UsageBoard, PublishesReadingsAndNamesTheRunsWhoseReadingMoved) {
  UsageBoard board;
  auto t0 = UsageBoard::Clock::now();
  EXPECT_FALSE(board.read("q", "ns/a").polled);
  auto changed = board.publish("q", {{"ns/a", 10}, {"ns/b", 5}}, t0);
  EXPECT_EQ(changed, (std::vector<std::string>{"ns/a", "ns/b"}));
  changed = board.publish("q", {{"ns/a", 12}, {"ns/b", 5}}, t0 + 1s);
  EXPECT_EQ(changed, std::vector<std::string>{"ns/a"}) << "an unchanged reading wakes nobody";
  changed = board.publish("q", {{"ns/a", 12}}, t0 + 2s);
  EXPECT_EQ(changed, std::vector<std::string>{"ns/b"}) << "a vanished series is a change";
  auto r = board.read("q", "ns/a");
  EXPECT_TRUE(r.polled);
  EXPECT_TRUE(r.readable);
  EXPECT_EQ(r.value, 12);
  EXPECT_FALSE(board.read("q", "ns/b").value.has_value());
  EXPECT_FALSE(board.read("other", "ns/a").polled);
}

TEST(UsageBoard, AFailingQueryKeepsTheTimeItStartedFailing) {
  UsageBoard board;
  auto t0 = UsageBoard::Clock::now();
  board.publish("q", {{"ns/a", 10}}, t0);
  EXPECT_TRUE(board.fail("q", "connection refused", t0 + 1s)) << "the first failure is a flip";
  EXPECT_FALSE(board.fail("q", "connection refused", t0 + 2s));
  auto r = board.read("q", "ns/a");
  EXPECT_FALSE(r.readable);
  EXPECT_EQ(r.unreadable_since, t0 + 1s);
  EXPECT_EQ(r.error, "connection refused");
  board.publish("q", {{"ns/a", 11}}, t0 + 3s);
  EXPECT_TRUE(board.read("q", "ns/a").readable);
  EXPECT_TRUE(board.fail("q", "timeout", t0 + 4s));
  EXPECT_EQ(board.read("q", "ns/a").unreadable_since, t0 + 4s) << "a new outage starts its own clock";
}

json agentPod(const std::string& name, const std::string& uid, const std::string& run, const std::string& run_uid) {
  return {{"metadata",
           {{"name", name}, {"namespace", "team"}, {"uid", uid},
            {"labels", {{"paddock.dev/run", run}, {"paddock.dev/stage", "agent"}, {"app.kubernetes.io/managed-by", "paddock"}}},
            {"ownerReferences", json::array({{{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"}, {"name", run},
                                              {"uid", run_uid}, {"controller", true}}})}}}};
}

TEST(AgentPodOwner, OnlyThePodTheOperatorMadeForTheRunByNameAndUid) {
  auto pod = agentPod("fix-agent", "p1", "fix", "r1");
  auto owner = agentPodOwner(pod, "p1");
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->run_key, "team/fix");
  EXPECT_EQ(owner->run_uid, "r1");
  EXPECT_FALSE(agentPodOwner(pod, "p2")) << "another pod of the same name (a recreated one) is not this one";
  EXPECT_FALSE(agentPodOwner(pod, "")) << "a series without a pod UID";
  EXPECT_FALSE(agentPodOwner(agentPod("evil", "p3", "fix", "r1"), "p3")) << "a pod owned by the run but not its agent pod";
  auto stage = pod;
  stage["metadata"]["labels"]["paddock.dev/stage"] = "pr";
  EXPECT_FALSE(agentPodOwner(stage, "p1")) << "a stage pod exports no usage of the agent";
  auto foreign = pod;
  foreign["metadata"]["labels"].erase("app.kubernetes.io/managed-by");
  EXPECT_FALSE(agentPodOwner(foreign, "p1"));
  auto unowned = pod;
  unowned["metadata"]["ownerReferences"][0]["controller"] = false;
  EXPECT_FALSE(agentPodOwner(unowned, "p1"));
}

promapi::Sample sample(std::map<std::string, std::string> labels, double v) { return {std::move(labels), v, 0}; }

TEST(BindToRuns, ChargesASeriesToTheRunOfThePodThatExportedItAndIgnoresTheRest) {
  // The scrape's service discovery sets namespace, pod and pod_uid from the pod; a spoofing
  // agent's own labels (here exported_agentrun naming another run) change nothing.
  RunOfPod run_of = [](const std::string& ns, const std::string& pod, const std::string& uid) -> std::optional<std::string> {
    if (ns == "team" && pod == "fix-agent" && uid == "p1") return "team/fix";
    if (ns == "team" && pod == "spoof-agent" && uid == "p2") return "team/spoof";
    return std::nullopt;
  };
  auto bound = bindToRuns({sample({{"namespace", "team"}, {"pod", "fix-agent"}, {"pod_uid", "p1"}}, 100),
                           sample({{"namespace", "team"}, {"pod", "spoof-agent"}, {"pod_uid", "p2"},
                                   {"exported_agentrun", "fix"}}, 5000),
                           sample({{"namespace", "team"}, {"pod", "fix-agent"}, {"pod_uid", "p1"}, {"type", "output"}}, 20),
                           sample({{"namespace", "team"}, {"pod", "fix-agent"}, {"pod_uid", "old"}}, 7),
                           sample({{"agentrun", "fix"}, {"namespace", "team"}}, 9000)},
                          run_of);
  EXPECT_EQ(bound.by_run, (std::map<std::string, double>{{"team/fix", 120}, {"team/spoof", 5000}}));
  EXPECT_EQ(bound.unlabelled, 1) << "grouped by labels the agent writes: ignored";
  EXPECT_EQ(bound.unknown_pod, 1) << "a pod UID the operator does not know";
}

TEST(UsageBoard, RemembersHowManySeriesCameWithoutThePodLabels) {
  UsageBoard board;
  board.publish("q", {}, UsageBoard::Clock::now(), 3);
  EXPECT_EQ(board.read("q", "").unlabelled, 3);
}

}  // namespace
}  // namespace paddock::controllers
