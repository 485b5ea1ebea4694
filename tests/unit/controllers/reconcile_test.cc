// The AgentRun reconcile's plan, step by step, without a server: snapshots in, typed actions out
// (controllers/reconcile.h, docs/reconcile.md).
#include "controllers/reconcile.h"

#include <gtest/gtest.h>

#include "controllers/status.h"
#include "operator/common/json.h"
#include "tests/unit/controllers/plan_fixture.h"

namespace paddock::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using plantest::all;
using plantest::kClock;
using plantest::kWall;

json policySpec() {
  return json::parse(R"js({
      "namespaceSelector": {"matchLabels": {"paddock.dev/team": "payments"}},
      "images": {"default": "registry.example.com/payments/agent:2.1.4", "allowed": ["registry.example.com/payments/*"]},
      "egress": [{"cidr": "140.82.112.0/20", "ports": [443]}],
      "budgets": {"default": {"tokens": 1000, "costUSD": "1", "wallClock": "45m"}, "checkpointPercent": 60},
      "concurrency": {"maxRunning": 2},
      "stages": [{"name": "pr", "image": "registry.example.com/stage:1", "approval": {"approvers": {"groups": ["leads"]}}}]
    })js");
}

AgentPolicy policy(json spec = policySpec()) {
  auto p = parseAgentPolicy({{"metadata", {{"name", "payments"}}}, {"spec", spec}});
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

json runObject(json spec_extra = json::object(), json status = json::object()) {
  json spec = {{"task", "Fix it."}, {"repository", {{"url", "https://github.com/acme/payments"}}}};
  if (spec_extra.is_object()) spec.update(spec_extra);
  json o = {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"},
            {"metadata", {{"name", "fix"}, {"namespace", "payments"}, {"uid", "run-uid"}, {"generation", 1},
                          {"creationTimestamp", "2026-12-07T09:59:00Z"}, {"resourceVersion", "7"}}},
            {"spec", spec}};
  if (status.is_object() && !status.empty()) o["status"] = status;
  return o;
}

json podObject(const std::string& phase, const std::string& owner_uid = "run-uid", const std::string& uid = "pod-uid") {
  return {{"metadata", {{"name", "fix-agent"}, {"namespace", "payments"}, {"uid", uid},
                        {"creationTimestamp", "2026-12-07T09:58:20Z"},
                        {"ownerReferences", json::array({{{"kind", "AgentRun"}, {"name", "fix"}, {"uid", owner_uid},
                                                          {"controller", true}}})}}},
          {"status", {{"phase", phase}}}};
}

RunSnapshot snapshot(const json& object, kube::ObjectPtr pod = nullptr) {
  return plantest::snapshotOf(object, policy(), std::move(pod));
}

// Team facts in which the team's NetworkPolicy is current.
TeamFacts current() { return plantest::currentTeam(policy()); }

RunPlanSettings settings() {
  RunPlanSettings s;
  s.prometheus = false;
  return s;
}

std::string kindOf(const RunAction& a) {
  static const char* names[] = {"AppendAudit", "ApplyNetworkPolicy", "ApplyClaim", "CreateSecret",
                                "CreateStagePod", "CreateAgentPod",
                                "PatchPod", "WriteStatus", "DeferStatus", "DeletePod", "EmitEvent", "RememberSpend",
                                "ForgetSpend", "RememberFact", "MarkStarted", "ReportBudget", "LogLine"};
  return names[a.index()];
}

// The durable actions in order (Events, caches and log lines left out).
std::vector<std::string> durable(const RunPlan& plan) {
  std::vector<std::string> out;
  for (const auto& a : plan.actions) {
    auto k = kindOf(a);
    if (k != "EmitEvent" && k != "RememberSpend" && k != "ForgetSpend" && k != "RememberFact" && k != "MarkStarted" &&
        k != "ReportBudget" && k != "LogLine")
      out.push_back(k);
  }
  return out;
}


std::vector<audit::Action> recorded(const RunPlan& plan, const std::string& actor = "") {
  std::vector<audit::Action> out;
  for (const auto* a : all<AppendAudit>(plan)) {
    if (a->actor != actor) continue;
    for (const auto& [action, details] : a->records) out.push_back(action);
  }
  return out;
}

const json& written(const RunPlan& plan) {
  auto w = all<WriteStatus>(plan);
  EXPECT_EQ(w.size(), 1u);
  static json none = json::object();
  return w.empty() ? none : w.back()->status;
}

std::string reasonOf(const json& status, const std::string& type) { return conditionOf(status, type).value("reason", ""); }

// The whole plan for a snapshot, as the reconciler makes it (with these team facts).
RunPlan planAll(const RunSnapshot& snap, TeamFacts team = {}, const RunPlanSettings& set = settings()) {
  if (!team.slot.may_start && team.slot.message.empty()) team.slot.may_start = true;
  RunDraft draft(snap, kClock);
  auto a = planAdmission(snap, draft);
  if (!a) return draft.take();
  return planRun(snap, *a, team, draft, set, kClock);
}

json admittedStatus(const RunSnapshot& snap) {
  RunDraft draft(snap, kClock);
  auto a = planAdmission(snap, draft);
  EXPECT_TRUE(a.has_value());
  return draft.status;
}

// ---------------------------------------------------------------------------------------------
// planAdmission

TEST(PlanAdmission, AnInvalidSpecWaitsWithAConditionAndNothingElse) {
  auto snap = snapshot(runObject({{"cancel", "yes"}}));
  auto plan = planAll(snap);
  EXPECT_EQ(durable(plan), std::vector<std::string>{"WriteStatus"});
  EXPECT_EQ(written(plan).value("phase", ""), "Pending");
  EXPECT_EQ(reasonOf(written(plan), "Admitted"), "InvalidSpec");
  ASSERT_TRUE(all<WriteStatus>(plan)[0]->event.has_value()) << "a phase change that is not routine is told";
  EXPECT_EQ(all<WriteStatus>(plan)[0]->event->type, runtime::EventType::Warning);
}

TEST(PlanAdmission, AFinishedRunDeletesOnlyItsOwnLivePods) {
  struct Case {
    const char* name;
    json pod;
    bool deleted;
  } cases[] = {
      {"its running pod", podObject("Running"), true},
      {"its pending pod", podObject("Pending"), true},
      {"a pod that finished", podObject("Succeeded"), false},
      {"someone else's pod", podObject("Running", "other-uid"), false},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto snap = snapshot(runObject({}, {{"phase", "Succeeded"}, {"stages", json::array({{{"name", "agent"}, {"pod", "fix-agent"}}})}}));
    snap.run_pods["fix-agent"] = std::make_shared<const json>(c.pod);
    auto plan = planAll(snap);
    EXPECT_EQ(all<DeletePod>(plan).size(), c.deleted ? 1u : 0u);
    EXPECT_EQ(all<ForgetSpend>(plan).size(), 1u) << "its usage cache goes";
    EXPECT_TRUE(all<WriteStatus>(plan).empty());
    if (c.deleted) EXPECT_EQ(all<DeletePod>(plan)[0]->precondition_uid, "pod-uid");
  }
  json deleting = podObject("Running");
  deleting["metadata"]["deletionTimestamp"] = "2026-12-07T09:59:59Z";
  auto snap = snapshot(runObject({}, {{"phase", "Failed"}}));
  snap.run_pods["fix-agent"] = std::make_shared<const json>(deleting);
  EXPECT_TRUE(all<DeletePod>(planAll(snap)).empty()) << "already going";
  // Adopted by its recorded UID though its owner reference is gone.
  json orphan = podObject("Running", "nobody");
  auto snap2 = snapshot(runObject({}, {{"phase", "Failed"}, {"stages", json::array({{{"name", "agent"}, {"podUID", "pod-uid"}}})}}));
  snap2.run_pods["fix-agent"] = std::make_shared<const json>(orphan);
  EXPECT_EQ(all<DeletePod>(planAll(snap2)).size(), 1u);
}

TEST(PlanAdmission, NoPolicyWaitsWithoutARecordAndARefusalIsRecordedOncePerReason) {
  auto snap = snapshot(runObject());
  snap.namespace_labels.clear();
  auto plan = planAll(snap);
  EXPECT_EQ(reasonOf(written(plan), "Admitted"), "NoPolicy");
  EXPECT_TRUE(recorded(plan).empty()) << "no policy to name";

  auto refused = snapshot(runObject({{"image", "docker.io/evil:1"}}));
  plan = planAll(refused);
  EXPECT_EQ(written(plan).value("phase", ""), "Pending");
  EXPECT_EQ(recorded(plan), std::vector<audit::Action>{audit::Action::RunRefused});
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "WriteStatus"})) << "recorded before the status";

  auto again = snapshot(runObject({{"image", "docker.io/evil:1"}}, written(plan)));
  EXPECT_TRUE(recorded(planAll(again)).empty()) << "the same refusal is recorded once";
}

