// The agent stage's lifecycle: from what the agent pod shows to the run's phase, the reason a
// person reads, and what to do next. Ordered guards, as Tekton's TaskRun reconciler has them:
// finished? cancelled? pod gone? pod finished? pod stuck? Pure: time comes in as durations.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "controllers/trust.h"

namespace paddock::controllers {

// What the agent pod says, read from its status.
struct PodObservation {
  bool exists = false;
  bool deleting = false;         // metadata.deletionTimestamp is set
  std::string phase;             // Pending, Running, Succeeded, Failed
  std::string reason;            // status.reason: DeadlineExceeded, Evicted, ...
  std::string message;           // status.message
  std::string waiting_reason;    // the container's waiting reason: ErrImagePull, ...
  std::string waiting_message;   // the kubelet's words with it
  int exit_code = 0;             // the container's exit code, once terminated
  std::string terminated_reason; // Completed, Error, OOMKilled, ...
  std::string termination_message;  // what the container left in its termination message (untrusted)
  bool unschedulable = false;    // PodScheduled is False with reason Unschedulable
  std::string unschedulable_message;
};

// Reads a pod object (null or missing: the pod does not exist), and of its containers the one
// named `container` (init containers included).
PodObservation observePod(const nlohmann::json* pod, const std::string& container = "agent");

// The pod has ended (Succeeded or Failed): its containers hold nothing back any more, even while
// its object is still there.
inline bool podEnded(const PodObservation& pod) { return pod.phase == "Succeeded" || pod.phase == "Failed"; }

// The merge patch that takes kFinalizerAgentPod off `pod` (its other finalizers kept, and only
// if nobody wrote it since: its resourceVersion), or nullopt when it has none. Called once the
// run's durable status records the pod, the run has ended, or the run is gone.
std::optional<nlohmann::json> releaseAgentPod(const nlohmann::json* pod);

// Why a pod Pending too long has not started, from what it shows: ImagePullFailed,
// WorkspaceClaimMissing (its volume's PersistentVolumeClaim does not exist or is being deleted),
// Unschedulable, ContainerConfigInvalid (the kubelet cannot set the container up: a protected
// path it cannot mount read-only, such as a symbolic link out of the workspace); an
// empty reason when it shows none of these.
struct PendingCause {
  std::string reason;
  std::string detail;  // the kubelet's or the scheduler's words
};
PendingCause pendingCause(const PodObservation& pod);

struct LifecycleInput {
  std::string phase;         // the run's current phase ("" before the first status)
  bool cancel = false;       // spec.cancel
  bool pod_created = false;  // status records that the agent pod was created
  std::string pod_name;
  PodJudgement trust;        // whose the pod under that name is, and whether it still matches its plan
  PodObservation pod;        // what it shows (read only from a pod that is the run's)
  std::chrono::seconds pod_pending_for{0};  // how long the pod has been Pending
  std::chrono::seconds pending_deadline{600};
  bool gateway = false;      // the policy has spec.gateway: the agent's model calls go through it
  bool pr_stage = false;     // the run lists a pr stage: partial work is handed on to it as a draft
  PodObservation sandbox;    // the pod's sandbox init container (paddock-sandbox install)
};

// What paddock-sandbox's install init container reported of the node's kernel (its termination
// message, written by the operator's image): nullopt until it has run, or when it said nothing
// (a node that does not run containers, such as kwok's).
struct SandboxReport {
  bool landlock = false;
  std::string reason;   // Landlock, LandlockUnavailable
  std::string message;  // for the run's Sandboxed condition
};
std::optional<SandboxReport> sandboxReport(const PodObservation& sandbox, bool warn_when_unavailable);

struct LifecycleDecision {
  std::string phase;
  std::string reason;   // CamelCase, for the condition and the Event
  std::string message;  // what happened and what to do
  bool create_pod = false;
  bool delete_pod = false;
  // Stopped at its budget with a pr stage to come: the run does not end here; its partial work
  // goes on to the pr stage as a draft (handsOnPartialWork, stages.h).
  bool hand_off = false;
};

LifecycleDecision decideLifecycle(const LifecycleInput& in);

// What a pod that is not the run's (PodNameTaken: never adopted, reported or deleted) or no
// longer matches its plan (PodTampered: deleted) means for the run or stage whose pod it should
// be: it fails, with a message naming the pod and the fields. Nothing for a pod that is the
// run's and unchanged.
std::optional<LifecycleDecision> decideTrust(const PodJudgement& trust, const std::string& pod_name);

}  // namespace paddock::controllers
