#include "controllers/stages.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using namespace std::chrono_literals;

const std::string kStart(40, 'a');
const std::string kNow = "2026-12-07T10:00:00Z";

AgentPolicy policy() {
  auto p = parseAgentPolicy(json::parse(R"({
    "metadata": {"name": "payments"},
    "spec": {
      "images": {"default": "registry.example.com/payments/agent:2.1.4"},
      "secrets": [{"secretName": "github-pr-token", "key": "token", "stages": ["pr"]},
                  {"secretName": "deploy-token", "key": "token", "stages": ["deploy", "promote"]}],
      "stages": [
        {"name": "pr", "image": "registry.example.com/stage:1", "approval": {"approvers": {"groups": ["leads"]}}},
        {"name": "deploy", "image": "registry.example.com/stage:1", "approval": {"approvers": {"groups": ["oncall"]}, "timeout": "1h"},
         "endpoint": {"url": "https://deploy.example.com/api/releases", "cidr": "198.18.0.10/32"}},
        {"name": "promote", "image": "registry.example.com/stage:1", "approval": {"approvers": {"groups": ["oncall"]}},
         "endpoint": {"url": "https://deploy.example.com/api/promote", "cidr": "198.18.0.10/32"}}]}})"));
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

AgentRun run(std::vector<std::string> stages) {
  AgentRun r;
  r.ns = "payments";
  r.name = "ship";
  r.uid = "u1";
  r.requested_by = "alice";
  r.stages = std::move(stages);
  return r;
}

AgentApproval approval(const std::string& name, const std::string& user, const std::string& group, const std::string& stage,
                       bool approve = true) {
  AgentApproval a;
  a.ns = "payments";
  a.name = name;
  a.run = "ship";
  a.stage = stage;
  a.username = user;
  a.groups = {group};
  a.approve = approve;
  return a;
}

std::string cloneMessage(const std::string& commit) {
  return json{{"stage", "clone"}, {"outcome", "Cloned"}, {"baseCommit", commit}}.dump();
}

json finished(const std::string& phase, int code, const std::string& message) {
  return {{"metadata", {{"name", "ship-pr"}}},
          {"status", {{"phase", phase},
                      {"containerStatuses", json::array({{{"name", "stage"},
                                                          {"state", {{"terminated", {{"exitCode", code},
                                                                                     {"message", message}}}}}}})}}}};
}

PodObservation observed(const json& pod) { return observePod(&pod, "stage"); }

struct Fixture {
  AgentPolicy pol = policy();
  AgentRun r = run({"pr"});
  StagesInput in;
  Fixture() {
    in.run = &r;
    in.policy = &pol;
    in.agent_message = "the agent finished its task";
    in.clone_message = cloneMessage(kStart);
    in.now = std::chrono::system_clock::from_time_t(1796637600);  // kNow
  }
  json& stage(StagesPlan& plan, const std::string& name) {
    for (auto& e : plan.stages) {
      if (e["name"] == name) return e;
    }
    static json none;
    return none;
  }
  // The plan after the pr stage was approved by bob (whom RBAC allows) and its pod started.
  StagesPlan approvedPr() {
    in.approvals = {approval("bob-pr", "bob", "leads", "pr")};
    in.rbac_allows = {{"bob-pr", true}};
    auto plan = planStages(in);
    in.old_stages = plan.stages;
    return plan;
  }
};

TEST(PlanStages, TheAgentsSuccessRecordsItsStartCommitAndThePrStageAwaitsApproval) {
  Fixture f;
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "AwaitingApproval");
  EXPECT_EQ(plan.current, "pr");
  EXPECT_EQ(f.stage(plan, "agent")["phase"], "Succeeded");
  EXPECT_EQ(f.stage(plan, "agent")["baseCommit"], kStart);
  EXPECT_EQ(f.stage(plan, "pr")["phase"], "AwaitingApproval");
  EXPECT_EQ(f.stage(plan, "pr")["waitingSince"], kNow);
  EXPECT_TRUE(plan.actions.empty());
  ASSERT_EQ(plan.records.size(), 1u);
  EXPECT_EQ(plan.records[0].second, (json{{"stage", "agent"}, {"phase", "Succeeded"}}));
  ASSERT_TRUE(plan.requeue_after);
  EXPECT_EQ(*plan.requeue_after, std::chrono::milliseconds(72h));
}

