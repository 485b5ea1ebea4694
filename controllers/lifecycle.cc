#include "controllers/lifecycle.h"

#include <cstdlib>

#include "controllers/reconcile.h"
#include "controllers/stages.h"
#include "controllers/status.h"

#include "controllers/admission.h"
#include "gateway/budget.h"
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
        o.waiting_message = stringAt(c, "/state/waiting/message");
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

std::optional<SandboxReport> sandboxReport(const PodObservation& sandbox, bool warn_when_unavailable) {
  const std::string& said = sandbox.termination_message;
  if (sandbox.terminated_reason.empty() || said.empty()) return std::nullopt;
  std::string line = said.substr(0, said.find('\n'));
  if (sandbox.exit_code == 0 && line.rfind("landlock ABI ", 0) == 0) {
    const int abi = std::atoi(line.c_str() + 13);
    std::string gaps;
    // What an older kernel's Landlock cannot hold (docs/sandbox.md): the rest still applies.
    if (abi < 3) gaps += "; this kernel's Landlock cannot refuse truncating a file it holds (ABI 3 can)";
    if (abi < 4) gaps += "; nor restrict TCP connect (ABI 4 can), which the NetworkPolicy alone holds here";
    return SandboxReport{true, "Landlock",
                         "paddock-sandbox starts the agent under Landlock (" + line.substr(9) +
                             "): the workspace is writable except spec.protectedPaths, the rest of the filesystem "
                             "read-only, TCP connect only to the ports the policy allows" + gaps};
  }
  if (line.rfind("landlock unavailable", 0) != 0) return std::nullopt;
  std::string fix = "schedule agent pods on nodes whose kernel has Landlock (Linux 5.13 or later, with landlock in "
                    "its lsm= list), e.g. with spec.runtimeClassName";
  return SandboxReport{false, "LandlockUnavailable",
                       "the node's kernel has no Landlock (" + line + "); " +
                           (warn_when_unavailable ? "the agent runs without the sandbox because spec.sandbox.whenUnavailable "
                                                    "is Warn; " + fix
                                                  : fix + ", or set spec.sandbox.whenUnavailable: Warn to run without it")};
}

std::optional<json> releaseAgentPod(const json* pod) {
  if (!pod || !pod->is_object()) return std::nullopt;
  json kept = json::array();
  bool found = false;
  for (const auto& f : pod->value(json::json_pointer("/metadata/finalizers"), json::array())) {
    if (f == kFinalizerAgentPod) found = true;
    else kept.push_back(f);
  }
  if (!found) return std::nullopt;
  return json{{"metadata", {{"finalizers", kept}, {"resourceVersion", stringAt(*pod, "/metadata/resourceVersion")}}}};
}

namespace {
// Controlled by an AgentRun other than the one with `run_uid`.
bool ownedByAnotherRun(const json& pod, const std::string& run_uid) {
  for (const auto& ref : pod.value(json::json_pointer("/metadata/ownerReferences"), json::array())) {
    if (ref.value("kind", "") == "AgentRun" && ref.value("controller", false) && ref.value("uid", "") != run_uid) return true;
  }
  return false;
}
}  // namespace