TEST(PlanAdmission, AStartedRunWithoutTermsIsStopped) {
  // Started (its pod exists and is its own), but nothing governs it and no terms were recorded.
  auto snap = snapshot(runObject({}, {{"stages", json::array({{{"name", "agent"}, {"pod", "fix-agent"}}})}}),
                       std::make_shared<const json>(podObject("Running")));
  snap.policies.clear();
  auto plan = planAll(snap);
  EXPECT_EQ(written(plan).value("phase", ""), "Failed");
  EXPECT_EQ(recorded(plan), std::vector<audit::Action>{audit::Action::RunFinished});
  EXPECT_EQ(written(plan).value("completionTime", ""), kClock.now);
}

TEST(PlanAdmission, AdmittedRecordsTheTermsOnceAndToldOfAPolicyChange) {
  auto snap = snapshot(runObject());
  RunDraft draft(snap, kClock);
  auto a = planAdmission(snap, draft);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->policy.name, "payments");
  EXPECT_EQ(draft.status.value("policy", ""), "payments");
  EXPECT_TRUE(draft.status.contains("terms"));
  EXPECT_TRUE(conditionTrue(draft.status, "Admitted"));
  EXPECT_EQ(recorded(draft.take()), std::vector<audit::Action>{audit::Action::RunAdmitted});

  auto again = snapshot(runObject({}, admittedStatus(snap)));
  RunDraft d2(again, kClock);
  ASSERT_TRUE(planAdmission(again, d2).has_value());
  EXPECT_TRUE(recorded(d2.take()).empty()) << "admitted once";

  // Started under terms its policy would no longer grant: PolicyChanged, told once.
  json status = admittedStatus(snap);
  status["stages"] = json::array({{{"name", "agent"}, {"pod", "fix-agent"}}});
  json lowered = policySpec();
  lowered["budgets"]["max"] = {{"tokens", 10}};
  auto changed = snapshot(runObject({}, status), std::make_shared<const json>(podObject("Running")));
  changed.policies = {policy(lowered)};
  RunDraft d3(changed, kClock);
  ASSERT_TRUE(planAdmission(changed, d3).has_value()) << "a started run is cared for under its terms";
  EXPECT_TRUE(conditionTrue(d3.status, "PolicyChanged"));
  auto p3 = d3.take();
  ASSERT_EQ(all<EmitEvent>(p3).size(), 1u);
  EXPECT_EQ(all<EmitEvent>(p3)[0]->reason, "PolicyChanged");
  auto told = snapshot(runObject({}, d3.status), std::make_shared<const json>(podObject("Running")));
  told.policies = changed.policies;
  RunDraft d4(told, kClock);
  planAdmission(told, d4);
  EXPECT_TRUE(all<EmitEvent>(d4.take()).empty()) << "told when it changes, not at every reconcile";
}

// ---------------------------------------------------------------------------------------------
// planQueue