TEST(PlanStages, AnApprovalWithoutAnRbacAnswerIsReviewedFirst) {
  Fixture f;
  f.in.approvals = {approval("bob-pr", "bob", "leads", "pr")};
  auto plan = planStages(f.in);
  ASSERT_EQ(plan.to_review.size(), 1u);
  EXPECT_EQ(plan.to_review[0].name, "bob-pr");
  EXPECT_TRUE(plan.actions.empty());
  f.in.rbac_allows = {{"bob-pr", true}};
  plan = planStages(f.in);
  EXPECT_TRUE(plan.to_review.empty());
  ASSERT_EQ(plan.actions.size(), 1u);
  EXPECT_EQ(plan.actions[0].kind, StageAction::Kind::CreatePod);
  ASSERT_EQ(plan.new_verdicts.size(), 1u);
  EXPECT_TRUE(plan.new_verdicts[0].verdict.counted);
}

// bob's approval was counted at an earlier reconcile (its verdict is in status) and the stage is
// about to start: RBAC is asked again first, and an approver whose verb was revoked since no
// longer opens the gate.
TEST(PlanStages, ApprovalsCountedEarlierAreRecheckedWhenTheStageStarts) {
  Fixture f;
  auto approved = f.approvedPr();
  json& pr = f.stage(approved, "pr");
  pr["phase"] = "AwaitingApproval";  // recorded as counted, the pod not made yet
  pr.erase("pod"), pr.erase("startTime");
  f.in.old_stages = approved.stages;
  f.in.rbac_allows.clear();

  auto plan = planStages(f.in);
  ASSERT_EQ(plan.to_recheck.size(), 1u);
  EXPECT_EQ(plan.to_recheck[0].name, "bob-pr");
  EXPECT_TRUE(plan.actions.empty()) << "no pod before RBAC answered again";

  f.in.rbac_rechecked = {{"bob-pr", false}};
  plan = planStages(f.in);
  EXPECT_TRUE(plan.to_recheck.empty());
  EXPECT_TRUE(plan.actions.empty()) << "the revoked approval does not count";
  EXPECT_EQ(plan.phase, "AwaitingApproval");
  EXPECT_EQ(f.stage(plan, "pr")["approvals"][0]["counted"], false);
  ASSERT_EQ(plan.new_verdicts.size(), 1u) << "the revocation is recorded";
  EXPECT_TRUE(plan.new_verdicts[0].revoked);

  f.in.rbac_rechecked = {{"bob-pr", true}};
  plan = planStages(f.in);
  ASSERT_EQ(plan.actions.size(), 1u);
  EXPECT_EQ(plan.actions[0].kind, StageAction::Kind::CreatePod);
  EXPECT_TRUE(plan.new_verdicts.empty()) << "still counted: nothing new to record";
}

TEST(PlanStages, ThePrPodIsToldTheCommitTheAgentStartedFrom) {
  Fixture f;
  auto plan = f.approvedPr();
  ASSERT_EQ(plan.actions.size(), 1u);
  const auto& act = plan.actions[0];
  EXPECT_EQ(act.pod_name, "ship-pr");
  json args = act.pod["spec"]["containers"][0]["args"];
  auto at = std::find(args.begin(), args.end(), "--base-commit");
  ASSERT_NE(at, args.end()) << args.dump();
  EXPECT_EQ(*(at + 1), kStart);
  EXPECT_EQ(plan.phase, "Running");
  EXPECT_EQ(f.stage(plan, "pr")["phase"], "Running");
  EXPECT_EQ(f.stage(plan, "pr")["pod"], "ship-pr");
}

