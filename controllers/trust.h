// What the reconciler believes about the objects it reads (docs/trust.md). Pure functions.
//
// Guarantees
// - A child is the run's only when its controller owner reference names the run's UID, or when
//   its UID is the one the run recorded when it created it: a name alone proves nothing, since
//   anyone who may create pods in the namespace can take it first.
// - A child whose content is a security promise (the agent and stage pods, the team's
//   NetworkPolicy) is compared with its plan, field by field, never by an annotation or a hash
//   the object itself carries (an editor can copy those).
// - Approvals are matched to what the run asked for: one for a stage the run does not have is
//   reported, never silently ignored.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/api.h"
#include "controllers/approval.h"

namespace paddock::controllers {

using nlohmann::json;

// True when `child`'s controller owner reference is the AgentRun with this UID.
bool ownedBy(const json& child, const std::string& run_uid);

// A pod's security-relevant content, flattened to field path -> value: its labels, the task
// annotations, the controller owner reference and the images as they are, every other field that
// decides what runs and with which rights (commands, environment, mounts, security contexts,
// volumes, host namespaces, ephemeral containers) as a SHA-256 digest. Fields the API server
// fills in (a volume's defaulted modes, serviceAccountName, nodeName, status) are left out, so
// the planned pod and the same pod read back have equal fingerprints. Small enough to keep in
// the run's status, so a restarted operator, or one whose policy changed since, compares a live
// pod with the plan it was made from.
json podFingerprint(const json& pod);

// The field paths where `live` differs from `planned` (both podFingerprint objects), in order:
// a field missing from either side counts. E.g. metadata.labels["paddock.dev/team"],
// spec.containers[0].image.
std::vector<std::string> fingerprintDrift(const json& planned, const json& live);

// What a pod read under the name of one of the run's pods is to the run.
struct PodJudgement {
  enum class Verdict { Absent, Ours, NotOurs, Tampered };
  Verdict verdict = Verdict::Absent;
  std::vector<std::string> fields;  // Tampered: the fields that differ from the plan
};
// `recorded_uid` is the UID the run recorded when it created the pod ("" when it has none, e.g.
// after a restart between the creation and the status write: then the owner reference decides);
// `planned` the fingerprint recorded then (empty: nothing to compare).
PodJudgement judgePod(const json* live, const std::string& run_uid, const std::string& recorded_uid,
                      const json& planned);
// "a, b and c" for a condition's message.
std::string joinFields(const std::vector<std::string>& fields);

// The fields of a live NetworkPolicy that differ from the planned one: the spec compared as
// what it means (a missing list is an empty one), and the labels that select it. Empty when the
// live one enforces exactly the plan.
std::vector<std::string> networkPolicyDrift(const json& planned, const json& live);

// An approval that does not concern anything the run asked for.
struct UnmatchedApproval {
  std::string name;
  std::string stage;
  std::string reason;  // the message: what is wrong and what to do
};
// The approvals of `approvals` that name `run` but a stage it did not ask for (its recorded
// stages), in creation order. Approvals of other runs are not looked at.
std::vector<UnmatchedApproval> unmatchedApprovals(const AgentRun& run, const std::vector<std::string>& stages,
                                                  const std::vector<AgentApproval>& approvals);

}  // namespace paddock::controllers
