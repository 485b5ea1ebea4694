// planRun and the RunDraft its steps share (controllers/reconcile.h).
#include "controllers/reconcile.h"
#include "controllers/status.h"

namespace paddock::controllers {

void RunDraft::audit(Records records, const std::string& actor) {
  if (records.empty()) return;
  if (actor.empty()) {
    for (auto& r : records) held_.push_back(std::move(r));
    return;
  }
  flush(false);  // the operator's records first, then the other actor's at once
  plan.actions.push_back(AppendAudit{std::move(records), actor, false});
}

void RunDraft::flush(bool before_pod) {
  if (held_.empty()) return;
  plan.actions.push_back(AppendAudit{std::move(held_), "", before_pod});
  held_.clear();
}

void RunDraft::act(RunAction action, bool before_pod) {
  flush(before_pod);
  plan.actions.push_back(std::move(action));
}

void RunDraft::append(RunPlan other) {
  flush(false);
  for (auto& a : other.actions) plan.actions.push_back(std::move(a));
  plan.next = other.next;
  for (auto& r : other.to_review) plan.to_review.push_back(std::move(r));
}

void RunDraft::condition(const std::string& type, bool value, const std::string& reason, const std::string& message) {
  setCondition(status, type, value, reason, message, snap_->generation, clock_->now);
}

void RunDraft::finish(const std::string& reason, const std::string& message, runtime::Action next) {
  status["observedGeneration"] = snap_->generation;
  WriteStatus w{status, reason, message, std::nullopt};
  std::string phase = status.value("phase", ""), old_phase = snap_->old_status.value("phase", "");
  // An Event when the pod is created, when the run ends, and whenever something goes wrong;
  // routine progress (the pod starting, the agent running) is in status and costs no write.
  bool routine = reason == "PodStarting" || reason == "AgentRunning";
  if (phase != old_phase && !routine) {
    bool bad = phase == "Failed" || phase == "TimedOut" || phase == "BudgetExceeded" ||
               (phase == "Pending" && !reason.empty() && reason != "WaitingForSlot" && reason != "Admitted");
    w.event = EmitEvent{snap_->regarding, bad ? runtime::EventType::Warning : runtime::EventType::Normal, reason,
                        phase.empty() ? "Reconcile" : phase, message};
  }
  act(std::move(w));
  plan.next = next;
}

std::vector<json> secretMounts(const json& pod, const std::string& stage) {
  std::vector<json> out;
  const auto& spec = pod.value("spec", json::object());
  for (const auto& v : spec.value("volumes", json::array())) {
    if (!v.contains("secret")) continue;
    std::string volume = v.value("name", "");
    for (const auto& item : v["secret"].value("items", json::array())) {
      for (const auto& c : spec.value("containers", json::array())) {
        for (const auto& m : c.value("volumeMounts", json::array())) {
          if (m.value("name", "") != volume) continue;
          out.push_back({{"secret", v["secret"].value("secretName", "")}, {"key", item.value("key", "")},
                         {"path", m.value("mountPath", "") + "/" + item.value("path", "")},
                         {"container", c.value("name", "")}, {"stage", stage}});
        }
      }
    }
  }
  return out;
}

RunPlan planRun(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft draft,
                const RunPlanSettings& settings, const PlanClock& clock) {
  // Approvals for a stage the run did not ask for: reported here, never counted (issue 25).
  planUnmatchedApprovals(snap, a, draft, settings);
  // The team's NetworkPolicy, before any pod of the run exists and for as long as one may.
  planNetwork(a, team, draft, settings, clock);
  if (planQueue(snap, a, team, draft, settings)) return draft.take();
  // The gateway path: the credential is issued in a pass of its own, before the pod.
  if (!planGatewayCredential(snap, a, team, draft)) planAgent(snap, a, team, draft, settings, clock);
  RunPlan plan = draft.take();
  planGatewayWait(a, plan, draft.status);
  return plan;
}

}  // namespace paddock::controllers
