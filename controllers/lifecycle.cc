#include "controllers/lifecycle.h"

#include "controllers/admission.h"
#include "operator/common/json.h"

namespace paddock::controllers {
namespace {

using nlohmann::json;

bool imagePullProblem(const std::string& reason) {
  return reason == "ErrImagePull" || reason == "ImagePullBackOff" || reason == "InvalidImageName" ||
         reason == "ErrImageNeverPull";
}

}  // namespace

PodObservation observePod(const json* pod, const std::string& container) {
  PodObservation o;
  if (!pod || !pod->is_object()) return o;
  o.exists = true;
  o.deleting = pod->contains(json::json_pointer("/metadata/deletionTimestamp"));
  o.phase = stringAt(*pod, "/status/phase");
  o.reason = stringAt(*pod, "/status/reason");
  o.message = stringAt(*pod, "/status/message");
  auto statuses = pod->find("status");
  if (statuses != pod->end() && statuses->is_object()) {
    for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
      auto cs = statuses->find(list);
      if (cs == statuses->end() || !cs->is_array()) continue;
      for (const auto& c : *cs) {
        if (!c.is_object() || c.value("name", "") != container) continue;
        o.waiting_reason = stringAt(c, "/state/waiting/reason");
        auto code = json::json_pointer("/state/terminated/exitCode");
        if (c.contains(code) && c[code].is_number_integer()) o.exit_code = c[code].get<int>();
        o.terminated_reason = stringAt(c, "/state/terminated/reason");
        o.termination_message = stringAt(c, "/state/terminated/message");
      }
    }
    if (auto conds = statuses->find("conditions"); conds != statuses->end() && conds->is_array()) {
      for (const auto& c : *conds) {
        if (c.is_object() && c.value("type", "") == "PodScheduled" && c.value("status", "") == "False" &&
            c.value("reason", "") == "Unschedulable") {
          o.unschedulable = true;
          o.unschedulable_message = c.value("message", "");
        }
      }
    }
  }
  return o;
}

PendingCause pendingCause(const PodObservation& pod) {
  if (imagePullProblem(pod.waiting_reason)) return {"ImagePullFailed", pod.waiting_reason};
  if (pod.unschedulable) {
    // The scheduler's words for a claim that does not exist, or is going: persistentvolumeclaim "x"
    // not found, persistentvolumeclaim "x" is being deleted.
    const auto& m = pod.unschedulable_message;
    if (m.find("persistentvolumeclaim") != std::string::npos &&
        (m.find("not found") != std::string::npos || m.find("being deleted") != std::string::npos)) {
      return {"WorkspaceClaimMissing", m};
    }
    return {"Unschedulable", m};
  }
  return {};
}

std::optional<LifecycleDecision> decideTrust(const PodJudgement& trust, const std::string& pod_name) {
  using V = PodJudgement::Verdict;
  if (trust.verdict == V::NotOurs) {
    return LifecycleDecision{
        "Failed", "PodNameTaken",
        "pod " + pod_name + " was not created by this run (its controller owner reference does not name this "
            "AgentRun's UID), so Paddock neither adopts it nor reports its exit, and leaves it alone. Find out who "
            "created it (the API server's audit log), delete it, and create the run again",
        false, false};
  }
  if (trust.verdict == V::Tampered) {
    return LifecycleDecision{
        "Failed", "PodTampered",
        "pod " + pod_name + " no longer matches the plan it was created from: " + joinFields(trust.fields) +
            " changed. Its network, image or rights may no longer be what the policy allows, so Paddock deleted it "
            "and stopped the run. Find out who changed it (the API server's audit log) and create a new AgentRun",
        false, true};
  }
  return std::nullopt;
}

LifecycleDecision decideLifecycle(const LifecycleInput& in) {
  // 1. Finished runs stay as they are.
  if (isTerminal(in.phase)) return {in.phase, "", "", false, false};

  // 2. A pod that is not the run's, or not as planned any more, ends it (before a cancel, which
  // would delete a pod that is not the run's).
  if (auto d = decideTrust(in.trust, in.pod_name)) {
    d->delete_pod = d->delete_pod && in.pod.exists && !in.pod.deleting;
    return *d;
  }

  // 3. Cancelled: stop the pod with its grace period so the agent can save its work.
  if (in.cancel) {
    return {"Cancelled", "Cancelled",
            in.pod.exists ? "spec.cancel is true: the agent pod was stopped with a grace period to save its work"
                          : "spec.cancel is true: the run was cancelled before its pod started",
            false, in.pod.exists && !in.pod.deleting};
  }

  // 4. No pod: create it, unless it existed and vanished.
  if (!in.pod.exists) {
    if (in.pod_created) {
      return {"Failed", "PodDeleted",
              "the agent pod was deleted or evicted before it finished; its work in progress may be lost. "
              "Create a new AgentRun to run the task again",
              false, false};
    }
    return {"Pending", "PodCreated", "the agent pod was created", true, false};
  }

  // 5. The pod finished.
  if (in.pod.phase == "Succeeded") return {"Succeeded", "Completed", "the agent finished its task", false, false};
  if (in.pod.phase == "Failed") {
    if (in.pod.reason == "DeadlineExceeded") {
      return {"TimedOut", "WallClockExceeded",
              "the agent pod ran past spec.budget.wallClock plus its grace (activeDeadlineSeconds) and was stopped; "
              "raise spec.budget.wallClock within the policy's max if the task needs longer",
              false, false};
    }
    if (in.pod.reason == "Evicted") {
      return {"Failed", "Evicted", "the agent pod was evicted: " + in.pod.message + "; create a new AgentRun to retry",
              false, false};
    }
    std::string why = "the agent exited with code " + std::to_string(in.pod.exit_code);
    if (!in.pod.terminated_reason.empty()) why += " (" + in.pod.terminated_reason + ")";
    if (in.pod.terminated_reason == "OOMKilled") why += "; it needs more memory than the policy's resources.limits";
    return {"Failed", "AgentFailed", why + "; see kubectl paddock logs for its output", false, false};
  }

  // 6. The pod is stuck before it starts.
  if (in.pod.phase == "Pending" && in.pod_pending_for >= in.pending_deadline) {
    auto cause = pendingCause(in.pod);
    if (cause.reason == "ImagePullFailed") {
      return {"Failed", cause.reason,
              "the agent image could not be pulled (" + cause.detail +
                  "); check spec.image or the policy's spec.images.default and the registry's credentials",
              false, true};
    }
    if (cause.reason == "WorkspaceClaimMissing") {
      return {"Failed", cause.reason,
              "the agent pod's workspace claim does not exist (" + cause.detail + "); create a new AgentRun", false, true};
    }
    if (cause.reason == "Unschedulable") {
      return {"Failed", cause.reason,
              "no node can run the agent pod: " + cause.detail + "; lower the policy's spec.resources or add capacity",
              false, true};
    }
  }

  // 7. On its way.
  if (in.pod.phase == "Running") return {"Running", "AgentRunning", "the agent is working on the task", false, false};
  return {"Pending", "PodStarting", "the agent pod is starting", false, false};
}

}  // namespace paddock::controllers