TEST(PlanStages, WithoutTheRecordedStartCommitThePrStageDoesNotStart) {
  Fixture f;
  for (std::string message : {std::string(), std::string("{\"stage\":\"clone\",\"outcome\":\"Cloned\",\"baseCommit\":\"HEAD\"}"),
                              std::string("not json")}) {
    f.in.clone_message = message;
    f.in.old_stages = json::array();
    auto plan = f.approvedPr();
    EXPECT_TRUE(plan.actions.empty()) << message;
    EXPECT_EQ(plan.phase, "Failed") << message;
    EXPECT_EQ(plan.reason, "BaseCommitUnknown") << message;
  }
}

TEST(PlanStages, ApprovalsForStagesTheRunNeverAskedForAreNeverCounted) {
  Fixture f;  // the run asked for pr only; the policy defines deploy too
  f.in.approvals = {approval("carol-deploy", "carol", "oncall", "deploy"), approval("bob-pr-other-run", "bob", "leads", "pr")};
  f.in.approvals[1].run = "another-run";
  f.in.rbac_allows = {{"carol-deploy", true}, {"bob-pr-other-run", true}};
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "AwaitingApproval");
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_TRUE(plan.new_verdicts.empty());
  EXPECT_TRUE(plan.to_review.empty());
  EXPECT_EQ(f.stage(plan, "pr")["approvals"], json::array());
  EXPECT_TRUE(f.stage(plan, "deploy").is_null()) << "a stage the run did not ask for is not listed";
}

TEST(PlanStages, AStageFailureCarriesTheRealExitCodeAndTheStagesResult) {
  Fixture f;
  f.approvedPr();
  json refused = {{"stage", "pr"},
                  {"outcome", "Refused"},
                  {"reason", "ProtectedPath"},
                  {"message", "the change touches 1 protected path(s) of the policy (first: .github/workflows/ci.yml)"},
                  {"refusedPaths", {".github/workflows/ci.yml"}},
                  {"findings", {{{"file", "config.py"}, {"line", 3}, {"pattern", "github-token"}}}}};
  f.in.pods["pr"] = {observed(finished("Failed", 3, refused.dump())), 30s};
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "Failed");
  EXPECT_EQ(plan.reason, "StageFailed");
  EXPECT_NE(plan.message.find("exit code 3"), std::string::npos) << plan.message;
  EXPECT_NE(plan.message.find("Refused, ProtectedPath"), std::string::npos) << plan.message;
  EXPECT_NE(plan.message.find("config.py:3:github-token"), std::string::npos) << plan.message;
  json& pr = f.stage(plan, "pr");
  EXPECT_EQ(pr["phase"], "Failed");
  EXPECT_EQ(pr["exitCode"], 3);
  EXPECT_EQ(pr["outcome"], "Refused");
  EXPECT_EQ(pr["refusedPaths"], json::array({".github/workflows/ci.yml"}));
  EXPECT_EQ(pr["findings"], json::array({"config.py:3:github-token"}));
  EXPECT_TRUE(plan.current.empty());
  ASSERT_FALSE(plan.records.empty());
  EXPECT_EQ(plan.records.back().second,
            (json{{"stage", "pr"}, {"phase", "Failed"}, {"reason", "StageFailed"}, {"exitCode", 3}, {"outcome", "Refused"}}))
      << "the audit log records the real exit code too";
}

TEST(PlanStages, AStageThatWroteNoResultStillReportsItsExitCode) {
  Fixture f;
  f.approvedPr();
  f.in.pods["pr"] = {observed(finished("Failed", 137, "")), 30s};
  auto plan = planStages(f.in);
  EXPECT_NE(plan.message.find("exit code 137"), std::string::npos) << plan.message;
  EXPECT_NE(plan.message.find("wrote no result"), std::string::npos) << plan.message;
}