PendingCause pendingCause(const PodObservation& pod) {
  if (imagePullProblem(pod.waiting_reason)) return {"ImagePullFailed", pod.waiting_reason};
  if (pod.waiting_reason == "CreateContainerConfigError") return {"ContainerConfigInvalid", pod.waiting_message};
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
              false, false, in.pr_stage};
    }
    // The gateway refused the agent's next call for its budget, and the agent ended on it. What
    // the agent leaves in its termination message is untrusted, but claiming this only makes its
    // work a draft behind the pr stage's approval (or ends the run), never more than exiting 0 would.
    if (in.gateway && in.pod.termination_message.find(gateway::kBudgetSpentMarker) != std::string::npos) {
      return {"BudgetExceeded", "BudgetExceeded",
              "paddock-gateway refused the agent's next model call because what is left of the run's budget "
              "does not cover it, and the agent ended. To go on, create a new AgentRun with a larger spec.budget "
              "(within the policy's max)",
              false, false, in.pr_stage};
    }
    // The sandbox refused to start the agent: its install init container found no Landlock on the
    // node (exit 3), or the launcher itself could not apply it (exit 126, its words first).
    if (auto report = sandboxReport(in.sandbox, false); report && !report->landlock && in.sandbox.exit_code == 3) {
      return {"Failed", "SandboxUnavailable", report->message, false, false};
    }
    if ((in.pod.exit_code == 126 || in.pod.exit_code == 127) && in.pod.termination_message.rfind("paddock-sandbox: ", 0) == 0) {
      std::string said = in.pod.termination_message.substr(0, in.pod.termination_message.find('\n'));
      // 127: the image's entrypoint could not be executed; 126: the sandbox could not be applied.
      std::string fix = in.pod.exit_code == 127 ? "check that spec.sandbox.command names the agent image's entrypoint"
                                                : "see docs/sandbox.md for what the launcher needs of the pod";
      return {"Failed", "SandboxFailed", "the sandbox could not start the agent (" + said.substr(0, 512) + "); " + fix,
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
    if (cause.reason == "ContainerConfigInvalid") {
      return {"Failed", cause.reason,
              "the kubelet cannot set up the agent container (" + cause.detail.substr(0, 512) +
                  "); a path of spec.protectedPaths it cannot mount read-only (a symbolic link out of the workspace, "
                  "or a path through a file) is the usual cause: fix the repository or the policy's protectedPaths",
              false, true};
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

// ---------------------------------------------------------------------------------------------
// The reconcile's agent steps (controllers/reconcile.h).

namespace {

// Whose the pod under the agent's name is, and whether it still matches its plan (docs/trust.md):
// the run recorded its UID and the plan's fingerprint when it created it.
void judgeAgentPod(const Admitted& a, const RunSnapshot& snap, const RunPlanSettings& settings, AgentStatusInput& st) {
  json old_agent = json::object();
  for (const auto& e : snap.old_status.value("stages", json::array())) {
    if (e.value("name", "") == "agent") old_agent = e;
  }
  st.pod_uid = old_agent.value("podUID", "");
  st.pod_plan = old_agent.value("planned", json::object());
  st.trust = judgePod(st.live_pod.get(), a.run.uid, st.pod_uid, st.pod_plan);
  if (st.trust.verdict != PodJudgement::Verdict::Ours || !st.pod_uid.empty()) return;
  // Created by a process that stopped before writing it down: its owner reference says it is
  // the run's; it must match the plan all the same.
  st.pod_uid = stringAt(*st.live_pod, "/metadata/uid");
  if (st.pod_plan.empty()) {
    st.pod_plan = podFingerprint(planAgentPod(a.run, a.policy, a.effective, settings.plan));
    // A pod made by an operator from before the run-UID label: its owner reference carries the UID.
    const std::string uid_label = std::string("metadata.labels[\"") + kLabelRunUid + "\"]";
    if (!podFingerprint(*st.live_pod).contains(uid_label)) st.pod_plan.erase(uid_label);
  }
  st.trust = judgePod(st.live_pod.get(), a.run.uid, st.pod_uid, st.pod_plan);
}

// The agent pod, recorded first (the workspace claim of a run with gated stages too); the rest of
// the plan follows the API server's answer.
void planCreateAgent(const Admitted& a, AgentStatusInput st, RunDraft& draft, const RunPlanSettings& settings) {
  const AgentRun& run = a.run;
  auto planned = planAgentPod(run, a.policy, a.effective, settings.plan);
  if (!run.started) {
    Records records;
    if (!run.stages.empty()) {
      records.push_back({audit::Action::ChildCreated, {{"kind", "PersistentVolumeClaim"}, {"name", workspaceClaimName(run)}}});
    }
    records.push_back({audit::Action::ChildCreated, {{"kind", "Pod"}, {"name", agentPodName(run)}, {"image", a.effective.image}}});
    for (auto& m : secretMounts(planned, "agent")) records.push_back({audit::Action::SecretMounted, std::move(m)});
    records.push_back({audit::Action::StageStarted, {{"stage", "agent"}, {"pod", agentPodName(run)}}});
    draft.audit(std::move(records));
  }
  if (!run.stages.empty()) {
    // The workspace the gated stages share outlives the agent pod; the run owns it.
    draft.act(ApplyClaim{workspaceClaimName(run), planWorkspaceClaim(run, a.policy, settings.plan)}, true);
  }
  st.created_fingerprint = podFingerprint(planned);
  st.status = draft.status;
  draft.act(CreateAgentPod{std::move(planned), std::make_shared<const AgentStatusInput>(std::move(st))}, true);
}

// The agent's entry in status.stages, the phase and the Running condition.
void agentStageStatus(const AgentStatusInput& in, const LifecycleDecision& d, bool not_ours, const kube::ObjectPtr& pod,
                      const std::string& pod_uid, const json& pod_plan, RunDraft& draft) {
  json& status = draft.status;
  status["phase"] = d.phase;
  status["currentStage"] = "agent";
  json stage = {{"name", "agent"}, {"phase", d.phase}, {"pod", in.pod_name}, {"message", d.message}};
  if (!pod_uid.empty()) stage["podUID"] = pod_uid;
  if (!pod_plan.empty()) stage["planned"] = pod_plan;
  if ((!in.pod_created && !d.create_pod && !pod) || (not_ours && !in.pod_created)) stage.erase("pod");
  if (pod && !not_ours && !status.contains("startTime")) {
    // Created by a process that stopped before writing it down: the pod says when.
    status["startTime"] = stringAt(*pod, "/metadata/creationTimestamp");
  }
  status["stages"] = json::array({stage});
  draft.condition("Running", d.phase == "Running", d.reason, d.message);
}

// A finished agent: Succeeded, completionTime, and what the audit log says of its pod and run.
void agentFinished(const AgentStatusInput& in, const LifecycleDecision& d, const PodJudgement& trust,
                   const kube::ObjectPtr& pod, RunDraft& draft) {
  draft.condition("Succeeded", d.phase == "Succeeded", d.reason, d.message);
  draft.status["completionTime"] = draft.status.value("completionTime", draft.clock().now);
  Records records;
  if (trust.verdict == PodJudgement::Verdict::NotOurs) {
    records.push_back({audit::Action::ChildNotAdopted, {{"kind", "Pod"}, {"name", in.pod_name},
                                                        {"uid", stringAt(*pod, "/metadata/uid")},
                                                        {"reason", "its controller owner reference does not name this run"}}});
  }
  if (trust.verdict == PodJudgement::Verdict::Tampered) {
    records.push_back({audit::Action::ChildTampered, {{"kind", "Pod"}, {"name", in.pod_name}, {"fields", trust.fields}}});
  }
  if (d.delete_pod && pod) {
    records.push_back({audit::Action::ChildDeleted, {{"kind", "Pod"}, {"name", in.pod_name}, {"reason", d.reason}}});
  }
  json spent = draft.status.value("usage", json::object());
  spent.erase("readings");
  records.push_back({audit::Action::StageFinished, {{"stage", "agent"}, {"phase", d.phase}, {"reason", d.reason}}});
  records.push_back({audit::Action::RunFinished,
                     {{"phase", d.phase}, {"reason", d.reason}, {"message", d.message}, {"spent", spent}}});
  draft.audit(std::move(records));
}

// An agent stopped at its budget whose partial work goes on to the pr stage: the agent's entry
// says so and keeps the commit its workspace was cloned at (its pod is going); the run is not over.
void agentHandsOff(const AgentStatusInput& in, const LifecycleDecision& d, const kube::ObjectPtr& pod, RunDraft& draft) {
  json& agent = draft.status["stages"][0];
  agent["partial"] = true;
  agent["completionTime"] = draft.clock().now;
  auto commit = cloneBaseCommit(observePod(pod.get(), "workspace").termination_message);
  if (!commit.empty()) agent["baseCommit"] = commit;
  const std::string message = d.message + "; the agent is stopped with a grace period to save its work, which the pr "
                                          "stage then proposes as a draft pull request once approved";
  draft.status["phase"] = "Running";
  draft.condition("Running", false, d.reason, message);
  Records records;
  if (d.delete_pod && pod) {
    records.push_back({audit::Action::ChildDeleted, {{"kind", "Pod"}, {"name", in.pod_name}, {"reason", d.reason}}});
  }
  records.push_back({audit::Action::StageFinished, {{"stage", "agent"}, {"phase", d.phase}, {"reason", d.reason}, {"partial", true}}});
  draft.audit(std::move(records));
  draft.note(EmitEvent{draft.snap().regarding, runtime::EventType::Warning, d.reason, "Stop", message});
}

// A pod still Pending is looked at again when its deadline falls due, and every slot_recheck
// after that, so a reason that shows up late (the scheduler's verdict, a pull error) is seen; a
// running budget when it asks.
runtime::Action agentNext(const AgentStatusInput& in, const LifecycleDecision& d, const RunPlanSettings& settings) {
  auto next = runtime::Action::awaitChange();
  if (isTerminal(d.phase)) return next;
  if (in.pod.exists && in.pod.phase == "Pending") {
    auto left = in.pod_pending_for < settings.pending_deadline ? settings.pending_deadline - in.pod_pending_for
                                                               : settings.slot_recheck;
    next = runtime::Action::requeueAfter(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::min(left, settings.slot_recheck)));
  }
  if (in.budget_recheck) {
    auto at = std::max(*in.budget_recheck, std::chrono::milliseconds(1));
    if (!next.requeue_after || at < *next.requeue_after) next = runtime::Action::requeueAfter(at);
  }
  return next;
}

// The pod was just created. Its status is written when the pod shows more than a starting pod
// (Running, or anything wrong), or kDeferStatusFor after the creation: one write fewer per run.
// Until then this process decides from the status it holds and counts the run as holding its
// slot; after a restart the pod in the cache says the same. The Event goes at the creation; the
// requeue is the fallback for a pod event that never comes.
void deferAgentStatus(const LifecycleDecision& d, bool created, RunDraft& draft) {
  const RunSnapshot& snap = draft.snap();
  const auto now = draft.clock().steady;
  const auto since = created || !snap.deferred_since ? now : *snap.deferred_since;
  draft.status["observedGeneration"] = snap.generation;
  draft.act(DeferStatus{draft.status, since});
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kDeferStatusFor - (now - since));
  draft.plan.next = runtime::Action::requeueAfter(std::max(left, std::chrono::milliseconds(50)));
  if (!created) return;
  draft.note(MarkStarted{});
  draft.note(EmitEvent{snap.regarding, runtime::EventType::Normal, d.reason, "Pending", d.message});
  draft.note(LogLine{false, "run status", {{"key", snap.key}, {"phase", "Pending"}, {"reason", d.reason},
                                           {"message", d.message}, {"written", "when the pod has started"}}});
}

// Whether the status of a run whose pod was just created still waits (deferAgentStatus).
bool keepsDeferring(const AgentStatusInput& in, const LifecycleDecision& d, const json& status, const PlanClock& clock) {
  if (d.create_pod) return status.value("phase", "") == "Pending";
  const auto& since = in.snap->deferred_since;
  return since && d.phase == "Pending" && d.reason == "PodStarting" && clock.steady - *since < kDeferStatusFor;
}

}  // namespace

void planAgent(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft& draft,
               const RunPlanSettings& settings, const PlanClock& clock) {
  const AgentRun& run = a.run;
  AgentStatusInput st;
  st.run_uid = run.uid, st.pod_name = agentPodName(run), st.live_pod = snap.agent_pod, st.pod_created = run.started;
  st.snap = &snap;
  judgeAgentPod(a, snap, settings, st);
  // The pod is recorded in the durable status: the finalizer that held it for that has done its work.
  // So is it on a pod of an earlier run of the same name (deleted since: the garbage collector
  // deletes that pod, and nothing is left to record it), or the pod would hold the name forever.
  if (st.live_pod && ((st.trust.verdict == PodJudgement::Verdict::Ours &&
                       stringAt(snap.cached_status, "/stages/0/podUID") == stringAt(*st.live_pod, "/metadata/uid")) ||
                      (st.trust.verdict == PodJudgement::Verdict::NotOurs && ownedByAnotherRun(*st.live_pod, run.uid)))) {
    if (auto release = releaseAgentPod(st.live_pod.get())) draft.act(PatchPod{st.pod_name, *release});
  }
  LifecycleInput in;
  in.phase = run.phase, in.cancel = run.cancel, in.pod_created = run.started, in.pod_name = st.pod_name;
  in.trust = st.trust;
  in.pod = observePod(st.trust.verdict == PodJudgement::Verdict::NotOurs ? nullptr : st.live_pod.get());
  in.pending_deadline = settings.pending_deadline;
  in.gateway = a.policy.gateway.has_value();
  in.pr_stage = std::find(run.stages.begin(), run.stages.end(), "pr") != run.stages.end();
  in.sandbox = observePod(st.trust.verdict == PodJudgement::Verdict::NotOurs ? nullptr : st.live_pod.get(), "sandbox");
  if (auto report = sandboxReport(in.sandbox, a.policy.sandbox.warn_when_unavailable)) {
    const json was = conditionOf(snap.old_status, "Sandboxed");
    draft.condition("Sandboxed", report->landlock, report->reason, report->message);
    // Refused, the run fails SandboxUnavailable with its own Event; warned, it runs on and says so once.
    if (!report->landlock && a.policy.sandbox.warn_when_unavailable && was.value("reason", "") != report->reason) {
      draft.note(EmitEvent{snap.regarding, runtime::EventType::Warning, "SandboxUnavailable", "Sandbox", report->message});
    }
  }
  if (st.live_pod) in.pod_pending_for = since(stringAt(*st.live_pod, "/metadata/creationTimestamp"), clock.wall);
  st.decision = decideLifecycle(in);
  st.pod = in.pod, st.pod_pending_for = in.pod_pending_for;

  // Gated stages: once the agent has succeeded, planStages (controllers/stages.h) decides.
  auto old_stages = snap.old_status.value("stages", json::array());
  bool agent_done = std::any_of(old_stages.begin(), old_stages.end(), [](const json& e) {
    return (e.value("name", "") == "agent" && e.value("phase", "") == "Succeeded") || handsOnPartialWork(e);
  });
  if (!run.stages.empty() && (agent_done || st.decision.phase == "Succeeded")) {
    planGatedStages(snap, a, team, st.decision.message, draft, settings, clock);
    // A stopped agent whose pod is still running (the delete that followed the decision failed,
    // or the process stopped before it) is deleted again, after the status.
    if (handedOff(snap.old_status) && st.live_pod && st.trust.verdict == PodJudgement::Verdict::Ours && !st.pod.deleting &&
        !podEnded(st.pod)) {
      draft.act(DeletePod{st.pod_name, stringAt(*st.live_pod, "/metadata/uid"), true});
    }
    return;
  }
  if (st.decision.phase == "Running" && !st.decision.delete_pod) {
    st.budget_recheck = planBudget(snap, a, team, st.decision, draft, settings, clock);
  }
  if (isTerminal(st.decision.phase)) draft.note(ForgetSpend{});
  if (st.decision.create_pod) return planCreateAgent(a, std::move(st), draft, settings);
  st.status = draft.status;
  st.held = draft.takeHeld();
  draft.append(planAgentStatus(st, nullptr, settings, clock));
}

RunPlan planAgentStatus(const AgentStatusInput& in, const AgentCreated* created, const RunPlanSettings& settings,
                        const PlanClock& clock) {
  RunDraft draft(*in.snap, clock);
  draft.status = in.status;
  draft.audit(in.held);
  LifecycleDecision d = in.decision;
  PodJudgement trust = in.trust;
  kube::ObjectPtr pod = in.live_pod;
  std::string pod_uid = in.pod_uid;
  json pod_plan = in.pod_plan;
  if (created && created->kind == AgentCreated::Kind::Rejected) {
    const std::string message = "the API server refused the agent pod: " + created->message;
    draft.status["phase"] = "Failed";
    draft.condition("Succeeded", false, "PodRejected", message);
    draft.status["completionTime"] = clock.now;
    draft.finish("PodRejected", message, runtime::Action::awaitChange());
    return draft.take();
  }
  if (created) {
    // The name was taken: by this run's own earlier attempt only if the pod says so by its owner
    // reference; anyone else's pod is never adopted.
    bool made = created->kind == AgentCreated::Kind::Created;
    auto made_trust = judgePod(created->pod.get(), in.run_uid, made ? stringAt(*created->pod, "/metadata/uid") : "",
                               json::object());
    if (made_trust.verdict == PodJudgement::Verdict::NotOurs) {
      trust = made_trust;
      d = *decideTrust(trust, in.pod_name);
      pod = created->pod;
    } else {
      pod_uid = stringAt(*created->pod, "/metadata/uid");
      pod_plan = in.created_fingerprint;
      draft.status["startTime"] = draft.status.value("startTime", clock.now);
    }
  }
  bool not_ours = trust.verdict == PodJudgement::Verdict::NotOurs;
  agentStageStatus(in, d, not_ours, pod, pod_uid, pod_plan, draft);
  if (d.hand_off) agentHandsOff(in, d, pod, draft);
  else if (isTerminal(d.phase)) agentFinished(in, d, trust, pod, draft);
  if (keepsDeferring(in, d, draft.status, clock)) {
    deferAgentStatus(d, d.create_pod, draft);
    return draft.take();
  }
  // Write-ahead: the decision is recorded before the pod goes, so it survives whatever happens next.
  draft.finish(d.reason, d.message, agentNext(in, d, settings));
  if (d.delete_pod && pod) draft.act(DeletePod{in.pod_name, stringAt(*pod, "/metadata/uid"), true});
  return draft.take();
}

}  // namespace paddock::controllers
