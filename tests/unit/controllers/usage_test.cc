#include "controllers/usage.h"

#include "controllers/api.h"

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

TEST(UsageBoard, ReadsARunsValuesOfEveryQueryUnderAPrefix) {
  UsageBoard board;
  auto t0 = UsageBoard::Clock::now();
  const std::string prefix = std::string(kGatewayRefusalsQuery) + "\n";
  board.publish(prefix + "mcp_tool", {{"ns/a", 2}, {"ns/b", 1}}, t0);
  board.publish(prefix + "sandbox", {{"ns/a", 3}}, t0);
  board.publish("q", {{"ns/a", 99}}, t0);
  EXPECT_EQ(board.readAll(prefix, "ns/a"), (std::map<std::string, double>{{"mcp_tool", 2}, {"sandbox", 3}}));
  EXPECT_EQ(board.readAll(prefix, "ns/b"), (std::map<std::string, double>{{"mcp_tool", 1}}));
  EXPECT_TRUE(board.readAll(prefix, "ns/c").empty());
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
  RunOfSeries run_of = [](const SeriesSource& s) -> std::optional<std::string> {
    if (s.ns == "team" && s.pod == "fix-agent" && s.uid == "p1") return "team/fix";
    if (s.ns == "team" && s.pod == "spoof-agent" && s.uid == "p2") return "team/spoof";
    return std::nullopt;
  };
  auto bound = bindToRuns({sample({{"namespace", "team"}, {"pod", "fix-agent"}, {"pod_uid", "p1"}}, 100),
                           sample({{"namespace", "team"}, {"pod", "spoof-agent"}, {"pod_uid", "p2"},
                                   {"exported_agentrun", "fix"}}, 5000),
                           sample({{"namespace", "team"}, {"pod", "fix-agent"}, {"pod_uid", "p1"}, {"type", "output"}}, 20),
                           sample({{"namespace", "team"}, {"pod", "fix-agent"}, {"pod_uid", "old"}}, 7),
                           sample({{"agentrun", "fix"}, {"namespace", "team"}}, 9000),
                           // A negative counter would only cancel out the exporting pod's own charge.
                           sample({{"namespace", "team"}, {"pod", "spoof-agent"}, {"pod_uid", "p2"}}, -5000)},
                          run_of);
  EXPECT_EQ(bound.by_run, (std::map<std::string, double>{{"team/fix", 120}, {"team/spoof", 5000}}));
  EXPECT_EQ(bound.negative, 1);
  EXPECT_EQ(bound.unlabelled, 1) << "grouped by labels the agent writes: ignored";
  EXPECT_EQ(bound.unknown_pod, 1) << "a pod UID the operator does not know";
}

json gatewayPod(const std::string& uid) {
  return {{"metadata",
           {{"name", "paddock-gateway-6d9f7-x2x4q"}, {"namespace", "team"}, {"uid", uid},
            {"labels", {{"paddock.dev/component", "gateway"}, {"app.kubernetes.io/name", "paddock-gateway"},
                        {"app.kubernetes.io/managed-by", "paddock"}}},
            {"ownerReferences", json::array({{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "paddock-gateway-6d9f7"},
                                              {"uid", "rs1"}, {"controller", true}}})}}}};
}

TEST(GatewaySeriesRun, TheRunTheGatewaysSeriesNamesOnlyFromTheGatewayPodTheOperatorMade) {
  const SeriesSource series{"team", "paddock-gateway-6d9f7-x2x4q", "g1", "fix", "0123456789ab"};
  auto pod = gatewayPod("g1");
  EXPECT_EQ(gatewaySeriesRun(pod, series), "team/fix");
  EXPECT_FALSE(gatewaySeriesRun(gatewayPod("g2"), series)) << "another pod of the same name";
  auto agent = agentPod("fix-agent", "g1", "fix", "r1");
  EXPECT_FALSE(gatewaySeriesRun(agent, series)) << "an agent pod's own agentrun label names nothing";
  auto unowned = pod;
  unowned["metadata"]["ownerReferences"][0]["name"] = "other-6d9f7";
  EXPECT_FALSE(gatewaySeriesRun(unowned, series)) << "a pod with the gateway's labels not made by its Deployment";
  auto foreign = pod;
  foreign["metadata"]["labels"].erase("app.kubernetes.io/managed-by");
  EXPECT_FALSE(gatewaySeriesRun(foreign, series));
  for (const char* credential : {"", "0123456789AB", "0123456789a", "0123456789abc"}) {
    auto s = series;
    s.credential = credential;
    EXPECT_FALSE(gatewaySeriesRun(pod, s)) << "credential label '" << credential << "'";
  }
  auto s = series;
  s.agentrun = "";
  EXPECT_FALSE(gatewaySeriesRun(pod, s));
  s.agentrun = "other/fix";
  EXPECT_FALSE(gatewaySeriesRun(pod, s)) << "a run in another namespace";
}

TEST(GatewayCredentialIs, OnlyThePrefixOfTheRunsOwnRecordedHash) {
  const std::string sha = "0123456789ab" + std::string(52, 'c');
  json run = {{"status", {{"gateway", {{"credentialSHA256", sha}}}}}};
  EXPECT_TRUE(gatewayCredentialIs(run, "0123456789ab"));
  EXPECT_FALSE(gatewayCredentialIs(run, "ffffffffffff")) << "an earlier namesake's credential";
  EXPECT_FALSE(gatewayCredentialIs(run, "")) << "no credential label";
  EXPECT_FALSE(gatewayCredentialIs(run, "0123")) << "too short a prefix matches too much";
  EXPECT_FALSE(gatewayCredentialIs(json::object(), "0123456789ab")) << "a run without a credential";
  run["status"]["gateway"]["credentialSHA256"] = "0123456789ab";
  EXPECT_FALSE(gatewayCredentialIs(run, "0123456789ab")) << "a malformed recorded hash";
}

TEST(BindToRuns, GatewaySeriesAreChargedToTheRunTheyNameWithTheirCredential) {
  // The gateway's counters of two runs, and its series without the run labels (a histogram per namespace).
  RunOfSeries run_of = [](const SeriesSource& s) -> std::optional<std::string> {
    if (s.pod != "paddock-gateway-6d9f7-x2x4q" || s.credential != "0123456789ab") return std::nullopt;
    return s.ns + "/" + s.agentrun;
  };
  auto gw = [](std::string run, std::string credential, std::string type) {
    return std::map<std::string, std::string>{{"namespace", "team"}, {"pod", "paddock-gateway-6d9f7-x2x4q"}, {"pod_uid", "g1"},
                                              {"agentrun", std::move(run)}, {"credential", std::move(credential)},
                                              {"type", std::move(type)}};
  };
  auto bound = bindToRuns({sample(gw("fix", "0123456789ab", "input"), 400), sample(gw("fix", "0123456789ab", "output"), 300),
                           sample(gw("fix", "ffffffffffff", "input"), 9000)},
                          run_of);
  EXPECT_EQ(bound.by_run, (std::map<std::string, double>{{"team/fix", 700}}));
  EXPECT_EQ(bound.unknown_pod, 1) << "an earlier namesake's credential";
}

TEST(UsageBoard, RemembersHowManySeriesCameWithoutThePodLabels) {
  UsageBoard board;
  board.publish("q", {}, UsageBoard::Clock::now(), 3);
  EXPECT_EQ(board.read("q", "").unlabelled, 3);
}

}  // namespace
}  // namespace paddock::controllers
