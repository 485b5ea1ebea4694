// The AgentRun reconciler: the I/O shell around the pure functions of this folder.
//   gather   the run, its namespace, the policies, the run's pod (all from caches), the other
//            runs through a RunIndex
//   decide   resolvePolicy, admit, concurrencySlot, decideLifecycle, plan*
//   execute  children first (the team's NetworkPolicy in the namespace by server-side apply, only
//            when it is missing or out of date, then the pod), then the status, written only when
//            it changed, then an Event when the pod is created and when the run ends or goes wrong
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "controllers/approval.h"
#include "controllers/budget.h"
#include "controllers/plan.h"
#include "controllers/run_index.h"
#include "controllers/stages.h"
#include "controllers/trust.h"
#include "controllers/usage.h"
#include "operator/audit/audit.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/events.h"

namespace paddock::controllers {

struct RunReconcilerOptions {
  PlanOptions plan;
  // Usage read from Prometheus; null when the operator has none (token and cost budgets are then
  // not enforced, and the runs say so; the wall clock still is).
  const UsageBoard* usage = nullptr;
  // Usage figures in status are refreshed at most this often (thresholds are acted on at once).
  std::chrono::milliseconds usage_write_interval{15'000};
  runtime::BudgetObserver budget_observer;
  std::chrono::seconds pending_deadline{600};  // a pod stuck pulling or unschedulable this long fails the run
  std::chrono::seconds slot_recheck{10};       // how often a run waiting for a slot looks again
  std::string field_manager = "paddock-operator";
  std::string actor = "paddock-operator";  // who the audit records say acted
};

class RunReconciler : public runtime::Reconciler {
 public:
  // Registers a handler on `runs` that keeps index() current: construct before the informers run,
  // and before other handlers that read index().
  RunReconciler(kube::Client& client, kube::Informer& runs, kube::Informer& policies, kube::Informer& namespaces,
                kube::Informer& pods, kube::Informer& approvals, kube::Informer& network_policies,
                runtime::EventRecorder* events, RunReconcilerOptions options);

  runtime::ReconcileResult reconcile(const std::string& key, const CancelToken& cancel) override;

  // The audit log records are written to before the actions they describe; null: none. Set by
  // the leader before it reconciles (only the leader writes the chain).
  void setAuditLog(audit::AuditLog* log) { audit_ = log; }

  const RunIndex& index() const { return index_; }

