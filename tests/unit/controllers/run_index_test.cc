#include "controllers/run_index.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

// An AgentRun object as the informer hands it over.
kube::ObjectPtr runObject(const std::string& ns, const std::string& name, const std::string& created,
                          const std::string& phase = "", bool started = false, const std::string& key = "",
                          const std::string& uid = "") {
  json o = {{"apiVersion", "paddock.dev/v1alpha1"},
            {"kind", "AgentRun"},
            {"metadata", {{"namespace", ns}, {"name", name}, {"uid", uid.empty() ? ns + "-" + name : uid},
                          {"creationTimestamp", created}, {"generation", 1}}},
            {"spec", {{"task", "t"}, {"repository", {{"url", "https://example.com/r.git"}}}}}};
  if (!key.empty()) o["spec"]["idempotencyKey"] = key;
  if (!phase.empty()) o["status"]["phase"] = phase;
  if (started) o["status"]["stages"] = json::array({{{"name", "agent"}, {"pod", name + "-agent"}}});
  return std::make_shared<const json>(std::move(o));
}

void put(RunIndex& index, const kube::ObjectPtr& o) {
  index.observe({kube::InformerEvent::Type::Upsert, kube::objectKey(*o), o, nullptr});
}

AgentRun parsed(const kube::ObjectPtr& o) { return parseAgentRun(*o).value(); }

TEST(RunIndex, SlotsAgreeWithConcurrencySlotOverTheTeamsNamespacesOnly) {
  RunIndex index;
  std::vector<kube::ObjectPtr> team = {
      runObject("a", "r1", "2026-12-01T10:00:00Z", "Running", true),
      runObject("a", "r2", "2026-12-01T10:00:01Z", "Pending"),
      runObject("a-b", "r3", "2026-12-01T10:00:02Z", "Pending"),  // sorts before "a/" and is a member
      runObject("a", "r4", "2026-12-01T10:00:03Z", "Succeeded", true),
      runObject("a", "me", "2026-12-01T10:00:04Z", "Pending"),
  };
  std::vector<kube::ObjectPtr> others = {runObject("ab", "x1", "2026-12-01T09:00:00Z", "Running", true),
                                         runObject("z", "x2", "2026-12-01T09:00:00Z", "Pending")};
  for (const auto& o : team) put(index, o);
  for (const auto& o : others) put(index, o);
  auto member = [](const std::string& ns) { return ns == "a" || ns == "a-b"; };
  std::vector<AgentRun> runs;
  for (const auto& o : team) runs.push_back(parsed(o));
  AgentRun me = parsed(team.back());
  for (int max : {1, 2, 3, 4, 10}) {
    SCOPED_TRACE(max);
    auto want = concurrencySlot(me, runs, max);
    auto got = index.slot(me, max, member);
    EXPECT_EQ(got.may_start, want.may_start);
    EXPECT_EQ(got.active, want.active);
    EXPECT_EQ(got.position, want.position);
    EXPECT_EQ(got.message, want.message);
  }
  EXPECT_EQ(index.slot(me, 3, member).active, 1) << "r1 only: the other namespaces' runs are not the team's";
  EXPECT_EQ(index.slot(me, 3, member).position, 3) << "behind r2 and r3";
}

TEST(RunIndex, AStartedRunStaysStartedForItsUidOnly) {
  RunIndex index;
  auto waiting = runObject("a", "r", "2026-12-01T10:00:00Z", "Pending");
  put(index, waiting);
  auto me = parsed(runObject("a", "me", "2026-12-01T10:00:05Z", "Pending"));
  auto all = [](const std::string&) { return true; };
  EXPECT_EQ(index.slot(me, 1, all).active, 0);
  index.markStarted("a/r", "a-r");
  EXPECT_EQ(index.slot(me, 1, all).active, 1) << "its pod was created: it holds the slot";
  put(index, waiting);  // an event from before the run's status said so
  EXPECT_EQ(index.slot(me, 1, all).active, 1) << "started never reverts";
  put(index, runObject("a", "r", "2026-12-01T10:00:09Z", "Pending", false, "", "new-uid"));
  EXPECT_EQ(index.slot(me, 1, all).active, 0) << "a new run of the same name starts afresh";
  index.markStarted("a/r", "other-uid");
  EXPECT_EQ(index.slot(me, 1, all).active, 0) << "a mark for another uid is ignored";
}

