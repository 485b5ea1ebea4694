#include "controllers/approval.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

using namespace std::chrono_literals;
using Outcome = GateDecision::Outcome;

AgentApproval approval(const std::string& name, const std::string& user, std::vector<std::string> groups, bool approve = true) {
  AgentApproval a;
  a.name = name;
  a.run = "fix";
  a.stage = "deploy";
  a.username = user;
  a.groups = std::move(groups);
  a.approve = approve;
  return a;
}

GateInput deployGate() {
  GateInput in;
  in.stage.name = "deploy";
  in.stage.approver_groups = {"oncall"};
  in.stage.approver_users = {"carol"};
  in.stage.min_approvals = 2;
  in.stage.approval_timeout = 24h;
  in.requester = "alice";
  return in;
}

TEST(DecideGate, Table) {
  struct Case {
    const char* name;
    std::vector<AgentApproval> approvals;
    std::map<std::string, bool> rbac;
    std::chrono::milliseconds waiting;
    Outcome outcome;
    int counted;
    const char* in_message;
  };
  const Case cases[] = {
      {"nobody yet", {}, {}, 1h, Outcome::Waiting, 0, "awaits approval: 0 of 2"},
      {"two distinct approvers", {approval("a1", "bob", {"oncall"}), approval("a2", "carol", {})}, {{"a1", true}, {"a2", true}},
       1h, Outcome::Approved, 2, "approved: 2 of 2"},
      {"the same person twice counts once", {approval("a1", "bob", {"oncall"}), approval("a2", "bob", {"oncall"})},
       {{"a1", true}, {"a2", true}}, 1h, Outcome::Waiting, 1, "1 of 2"},
      {"the requester's own approval does not count", {approval("a1", "alice", {"oncall"}), approval("a2", "bob", {"oncall"})},
       {{"a1", true}, {"a2", true}}, 1h, Outcome::Waiting, 1, "1 of 2"},
      {"without the approve verb", {approval("a1", "bob", {"oncall"}), approval("a2", "dave", {"oncall"})},
       {{"a1", true}, {"a2", false}}, 1h, Outcome::Waiting, 1, "1 of 2"},
      {"not among the stage's approvers", {approval("a1", "bob", {"oncall"}), approval("a2", "eve", {"devs"})},
       {{"a1", true}, {"a2", true}}, 1h, Outcome::Waiting, 1, "1 of 2"},
      {"not yet reviewed", {approval("a1", "bob", {"oncall"}), approval("a2", "carol", {})}, {{"a1", true}}, 1h,
       Outcome::Waiting, 1, "1 of 2"},
      {"one counted reject fails the stage", {approval("a1", "bob", {"oncall"}), approval("r1", "carol", {}, false)},
       {{"a1", true}, {"r1", true}}, 1h, Outcome::Rejected, 1, "rejected by carol (AgentApproval r1)"},
      {"a reject that does not count changes nothing", {approval("r1", "eve", {"devs"}, false)}, {{"r1", true}}, 1h,
       Outcome::Waiting, 0, "0 of 2"},
      {"the requester cannot reject either", {approval("r1", "alice", {"oncall"}, false)}, {{"r1", true}}, 1h,
       Outcome::Waiting, 0, "0 of 2"},
      {"timeout", {approval("a1", "bob", {"oncall"})}, {{"a1", true}}, 24h, Outcome::TimedOut, 1,
       "not approved within 24h (1 of 2 approvals)"},
  };
  for (const auto& c : cases) {
    auto in = deployGate();
    in.approvals = c.approvals;
    in.rbac_allows = c.rbac;
    in.waiting_for = c.waiting;
    auto d = decideGate(in);
    EXPECT_EQ(d.outcome, c.outcome) << c.name;
    EXPECT_EQ(d.counted, c.counted) << c.name;
    EXPECT_NE(d.message.find(c.in_message), std::string::npos) << c.name << ": " << d.message;
  }
}

