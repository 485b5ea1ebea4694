// The AgentRun reconciler: the I/O shell around the pure plan of controllers/reconcile.h.
//   gather   the run, its namespace, the policies, its pods and approvals (all from caches), then
//            what its governing policy adds: the team's NetworkPolicy, the other runs through a
//            RunIndex, usage from the UsageBoard, RBAC's answers about new approvals
//   plan     planAdmission, then planRun (pure; table-tested in tests/unit/controllers)
//   execute  the plan's actions in their order: audit records first, then children, then the
//            status, then deletes; no decisions
// What it keeps in memory is a cache of its own recent writes and of usage not yet in status;
// each piece says how it is rebuilt (docs/reconcile.md).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "controllers/reconcile.h"
#include "controllers/run_index.h"
#include "controllers/status.h"
#include "controllers/usage.h"
#include "operator/audit/audit.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/events.h"
#include "operator/runtime/metrics.h"

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
  // Finished runs' idempotency keys beyond the runs (a policy's spec.idempotency.retention); null: none.
  const KeyLedger* ledger = nullptr;
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
  // What one execution carries from action to action.
  struct Execution {
    const RunSnapshot* snap;
    const PlanClock* clock;
    const CancelToken* cancel;
    std::optional<json> audit_position;        // the chain's position after our last append
    std::optional<Error> network_policy_error;  // holds back the pods after it
  };
  // The run and what it depends on; a result instead when there is nothing to decide from yet.
  std::variant<RunSnapshot, runtime::ReconcileResult> gather(const std::string& key, const CancelToken& cancel);
  // What the governing policy adds.
  Result<TeamFacts> gatherTeam(const RunSnapshot& snap, const Admitted& a, const CancelToken& cancel);
  // The pods of the running gated stages (uncached when the cache lacks one).
  Status gatherStagePods(const RunSnapshot& snap, TeamFacts& team, const CancelToken& cancel);
  // Does RBAC grant the approval's approver the approve verb on the run? (SubjectAccessReview)
  Result<bool> mayApprove(const AgentRun& run, const AgentApproval& approval, const CancelToken& cancel);

  runtime::ReconcileResult execute(RunPlan plan, Execution& ex);
  // Plans (asking RBAC about approvals when the plan says so, then planning again) and executes.
  runtime::ReconcileResult planAndExecute(const RunSnapshot& snap, const Admitted& admitted, TeamFacts& team,
                                          const RunDraft& draft, Execution& ex, const CancelToken& cancel);
  Status perform(const RunAction& action, Execution& ex);
  Status performAgentPod(const CreateAgentPod& create, Execution& ex, runtime::ReconcileResult& result);
  Status appendAudit(const AppendAudit& a, Execution& ex);
  Status writeStatus(const WriteStatus& w, Execution& ex);
  Status writeNetworkPolicy(const ApplyNetworkPolicy& a, Execution& ex);
  Status deletePod(const DeletePod& d, Execution& ex);
  void reportBudget(const ReportBudget& r, const Execution& ex);
  RunPlanSettings settings() const;

  std::atomic<audit::AuditLog*> audit_{nullptr};

  // Caches of this process's own writes, for as long as the informers may not show them. None is
  // needed after a restart: a fresh cache is never older than the writes of a process before.
  std::mutex facts_mu_;
  std::map<std::string, std::set<std::string>> facts_;  // guarded; by run uid: one-time facts appended
  std::mutex written_mu_;
  // By run key: the resourceVersion of our last status write, and when it was made.
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> written_;  // guarded
  struct Unwritten {
    std::string uid;
    json status;
    std::chrono::steady_clock::time_point since;  // deferred first
  };
  std::mutex unwritten_mu_;
  // By run key: the status of a run whose pod was just created, written once the pod has started
  // (or kDeferStatusFor after). After a restart the pod in the cache says the run started (the
  // pods handler), and the status is written at the next reconcile.
  std::map<std::string, Unwritten> unwritten_;  // guarded
  std::mutex applied_mu_;
  std::map<std::string, AppliedWrite> applied_;  // guarded; by NetworkPolicy key, our last write
  // By run key: usage not yet in status. Rebuilt from status.usage when missing.
  std::mutex spend_mu_;
  std::map<std::string, Spend> spend_;  // guarded

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

}  // namespace paddock::controllers
