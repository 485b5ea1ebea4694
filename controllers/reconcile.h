// The shape of the AgentRun reconcile (docs/reconcile.md):
//
//   gather   reads the run and what it depends on from the caches into a RunSnapshot (the run
//            reconciler, run_reconciler.cc; the only reads from the API server are a pod the
//            cache lags behind and RBAC's answers about approvals)
//   plan     pure functions from the snapshot and the clock to a RunPlan: typed actions in the
//            one durable order (audit records first, then children, then status, then deletes)
//   execute  performs the actions in that order and holds no decisions (run_reconciler.cc)
//
// Which policy governs the run decides what else is read (its NetworkPolicy, its team's slots,
// its usage queries), so the snapshot is gathered in two steps: RunSnapshot, then, once
// planAdmission has admitted the run, TeamFacts.
//
// Each step of the plan lives in its concern's file:
//   admission.cc  planAdmission (invalid spec, finished runs, terms, refusal), planQueue
//                 (idempotency key, concurrency slot)
//   approval.cc   planUnmatchedApprovals
//   network.cc    planNetwork (the team's NetworkPolicy)
//   gateway.cc    planGatewayCredential, planGatewayWait (paddock-gateway: the run's
//                 credential; the namespace's gateway is the gateway reconciler's)
//   lifecycle.cc  planAgent, planAgentStatus (the agent stage)
//   budget.cc     planBudget (usage, checkpoints, stops)
//   stages.cc     planGatedStages (the gated stages after the agent)
//   run_plan.cc   planRun (the steps in order) and the RunDraft they share
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "controllers/admission.h"
#include "controllers/gateway.h"
#include "controllers/api.h"
#include "controllers/approval.h"
#include "controllers/budget.h"
#include "controllers/lifecycle.h"
#include "controllers/plan.h"
#include "controllers/stages.h"
#include "controllers/terms.h"
#include "controllers/trust.h"
#include "controllers/usage.h"
#include "operator/audit/record.h"
#include "operator/kube/informer.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/events.h"