TEST(PlanQueue, IdempotencyKeyAndSlot) {
  auto snap = snapshot(runObject({{"idempotencyKey", "k"}}));
  AgentRun original;
  original.ns = "payments", original.name = "first", original.uid = "first-uid", original.idempotency_key = "k";
  original.creation_timestamp = "2026-12-07T09:00:00Z";
  struct Case {
    const char* name;
    std::string original_phase;  // "" for none
    bool may_start;
    std::string phase, reason;
    bool requeue;
  } cases[] = {
      {"the key already ran", "Succeeded", true, "Succeeded", "IdempotencyKeyDone", false},
      {"the key already failed", "Failed", true, "Failed", "IdempotencyKeyDone", false},
      {"the key is running", "Running", true, "Pending", "IdempotencyKeyInProgress", true},
      {"no slot", "", false, "Pending", "WaitingForSlot", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TeamFacts team;
    if (!c.original_phase.empty()) {
      original.phase = c.original_phase;
      team.same_key = {original};
    }
    team.slot = c.may_start ? Slot{true} : decideSlot(2, 0, 2);
    auto plan = planAll(snap, team);
    EXPECT_EQ(written(plan).value("phase", ""), c.phase);
    EXPECT_EQ(plan.next.requeue_after.has_value(), c.requeue);
    EXPECT_TRUE(all<CreateAgentPod>(plan).empty());
    auto& status = written(plan);
    EXPECT_EQ(reasonOf(status, "Running"), c.reason);
  }
  TeamFacts free;
  free.slot.may_start = true;
  EXPECT_EQ(all<CreateAgentPod>(planAll(snap, free)).size(), 1u) << "no original, a free slot: it starts";
}

// ---------------------------------------------------------------------------------------------
// networkPolicyToWrite, planNetwork

TEST(NetworkPolicyToWrite, WrittenWhenMissingOrDriftedUnlessOurOwnWriteIsStillOnItsWay) {
  auto p = policy();
  json planned = planNetworkPolicy("payments", p);
  const auto now = std::chrono::steady_clock::time_point(1h);
  AppliedWrite ours{specHashOf(planned), now - 1s, 3};
  json live = planned;
  live["metadata"]["generation"] = 3;
  json drifted = live;
  drifted["spec"]["podSelector"]["matchLabels"]["extra"] = "x";
  json edited = drifted;  // its hash annotation still claims the plan
  json old_generation = drifted;
  old_generation["metadata"]["generation"] = 2;
  auto ptr = [](const json& j) { return std::make_shared<const json>(j); };
  struct Case {
    const char* name;
    kube::ObjectPtr live;
    std::optional<AppliedWrite> applied;
    bool write;
  } cases[] = {
      {"missing", nullptr, std::nullopt, true},
      {"missing, our write a second ago", nullptr, ours, false},
      {"missing, our write long ago", nullptr, AppliedWrite{ours.hash, now - 6s, 3}, true},
      {"missing, our write of another plan", nullptr, AppliedWrite{"other", now - 1s, 3}, true},
      {"current", ptr(live), std::nullopt, false},
      {"drifted", ptr(drifted), std::nullopt, true},
      {"drifted at the generation we wrote", ptr(edited), ours, true},
      {"an older generation than ours", ptr(old_generation), ours, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto w = networkPolicyToWrite(planned, c.live, c.applied, now);
    EXPECT_EQ(w.has_value(), c.write);
    if (w && c.live) {
      EXPECT_FALSE(w->drift.empty());
      EXPECT_TRUE(w->edited) << "its hash annotation is the plan's, its content is not";
    }
  }
}

TEST(PlanNetwork, RecordedBeforeItIsAppliedAndAnEditIsToldOnTheNetworkPolicy) {
  auto snap = snapshot(runObject());
  RunDraft draft(snap, kClock);
  auto a = planAdmission(snap, draft);
  ASSERT_TRUE(a);
  planNetwork(*a, TeamFacts{}, draft, settings(), kClock);
  auto plan = draft.take();
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "ApplyNetworkPolicy"}));
  EXPECT_EQ(recorded(plan), (std::vector<audit::Action>{audit::Action::RunAdmitted, audit::Action::ChildCreated}))
      << "one append for both";
  EXPECT_FALSE(all<ApplyNetworkPolicy>(plan)[0]->restored_event.has_value());

  json live = planNetworkPolicy("payments", a->policy);
  live["spec"]["egress"] = json::array();
  TeamFacts team;
  team.network_policy = std::make_shared<const json>(live);
  RunDraft d2(snap, kClock);
  planNetwork(*a, team, d2, settings(), kClock);
  auto p2 = d2.take();
  EXPECT_EQ(recorded(p2), std::vector<audit::Action>{audit::Action::ChildRestored});
  ASSERT_TRUE(all<ApplyNetworkPolicy>(p2)[0]->restored_event.has_value());
  EXPECT_EQ(all<ApplyNetworkPolicy>(p2)[0]->restored_event->regarding.kind, "NetworkPolicy");

  json hosts = policySpec();
  hosts["egress"] = json::array({{{"host", "api.github.com"}, {"ports", {443}}}});
  Admitted h = *a;
  h.policy = policy(hosts);
  RunDraft d3(snap, kClock);
  planNetwork(h, team, d3, settings(), kClock);
  EXPECT_EQ(reasonOf(d3.status, "HostEgressEnforced"), "NoFQDNSupport");
}

// ---------------------------------------------------------------------------------------------
// planUnmatchedApprovals, planApprovalsOfMissingRun

AgentApproval approvalFor(const std::string& stage, const std::string& name = "a1") {
  AgentApproval a;
  a.ns = "payments", a.name = name, a.run = "fix", a.stage = stage, a.username = "bob", a.groups = {"leads"};
  a.creation_timestamp = "2026-12-07T09:59:30Z";
  return a;
}

TEST(PlanUnmatchedApprovals, ReportedOnceEachInTheApproversName) {
  auto snap = snapshot(runObject());
  snap.approvals = {approvalFor("deploy")};
  RunDraft draft(snap, kClock);
  auto a = planAdmission(snap, draft);
  ASSERT_TRUE(a);
  planUnmatchedApprovals(snap, *a, draft, settings());
  EXPECT_EQ(reasonOf(draft.status, "UnmatchedApprovals"), "UnknownStage");
  auto plan = draft.take();
  EXPECT_EQ(recorded(plan, "bob"), std::vector<audit::Action>{audit::Action::ApprovalRefused});
  EXPECT_EQ(recorded(plan), std::vector<audit::Action>{audit::Action::RunAdmitted}) << "the operator's own go first, apart";
  ASSERT_EQ(all<EmitEvent>(plan).size(), 1u);
  EXPECT_EQ(all<RememberFact>(plan).size(), 1u);

  // Already told: by the condition's message (durable), or by our own write on its way.
  auto told = snapshot(runObject({}, admittedStatus(snap)));
  told.approvals = snap.approvals;
  setCondition(told.old_status, "UnmatchedApprovals", true, "UnknownStage",
               "AgentApproval a1 names stage deploy, which this run does not have", 1, kClock.now);
  RunDraft d3(told, kClock);
  auto a3 = planAdmission(told, d3);
  planUnmatchedApprovals(told, *a3, d3, settings());
  EXPECT_TRUE(recorded(d3.take(), "bob").empty());
  auto recent = snapshot(runObject());
  recent.approvals = snap.approvals;
  recent.recent_facts = {"run-uid/unmatched/a1"};
  RunDraft d4(recent, kClock);
  planUnmatchedApprovals(recent, *a, d4, settings());
  EXPECT_TRUE(recorded(d4.take(), "bob").empty());

  // None now, one before: the condition turns False; none ever: no condition at all.
  RunDraft d5(told, kClock);
  told.approvals.clear();
  planUnmatchedApprovals(told, *a, d5, settings());
  EXPECT_EQ(reasonOf(d5.status, "UnmatchedApprovals"), "AllMatched");
  auto never = snapshot(runObject());
  RunDraft d6(never, kClock);
  planUnmatchedApprovals(never, *a, d6, settings());
  EXPECT_FALSE(hasCondition(d6.status, "UnmatchedApprovals"));
}

