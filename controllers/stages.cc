#include "controllers/stages.h"

#include <set>

#include "controllers/reconcile.h"
#include "controllers/status.h"

#include <algorithm>

#include "controllers/admission.h"
#include "controllers/budget.h"
#include "operator/common/json.h"
#include "operator/common/timestamp.h"
#include "operator/runtime/events.h"

namespace paddock::controllers {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::string stamp(std::chrono::system_clock::time_point t) { return formatMicroTime(t).substr(0, 19) + "Z"; }

std::optional<std::chrono::system_clock::time_point> parseStamp(const std::string& text) {
  std::tm tm{};
  if (text.size() < 19 || !strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

json& entry(json& stages, const std::string& name) {
  for (auto& e : stages) {
    if (e.is_object() && e.value("name", "") == name) return e;
  }
  stages.push_back({{"name", name}});
  return stages.back();
}

const StageSpec* specOf(const AgentPolicy& policy, const std::string& name) {
  for (const auto& s : policy.stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Ends the run in `stage` with `phase`.
void end(StagesPlan& plan, json& e, const std::string& phase, const std::string& reason, const std::string& message,
         const std::string& now) {
  e["phase"] = phase;
  e["completionTime"] = e.value("completionTime", now);
  e["message"] = runtime::truncateUtf8(message, 4000);  // status.stages[].message holds 4096
  plan.phase = phase;
  plan.reason = reason;
  plan.message = message;
}

// The agent stage, succeeded (or stopped at its budget with its partial work handed on, which
// stays as it was recorded), with the commit its workspace was cloned at.
void agentSucceeded(const StagesInput& in, StagesPlan& plan, const std::string& now) {
  json& agent = entry(plan.stages, "agent");
  if (agent.value("phase", "") != "Succeeded" && !handsOnPartialWork(agent)) {
    agent = {{"name", "agent"}, {"phase", "Succeeded"}, {"pod", agentPodName(*in.run)}, {"message", in.agent_message},
             {"completionTime", now}};
    plan.records.push_back({audit::Action::StageFinished, {{"stage", "agent"}, {"phase", "Succeeded"}}});
  }
  if (!agent.contains("baseCommit")) {
    auto commit = cloneBaseCommit(in.clone_message);
    if (!commit.empty()) agent["baseCommit"] = commit;
  }
}

// What the stage's program is told beyond the run, or why it cannot start.
Result<StageArgs> argsFor(const StageSpec& spec, const json& stages) {
  StageArgs args;
  for (const auto& e : stages) {
    if (e.value("name", "") == "agent" && handsOnPartialWork(e)) {
      args.partial = e.value("message", "");
      if (args.partial.empty()) args.partial = "the agent was stopped at its budget";
    }
  }
  auto field = [&](const std::string& stage, const char* pointer) {
    for (const auto& e : stages) {
      if (e.value("name", "") == stage) return stringAt(e, pointer);
    }
    return std::string();
  };
  if ((spec.name == "deploy" || spec.name == "promote") && spec.endpoint_url.empty()) {
    return Error::local("NoEndpoint", "stage " + spec.name + " has no endpoint: set the policy's spec.stages[" +
                                          spec.name + "].endpoint (url and cidr)");
  }
  if (spec.name == "pr") {
    args.base_commit = field("agent", "/baseCommit");
    if (!isCommitId(args.base_commit)) {
      return Error::local("BaseCommitUnknown",
                          "the commit the agent started from was not recorded (the agent pod's workspace init "
                          "container left no result), so the pr stage cannot tell the agent's change from the base's; "
                          "create a new AgentRun");
    }
  }
  if (spec.name == "promote") {
    args.release = field("deploy", "/release/id");
    if (!isReleaseId(args.release)) {
      return Error::local("NoRelease", "stage promote needs the release a deploy stage staged before it: list deploy "
                                       "before promote in spec.stages");
    }
  }
  return args;
}

// An approved gate whose counted approvals were reviewed at an earlier reconcile: RBAC is asked
// again before the stage starts (false: the answers are not in yet). A revoked one no longer
// counts, and the gate is decided again without it.
bool recheck(const StagesInput& in, GateInput& g, GateDecision& d, const std::map<std::string, bool>& known,
             StagesPlan& plan, std::set<std::string>& revoked) {
  bool answered = true;
  for (const auto& v : d.verdicts) {
    if (!v.counted || !known.count(v.name)) continue;  // reviewed just now, or not counted
    auto r = in.rbac_rechecked.find(v.name);
    if (r == in.rbac_rechecked.end()) {
      for (const auto& a : g.approvals) {
        if (a.name == v.name) plan.to_recheck.push_back(a);
      }
      answered = false;
    } else if (!r->second) {
      g.rbac_allows[v.name] = false;
      revoked.insert(v.name);
    }
  }
  if (answered && !revoked.empty()) d = decideGate(g);
  return answered;
}

// The stage's gate: its approvals, decided. True when the stage may start now.
bool gate(const StagesInput& in, const StageSpec& spec, json& e, StagesPlan& plan, const std::string& now) {
  GateInput g;
  g.stage = spec;
  g.requester = in.run->requested_by;
  auto since = parseStamp(e.value("waitingSince", now)).value_or(in.now);
  g.waiting_for = std::chrono::duration_cast<std::chrono::milliseconds>(in.now - since);
  std::map<std::string, bool> known;
  for (const auto& v : e.value("approvals", json::array())) known[v.value("name", "")] = v.value("authorized", false);
  for (const auto& a : in.approvals) {
    if (a.run != in.run->name || a.stage != spec.name) continue;
    g.approvals.push_back(a);
    if (auto k = known.find(a.name); k != known.end()) g.rbac_allows[a.name] = k->second;
    else if (auto r = in.rbac_allows.find(a.name); r != in.rbac_allows.end()) g.rbac_allows[a.name] = r->second;
    else plan.to_review.push_back(a);
  }
  auto d = decideGate(g);
  std::set<std::string> revoked;
  if (d.outcome == GateDecision::Outcome::Approved && !recheck(in, g, d, known, plan, revoked)) return false;
  json verdicts = json::array();
  for (const auto& v : d.verdicts) {
    json item = {{"name", v.name}, {"approver", v.approver}, {"decision", v.approve ? "Approve" : "Reject"},
                 {"counted", v.counted}, {"authorized", g.rbac_allows[v.name]}};
    if (!v.reason.empty()) item["reason"] = v.reason;
    verdicts.push_back(item);
    if (!known.count(v.name) || revoked.count(v.name)) plan.new_verdicts.push_back({spec.name, v, revoked.count(v.name) > 0});
  }
  e["approvals"] = verdicts;
  e["message"] = d.message;
  using Outcome = GateDecision::Outcome;
  if (d.outcome == Outcome::Waiting) {
    plan.phase = plan.reason = "AwaitingApproval";
    plan.message = d.message;
    plan.requeue_after = std::max(spec.approval_timeout - g.waiting_for, std::chrono::milliseconds(1000));
    return false;
  }
  if (d.outcome != Outcome::Approved) {
    end(plan, e, "Failed", d.outcome == Outcome::Rejected ? "StageRejected" : "ApprovalTimedOut", d.message, now);
    return false;
  }
  return true;
}

// The stage's pod: started, running or finished. True when the stage has succeeded.
bool watch(const StagesInput& in, const std::string& name, json& e, StagesPlan& plan, const std::string& now) {
  StagePod pod;
  if (auto p = in.pods.find(name); p != in.pods.end()) pod = p->second;
  auto d = decideStagePod(name, pod, in.pending_deadline, in.plan.stage_deadline + in.plan.deadline_grace);
  using Kind = StagePodDecision::Kind;
  if (d.kind == Kind::Starting || d.kind == Kind::Running) {
    plan.phase = "Running";
    plan.reason = d.kind == Kind::Running ? "StageRunning" : "StageStarting";
    plan.message = d.message;
    // Looked at again when its deadline falls due: a Pending pod's, then the stage's own.
    auto left = d.kind == Kind::Starting ? in.pending_deadline - pod.age
                                         : in.plan.stage_deadline + in.plan.deadline_grace - pod.age;
    plan.requeue_after = std::chrono::duration_cast<std::chrono::milliseconds>(std::max(left, seconds(1)));
    return false;
  }
  if (d.delete_pod) {
    plan.actions.push_back({StageAction::Kind::DeletePod, name, stagePodName(*in.run, name), nullptr, d.reason});
  }
  json finished = {{"stage", name}, {"phase", d.kind == Kind::Succeeded ? "Succeeded" : "Failed"}};
  if (!d.reason.empty()) finished["reason"] = d.reason;
  if (podEnded(pod.pod)) {
    finished["exitCode"] = pod.pod.exit_code;
    auto report = parseStageReport(pod.pod.termination_message, name);
    e["exitCode"] = pod.pod.exit_code;
    if (report) {
      e.update(reportStatus(*report));
      if (d.kind == Kind::Succeeded && !report->message.empty()) d.message = report->message;
    }
    if (d.kind == Kind::Failed && d.reason == "StageFailed") d.message = stageFailureMessage(name, pod.pod.exit_code, report);
  }
  if (e.contains("outcome")) finished["outcome"] = e["outcome"];
  plan.records.push_back({audit::Action::StageFinished, finished});
  if (d.kind == Kind::Succeeded) {
    e["phase"] = "Succeeded";
    e["completionTime"] = e.value("completionTime", now);
    e["message"] = d.message;
    return true;
  }
  end(plan, e, "Failed", d.reason, d.message, now);
  return false;
}

}  // namespace

StagePodDecision decideStagePod(const std::string& stage, const StagePod& in, seconds pending_deadline,
                                seconds run_deadline) {
  using Kind = StagePodDecision::Kind;
  const auto& pod = in.pod;
  if (!pod.exists) {
    return {Kind::Failed, "PodDeleted", "the pod of stage " + stage + " was deleted before it finished; create a new AgentRun",
            false};
  }
  if (pod.phase == "Succeeded") return {Kind::Succeeded, "", "stage " + stage + " succeeded", false};
  if (pod.phase == "Failed") {
    if (pod.reason == "DeadlineExceeded") {
      return {Kind::Failed, "StageTimedOut",
              "stage " + stage + " ran past its deadline (activeDeadlineSeconds) and was stopped", false};
    }
    if (pod.reason == "Evicted") {
      return {Kind::Failed, "Evicted", "the pod of stage " + stage + " was evicted: " + pod.message, false};
    }
    return {Kind::Failed, "StageFailed", "", false};
  }
  if (pod.phase == "Pending" || pod.phase.empty()) {
    if (in.age < pending_deadline) return {Kind::Starting, "", "the pod of stage " + stage + " is starting", false};
    auto cause = pendingCause(pod);
    std::string fix = cause.reason == "ImagePullFailed" ? "; check the policy's spec.stages[" + stage + "].image"
                      : cause.reason == "WorkspaceClaimMissing" ? "; the run's workspace is gone, create a new AgentRun"
                      : cause.reason == "Unschedulable" ? "; add capacity or check the nodes"
                                                        : "";
    std::string detail = cause.detail.empty() ? (pod.waiting_reason.empty() ? "no cause shown" : pod.waiting_reason)
                                              : cause.detail;
    return {Kind::Failed, cause.reason.empty() ? "StagePodPending" : cause.reason,
            "the pod of stage " + stage + " did not start within " + formatDuration(pending_deadline) + " (" + detail +
                ")" + fix,
            true};
  }
  if (in.age >= run_deadline) {
    return {Kind::Failed, "StageTimedOut",
            "stage " + stage + " ran past its deadline of " + formatDuration(run_deadline) + " and was stopped", true};
  }
  return {Kind::Running, "", "stage " + stage + " is running", false};
}

std::string stageFailureMessage(const std::string& stage, int exit_code, const Result<StageReport>& report) {
  std::string out = "stage " + stage + " failed with exit code " + std::to_string(exit_code);
  if (!report) return out + "; " + report.error().message + ". See kubectl paddock logs. Later stages do not run";
  out += " (" + report->outcome + (report->reason.empty() ? "" : ", " + report->reason) + ")";
  if (!report->message.empty()) out += ": " + report->message;
  if (!report->findings.empty()) {
    out += " [findings:";
    for (const auto& f : report->findings) out += " " + f;
    out += "]";
  }
  return out + ". Later stages do not run";
}

StagesPlan planStages(const StagesInput& in) {
  StagesPlan plan;
  const std::string now = stamp(in.now);
  plan.stages = in.old_stages.is_array() ? in.old_stages : json::array();
  agentSucceeded(in, plan, now);
  for (const auto& name : in.run->stages) entry(plan.stages, name);  // every requested stage is listed, in order
  // An agent stopped at its budget: its partial work goes no further than a draft pull request,
  // and the run ends in the agent's phase (BudgetExceeded, TimedOut) whatever the pr stage does.
  const json agent = entry(plan.stages, "agent");
  const bool partial = handsOnPartialWork(agent);
  if (partial) {
    plan.phase = agent.value("phase", "BudgetExceeded"), plan.reason = plan.phase == "TimedOut" ? "WallClockExceeded" : "BudgetExceeded";
    plan.message = agent.value("message", "");
  } else {
    plan.phase = "Succeeded", plan.reason = "Completed", plan.message = "the agent and every gated stage succeeded";
  }
  for (const auto& name : in.run->stages) {
    json& e = entry(plan.stages, name);
    std::string phase = e.value("phase", "");
    if (partial && name != "pr") {
      if (phase != "Skipped") {
        e["phase"] = "Skipped";
        e["message"] = "the agent was stopped before it finished: its partial work goes no further than a draft pull request";
        plan.records.push_back({audit::Action::StageFinished, {{"stage", name}, {"phase", "Skipped"}, {"reason", "PartialWork"}}});
      }
      continue;
    }
    if (phase == "Succeeded") {
      if (name == "pr") plan.pull_request_url = stringAt(e, "/pullRequest/url");
      continue;
    }
    if (isTerminal(phase)) {  // decided before; the run's phase says so too
      plan.phase = phase, plan.reason = "StageFailed", plan.message = e.value("message", "");
      break;
    }
    plan.current = name;
    const StageSpec* spec = specOf(*in.policy, name);
    if (!spec) {
      end(plan, e, "Failed", "UnknownStage", "stage " + name + " is no longer defined by the policy's spec.stages", now);
      break;
    }
    if (in.run->cancel) {
      if (phase == "Running") {
        plan.actions.push_back({StageAction::Kind::DeletePod, name, stagePodName(*in.run, name), nullptr, "Cancelled"});
      }
      end(plan, e, "Cancelled", "Cancelled", "spec.cancel is true: the run was stopped in stage " + name, now);
      break;
    }
    if (phase.empty() || phase == "Pending") {
      e["phase"] = phase = "AwaitingApproval";
      e["waitingSince"] = now;
    }
    if (phase == "AwaitingApproval") {
      if (!gate(in, *spec, e, plan, now)) break;
      auto args = argsFor(*spec, plan.stages);
      if (!args) {
        end(plan, e, "Failed", args.error().reason, args.error().message, now);
        break;
      }
      if (partial && in.agent_pod_present) {
        // The stopped agent saves its work within its grace period; the stage reads the workspace after.
        plan.phase = "Running", plan.reason = "AgentStopping";
        plan.message = "stage " + name + " was approved; it starts once the stopped agent's pod is gone";
        plan.requeue_after = std::chrono::seconds(30);  // the pod's events wake it sooner
        break;
      }
      if (partial) e["partial"] = true;
      plan.actions.push_back({StageAction::Kind::CreatePod, name, stagePodName(*in.run, name),
                              planStagePod(*in.run, *in.policy, *spec, in.plan, *args), ""});
      e["phase"] = "Running";
      e["pod"] = stagePodName(*in.run, name);
      e["startTime"] = now;
      plan.phase = "Running", plan.reason = "StageStarting", plan.message = "stage " + name + " was approved; its pod starts";
      break;
    }
    if (!watch(in, name, e, plan, now)) break;
    if (name == "pr") plan.pull_request_url = stringAt(e, "/pullRequest/url");
  }
  if (partial && plan.phase == agent.value("phase", "") && !plan.pull_request_url.empty()) {
    plan.message += "; its partial work is the draft pull request " + plan.pull_request_url + ", which awaits review";
  }
  if (partial && plan.phase == "Failed") {
    // The draft could not be opened: the run still ends in the agent's phase, saying both.
    plan.message = agent.value("message", "") + "; the draft pull request of its partial work was not opened: " + plan.message;
    plan.phase = agent.value("phase", "BudgetExceeded");
    plan.reason = plan.phase == "TimedOut" ? "WallClockExceeded" : "BudgetExceeded";
  }
  if (isTerminal(plan.phase)) plan.current.clear();
  return plan;
}

bool handsOnPartialWork(const json& agent_stage) {
  return agent_stage.is_object() && agent_stage.value("partial", false) && agent_stage.value("name", "") == "agent";
}

bool handedOff(const json& status) {
  if (!status.is_object() || !status.contains("stages") || !status["stages"].is_array()) return false;
  const json& stages = status["stages"];
  return std::any_of(stages.begin(), stages.end(), [](const json& e) { return handsOnPartialWork(e); });
}

std::string cloneBaseCommit(const std::string& clone_message) {
  if (clone_message.empty()) return "";
  auto clone = parseStageReport(clone_message, "clone");
  return clone ? clone->base_commit : "";
}

// ---------------------------------------------------------------------------------------------
// The reconcile's gated-stages step (controllers/reconcile.h).

namespace {

// What planStages reads, from the snapshot.
StagesInput stagesInput(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team,
                        const std::string& agent_message, const RunPlanSettings& settings, const PlanClock& clock) {
  StagesInput si;
  si.run = &a.run;
  si.policy = &a.policy;
  si.plan = settings.plan;
  si.old_stages = snap.old_status.value("stages", json::array());
  si.agent_message = agent_message;
  si.clone_message = observePod(snap.agent_pod.get(), "workspace").termination_message;
  auto agent = observePod(snap.agent_pod.get());
  si.agent_pod_present = agent.exists && !podEnded(agent);
  si.now = clock.wall;
  si.pending_deadline = settings.pending_deadline;
  si.approvals = snap.approvals;
  std::sort(si.approvals.begin(), si.approvals.end(), [](const auto& x, const auto& y) {
    return std::tie(x.creation_timestamp, x.name) < std::tie(y.creation_timestamp, y.name);
  });
  for (const auto& [stage, pod] : team.stage_pods) {
    if (pod) si.pods[stage] = {observePod(pod.get(), "stage"), since(stringAt(*pod, "/metadata/creationTimestamp"), clock.wall)};
  }
  si.rbac_allows = team.rbac_allows;
  si.rbac_rechecked = team.rbac_rechecked;
  return si;
}

// Each approval is audited once, in its approver's name, with why it did or did not count; the
// stages' pods are recorded before they are created.
void planStageChildren(const RunSnapshot& snap, const Admitted& a, StagesPlan& plan, Records& records, RunDraft& draft) {
  const std::string& uid = a.run.uid;
  for (const auto& [stage, v, revoked] : plan.new_verdicts) {
    const std::string fact = uid + "/" + stage + "/" + v.name + (revoked ? "/revoked" : "");
    if (snap.recent_facts.count(fact)) continue;
    draft.note(RememberFact{fact});
    json details = {{"stage", stage}, {"approval", v.name}, {"decision", v.approve ? "Approve" : "Reject"}};
    if (!v.reason.empty()) details["reason"] = v.reason;
    if (revoked) details["revokedBeforeStageStart"] = true;
    draft.audit({{v.counted ? audit::Action::ApprovalCounted : audit::Action::ApprovalRefused, details}}, v.approver);
    draft.note(EmitEvent{snap.regarding, v.counted ? runtime::EventType::Normal : runtime::EventType::Warning,
                         v.counted ? "ApprovalCounted" : "ApprovalRefused", "Approve",
                         "AgentApproval " + v.name + " by " + v.approver + " for stage " + stage +
                             (v.counted ? " counted" : " does not count: " + v.reason)});
  }
  for (const auto& act : plan.actions) {
    if (act.kind != StageAction::Kind::CreatePod) continue;
    const std::string fact = uid + "/" + act.stage + "/started";
    if (!snap.recent_facts.count(fact)) {
      draft.note(RememberFact{fact});
      records.push_back({audit::Action::ChildCreated,
                         {{"kind", "Pod"}, {"name", act.pod_name}, {"image", stringAt(act.pod, "/spec/containers/0/image")}}});
      for (auto& m : secretMounts(act.pod, act.stage)) records.push_back({audit::Action::SecretMounted, std::move(m)});
      records.push_back({audit::Action::StageStarted, {{"stage", act.stage}, {"pod", act.pod_name}}});
    }
    draft.audit(std::exchange(records, {}));
    draft.act(CreateStagePod{act.pod}, true);
  }
}

// The run's status from the stages' plan, and the run's end.
void stagesStatus(const StagesPlan& plan, Records& records, RunDraft& draft) {
  json& status = draft.status;
  status["stages"] = plan.stages;
  status["phase"] = plan.phase;
  if (plan.current.empty()) status.erase("currentStage");
  else status["currentStage"] = plan.current;
  if (plan.pull_request_url.empty()) status.erase("pullRequestURL");
  else status["pullRequestURL"] = plan.pull_request_url;
  bool waiting = plan.phase == "AwaitingApproval";
  draft.condition("AwaitingApproval", waiting, waiting ? plan.reason : "NotWaiting",
                  waiting ? plan.message : "no stage is waiting for approval");
  draft.condition("Running", plan.phase == "Running", plan.reason, plan.message);
  if (isTerminal(plan.phase)) {
    draft.condition("Succeeded", plan.phase == "Succeeded", plan.reason, plan.message);
    status["completionTime"] = status.value("completionTime", draft.clock().now);
    records.push_back({audit::Action::RunFinished, {{"phase", plan.phase}, {"reason", plan.reason}, {"message", plan.message}}});
  }
}

}  // namespace

void planGatedStages(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, const std::string& agent_message,
                     RunDraft& draft, const RunPlanSettings& settings, const PlanClock& clock) {
  auto plan = planStages(stagesInput(snap, a, team, agent_message, settings, clock));
  if (!plan.to_review.empty() || !plan.to_recheck.empty()) {
    // RBAC is asked about these first (SubjectAccessReview); the reconcile plans again with the answers.
    draft.plan.to_review = plan.to_review;
    draft.plan.to_recheck = plan.to_recheck;
    return;
  }
  Records records = std::move(plan.records);
  planStageChildren(snap, a, plan, records, draft);
  for (const auto& act : plan.actions) {
    if (act.kind == StageAction::Kind::DeletePod) {
      records.push_back({audit::Action::ChildDeleted, {{"kind", "Pod"}, {"name", act.pod_name}, {"reason", act.reason}}});
    }
  }
  stagesStatus(plan, records, draft);
  draft.audit(std::move(records));
  // Write-ahead: the decision is recorded before a pod goes.
  draft.finish(plan.reason, plan.message,
               plan.requeue_after ? runtime::Action::requeueAfter(*plan.requeue_after) : runtime::Action::awaitChange());
  for (const auto& act : plan.actions) {
    if (act.kind == StageAction::Kind::DeletePod) draft.act(DeletePod{act.pod_name, "", true});
  }
}

}  // namespace paddock::controllers
