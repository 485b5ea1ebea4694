#include "controllers/approval.h"

#include <algorithm>
#include <set>

#include "controllers/budget.h"
#include "controllers/reconcile.h"
#include "controllers/status.h"
#include "operator/common/json.h"

namespace paddock::controllers {

Result<AgentApproval> parseAgentApproval(const json& object) {
  auto str = [&](const char* pointer) {
    auto p = json::json_pointer(pointer);
    return object.contains(p) && object[p].is_string() ? object[p].get<std::string>() : std::string();
  };
  AgentApproval a;
  a.ns = str("/metadata/namespace");
  a.name = str("/metadata/name");
  a.creation_timestamp = str("/metadata/creationTimestamp");
  a.run = str("/spec/run");
  a.stage = str("/spec/stage");
  a.username = str("/spec/approver/username");
  a.comment = str("/spec/comment");
  std::string decision = str("/spec/decision");
  if (decision != "Approve" && decision != "Reject") {
    return Error::local("Invalid", "AgentApproval " + a.name + ": spec.decision must be Approve or Reject");
  }
  a.approve = decision == "Approve";
  if (a.run.empty() || a.stage.empty() || a.username.empty()) {
    return Error::local("Invalid", "AgentApproval " + a.name + ": spec.run, spec.stage and spec.approver.username are required");
  }
  auto groups = json::json_pointer("/spec/approver/groups");
  if (object.contains(groups) && object[groups].is_array()) {
    for (const auto& g : object[groups]) {
      if (g.is_string()) a.groups.push_back(g.get<std::string>());
    }
  }
  return a;
}

GateDecision decideGate(const GateInput& in) {
  GateDecision d;
  const auto& st = in.stage;
  auto listed = [&](const AgentApproval& a) {
    if (std::find(st.approver_users.begin(), st.approver_users.end(), a.username) != st.approver_users.end()) return true;
    return std::any_of(a.groups.begin(), a.groups.end(), [&](const std::string& g) {
      return std::find(st.approver_groups.begin(), st.approver_groups.end(), g) != st.approver_groups.end();
    });
  };
  std::set<std::string> counted;
  std::optional<ApprovalVerdict> rejection;
  for (const auto& a : in.approvals) {
    // An approval names its stage: one for another stage (or for a stage the run never asked
    // for) is never counted here, whoever gives it.
    if (a.stage != st.name) continue;
    auto rbac = in.rbac_allows.find(a.name);
    if (rbac == in.rbac_allows.end()) continue;  // not yet reviewed
    ApprovalVerdict v{a.name, a.username, a.approve, false, ""};
    if (in.requester.empty()) {
      v.reason = "the run records no requester (spec.requestedBy), so no approval can be told apart from the "
                 "requester's own; create the run again where Paddock's admission policies are installed";
    } else if (a.username == in.requester) {
      v.reason = "the run's requester cannot approve or reject their own run";
    } else if (!listed(a)) {
      v.reason = a.username + " is not among the approvers of stage " + st.name +
                 " (the policy's spec.stages[].approval.approvers)";
    } else if (!rbac->second) {
      v.reason = a.username + " is not granted the approve verb on this AgentRun (RBAC: verb approve on "
                 "agentruns.paddock.dev)";
    } else if (a.approve && counted.count(a.username)) {
      v.reason = a.username + " has already approved; each approver counts once";
    } else {
      v.counted = true;
      if (a.approve) counted.insert(a.username);
      else if (!rejection) rejection = v;
    }
    d.verdicts.push_back(std::move(v));
  }
  d.counted = static_cast<int>(counted.size());
  std::string tally = std::to_string(d.counted) + " of " + std::to_string(st.min_approvals) + " approvals";
  if (rejection) {
    d.outcome = GateDecision::Outcome::Rejected;
    d.message = "stage " + st.name + " was rejected by " + rejection->approver + " (AgentApproval " + rejection->name + ")";
  } else if (d.counted >= st.min_approvals) {
    d.outcome = GateDecision::Outcome::Approved;
    d.message = "stage " + st.name + " approved: " + tally;
  } else if (in.waiting_for >= st.approval_timeout) {
    d.outcome = GateDecision::Outcome::TimedOut;
    d.message = "stage " + st.name + " was not approved within " + formatDuration(st.approval_timeout) + " (" + tally +
                "); create a new AgentRun to try again";
  } else {
    d.message = "stage " + st.name + " awaits approval: " + tally + "; approve with kubectl paddock approve RUN --stage " +
                st.name;
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// The reconcile's approval steps (controllers/reconcile.h).

void planUnmatchedApprovals(const RunSnapshot& snap, const Admitted& a, RunDraft& draft, const RunPlanSettings& settings) {
  const AgentRun& run = a.run;
  auto unmatched = unmatchedApprovals(run, run.stages, snap.approvals);
  if (unmatched.empty() && !hasCondition(snap.old_status, "UnmatchedApprovals")) return;
  std::string message, old_message = conditionOf(snap.old_status, "UnmatchedApprovals").value("message", "");
  for (const auto& u : unmatched) {
    message += (message.empty() ? "" : "; ") + u.reason;
    // Once each: the condition's message names the approvals already told (the durable rule);
    // the recent facts cover our own write the cache does not show yet.
    const std::string fact = run.uid + "/unmatched/" + u.name;
    if (old_message.find("AgentApproval " + u.name + " ") != std::string::npos || snap.recent_facts.count(fact)) continue;
    draft.note(RememberFact{fact});
    std::string approver;
    for (const auto& ap : snap.approvals) {
      if (ap.name == u.name) approver = ap.username;
    }
    // Audited in the approver's name as not counted, and told on the run.
    draft.audit({{audit::Action::ApprovalRefused, {{"stage", u.stage}, {"approval", u.name}, {"reason", "UnknownStage"}}}},
                approver.empty() ? settings.actor : approver);
    draft.note(EmitEvent{snap.regarding, runtime::EventType::Warning, "UnmatchedApproval", "Approve", u.reason});
  }
  draft.condition("UnmatchedApprovals", !unmatched.empty(), unmatched.empty() ? "AllMatched" : "UnknownStage",
                  unmatched.empty() ? "every AgentApproval naming this run is for one of its stages" : message);
}

RunPlan planApprovalsOfMissingRun(const std::string& ns, const std::string& name,
                                  const std::vector<kube::ObjectPtr>& approvals, const std::set<std::string>& recent) {
  RunPlan plan;
  for (const auto& obj : approvals) {
    auto a = parseAgentApproval(*obj);
    if (!a || a->ns != ns || a->run != name) continue;
    const std::string fact = stringAt(*obj, "/metadata/uid") + "/no-run";
    if (recent.count(fact)) continue;
    plan.actions.push_back(RememberFact{fact});
    auto ref = runtime::ObjectReference::from(*obj);
    ref.api_version = "paddock.dev/v1alpha1", ref.kind = "AgentApproval";
    plan.actions.push_back(EmitEvent{ref, runtime::EventType::Warning, "NoSuchRun", "Approve",
                                     "AgentApproval " + a->name + " names AgentRun " + name +
                                         ", which does not exist in namespace " + ns +
                                         "; it counts for nothing. Check spec.run, delete this approval and create "
                                         "one for the right run"});
  }
  return plan;
}

}  // namespace paddock::controllers