namespace paddock::controllers {

using Records = std::vector<std::pair<audit::Action, json>>;

// ---------------------------------------------------------------------------------------------
// What the plan reads.

// The clock, injected: the wall clock for timestamps and ages, the steady clock for how long ago
// this process wrote something.
struct PlanClock {
  std::chrono::system_clock::time_point wall;
  std::chrono::steady_clock::time_point steady;
  std::string now;  // wall as RFC 3339, to the second
};

// Settings of the reconciler that plans read (RunReconcilerOptions holds them).
struct RunPlanSettings {
  PlanOptions plan;
  bool prometheus = false;  // usage is read from Prometheus
  std::chrono::milliseconds usage_write_interval{15'000};
  std::chrono::seconds pending_deadline{600};
  std::chrono::seconds slot_recheck{10};
  std::string actor = "paddock-operator";
};

// This process's last write of a NetworkPolicy, a cache of its own writes: the informer may not
// show it yet. Lost in a restart, it is not needed: a fresh cache is never older than it.
struct AppliedWrite {
  std::string hash;  // of the plan written
  std::chrono::steady_clock::time_point at;
  int64_t generation = 0;  // the object's metadata.generation after the write
};

// A run's usage as this process last computed it: the totals not yet in status. A cache,
// rebuilt from status.usage (its totals and the counters' last readings) when missing.
struct Spend {
  std::string uid;
  Counter tokens, cost;
  bool checkpointed = false;  // asked already, though the cache may not show the condition yet
  // For the absence clock (missingSince): when each series was last seen by this process, when
  // this process first looked at the run, and whether its status held usage by then.
  std::optional<std::chrono::system_clock::time_point> tokens_seen, cost_seen;
  std::chrono::system_clock::time_point first_look{};
  bool reported_before = false;
};

// Everything about the run itself, from the caches.
struct RunSnapshot {
  std::string key, ns, name;
  kube::ObjectPtr object;  // the run as cached
  int64_t generation = 0;
  runtime::ObjectReference regarding;
  Result<AgentRun> run = Error{0, "NotGathered", "the run was not gathered"};  // parseAgentRun; `started` includes an unwritten status
  json cached_status = json::object();  // status as the cache shows it
  json old_status = json::object();     // the status decided from: this process's unwritten one, else the cached
  // When old_status is this process's unwritten status (DeferStatus): when it was first deferred.
  std::optional<std::chrono::steady_clock::time_point> deferred_since;
  std::vector<AgentPolicy> policies;
  std::map<std::string, std::string> namespace_labels;
  kube::ObjectPtr agent_pod;  // the cache's, or the API server's when the run started and the cache has none
  // Finished runs: their pods that may still be alive, by name (agent and stages).
  std::map<std::string, kube::ObjectPtr> run_pods;
  std::vector<AgentApproval> approvals;  // naming the run, in creation order
  // One-time facts this process appended but the cache may not show yet (see docs/reconcile.md).
  std::set<std::string> recent_facts;
};

// What the governing policy adds: read once planAdmission has named it.
struct TeamFacts {
  kube::ObjectPtr network_policy;       // the team's NetworkPolicy in the namespace, from the cache
  std::optional<AppliedWrite> applied;  // this process's last write of it
  std::vector<AgentRun> same_key;       // the namespace's runs with the run's idempotency key
  Slot slot;                            // the run's concurrency slot (may_start without a limit to check)
  // Budgets (Running runs): the cached spend, and the usage board's readings.
  std::optional<Spend> spend;
  UsageBoard::Reading tokens, cost;
  // On the gateway path: what the gateway refused the run, by reason (kGatewayRefusalsQuery).
  std::map<std::string, int64_t> refusals;
  // Gated stages: the pods of running stages, RBAC's answers about approvals.
  std::map<std::string, kube::ObjectPtr> stage_pods;
  std::map<std::string, bool> rbac_allows;
  std::map<std::string, bool> rbac_rechecked;  // asked again as a stage starts (StagesInput::rbac_rechecked)
  // The gateway path (spec.gateway). When the run has no credential recorded: a fresh random one
  // (the plan decides whether it is issued) and its SHA-256, both lowercase hex.
  struct Credential {
    std::string token, sha256;
  };
  std::optional<Credential> fresh_credential;
  // While the run waits for the gateway: its Deployment as the API server has it (null: none).
  bool gateway_deployment_read = false;
  kube::ObjectPtr gateway_deployment;
};

// ---------------------------------------------------------------------------------------------
// What the plan asks for.

struct AppendAudit {
  Records records;
  std::string actor;        // "" for the operator
  bool before_pod = false;  // describes a pod about to be made: not appended when the NetworkPolicy failed
};
struct EmitEvent {
  runtime::ObjectReference regarding;
  runtime::EventType type = runtime::EventType::Normal;
  std::string reason, action, message;
};
// The team's NetworkPolicy as planned, and what the cache shows of it.
struct NetworkPolicyWrite {
  json planned;
  kube::ObjectPtr live;              // null: missing from the cache (server-side apply)
  std::vector<std::string> drift;    // the fields of `live` that differ from the plan
  bool edited = false;               // `live` claims to be this very plan (its hash) but is not
};
// Missing: applied. Drifted: put back whole by a JSON patch with a resourceVersion test. A
// failure holds back only the pods after it; on success with `restored_event`, that Event.
struct ApplyNetworkPolicy {
  NetworkPolicyWrite write;
  std::optional<EmitEvent> restored_event;
};
struct ApplyClaim {
  std::string name;
  json claim;
};
// The run's gateway credential Secret: created, never read back nor overwritten (its name carries
// its hash, so AlreadyExists is this very Secret).
struct CreateSecret {
  json secret;
};
struct CreateStagePod {
  json pod;  // AlreadyExists is success: the plan was made before
};
struct AgentStatusInput;
// The agent pod; what follows depends on what the API server answers, so the rest of the plan
// is planAgentStatus(`then`, outcome).
struct CreateAgentPod {
  json pod;
  std::shared_ptr<const AgentStatusInput> then;
};
struct PatchPod {
  std::string name;
  json patch;  // merge patch; a missing pod is fine
};
// Status subresource write, skipped when it equals the cached status; its Event goes only after
// the write. The audit chain's position is added by execute.
struct WriteStatus {
  json status;
  std::string reason, message;
  std::optional<EmitEvent> event;
};
// A pod just created: its status waits until the pod shows more than a starting pod, or
// kDeferStatusFor has passed since `since` (one write fewer per run).
struct DeferStatus {
  json status;
  std::chrono::steady_clock::time_point since;
};
inline constexpr std::chrono::seconds kDeferStatusFor{5};
struct DeletePod {
  std::string name;
  std::string precondition_uid;  // "" for none
  bool graceful = true;          // with the plan's termination grace
};
struct RememberSpend {
  Spend spend;
};
struct ForgetSpend {};
struct RememberFact {
  std::string fact;
};
struct MarkStarted {};  // the run index counts the run as holding its slot from now on
// The budget observer (metrics): ratios, and a termination or checkpoint to count.
struct ReportBudget {
  bool ratios = false;  // the three ratios below are current
  double tokens = 0, cost = 0, wall_clock = 0;
  std::string termination, checkpoint;
};
struct LogLine {
  bool warning = false;
  std::string message;
  json fields = json::object();
};

using RunAction = std::variant<AppendAudit, ApplyNetworkPolicy, ApplyClaim, CreateSecret,
                               CreateStagePod, CreateAgentPod, PatchPod, WriteStatus, DeferStatus, DeletePod, EmitEvent, RememberSpend, ForgetSpend, RememberFact,
                               MarkStarted, ReportBudget, LogLine>;

struct RunPlan {
  std::vector<RunAction> actions;
  runtime::Action next = runtime::Action::awaitChange();
  // Gated stages: approvals RBAC must be asked about (SubjectAccessReview) before planning again.
  std::vector<AgentApproval> to_review;
  // Gated stages: approvals counted before, RBAC to be asked again as their stage starts.
  std::vector<AgentApproval> to_recheck;
};

// The plan being built: the status so far and the actions. Audit records are held until the
// next child or status action (or an append in another actor's name), so the common path makes
// one durable append.
class RunDraft {
 public:
  RunDraft(const RunSnapshot& snap, const PlanClock& clock) : status(snap.old_status), snap_(&snap), clock_(&clock) {}
  json status;
  RunPlan plan;