TEST(DecideGate, WithoutARecordedRequesterNoApprovalCounts) {
  auto in = deployGate();
  in.requester = "";
  in.approvals = {approval("a1", "bob", {"oncall"}), approval("a2", "carol", {})};
  in.rbac_allows = {{"a1", true}, {"a2", true}};
  auto d = decideGate(in);
  EXPECT_EQ(d.outcome, Outcome::Waiting);
  EXPECT_EQ(d.counted, 0);
  ASSERT_EQ(d.verdicts.size(), 2u);
  EXPECT_NE(d.verdicts[0].reason.find("records no requester (spec.requestedBy)"), std::string::npos) << d.verdicts[0].reason;
}

TEST(DecideGate, EveryReviewedApprovalGetsAVerdictWithItsReason) {
  auto in = deployGate();
  in.approvals = {approval("self", "alice", {"oncall"}), approval("norbac", "dave", {"oncall"}),
                  approval("stranger", "eve", {"devs"}), approval("ok", "bob", {"oncall"}),
                  approval("again", "bob", {"oncall"}), approval("pending", "carol", {})};
  in.rbac_allows = {{"self", true}, {"norbac", false}, {"stranger", true}, {"ok", true}, {"again", true}};
  auto d = decideGate(in);
  ASSERT_EQ(d.verdicts.size(), 5u) << "the unreviewed approval has no verdict yet";
  std::map<std::string, ApprovalVerdict> by;
  for (const auto& v : d.verdicts) by[v.name] = v;
  EXPECT_NE(by["self"].reason.find("requester cannot approve"), std::string::npos);
  EXPECT_NE(by["norbac"].reason.find("approve verb"), std::string::npos);
  EXPECT_NE(by["stranger"].reason.find("not among the approvers of stage deploy"), std::string::npos);
  EXPECT_TRUE(by["ok"].counted);
  EXPECT_TRUE(by["ok"].reason.empty());
  EXPECT_NE(by["again"].reason.find("already approved"), std::string::npos);
}

TEST(ParseAgentApproval, ReadsTheDecisionAndNamesBadFields) {
  json ok = {{"metadata", {{"name", "a1"}, {"namespace", "team"}}},
             {"spec", {{"run", "fix"}, {"stage", "pr"}, {"decision", "Reject"},
                       {"approver", {{"username", "bob"}, {"groups", {"leads", 7}}}}, {"comment", "no"}}}};
  auto a = parseAgentApproval(ok);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->approve);
  EXPECT_EQ(a->groups, std::vector<std::string>{"leads"});
  json bad = ok;
  bad["spec"]["decision"] = "Maybe";
  EXPECT_NE(parseAgentApproval(bad).error().message.find("spec.decision"), std::string::npos);
  bad = ok;
  bad["spec"].erase("run");
  EXPECT_NE(parseAgentApproval(bad).error().message.find("spec.run"), std::string::npos);
}


// Issue 25.5: an approval names its stage; one for another stage never counts towards this one,
// even from an approver this stage would accept.
TEST(DecideGate, ApprovalsOfOtherStagesAreIgnored) {
  auto in = deployGate();
  in.stage.min_approvals = 1;
  auto other = approval("for-pr", "bob", {"oncall"});
  other.stage = "pr";
  auto never_asked = approval("for-promote", "carol", {});
  never_asked.stage = "promote";
  in.approvals = {other, never_asked};
  in.rbac_allows = {{"for-pr", true}, {"for-promote", true}};
  auto d = decideGate(in);
  EXPECT_EQ(d.outcome, Outcome::Waiting);
  EXPECT_EQ(d.counted, 0);
  EXPECT_TRUE(d.verdicts.empty()) << "approvals of other stages get no verdict here";
  auto reject = approval("reject-pr", "bob", {"oncall"}, false);
  reject.stage = "pr";
  in.approvals = {reject};
  in.rbac_allows = {{"reject-pr", true}};
  EXPECT_EQ(decideGate(in).outcome, Outcome::Waiting) << "another stage's reject does not fail this one";
}

}  // namespace
}  // namespace paddock::controllers