TEST(PlanApprovalsOfMissingRun, AWarningOnEachApprovalOnce) {
  auto approval = [](const std::string& name, const std::string& run) {
    return std::make_shared<const json>(json{{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentApproval"},
                                             {"metadata", {{"name", name}, {"namespace", "payments"}, {"uid", name + "-uid"}}},
                                             {"spec", {{"run", run}, {"stage", "pr"}, {"decision", "Approve"},
                                                       {"approver", {{"username", "bob"}}}}}});
  };
  std::vector<kube::ObjectPtr> approvals = {approval("a1", "gone"), approval("a2", "other")};
  auto plan = planApprovalsOfMissingRun("payments", "gone", approvals, {});
  ASSERT_EQ(all<EmitEvent>(plan).size(), 1u);
  EXPECT_EQ(all<EmitEvent>(plan)[0]->reason, "NoSuchRun");
  EXPECT_EQ(all<EmitEvent>(plan)[0]->regarding.kind, "AgentApproval");
  EXPECT_TRUE(all<EmitEvent>(planApprovalsOfMissingRun("payments", "gone", approvals, {"a1-uid/no-run"})).empty());
}

// ---------------------------------------------------------------------------------------------
// planAgent, planAgentStatus

TEST(PlanAgent, ANewRunIsRecordedThenItsPodIsCreatedAndItsStatusWaitsForThePod) {
  auto snap = snapshot(runObject());
  auto plan = planAll(snap);
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "ApplyNetworkPolicy", "AppendAudit", "CreateAgentPod"}));
  auto appends = all<AppendAudit>(plan);
  EXPECT_TRUE(appends[1]->before_pod) << "not appended when the NetworkPolicy failed";
  std::vector<audit::Action> want = {audit::Action::RunAdmitted, audit::Action::ChildCreated, audit::Action::ChildCreated,
                                     audit::Action::StageStarted};
  EXPECT_EQ(recorded(plan), want);
  const auto& create = *all<CreateAgentPod>(plan)[0];
  EXPECT_EQ(stringAt(create.pod, "/metadata/name"), "fix-agent");

  AgentCreated made{AgentCreated::Kind::Created, std::make_shared<const json>(podObject("Pending", "run-uid", "new-uid")), ""};
  auto tail = planAgentStatus(*create.then, &made, settings(), kClock);
  EXPECT_EQ(durable(tail), std::vector<std::string>{"DeferStatus"}) << "one write fewer per run";
  EXPECT_EQ(all<MarkStarted>(tail).size(), 1u);
  ASSERT_EQ(all<EmitEvent>(tail).size(), 1u);
  const json& status = all<DeferStatus>(tail)[0]->status;
  EXPECT_EQ(stringAt(status, "/stages/0/podUID"), "new-uid");
  EXPECT_EQ(status["stages"][0]["planned"], create.then->created_fingerprint);
  EXPECT_EQ(status.value("startTime", ""), kClock.now);
  EXPECT_EQ(tail.next.requeue_after, std::chrono::milliseconds(5000));
}

TEST(PlanAgent, TheDeferredStatusIsWrittenOnceThePodHasStartedOrAfterFiveSeconds) {
  auto fresh = snapshot(runObject());
  auto plan = planAll(fresh);
  const auto& then = *all<CreateAgentPod>(plan)[0]->then;
  // The pod as the API server made it from the plan.
  auto live = [&](const char* phase) {
    json pod = all<CreateAgentPod>(plan)[0]->pod;
    pod["metadata"]["uid"] = "pod-uid";
    pod["metadata"]["creationTimestamp"] = "2026-12-07T09:59:59Z";
    pod["metadata"]["ownerReferences"] = podObject(phase)["metadata"]["ownerReferences"];
    pod["status"] = {{"phase", phase}};
    return std::make_shared<const json>(pod);
  };
  AgentCreated made{AgentCreated::Kind::Created, live("Pending"), ""};
  auto tail = planAgentStatus(then, &made, settings(), kClock);
  const auto* deferred = all<DeferStatus>(tail)[0];
  EXPECT_EQ(deferred->since, kClock.steady);
  struct Case {
    const char* name;
    const char* pod_phase;
    std::chrono::milliseconds age;
    bool written;
  } cases[] = {
      {"still starting, 1 s after", "Pending", 1000ms, false},
      {"still starting, 5 s after", "Pending", 5000ms, true},
      {"running, 1 s after", "Running", 1000ms, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    // The next reconcile decides from the deferred status, as the reconciler hands it over.
    auto snap = snapshot(runObject({}, json::object()), live(c.pod_phase));
    snap.old_status = deferred->status;
    snap.run->started = true;
    snap.deferred_since = deferred->since;
    PlanClock later = kClock;
    later.steady += c.age;
    RunDraft d(snap, later);
    auto a = planAdmission(snap, d);
    ASSERT_TRUE(a);
    auto p = planRun(snap, *a, current(), d, settings(), later);
    EXPECT_EQ(all<WriteStatus>(p).size(), c.written ? 1u : 0u);
    if (!c.written) {
      ASSERT_EQ(all<DeferStatus>(p).size(), 1u);
      EXPECT_EQ(all<DeferStatus>(p)[0]->since, deferred->since) << "the five seconds count from the creation";
      EXPECT_EQ(p.next.requeue_after, std::chrono::milliseconds(4000));
      EXPECT_TRUE(all<EmitEvent>(p).empty()) << "the creation was told once";
    }
  }
}

TEST(PlanAgent, ARefusedOrSquattedPodFailsTheRun) {
  auto snap = snapshot(runObject());
  auto plan = planAll(snap);
  const auto& then = *all<CreateAgentPod>(plan)[0]->then;
  AgentCreated refused{AgentCreated::Kind::Rejected, nullptr, "pods \"fix-agent\" is forbidden"};
  auto r = planAgentStatus(then, &refused, settings(), kClock);
  EXPECT_EQ(written(r).value("phase", ""), "Failed");
  EXPECT_EQ(reasonOf(written(r), "Succeeded"), "PodRejected");

  AgentCreated taken{AgentCreated::Kind::NameTaken, std::make_shared<const json>(podObject("Running", "squatter")), ""};
  auto t = planAgentStatus(then, &taken, settings(), kClock);
  EXPECT_EQ(written(t).value("phase", ""), "Failed");
  auto records = recorded(t);
  EXPECT_EQ(records.front(), audit::Action::ChildNotAdopted);
  EXPECT_TRUE(all<DeletePod>(t).empty()) << "never someone else's pod";
  EXPECT_FALSE(written(t)["stages"][0].contains("pod"));

  AgentCreated ours{AgentCreated::Kind::NameTaken, std::make_shared<const json>(podObject("Pending")), ""};
  auto o = planAgentStatus(then, &ours, settings(), kClock);
  EXPECT_EQ(durable(o), std::vector<std::string>{"DeferStatus"}) << "our own earlier attempt: carried on";
}

json startedStatus() {
  json s = {{"phase", "Running"}, {"startTime", "2026-12-07T09:58:20Z"},
            {"stages", json::array({{{"name", "agent"}, {"pod", "fix-agent"}, {"podUID", "pod-uid"}}})}};
  return s;
}

TEST(PlanAgent, ThePodsPhaseBecomesTheRunsAndTheEndIsRecordedBeforeTheStatus) {
  struct Case {
    const char* pod_phase;
    std::string run_phase;
    bool records, event;
  } cases[] = {
      {"Running", "Running", false, false},
      {"Succeeded", "Succeeded", true, true},
      {"Failed", "Failed", true, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.pod_phase);
    auto base = snapshot(runObject());
    json status = admittedStatus(base);
    status.update(startedStatus());
    auto snap = snapshot(runObject({}, status), std::make_shared<const json>(podObject(c.pod_phase)));
    auto plan = planAll(snap);
    EXPECT_EQ(written(plan).value("phase", ""), c.run_phase);
    EXPECT_EQ(all<WriteStatus>(plan)[0]->event.has_value(), c.event);
    if (c.records) {
      auto r = recorded(plan);
      EXPECT_EQ(r.back(), audit::Action::RunFinished);
      EXPECT_EQ(durable(plan).front(), "AppendAudit");
      EXPECT_EQ(all<ForgetSpend>(plan).size(), 1u);
    }
  }
}

TEST(PlanAgent, ATamperedPodIsRecordedWrittenDownThenDeleted) {
  auto base = snapshot(runObject());
  json status = admittedStatus(base);
  status.update(startedStatus());
  status["stages"][0]["planned"] = {{"spec.containers[0].image", "registry.example.com/payments/agent:2.1.4"}};
  json pod = podObject("Running");
  pod["spec"]["containers"] = json::array({{{"name", "agent"}, {"image", "docker.io/evil:1"}}});
  auto snap = snapshot(runObject({}, status), std::make_shared<const json>(pod));
  auto plan = planAll(snap, current());
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "WriteStatus", "DeletePod"}));
  auto r = recorded(plan);
  EXPECT_NE(std::find(r.begin(), r.end(), audit::Action::ChildTampered), r.end());
  EXPECT_NE(std::find(r.begin(), r.end(), audit::Action::ChildDeleted), r.end());
  EXPECT_EQ(all<DeletePod>(plan)[0]->precondition_uid, "pod-uid");
}

