// Stage gates: does a gated stage of a run have the approvals it needs? Pure functions over
// parsed AgentApprovals; the reconciler asks the API server (SubjectAccessReview) whether each
// approver holds the `approve` verb on the run and passes the answers in.
//
// An approval counts only when its approver is not the run's requester, is among the stage's
// approvers (a listed user, or a member of a listed group), and RBAC grants them `approve` on the
// run; each person counts once. A run that records no requester counts no approval at all. One Reject that would count fails the stage; so does the timeout.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controllers/api.h"

namespace paddock::controllers {

struct AgentApproval {
  std::string ns;
  std::string name;
  std::string creation_timestamp;
  std::string run;
  std::string stage;
  bool approve = true;  // decision Approve, else Reject
  std::string username;
  std::vector<std::string> groups;
  std::string comment;
};
Result<AgentApproval> parseAgentApproval(const json& object);

// What the operator concluded about one approval.
struct ApprovalVerdict {
  std::string name;      // the AgentApproval
  std::string approver;  // its username
  bool approve = true;
  bool counted = false;
  std::string reason;    // why it did not count; "" when it did
};

struct GateInput {
  StageSpec stage;
  std::string requester;               // the run's spec.requestedBy
  std::vector<AgentApproval> approvals;  // for this run, in creation order; those of other stages are ignored
  // SubjectAccessReview answers by approval name: may its approver `approve` this run? An
  // approval without an answer yet is left pending.
  std::map<std::string, bool> rbac_allows;
  std::chrono::milliseconds waiting_for{0};  // since the stage began to wait
};

struct GateDecision {
  enum class Outcome { Waiting, Approved, Rejected, TimedOut };
  Outcome outcome = Outcome::Waiting;
  std::vector<ApprovalVerdict> verdicts;  // one per approval with an RBAC answer
  int counted = 0;
  std::string message;  // for the condition and the Event
};

GateDecision decideGate(const GateInput& in);

}  // namespace paddock::controllers