TEST(PlanStages, APullRequestReachesStatusAndTheDeployStagesReleaseReachesPromote) {
  Fixture f;
  f.r.stages = {"pr", "deploy", "promote"};
  f.approvedPr();
  json opened = {{"stage", "pr"}, {"outcome", "PullRequestOpened"}, {"branch", "paddock/ship"},
                 {"commit", std::string(40, 'b')},
                 {"pullRequest", {{"url", "https://github.com/acme/shop/pull/4"}, {"number", 4}}}};
  f.in.pods["pr"] = {observed(finished("Succeeded", 0, opened.dump())), 30s};
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.pull_request_url, "https://github.com/acme/shop/pull/4");
  EXPECT_EQ(f.stage(plan, "pr")["pullRequest"]["number"], 4);
  EXPECT_EQ(f.stage(plan, "pr")["branch"], "paddock/ship");
  EXPECT_EQ(plan.phase, "AwaitingApproval");
  EXPECT_EQ(plan.current, "deploy");

  // Deploy, approved, stages release rel-9; promote waits for its own approval, then is told rel-9.
  f.in.old_stages = plan.stages;
  f.in.approvals.push_back(approval("carol-deploy", "carol", "oncall", "deploy"));
  f.in.rbac_allows["carol-deploy"] = true;
  plan = planStages(f.in);
  ASSERT_EQ(plan.actions.size(), 1u);
  json deploy_args = plan.actions[0].pod["spec"]["containers"][0]["args"];
  EXPECT_NE(std::find(deploy_args.begin(), deploy_args.end(), "https://deploy.example.com/api/releases"), deploy_args.end());
  f.in.old_stages = plan.stages;
  json staged = {{"stage", "deploy"}, {"outcome", "Staged"}, {"release", {{"id", "rel-9"}}}};
  f.in.pods["deploy"] = {observed(finished("Succeeded", 0, staged.dump())), 30s};
  plan = planStages(f.in);
  EXPECT_EQ(f.stage(plan, "deploy")["release"]["id"], "rel-9");
  EXPECT_EQ(plan.phase, "AwaitingApproval") << "promotion is its own gate: carol's deploy approval does not open it";
  EXPECT_EQ(plan.current, "promote");
  EXPECT_TRUE(plan.actions.empty());
  f.in.old_stages = plan.stages;
  f.in.approvals.push_back(approval("carol-promote", "carol", "oncall", "promote"));
  f.in.rbac_allows["carol-promote"] = true;
  plan = planStages(f.in);
  ASSERT_EQ(plan.actions.size(), 1u);
  json args = plan.actions[0].pod["spec"]["containers"][0]["args"];
  auto at = std::find(args.begin(), args.end(), "--release");
  ASSERT_NE(at, args.end()) << args.dump();
  EXPECT_EQ(*(at + 1), "rel-9");
  EXPECT_EQ(plan.pull_request_url, "https://github.com/acme/shop/pull/4") << "kept once the pr stage is done";
}

TEST(PlanStages, PromoteWithoutAStagedReleaseFails) {
  Fixture f;
  f.r.stages = {"promote"};
  f.in.approvals = {approval("carol-promote", "carol", "oncall", "promote")};
  f.in.rbac_allows = {{"carol-promote", true}};
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "Failed");
  EXPECT_EQ(plan.reason, "NoRelease");
  EXPECT_TRUE(plan.actions.empty());
}

TEST(PlanStages, ADeployStageWithoutAnEndpointFailsNamingTheField) {
  Fixture f;
  f.pol.stages[1].endpoint_url.clear();
  f.r.stages = {"deploy"};
  f.in.approvals = {approval("carol-deploy", "carol", "oncall", "deploy")};
  f.in.rbac_allows = {{"carol-deploy", true}};
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.reason, "NoEndpoint");
  EXPECT_NE(plan.message.find("spec.stages[deploy].endpoint"), std::string::npos);
}

TEST(PlanStages, CancelStopsARunningStagePod) {
  Fixture f;
  f.approvedPr();
  f.r.cancel = true;
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "Cancelled");
  ASSERT_EQ(plan.actions.size(), 1u);
  EXPECT_EQ(plan.actions[0].kind, StageAction::Kind::DeletePod);
  EXPECT_EQ(plan.actions[0].pod_name, "ship-pr");
}

