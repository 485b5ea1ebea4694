// The operator killed in the window between creating a run's agent pod and the first status
// write that records it (docs/reliability.md): the pod deleted in that window is not made again,
// and the run's one-time audit records are in the chain once.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "e2e/tests/run_fixture.h"
#include "operator/audit/store.h"

namespace paddock::e2e {
namespace {

// The audit store the tests' operators write to (CTest sets it for the e2e tests).
std::string auditStore() {
  const char* s = std::getenv("PADDOCK_AUDIT_STORE");
  return s ? s : "";
}

// How many records of each action the store holds for the run with this uid (and WriterStarted
// records after `after_seq`, under the key "WriterStarted").
std::map<std::string, int> recordsOf(const std::string& uid, uint64_t after_seq = 0) {
  std::map<std::string, int> out;
  auto s = audit::readStore(auditStore(), [&](const audit::StoredItem& item) {
    if (item.kind != audit::StoredItem::Kind::Record) return true;
    const json& r = item.json;
    std::string action = r.value("action", "");
    if (r.value(json::json_pointer("/run/uid"), std::string()) == uid) {
      ++out[action == "ChildCreated" ? "ChildCreated/" + r.value(json::json_pointer("/details/kind"), std::string()) : action];
    }
    if (action == "WriterStarted" && r.value("seq", uint64_t{0}) > after_seq) ++out["WriterStarted"];
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.error().describe();
  return out;
}

uint64_t headSeq() {
  uint64_t seq = 0;
  audit::readStore(auditStore(), [&](const audit::StoredItem& item) {
    if (item.kind == audit::StoredItem::Kind::Record) seq = item.json.value("seq", seq);
    return true;
  }).ok();
  return seq;
}

// The agent pod cannot be scheduled (no fake node has 5000 CPUs), so the operator keeps the run's
// first status for kDeferStatusFor (5 s) after creating the pod: the window a kill lands in.
class CrashWindowE2E : public RunE2E {
  json policyChanges() override {
    return {{"resources", {{"requests", {{"cpu", "5000"}}}, {"limits", {{"cpu", "5000"}}}}}};
  }
  std::vector<std::string> operatorArgs() override {
    return {"--pending-deadline", "300s", "--leader-election-lease-duration", "4s",
            "--leader-election-renew-deadline", "3s", "--leader-election-retry-period", "500ms"};
  }
};

TEST_F(CrashWindowE2E, APodDeletedBeforeItsRunRecordedItIsNeverMadeAgainNorItsRecordsRepeated) {
  ASSERT_FALSE(auditStore().empty()) << "PADDOCK_AUDIT_STORE names the operators' audit store";
  const uint64_t seq_before = headSeq();
  auto start = client.list(kube::resources::pods, ns->name());
  ASSERT_TRUE(start.ok());
  json run = create("window");
  const std::string uid = run["metadata"]["uid"];
  const std::string pods_path = kube::resources::pods.path(ns->name()) + "?labelSelector=paddock.dev%2Frun%3Dwindow";

  // SIGKILL the moment the pod exists: its run's status is not written yet.
  json pod = watchUntil(*rest, pods_path, start->resource_version,
                        [](const std::string& type, const json&) { return type == "ADDED"; }, std::chrono::seconds(30));
  op->signal(SIGKILL);
  ASSERT_FALSE(pod.is_null()) << "the operator made no pod";
  ASSERT_EQ(op->wait(std::chrono::seconds(10)), 128 + SIGKILL);
  auto cached = client.get(kube::resources::agentruns, ns->name(), "window");
  ASSERT_TRUE(cached.ok());
  ASSERT_TRUE(cached->value(json::json_pointer("/status/stages"), json::array()).empty())
      << "the kill came after the status write, outside the window: " << cached->dump();
  EXPECT_EQ(pod.value(json::json_pointer("/metadata/finalizers/0"), std::string()), "paddock.dev/agent-pod");

  // Someone deletes the pod while no operator runs: it stays, terminating, until it is recorded.
  ASSERT_TRUE(client.remove(kube::resources::pods, ns->name(), "window-agent").ok());
  auto held = client.get(kube::resources::pods, ns->name(), "window-agent");
  ASSERT_TRUE(held.ok()) << "the deleted pod vanished before its run recorded it";
  EXPECT_TRUE(held->contains(json::json_pointer("/metadata/deletionTimestamp")));

  op = startOperator();
  ASSERT_TRUE(reconciling(*op)) << testing::PrintToString(op->lines());
  json done = waitRun(*cached, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
  // PodDeleted, or AgentFailed when kube-controller-manager's pod garbage collector marked the
  // unscheduled, terminating pod Failed before the new leader read it.
  const std::string reason = condition(done, "Succeeded").value("reason", "");
  EXPECT_TRUE(reason == "PodDeleted" || reason == "AgentFailed") << done["status"].dump();
  EXPECT_EQ(done.value(json::json_pointer("/status/stages/0/podUID"), std::string()), pod["metadata"]["uid"])
      << "the new leader recorded the pod the first one made";

  // Every pod the run ever had, from the API server's history since before the run.
  std::set<std::string> uids;
  watchUntil(*rest, pods_path, start->resource_version, [&](const std::string& type, const json& p) {
    uids.insert(p["metadata"].value("uid", ""));
    return type == "DELETED";
  }, std::chrono::seconds(30));
  EXPECT_EQ(uids.size(), 1u) << "the run got a second pod";
  EXPECT_EQ(client.get(kube::resources::pods, ns->name(), "window-agent").error().code, 404)
      << "the finalizer was taken off once the run recorded the pod";

  auto records = recordsOf(uid, seq_before);
  EXPECT_EQ(records["RunAdmitted"], 1) << "RunAdmitted appended again after the crash";
  EXPECT_EQ(records["ChildCreated/Pod"], 1);
  EXPECT_EQ(records["StageStarted"], 1);
  EXPECT_EQ(records["RunFinished"], 1);
  EXPECT_EQ(records["WriterStarted"], 1) << "the new leader says in the chain that it continues it (the first one "
                                            "said so before the test began)";
}

// A policy that remembers idempotency keys for an hour after their runs are deleted.
class KeyLedgerE2E : public RunE2E {
  json policyChanges() override { return {{"idempotency", {{"retention", "1h"}}}}; }
};

TEST_F(KeyLedgerE2E, AKeyProtectsAfterItsRunIsDeletedAndTheOperatorRestarted) {
  const std::string key = "ledger-" + randomSuffix();
  json first = create("first", {{"idempotencyKey", key}});
  ASSERT_FALSE(waitRun(first, [](const json& o) { return !o.value(json::json_pointer("/status/stages/0/podUID"), std::string()).empty(); }).is_null());
  agentExits("first", 0);
  ASSERT_FALSE(waitRun(first, [](const json& o) { return phaseOf(o) == "Succeeded"; }).is_null());
  ASSERT_TRUE(client.remove(kube::resources::agentruns, ns->name(), "first").ok());
  ASSERT_TRUE(eventually([&] { return client.get(kube::resources::agentruns, ns->name(), "first").error().code == 404; },
                         std::chrono::seconds(30)));
  // A new leader knows the key from the audit log alone.
  stopOperator(*op);
  op = startOperator();
  ASSERT_TRUE(reconciling(*op)) << testing::PrintToString(op->lines());

  json again = create("again", {{"idempotencyKey", key}});
  json done = waitRun(again, [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(done, "Succeeded").value("reason", ""), "IdempotencyKeyDone") << done["status"].dump();
  EXPECT_NE(condition(done, "Succeeded").value("message", "").find("AgentRun first"), std::string::npos);
  EXPECT_EQ(client.get(kube::resources::pods, ns->name(), "again-agent").error().code, 404) << "the task ran again";
}

}  // namespace
}  // namespace paddock::e2e
