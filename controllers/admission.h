// Admission: may this AgentRun run, and with what? Pure functions over parsed objects; every
// refusal carries a condition reason and a message that names the field and the fix.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controllers/api.h"
#include "operator/common/glob.h"

namespace paddock::controllers {

// The policy that governs a namespace: exactly one AgentPolicy must select it.
struct PolicyChoice {
  std::optional<AgentPolicy> policy;  // empty when none or several select the namespace
  std::string reason;                   // NoPolicy, AmbiguousPolicy
  std::string message;
};
PolicyChoice resolvePolicy(const std::string& ns, const std::map<std::string, std::string>& ns_labels,
                           const std::vector<AgentPolicy>& policies);

// Image references are matched with paddock::globMatch (operator/common/glob.h).
using paddock::globMatch;

// Is `image` the policy's default, or a reference matching one of spec.images.allowed on its parsed
// parts (controllers/references.h)? The API server's admission policy decides the same when the
// run is applied; this is the backstop.
bool imageAllowed(const std::string& image, const AgentPolicy& policy);
// Does the run's repository URL name a host (and organisation) of spec.repositories? Any valid URL
// when the policy lists none.
bool repositoryAllowed(const std::string& url, const AgentPolicy& policy);

// What an admitted run gets: the policy's defaults filled in.
struct Effective {
  std::string image;
  std::string model;
  int64_t tokens = 0;
  int64_t cost_cents = 0;
  std::chrono::milliseconds wall_clock{0};
};

struct Admission {
  bool admitted = false;
  std::string reason;   // Admitted, or why not: ImageNotAllowed, ModelNotAllowed, BudgetOverMax, UnknownStage, ...
  std::string message;
  Effective effective;
};

// Checks a run against its policy: image allowed, repository host allowed, model equal to the pin, budgets within the
// policy's max (defaults filled from the policy), requested stages defined by the policy.
Admission admit(const AgentRun& run, const AgentPolicy& policy);
// What the run asks for with the policy's defaults filled in, unchecked (a budget part neither
// sets is 0): the terms of a run that started before its terms were recorded.
Effective requested(const AgentRun& run, const AgentPolicy& policy);

// Concurrency: runs of one team (every namespace of one policy) beyond max_running wait in
// Pending and start in creation order as slots free.
struct Slot {
  bool may_start = false;
  int active = 0;    // runs of the team holding a slot now
  int position = 0;  // 1-based place among the waiting runs, when it must wait
  std::string message;
};
// `team` holds every run governed by the same policy, `run` among them. A run holds a slot from
// the moment its agent pod is created until it ends.
Slot concurrencySlot(const AgentRun& run, const std::vector<AgentRun>& team, int max_running);
// The same decision from counts: `active` runs of the team hold a slot, `ahead` wait before this one.
Slot decideSlot(int active, int ahead, int max_running);
// A run that has not started, is not cancelled and has not ended waits for a slot.
bool waitsForSlot(const AgentRun& run);
// Waiting runs go in creation order (then namespace and name): is `a` before `b`?
bool aheadInLine(const AgentRun& a, const AgentRun& b);

bool holdsSlot(const AgentRun& run);

// idempotencyKey: among the runs of a namespace with the same key, the earliest created is the one
// that runs; any other follows it, waiting while it is unfinished and ending as it ended, so a
// GitOps tool re-creating a finished run does not run the task again.
struct Original {
  bool found = false;  // `run` is a duplicate of `name`
  std::string name;
  std::string phase;
};
Original findOriginal(const AgentRun& run, const std::vector<AgentRun>& same_namespace);
bool isTerminal(const std::string& phase);

}  // namespace paddock::controllers
