// The gated stages of a run, after its agent has succeeded: one pure function from what is
// observed (the run, its policy, the status it last wrote, its stage pods, the approvals naming
// it, RBAC's answers about them, the clock) to the stages' status, the run's phase and what to do
// (create or delete a stage pod, records for the audit log). The reconciler gathers and executes.
//
// Guarantees
// - Stages run in the order spec.stages lists them, each after its own approvals (decideGate); a
//   stage that does not succeed ends the run and later stages never run.
// - Every phase of a stage has a deadline: the approval timeout; the pending deadline (a pod that
//   cannot start: its image, its node, its workspace claim, each named); the stage's own
//   deadline (activeDeadlineSeconds, and the operator's backstop after it).
// - What a stage reports (its termination message) is read as untrusted input
//   (parseStageReport); the run's message carries the stage's real exit code and outcome.
// - An agent stopped at its budget hands its partial work on (handsOnPartialWork): the pr stage
//   alone runs, after its approvals and once the agent pod is gone, and opens a draft.
// - The pr stage is told the commit the agent started from, as the workspace's clone recorded it
//   in the agent pod's status (not a file in the workspace the agent could rewrite); without it
//   the stage does not start.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/api.h"
#include "controllers/approval.h"
#include "controllers/lifecycle.h"
#include "controllers/plan.h"
#include "controllers/stage_report.h"
#include "operator/audit/record.h"

namespace paddock::controllers {

// A stage pod as the reconciler found it.
struct StagePod {
  PodObservation pod;                      // observePod(pod, "stage")
  std::chrono::seconds age{0};             // since the pod was created
};

struct StagesInput {
  const AgentRun* run = nullptr;
  const AgentPolicy* policy = nullptr;
  PlanOptions plan;
  nlohmann::json old_stages = nlohmann::json::array();  // status.stages as last written
  std::string agent_message;        // why the agent stage succeeded, when it did just now
  std::string clone_message;        // the agent pod's workspace init container's termination message
  std::map<std::string, StagePod> pods;       // by stage; a stage without an entry has no pod
  std::vector<AgentApproval> approvals;       // naming this run, any stage, in creation order
  std::map<std::string, bool> rbac_allows;    // SubjectAccessReview answers by approval name
  // Answers asked again as the stage starts, for approvals counted at an earlier reconcile (the
  // approver's RBAC may have been revoked since): by approval name.
  std::map<std::string, bool> rbac_rechecked;
  std::chrono::system_clock::time_point now;
  std::chrono::seconds pending_deadline{600};
  bool agent_pod_present = false;  // the agent pod is still there (stopping, or kept by its finalizer)
};

struct StageAction {
  enum class Kind { CreatePod, DeletePod };
  Kind kind = Kind::CreatePod;
  std::string stage;
  std::string pod_name;
  nlohmann::json pod;  // CreatePod: the planned pod
  std::string reason;  // DeletePod: why
};

// An approval seen for the first time (not in the stage's recorded verdicts): audited in its
// approver's name and told as an Event.
struct NewVerdict {
  std::string stage;
  ApprovalVerdict verdict;
  bool revoked = false;  // counted before, no longer: RBAC said no when the stage was to start
};

struct StagesPlan {
  nlohmann::json stages = nlohmann::json::array();  // the new status.stages
  std::string phase;    // the run's phase
  std::string reason;   // for the conditions and the Event
  std::string message;
  std::string current;  // the stage the run is in, "" when it has finished
  std::string pull_request_url;  // the pr stage's pull request, for status.pullRequestURL
  std::vector<StageAction> actions;
  std::vector<std::pair<audit::Action, nlohmann::json>> records;  // StageFinished, in order
  std::vector<NewVerdict> new_verdicts;
  // Approvals of the stage awaiting approval that RBAC has not been asked about yet: ask
  // (SubjectAccessReview), add the answers to rbac_allows and plan again.
  std::vector<AgentApproval> to_review;
  // Approvals counted at an earlier reconcile whose stage would start now: ask RBAC again, add
  // the answers to rbac_rechecked and plan again (a stage never starts on a revoked approval).
  std::vector<AgentApproval> to_recheck;
  std::optional<std::chrono::milliseconds> requeue_after;
};

StagesPlan planStages(const StagesInput& in);

// Whether status.stages' agent entry is an agent stopped at its budget whose partial work goes on
// to the pr stage (planBudget's hand-off): only the pr stage runs, its pull request a draft, once
// the agent pod is gone; later stages are Skipped; the run ends in the agent's phase.
bool handsOnPartialWork(const nlohmann::json& agent_stage);
// Whether a run's status says its agent was stopped at its budget and handed its work on: its
// agent pod is gone or going, so nothing waits for it (the gateway credential, the pod's liveness).
bool handedOff(const nlohmann::json& status);
// The commit the workspace was cloned at, from the clone init container's termination message
// ("" when it left none).
std::string cloneBaseCommit(const std::string& clone_message);

// What a stage pod's state means for its stage: Pending past `pending_deadline`, or alive past
// `run_deadline` (its activeDeadlineSeconds and a grace: the kubelet did not stop it), it fails.
struct StagePodDecision {
  enum class Kind { Starting, Running, Succeeded, Failed };
  Kind kind = Kind::Starting;
  std::string reason;  // Failed: CamelCase
  std::string message;
  bool delete_pod = false;
};
StagePodDecision decideStagePod(const std::string& stage, const StagePod& pod, std::chrono::seconds pending_deadline,
                                std::chrono::seconds run_deadline);

// The run's message for a stage that ended with `exit_code` and the report it wrote (or why it
// wrote none): the real exit code, the outcome and reason, the stage's own message.
std::string stageFailureMessage(const std::string& stage, int exit_code, const Result<StageReport>& report);

}  // namespace paddock::controllers