TEST(PlanAgent, APendingPodIsLookedAtAgainByItsDeadline) {
  auto base = snapshot(runObject());
  json status = admittedStatus(base);
  status.update(startedStatus());
  status["phase"] = "Pending";
  auto snap = snapshot(runObject({}, status), std::make_shared<const json>(podObject("Pending")));
  auto plan = planAll(snap);  // pending for 100 s of 600
  EXPECT_EQ(plan.next.requeue_after, std::chrono::milliseconds(10000)) << "every slot_recheck until the deadline";
  auto set = settings();
  set.pending_deadline = 105s;
  EXPECT_EQ(planAll(snap, {}, set).next.requeue_after, std::chrono::milliseconds(5000)) << "at the deadline";
}

// ---------------------------------------------------------------------------------------------
// planBudget

TEST(PlanBudget, ConditionsUsageCheckpointAndStop) {
  auto base = snapshot(runObject());
  json status = admittedStatus(base);
  status.update(startedStatus());
  auto running = [&](const json& s) { return snapshot(runObject({}, s), std::make_shared<const json>(podObject("Running"))); };

  auto plan = planAll(running(status));
  EXPECT_EQ(reasonOf(written(plan), "BudgetMetricsAvailable"), "NoPrometheus");
  EXPECT_TRUE(plan.next.requeue_after.has_value()) << "the wall clock's next threshold";
  EXPECT_EQ(all<RememberSpend>(plan).size(), 1u);

  // 45 minutes of wall clock are spent: TimedOut, recorded, written, then the pod goes.
  json late = status;
  late["startTime"] = "2026-12-07T09:14:00Z";
  plan = planAll(running(late), current());
  EXPECT_EQ(written(plan).value("phase", ""), "TimedOut");
  EXPECT_EQ(recorded(plan).front(), audit::Action::BudgetExceeded);
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "WriteStatus", "DeletePod"}));

  // 60 % of it: a checkpoint, asked once.
  json midway = status;
  midway["startTime"] = "2026-12-07T09:32:00Z";
  plan = planAll(running(midway), current());
  EXPECT_EQ(recorded(plan), std::vector<audit::Action>{audit::Action::CheckpointRequested});
  ASSERT_EQ(all<PatchPod>(plan).size(), 1u);
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "PatchPod", "WriteStatus"}));
  EXPECT_TRUE(conditionTrue(written(plan), "BudgetCheckpoint"));
  plan = planAll(running(written(plan)));
  EXPECT_TRUE(all<PatchPod>(plan).empty()) << "the condition says it was asked";

  // With Prometheus: tokens past the limit stop the run; a reading is carried into status.
  auto set = settings();
  set.prometheus = true;
  TeamFacts team;
  team.tokens = {1500.0, true, true, {}, "", 0};
  team.cost = {0.1, true, true, {}, "", 0};
  plan = planAll(running(status), team, set);
  EXPECT_EQ(written(plan).value("phase", ""), "BudgetExceeded");
  EXPECT_EQ(written(plan)["usage"].value("tokens", 0), 1500);
  EXPECT_EQ(reasonOf(written(plan), "BudgetMetricsAvailable"), "MetricsRead");

  // A failing query: unreadable, within the grace the run goes on.
  team.tokens = {std::nullopt, true, false, kWall - 10s, "connection refused", 0};
  plan = planAll(running(status), team, set);
  EXPECT_EQ(written(plan).value("phase", ""), "Running");
  EXPECT_EQ(reasonOf(written(plan), "BudgetMetricsAvailable"), "QueryFailed");

  // This process's own spend of the run (same uid) is what counts, not status's older figure.
  Spend cached{"run-uid", {900, 900}, {0.1, 0.1}};
  team.spend = cached;
  team.tokens = {950.0, true, true, {}, "", 0};
  plan = planAll(running(status), team, set);
  EXPECT_EQ(written(plan)["usage"].value("tokens", 0), 950);
  EXPECT_EQ(written(plan).value("phase", ""), "Running") << "60 % is past; 95 % asks for a checkpoint only";
  EXPECT_FALSE(written(plan)["usage"].contains("refusals")) << "none counted: none shown";

  // What the gateway refused the run is written with the usage, and a new count is a change
  // written at once (the spend did not move).
  team.refusals = {{"mcp_arguments", 1}, {"sandbox", 2}};
  json before = written(plan);
  plan = planAll(running(before), team, set);
  EXPECT_EQ(written(plan)["usage"]["refusals"], json({{"mcp_arguments", 1}, {"sandbox", 2}}));
}

// ---------------------------------------------------------------------------------------------
// planGatedStages