 private:
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
  // Brings the run's usage up to date from the board and decides what its budget calls for;
  // writes usage and the budget conditions into `status`.
  BudgetDecision checkBudget(const AgentRun& run, const AgentPolicy& policy, int64_t tokens_limit, int64_t cost_cents,
                             std::chrono::milliseconds wall_clock, json& status, const json& old_status,
                             std::chrono::system_clock::time_point wall, const std::string& now, int64_t generation);
  // Reads the run's usage from the board into `spend`; what is unreadable (a failing query, or
  // one without a series for the run's agent pod), if anything.
  std::optional<UsageUnavailable> readUsage(const AgentRun& run, const AgentPolicy& policy, Spend& spend,
                                            std::chrono::system_clock::time_point started, const json& old_status,
                                            std::chrono::system_clock::time_point wall);
  void forgetSpend(const AgentRun& run);
  // Appends the run's records and notes the chain's position in status; Ok without an audit log.
  // The actor is the operator unless `actor` names someone else (an approver).
  Status record(const AgentRun& run, std::vector<std::pair<audit::Action, json>> records, json& status,
                const CancelToken& cancel, const std::string& actor = "");
  // Does RBAC grant the approval's approver the approve verb on the run? (SubjectAccessReview)
  Result<bool> mayApprove(const AgentRun& run, const AgentApproval& approval, const CancelToken& cancel);
  // Gated stages (controllers/stages.h). What planStages reads: the approvals naming the run and
  // the pods of its running stages (uncached when the cache lacks one).
  Result<StagesInput> gatherStages(const AgentRun& run, const AgentPolicy& policy, const json* agent_pod,
                                   const std::string& agent_message, const json& old_stages,
                                   std::chrono::system_clock::time_point wall, const CancelToken& cancel);
  // planStages, after asking RBAC (SubjectAccessReview) about the approvals it has not seen yet.
  Result<StagesPlan> planRunStages(StagesInput in, const AgentRun& run, const CancelToken& cancel);
  using Records = std::vector<std::pair<audit::Action, json>>;
  using Appender = std::function<Status(Records, const std::string&)>;
  // Audits and announces the approvals seen for the first time, then creates the stage pods the
  // plan asks for, each recorded (with `records` so far) before it is created.
  Status startStages(const AgentRun& run, const StagesPlan& plan, const runtime::ObjectReference& regarding,
                     Records& records, const Appender& append, const std::optional<Error>& network_policy_error,
                     const CancelToken& cancel);
  // The team's NetworkPolicy in the namespace as planned, when it must be written: the cache
  // shows it missing, or its content differs from the plan (compared as what it means, never by
  // its hash annotation), and it is not our own write the cache has yet to show. nullopt when it
  // is current.
  struct NetworkPolicyWrite {
    json planned;
    std::shared_ptr<const json> live;  // null: missing from the cache (server-side apply)
    std::vector<std::string> drift;    // the fields of `live` that differ from the plan
    bool edited = false;               // `live` claims to be this very plan (its hash) but is not
  };
  std::optional<NetworkPolicyWrite> networkPolicyToWrite(const std::string& ns, const AgentPolicy& policy);
  // Applies a missing one; puts a drifted one back whole (a server-side apply would leave fields
  // someone else added, such as an extra podSelector label that makes it select nothing).
  Status writeNetworkPolicy(const std::string& ns, const NetworkPolicyWrite& write, const CancelToken& cancel);
  // Appends audit records before what they describe, in the actor's name ("" for the operator).
  using AppendFn = std::function<Status(std::vector<std::pair<audit::Action, json>>, const std::string& actor)>;
  // A stage's pod that is not the run's (recorded, left alone) or no longer its plan (recorded, deleted).
  Status refuseStagePod(const AgentRun& run, const json& pod, const PodJudgement& trust, const AppendFn& append,
                        const CancelToken& cancel);
  // Approvals naming the run for a stage it did not ask for: an UnmatchedApprovals condition, and
  // once each a Warning Event and an ApprovalRefused record in the approver's name.
  Status reportUnmatchedApprovals(const AgentRun& run, const std::vector<std::string>& stages, json& status,
                                  const json& old_status, int64_t generation, const std::string& now, const AppendFn& append);
  // Approvals naming a run that does not exist: a Warning Event on each, once.
  void reportApprovalsOfMissingRun(const std::string& key);
  std::atomic<audit::AuditLog*> audit_{nullptr};
  // Records already appended for one-time facts of a run ("<uid>/<stage>/<approval>", "<uid>/<stage>/started"),
  // so a reconcile deciding from a cache that lags behind our own status write does not append them again.
  bool once(const std::string& fact);
  std::mutex once_mu_;
  std::set<std::string> once_;  // guarded by once_mu_
  std::mutex written_mu_;
  // By run key: the resourceVersion of our last status write, and when it was made.
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> written_;  // guarded by written_mu_

  struct Unwritten {
    std::string uid;
    json status;
  };
  std::mutex unwritten_mu_;
  // By run key: the status of a run whose pod was just created, written with the pod's first event.
  std::map<std::string, Unwritten> unwritten_;  // guarded by unwritten_mu_

  struct Applied {
    std::string hash;  // of the plan written
    std::chrono::steady_clock::time_point at;
    int64_t generation = 0;  // the object's metadata.generation after our write
  };
  std::mutex applied_mu_;
  std::map<std::string, Applied> applied_;  // guarded by applied_mu_; by NetworkPolicy key, our last write

  std::mutex spend_mu_;
  std::map<std::string, Spend> spend_;  // guarded by spend_mu_; by run key, the totals not yet in status

  kube::Client& client_;
  kube::Informer& runs_;
  kube::Informer& policies_;
  kube::Informer& namespaces_;
  kube::Informer& pods_;
  kube::Informer& approvals_;
  kube::Informer& network_policies_;
  RunIndex index_;
  runtime::EventRecorder* events_;
  RunReconcilerOptions options_;
};

// The runs to look at again when `event` may have freed a concurrency slot (a run that held one
// finished or was deleted): those waiting for a slot, so the next in line starts at once instead of
// at its next recheck.
std::vector<std::string> runsWaitingForSlot(const kube::InformerEvent& event, const RunIndex& runs);

// Sets a condition in a status object, keeping lastTransitionTime unless the status flips.
void setCondition(nlohmann::json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, const std::string& now);

}  // namespace paddock::controllers