TEST(DecideStagePod, EveryPhaseHasADeadlineWithItsCause) {
  using Kind = StagePodDecision::Kind;
  auto pending = [](json conditions, json statuses) {
    json p = {{"status", {{"phase", "Pending"}, {"conditions", conditions}, {"containerStatuses", statuses}}}};
    return observePod(&p, "stage");
  };
  json claim = json::array({{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"},
                             {"message", "0/4 nodes are available: persistentvolumeclaim \"ship-workspace\" not found."}}});
  json pull = json::array({{{"name", "stage"}, {"state", {{"waiting", {{"reason", "ErrImagePull"}}}}}}});
  json running = {{"status", {{"phase", "Running"}}}};
  json deadline = {{"status", {{"phase", "Failed"}, {"reason", "DeadlineExceeded"}}}};
  struct Case {
    const char* name;
    PodObservation pod;
    seconds age;
    Kind kind;
    const char* reason;
    bool delete_pod;
  };
  const Case cases[] = {
      {"pending, in time", pending(claim, json::array()), 599s, Kind::Starting, "", false},
      {"a missing workspace claim", pending(claim, json::array()), 600s, Kind::Failed, "WorkspaceClaimMissing", true},
      {"an image that cannot be pulled", pending(json::array(), pull), 601s, Kind::Failed, "ImagePullFailed", true},
      {"pending for no reason shown", pending(json::array(), json::array()), 700s, Kind::Failed, "StagePodPending", true},
      {"running, in time", observePod(&running, "stage"), 3000s, Kind::Running, "", false},
      {"running past the kubelet's deadline", observePod(&running, "stage"), 3720s, Kind::Failed, "StageTimedOut", true},
      {"stopped by activeDeadlineSeconds", observePod(&deadline, "stage"), 3601s, Kind::Failed, "StageTimedOut", false},
      {"gone", PodObservation{}, 0s, Kind::Failed, "PodDeleted", false},
  };
  for (const auto& c : cases) {
    auto d = decideStagePod("pr", {c.pod, c.age}, 600s, 3720s);
    EXPECT_EQ(d.kind, c.kind) << c.name;
    EXPECT_EQ(d.reason, c.reason) << c.name << ": " << d.message;
    EXPECT_EQ(d.delete_pod, c.delete_pod) << c.name;
    if (c.kind == Kind::Failed) {
      EXPECT_NE(d.message.find("stage pr"), std::string::npos) << c.name << ": " << d.message;
    }
  }
  auto claim_missing = decideStagePod("pr", {pending(claim, json::array()), 600s}, 600s, 3720s);
  EXPECT_NE(claim_missing.message.find("ship-workspace"), std::string::npos) << claim_missing.message;
}

TEST(PlanStages, AStuckStagePodFailsTheRunAndIsDeleted) {
  Fixture f;
  f.approvedPr();
  json p = {{"status", {{"phase", "Pending"},
                        {"conditions", json::array({{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"},
                                                     {"message", "persistentvolumeclaim \"ship-workspace\" not found"}}})}}}};
  f.in.pods["pr"] = {observePod(&p, "stage"), 601s};
  auto plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "Failed");
  EXPECT_EQ(plan.reason, "WorkspaceClaimMissing");
  ASSERT_EQ(plan.actions.size(), 1u);
  EXPECT_EQ(plan.actions[0].kind, StageAction::Kind::DeletePod);
  f.in.pods["pr"].age = 100s;
  plan = planStages(f.in);
  EXPECT_EQ(plan.phase, "Running");
  ASSERT_TRUE(plan.requeue_after);
  EXPECT_EQ(*plan.requeue_after, std::chrono::milliseconds(500s)) << "looked at again when the deadline falls due";
}

}  // namespace
}  // namespace paddock::controllers