TEST(RunIndex, IdempotencyKeysWaitingRunsAndKeysByNamespace) {
  RunIndex index;
  put(index, runObject("a", "first", "2026-12-01T10:00:00Z", "Succeeded", true, "k"));
  put(index, runObject("a", "other", "2026-12-01T10:00:00Z", "Running", true, "j"));
  put(index, runObject("ab", "elsewhere", "2026-12-01T10:00:00Z", "Succeeded", true, "k"));
  auto same = index.withIdempotencyKey("a", "k");
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].name, "first");
  EXPECT_EQ(same[0].phase, "Succeeded");
  EXPECT_EQ(index.keys("a"), (std::vector<std::string>{"a/first", "a/other"}));
  EXPECT_EQ(index.keys().size(), 3u);

  json w = *runObject("a", "queued", "2026-12-01T10:00:00Z", "Pending");
  w["status"]["conditions"] = json::array({{{"type", "Running"}, {"status", "False"}, {"reason", "WaitingForSlot"}}});
  auto queued = std::make_shared<const json>(w);
  put(index, queued);
  EXPECT_EQ(index.waitingForSlot(), std::vector<std::string>{"a/queued"});
  index.observe({kube::InformerEvent::Type::Delete, "a/queued", queued, nullptr});
  EXPECT_TRUE(index.waitingForSlot().empty());
  EXPECT_EQ(index.size(), 3u);
}

TEST(RunIndex, CountsRunsByNamespaceAndPhase) {
  RunIndex index;
  put(index, runObject("a", "r1", "2026-12-01T10:00:00Z", "Running", true));
  put(index, runObject("a", "r2", "2026-12-01T10:00:01Z", "Running", true));
  put(index, runObject("a", "r3", "2026-12-01T10:00:02Z", "Succeeded", true));
  put(index, runObject("b", "r1", "2026-12-01T10:00:03Z"));
  auto counts = index.phaseCounts();
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_EQ((counts[{"a", "Running"}]), 2);
  EXPECT_EQ((counts[{"a", "Succeeded"}]), 1);
  EXPECT_EQ((counts[{"b", ""}]), 1) << "a run the operator has not written a status for yet";
  auto gone = runObject("a", "r3", "2026-12-01T10:00:02Z", "Succeeded", true);
  index.observe({kube::InformerEvent::Type::Delete, kube::objectKey(*gone), gone, nullptr});
  EXPECT_EQ(index.phaseCounts().count({"a", "Succeeded"}), 0u);
}

TEST(RunIndex, KeepsASlimSummaryOfEachRun) {
  json o = *runObject("a", "r", "2026-12-01T10:00:07Z", "Running", true, "k", "u-1");
  std::string phase;
  auto s = summarizeRun(o, &phase);
  EXPECT_EQ(s.uid, "u-1");
  EXPECT_EQ(s.idempotency_key, "k");
  EXPECT_EQ(s.created, 1796119207);
  EXPECT_TRUE(s.started);
  EXPECT_FALSE(s.cancel);
  EXPECT_FALSE(s.waiting_for_slot);
  EXPECT_EQ(phase, "Running");

  json unreadable = o;
  unreadable["spec"]["cancel"] = "yes";  // not a boolean
  s = summarizeRun(unreadable, &phase);
  EXPECT_TRUE(s.cancel) << "a spec that cannot be read never starts";
  EXPECT_EQ(phase, "Pending");
  EXPECT_EQ(s.uid, "u-1");

  RunIndex index;
  put(index, std::make_shared<const json>(o));
  auto same = index.withIdempotencyKey("a", "k");
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].creation_timestamp, "2026-12-01T10:00:07Z") << "what findOriginal orders by, as written";
  EXPECT_EQ(same[0].uid, "u-1");
  EXPECT_TRUE(same[0].started);
  EXPECT_EQ(same[0].phase, "Running");
  EXPECT_TRUE(index.withIdempotencyKey("a-b", "k").empty()) << "another namespace, though its key shares the prefix";
}

}  // namespace
}  // namespace paddock::controllers