TEST(PlanGatedStages, AwaitsApprovalAsksRbacThenCountsAndStartsTheStageRecordedFirst) {
  auto base = snapshot(runObject({{"stages", {"pr"}}, {"requestedBy", "alice"}}));
  json status = admittedStatus(base);
  status.update(startedStatus());
  json done = podObject("Succeeded");
  done["status"]["initContainerStatuses"] = json::array(
      {{{"name", "workspace"},
        {"state", {{"terminated", {{"exitCode", 0},
                                   {"message", json{{"stage", "clone"}, {"outcome", "Cloned"}, {"baseCommit", std::string(40, 'a')}}.dump()}}}}}}});
  done["status"]["containerStatuses"] = json::array({{{"name", "agent"}, {"state", {{"terminated", {{"exitCode", 0}}}}}}});
  auto snap = snapshot(runObject({{"stages", {"pr"}}, {"requestedBy", "alice"}}, status), std::make_shared<const json>(done));
  auto plan = planAll(snap);
  EXPECT_EQ(written(plan).value("phase", ""), "AwaitingApproval");
  EXPECT_TRUE(conditionTrue(written(plan), "AwaitingApproval"));

  snap.approvals = {approvalFor("pr")};
  plan = planAll(snap);
  ASSERT_EQ(plan.to_review.size(), 1u) << "RBAC is asked first";
  EXPECT_TRUE(all<WriteStatus>(plan).empty());

  TeamFacts team;
  team.rbac_allows["a1"] = true;
  plan = planAll(snap, team);
  EXPECT_TRUE(plan.to_review.empty());
  EXPECT_EQ(recorded(plan, "bob"), std::vector<audit::Action>{audit::Action::ApprovalCounted});
  ASSERT_EQ(all<CreateStagePod>(plan).size(), 1u);
  auto order = durable(plan);
  auto create = std::find(order.begin(), order.end(), "CreateStagePod");
  ASSERT_NE(create, order.begin());
  EXPECT_EQ(*(create - 1), "AppendAudit") << "the stage pod is recorded before it is created";
  EXPECT_EQ(order.back(), "WriteStatus");
  auto r = recorded(plan);
  EXPECT_NE(std::find(r.begin(), r.end(), audit::Action::StageStarted), r.end());

  snap.recent_facts = {"run-uid/pr/a1", "run-uid/pr/started"};
  plan = planAll(snap, team);
  EXPECT_TRUE(recorded(plan, "bob").empty()) << "our own record, on its way to the cache";
  EXPECT_EQ(all<CreateStagePod>(plan).size(), 1u) << "the create is idempotent; its records are not repeated";

  // Cancelled while the pr stage runs: the end is recorded and written before its pod goes.
  json running = written(plan);
  ASSERT_EQ(stringAt(running, "/stages/1/phase"), "Running");
  auto cancelled = snapshot(runObject({{"stages", {"pr"}}, {"requestedBy", "alice"}, {"cancel", true}}, running),
                            std::make_shared<const json>(done));
  cancelled.approvals = snap.approvals;
  json stage_pod = podObject("Running");
  stage_pod["metadata"]["name"] = "fix-pr";
  team.stage_pods["pr"] = std::make_shared<const json>(stage_pod);
  plan = planAll(cancelled, team);
  EXPECT_EQ(written(plan).value("phase", ""), "Cancelled");
  order = durable(plan);
  ASSERT_GE(order.size(), 2u);
  EXPECT_EQ(order[order.size() - 2], "WriteStatus");
  EXPECT_EQ(order.back(), "DeletePod");
  EXPECT_EQ(all<DeletePod>(plan)[0]->name, "fix-pr");
  r = recorded(plan);
  EXPECT_NE(std::find(r.begin(), r.end(), audit::Action::ChildDeleted), r.end());
  EXPECT_EQ(r.back(), audit::Action::RunFinished);
}

// At 100 % of a budget, a run with a pr stage hands its partial work on: the agent is stopped (the
// run not ended), the pr stage waits for its approvals and for the agent pod to be gone, opens a
// draft, and the run ends BudgetExceeded, never Succeeded.
TEST(PlanGatedStages, AnAgentStoppedAtItsBudgetHandsItsPartialWorkToADraftPullRequest) {
  const json spec = {{"stages", {"pr"}}, {"requestedBy", "alice"}};
  auto base = snapshot(runObject(spec));
  json status = admittedStatus(base);
  status.update(startedStatus());
  json pod = podObject("Running");
  pod["status"]["initContainerStatuses"] = json::array(
      {{{"name", "workspace"},
        {"state", {{"terminated", {{"exitCode", 0},
                                   {"message", json{{"stage", "clone"}, {"outcome", "Cloned"}, {"baseCommit", std::string(40, 'a')}}.dump()}}}}}}});
  auto set = settings();
  set.prometheus = true;
  TeamFacts team = current();
  team.tokens = {1500.0, true, true, {}, "", 0};
  team.cost = {0.1, true, true, {}, "", 0};
  auto plan = planAll(snapshot(runObject(spec, status), std::make_shared<const json>(pod)), team, set);
  json stopped = written(plan);
  EXPECT_EQ(stopped.value("phase", ""), "Running") << "the run is not over: its partial work goes on";
  EXPECT_TRUE(conditionTrue(stopped, "BudgetExceeded"));
  EXPECT_EQ(reasonOf(stopped, "Running"), "BudgetExceeded");
  EXPECT_EQ(stringAt(stopped, "/stages/0/phase"), "BudgetExceeded");
  EXPECT_EQ(stopped["stages"][0].value("partial", false), true);
  EXPECT_EQ(stringAt(stopped, "/stages/0/baseCommit"), std::string(40, 'a')) << "kept while the pod is there to say it";
  EXPECT_FALSE(stopped.contains("completionTime"));
  auto r = recorded(plan);
  EXPECT_EQ(r.front(), audit::Action::BudgetExceeded);
  EXPECT_EQ(std::find(r.begin(), r.end(), audit::Action::RunFinished), r.end());
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "WriteStatus", "DeletePod"}));
  ASSERT_EQ(all<EmitEvent>(plan).size(), 1u);
  EXPECT_EQ(all<EmitEvent>(plan)[0]->reason, "BudgetExceeded");

  // Next: the pr stage awaits its approvals; the stopping pod's finalizer comes off.
  json stopping = pod;
  stopping["metadata"]["deletionTimestamp"] = "2026-12-07T10:00:00Z";
  stopping["metadata"]["finalizers"] = {"paddock.dev/agent-pod"};
  auto snap = snapshot(runObject(spec, stopped), std::make_shared<const json>(stopping));
  plan = planAll(snap, team, set);
  EXPECT_EQ(written(plan).value("phase", ""), "AwaitingApproval");
  EXPECT_EQ(stringAt(written(plan), "/stages/1/phase"), "AwaitingApproval");
  EXPECT_EQ(all<PatchPod>(plan).size(), 1u) << "the finalizer is released";

  // Approved while the agent pod is still there: the stage waits for it to go.
  snap.approvals = {approvalFor("pr")};
  team.rbac_allows["a1"] = true;
  plan = planAll(snap, team, set);
  EXPECT_TRUE(all<CreateStagePod>(plan).empty()) << "the stopped agent may still be saving its work";
  EXPECT_EQ(reasonOf(written(plan), "Running"), "AgentStopping");
  EXPECT_TRUE(plan.next.requeue_after.has_value());
  EXPECT_TRUE(all<DeletePod>(plan).empty()) << "it is going already";
  const json waiting_for_pod = written(plan);

  // Its delete never happened (the operator stopped in between): it is deleted again, after the status.
  snap = snapshot(runObject(spec, waiting_for_pod), std::make_shared<const json>(pod));
  snap.approvals = {approvalFor("pr")};
  plan = planAll(snap, team, set);
  ASSERT_EQ(all<DeletePod>(plan).size(), 1u);
  EXPECT_EQ(all<DeletePod>(plan)[0]->name, "fix-agent");
  EXPECT_EQ(durable(plan).back(), "DeletePod");
  EXPECT_TRUE(all<CreateStagePod>(plan).empty());

  // A pod that has ended holds nothing back, though its object is still there.
  json ended_pod = pod;
  ended_pod["status"]["phase"] = "Failed";
  snap = snapshot(runObject(spec, waiting_for_pod), std::make_shared<const json>(ended_pod));
  snap.approvals = {approvalFor("pr")};
  snap.recent_facts = {};
  TeamFacts rechecked = team;
  rechecked.rbac_rechecked["a1"] = true;
  plan = planAll(snap, rechecked, set);
  EXPECT_EQ(all<CreateStagePod>(plan).size(), 1u);

  // The pod is gone: the pr stage starts, told it opens a draft of partial work.
  snap = snapshot(runObject(spec, stopped));
  snap.approvals = {approvalFor("pr")};
  plan = planAll(snap, team, set);
  ASSERT_EQ(all<CreateStagePod>(plan).size(), 1u);
  json args = all<CreateStagePod>(plan)[0]->pod["spec"]["containers"][0]["args"];
  auto partial = std::find(args.begin(), args.end(), "--partial");
  ASSERT_NE(partial, args.end()) << args.dump();
  EXPECT_NE((partial + 1)->get<std::string>().find("spec.budget.tokens is spent"), std::string::npos) << args.dump();
  auto commit = std::find(args.begin(), args.end(), "--base-commit");
  ASSERT_NE(commit, args.end());
  EXPECT_EQ(*(commit + 1), std::string(40, 'a'));
  json started = written(plan);
  EXPECT_EQ(started["stages"][1].value("partial", false), true);

  // The draft is opened: the run ends BudgetExceeded, with the draft's address.
  json stage_pod = podObject("Succeeded");
  stage_pod["metadata"]["name"] = "fix-pr";
  stage_pod["status"]["containerStatuses"] = json::array(
      {{{"name", "stage"},
        {"state", {{"terminated", {{"exitCode", 0},
                                   {"message", json{{"stage", "pr"}, {"outcome", "PullRequestOpened"},
                                                    {"pullRequest", {{"url", "https://github.com/acme/payments/pull/7"}, {"number", 7}}}}.dump()}}}}}}});
  team.stage_pods["pr"] = std::make_shared<const json>(stage_pod);
  snap = snapshot(runObject(spec, started));
  snap.approvals = {approvalFor("pr")};
  plan = planAll(snap, team, set);
  json ended = written(plan);
  EXPECT_EQ(ended.value("phase", ""), "BudgetExceeded");
  EXPECT_FALSE(conditionTrue(ended, "Succeeded"));
  EXPECT_EQ(ended.value("pullRequestURL", ""), "https://github.com/acme/payments/pull/7");
  EXPECT_NE(conditionOf(ended, "Succeeded").value("message", "").find("draft pull request"), std::string::npos);
  r = recorded(plan);
  EXPECT_EQ(r.back(), audit::Action::RunFinished);
}