  // Records to append before the next durable action, in `actor`'s name ("" the operator's).
  void audit(Records records, const std::string& actor = "");
  // A durable action (child, status, delete): the held records go first.
  void act(RunAction action, bool before_pod = false);
  // An action that is not durable (an Event, a cache, a log line): in place.
  void note(RunAction action) { plan.actions.push_back(std::move(action)); }
  void condition(const std::string& type, bool value, const std::string& reason, const std::string& message);
  // The status write that ends the plan, with the Event for a phase change (none for routine progress).
  void finish(const std::string& reason, const std::string& message, runtime::Action next);
  RunPlan take() { flush(false); return std::move(plan); }
  // The records held so far, for a plan that goes on in another draft.
  Records takeHeld() { return std::exchange(held_, {}); }
  // The actions of a plan made in another draft, after these; its next step.
  void append(RunPlan other);

  const RunSnapshot& snap() const { return *snap_; }
  const PlanClock& clock() const { return *clock_; }

 private:
  void flush(bool before_pod);
  Records held_;
  const RunSnapshot* snap_;
  const PlanClock* clock_;
};

// What planAdmission concluded for a run that may go on.
struct Admitted {
  AgentRun run;        // stages as admitted, for a started run
  AgentPolicy policy;  // the terms' policy
  Effective effective;
};

// ---------------------------------------------------------------------------------------------
// The steps.

// admission.cc. An invalid spec, a finished run (its live pods deleted), refusal or a stop
// without terms: the whole plan (nullopt Admitted). Else the status's policy, terms and
// conditions, and the RunAdmitted record the first time.
std::optional<Admitted> planAdmission(const RunSnapshot& snap, RunDraft& draft);
// admission.cc. A run with no pod yet: ends as its idempotency key's original did, waits for it,
// or waits for a concurrency slot. True when the plan is complete.
bool planQueue(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft& draft,
               const RunPlanSettings& settings);

// approval.cc. Approvals for a stage the run did not ask for: a condition, and once each a
// record in the approver's name and a Warning Event.
void planUnmatchedApprovals(const RunSnapshot& snap, const Admitted& a, RunDraft& draft, const RunPlanSettings& settings);

// approval.cc. Approvals naming a run that does not exist: a Warning Event on each, once.
RunPlan planApprovalsOfMissingRun(const std::string& ns, const std::string& name,
                                  const std::vector<kube::ObjectPtr>& approvals, const std::set<std::string>& recent);

// network.cc. The team's NetworkPolicy, when it must be written: missing from the cache or
// drifted from the plan, and not our own write the cache has yet to show; nullopt when current.
std::optional<NetworkPolicyWrite> networkPolicyToWrite(json planned, kube::ObjectPtr live,
                                                       const std::optional<AppliedWrite>& applied,
                                                       std::chrono::steady_clock::time_point now);
// network.cc. Recorded, then applied; the HostEgressEnforced condition.
void planNetwork(const Admitted& a, const TeamFacts& team, RunDraft& draft, const RunPlanSettings& settings,
                 const PlanClock& clock);

// gateway.cc. A run under a policy with spec.gateway: its credential issued once, before its pod
// (the Secret created, its hash and caps recorded in status.gateway; true: the plan is complete),
// then the GatewayCredentialLive condition from the agent pod's wait for the gateway, and
// GatewayReady from the gateway's Deployment meanwhile (a Warning when a ready gateway is lost or
// its rollout exceeds its progress deadline, not while it starts).
bool planGatewayCredential(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft& draft);
// gateway.cc. While the run's credential is not live yet (its agent waits for the namespace's
// gateway, which the gateway reconciler makes and whose pod the run's own watch does not see), a
// look again within 5 s.
void planGatewayWait(const Admitted& a, RunPlan& plan, const json& draft_status);

// lifecycle.cc. The agent stage from its pod: created, watched, stopped; its budget (planBudget)
// while it runs.
void planAgent(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft& draft,
               const RunPlanSettings& settings, const PlanClock& clock);
// What the agent's status depends on after the pod step. Plain data, so the plan's tail can be
// made after the API server's answer to the pod's creation.
struct AgentStatusInput {
  std::string run_uid, pod_name;
  LifecycleDecision decision;
  PodJudgement trust;
  PodObservation pod;                       // what planAgent observed
  std::chrono::seconds pod_pending_for{0};
  kube::ObjectPtr live_pod;                 // the pod planAgent saw
  bool pod_created = false;                 // the run's status records the pod
  std::string pod_uid;
  json pod_plan = json::object();           // its fingerprint as recorded
  json created_fingerprint = json::object();  // the fingerprint of the pod CreateAgentPod makes
  std::optional<std::chrono::milliseconds> budget_recheck;
  json status;                              // the draft's status so far
  Records held;                             // the draft's records not yet appended
  RunSnapshot const* snap = nullptr;        // for the regarding reference and the generation
};
// What the API server answered to CreateAgentPod.
struct AgentCreated {
  enum class Kind { Created, Rejected, NameTaken } kind = Kind::Created;
  kube::ObjectPtr pod;  // Created: the new pod; NameTaken: the pod under the name
  std::string message;  // Rejected: the API server's words
};
// lifecycle.cc. The agent stage's status, records, Events and pod deletion; `created` is the
// answer to CreateAgentPod when the plan asked for one.
RunPlan planAgentStatus(const AgentStatusInput& in, const AgentCreated* created, const RunPlanSettings& settings,
                        const PlanClock& clock);

// budget.cc. A Running agent's usage, checkpoint and stop; updates `d` when the budget stops it.
// The recheck it asks for, if any.
std::optional<std::chrono::milliseconds> planBudget(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team,
                                                    LifecycleDecision& d, RunDraft& draft,
                                                    const RunPlanSettings& settings, const PlanClock& clock);

// stages.cc. Once the agent has succeeded: the gated stages (planStages) and what they ask for.
void planGatedStages(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, const std::string& agent_message,
                     RunDraft& draft, const RunPlanSettings& settings, const PlanClock& clock);

// run_plan.cc. The secrets a planned pod mounts, as SecretMounted details: names, keys and
// paths, never values.
std::vector<json> secretMounts(const json& pod, const std::string& stage);

// run_plan.cc. The steps after admission, in order.
RunPlan planRun(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft draft,
                const RunPlanSettings& settings, const PlanClock& clock);

}  // namespace paddock::controllers