TEST(Stages, PartialWorkSkipsEveryStageButTheDraftAndAFailedDraftStillEndsInTheAgentsPhase) {
  auto p = policy();
  AgentRun run;
  run.name = "fix", run.ns = "payments", run.uid = "run-uid", run.stages = {"deploy", "pr"};
  StagesInput in;
  in.run = &run;
  in.policy = &p;
  in.now = kWall;
  in.old_stages = json::array({{{"name", "agent"}, {"phase", "TimedOut"}, {"partial", true}, {"message", "wall clock"},
                                {"baseCommit", std::string(40, 'b')}},
                               {{"name", "pr"}, {"phase", "Running"}, {"partial", true}, {"pod", "fix-pr"}}});
  StagePod failed;
  failed.pod.exists = true, failed.pod.phase = "Failed", failed.pod.exit_code = 3;
  in.pods["pr"] = failed;
  auto plan = planStages(in);
  ASSERT_EQ(plan.stages.size(), 3u) << plan.stages.dump();
  EXPECT_EQ(plan.stages[1].value("phase", ""), "Failed");
  EXPECT_EQ(plan.stages[2].value("name", ""), "deploy");
  EXPECT_EQ(plan.stages[2].value("phase", ""), "Skipped");
  EXPECT_EQ(plan.phase, "TimedOut");
  EXPECT_EQ(plan.message.rfind("wall clock; the draft pull request of its partial work was not opened", 0), 0u) << plan.message;
}

TEST(PlanAdmission, APolicyChangeThatIsUndoneClearsTheCondition) {
  auto base = snapshot(runObject());
  json status = admittedStatus(base);
  status["stages"] = json::array({{{"name", "agent"}, {"pod", "fix-agent"}}});
  setCondition(status, "PolicyChanged", true, "PolicyNarrowed", "was narrowed", 1, "2026-12-07T09:00:00Z");
  auto snap = snapshot(runObject({}, status), std::make_shared<const json>(podObject("Running")));
  RunDraft d(snap, kClock);
  ASSERT_TRUE(planAdmission(snap, d).has_value());
  EXPECT_FALSE(conditionTrue(d.status, "PolicyChanged"));
  EXPECT_EQ(reasonOf(d.status, "PolicyChanged"), "PolicyUnchanged");
  EXPECT_TRUE(all<EmitEvent>(d.take()).empty());
}

TEST(PlanQueue, ACancelledOrStartedRunIsNotQueued) {
  TeamFacts full;
  full.slot = decideSlot(2, 0, 2);
  auto cancelled = snapshot(runObject({{"cancel", true}}));
  auto plan = planAll(cancelled, full);
  EXPECT_NE(reasonOf(written(plan), "Running"), "WaitingForSlot");
  EXPECT_EQ(written(plan).value("phase", ""), "Cancelled");
  auto base = snapshot(runObject());
  json status = admittedStatus(base);
  status.update(startedStatus());
  auto started = snapshot(runObject({}, status), std::make_shared<const json>(podObject("Running")));
  EXPECT_EQ(written(planAll(started, full)).value("phase", ""), "Running") << "a started run holds its slot";
}

TEST(PlanAgent, APodMadeByAProcessThatStoppedBeforeWritingItDownIsAdoptedByItsOwnerReference) {
  auto base = snapshot(runObject());
  json status = admittedStatus(base);  // no stages: the status was never written after the create
  RunDraft d(base, kClock);
  auto a = planAdmission(base, d);
  json pod = planAgentPod(a->run, a->policy, a->effective, PlanOptions{});
  pod["metadata"]["uid"] = "pod-uid";
  pod["metadata"]["creationTimestamp"] = "2026-12-07T09:59:30Z";
  pod["status"] = {{"phase", "Running"}};
  auto snap = snapshot(runObject({}, status), std::make_shared<const json>(pod));
  auto plan = planAll(snap, current());
  const json& w = written(plan);
  EXPECT_EQ(w.value("phase", ""), "Running");
  EXPECT_EQ(stringAt(w, "/stages/0/podUID"), "pod-uid");
  EXPECT_TRUE(w["stages"][0].contains("planned")) << "checked against the plan all the same";
  EXPECT_EQ(w.value("startTime", ""), "2026-12-07T09:59:30Z") << "the pod says when";
  EXPECT_TRUE(all<DeletePod>(plan).empty());
  EXPECT_TRUE(all<CreateAgentPod>(plan).empty());
}

// The agent pod carries kFinalizerAgentPod from its creation until the run's status records it:
// a pod deleted in between stays until an operator has recorded it. The finalizer comes off once
// the status names the pod, once the run has ended, and from a pod of an earlier run of the name.
TEST(PlanAgent, ThePodsFinalizerComesOffOnceTheStatusRecordsThePodOrTheRunEnded) {
  auto fresh = planAll(snapshot(runObject()));
  ASSERT_EQ(all<CreateAgentPod>(fresh).size(), 1u);
  EXPECT_EQ(all<CreateAgentPod>(fresh)[0]->pod["metadata"]["finalizers"], json::array({kFinalizerAgentPod}));

  auto held = [](json pod) {
    pod["metadata"]["finalizers"] = json::array({"example.com/other", kFinalizerAgentPod});
    pod["metadata"]["resourceVersion"] = "41";
    return std::make_shared<const json>(pod);
  };
  auto releases = [](const RunPlan& plan) {
    std::vector<json> out;
    for (const auto* p : all<PatchPod>(plan)) {
      if (p->patch.contains("metadata") && p->patch["metadata"].contains("finalizers")) out.push_back(p->patch);
    }
    return out;
  };
  auto base = snapshot(runObject());
  json status = admittedStatus(base);

  // Not recorded yet (a restart between the creation and the status write): it stays.
  RunDraft d(base, kClock);
  auto a = planAdmission(base, d);
  json pod = planAgentPod(a->run, a->policy, a->effective, PlanOptions{});
  pod["metadata"]["uid"] = "pod-uid";
  pod["metadata"]["creationTimestamp"] = "2026-12-07T09:59:30Z";
  pod["status"] = {{"phase", "Running"}};
  auto adopted = planAll(snapshot(runObject({}, status), held(pod)), current());
  EXPECT_TRUE(releases(adopted).empty()) << "kept until the status write that records the pod is done";
  EXPECT_EQ(stringAt(written(adopted), "/stages/0/podUID"), "pod-uid");

  // Recorded: taken off, the other finalizers kept, only if nobody wrote the pod since.
  json recorded_status = status;
  recorded_status.update(startedStatus());
  auto running = planAll(snapshot(runObject({}, recorded_status), held(podObject("Running"))), current());
  auto r = releases(running);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (json{{"metadata", {{"finalizers", {"example.com/other"}}, {"resourceVersion", "41"}}}}));
  auto deleting = podObject("Running");
  deleting["metadata"]["deletionTimestamp"] = "2026-12-07T09:59:50Z";
  EXPECT_EQ(releases(planAll(snapshot(runObject({}, recorded_status), held(deleting)), current())).size(), 1u)
      << "a deleted pod goes once it is recorded";

  // The run ended: taken off whatever the status says.
  json ended = status;
  ended.update(startedStatus());
  ended["phase"] = "Succeeded";
  ended["stages"][0]["podUID"] = "";
  auto finished = snapshot(runObject({}, ended));
  finished.run_pods["fix-agent"] = held(podObject("Succeeded"));  // a finished run's gather reads its pods so
  EXPECT_EQ(releases(planAll(finished, current())).size(), 1u);

  // A pod of an earlier run of the same name: nothing will ever record it.
  auto earlier = planAll(snapshot(runObject({}, status), held(podObject("Running", "earlier-run-uid"))), current());
  EXPECT_EQ(releases(earlier).size(), 1u);
  EXPECT_TRUE(all<DeletePod>(earlier).empty()) << "never someone else's pod";

  // A pod without the finalizer (made before it existed, or already released): nothing to do.
  EXPECT_TRUE(releases(planAll(snapshot(runObject({}, recorded_status), std::make_shared<const json>(podObject("Running"))),
                               current())).empty());
}

TEST(PlanBudget, MissingSeriesAreUnreadableAndTerminateStopsTheRunAfterTheGrace) {
  auto base = snapshot(runObject());
  json status = admittedStatus(base);
  status.update(startedStatus());
  status["conditions"].push_back({{"type", "Running"}, {"status", "True"}, {"reason", "AgentRunning"},
                                  {"lastTransitionTime", "2026-12-07T09:58:30Z"}});
  auto snap = snapshot(runObject({}, status), std::make_shared<const json>(podObject("Running")));
  auto set = settings();
  set.prometheus = true;
  TeamFacts team = current();
  team.tokens = {std::nullopt, true, true, {}, "", 0};  // answers, but without a series for the run's pod
  team.cost = {std::nullopt, true, true, {}, "", 0};
  auto plan = planAll(snap, team, set);
  EXPECT_EQ(reasonOf(written(plan), "BudgetMetricsAvailable"), "NoUsageSeries");
  EXPECT_EQ(written(plan).value("phase", ""), "Running") << "90 s of the default 5 min grace";

  team.tokens = {std::nullopt, true, false, kWall - 10min, "connection refused", 0};
  status["startTime"] = "2026-12-07T09:50:00Z";  // failing for 10 minutes of the run's 10
  plan = planAll(snapshot(runObject({}, status), std::make_shared<const json>(podObject("Running"))), team, set);
  EXPECT_EQ(written(plan).value("phase", ""), "Failed");
  EXPECT_EQ(reasonOf(written(plan), "Running"), "MetricsUnavailable");
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "WriteStatus", "DeletePod"}));
  bool terminated = false;
  for (const auto* r : all<ReportBudget>(plan)) terminated |= r->termination == "MetricsUnavailable";
  EXPECT_TRUE(terminated);
}

// ---------------------------------------------------------------------------------------------
// RunDraft

TEST(RunDraft, RecordsWaitForTheNextDurableActionAndAnotherActorsGoApart) {
  auto snap = snapshot(runObject());
  RunDraft d(snap, kClock);
  d.audit({{audit::Action::RunAdmitted, json::object()}});
  d.note(EmitEvent{});
  d.audit({{audit::Action::ChildCreated, json::object()}});
  d.audit({{audit::Action::ApprovalCounted, json::object()}}, "bob");
  d.act(DeletePod{"x", "", true}, true);
  d.finish("R", "m", runtime::Action::awaitChange());
  auto plan = d.take();
  EXPECT_EQ(durable(plan), (std::vector<std::string>{"AppendAudit", "AppendAudit", "DeletePod", "WriteStatus"}));
  auto appends = all<AppendAudit>(plan);
  EXPECT_EQ(appends[0]->records.size(), 2u);
  EXPECT_EQ(appends[0]->actor, "");
  EXPECT_FALSE(appends[0]->before_pod) << "flushed for the other actor, not for a pod";
  EXPECT_EQ(appends[1]->actor, "bob");
  EXPECT_EQ(written(plan).value("observedGeneration", 0), 1);
  EXPECT_FALSE(all<WriteStatus>(plan)[0]->event.has_value()) << "no phase change";
}

}  // namespace
}  // namespace paddock::controllers
