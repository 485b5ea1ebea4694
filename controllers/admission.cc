#include "controllers/admission.h"

#include <algorithm>
#include <cctype>
#include <tuple>

#include "controllers/reconcile.h"
#include "controllers/references.h"
#include "controllers/status.h"
#include "operator/common/json.h"
#include "operator/common/duration.h"

namespace paddock::controllers {

PolicyChoice resolvePolicy(const std::string& ns, const std::map<std::string, std::string>& ns_labels,
                           const std::vector<AgentPolicy>& policies) {
  std::vector<const AgentPolicy*> matching;
  for (const auto& p : policies) {
    if (p.namespace_selector.matches(ns_labels)) matching.push_back(&p);
  }
  std::sort(matching.begin(), matching.end(), [](auto* a, auto* b) { return a->name < b->name; });
  if (matching.size() == 1) return {*matching.front(), "PolicyResolved", "AgentPolicy " + matching.front()->name + " governs namespace " + ns};
  if (matching.empty()) {
    return {std::nullopt, "NoPolicy",
            "no AgentPolicy selects namespace " + ns +
                ": ask the platform team to add this namespace to an AgentPolicy's spec.namespaceSelector"};
  }
  std::string names;
  for (auto* p : matching) names += (names.empty() ? "" : ", ") + p->name;
  return {std::nullopt, "AmbiguousPolicy",
          "namespace " + ns + " is selected by several AgentPolicies (" + names +
              "): exactly one may govern it; ask the platform team to narrow their spec.namespaceSelector"};
}

namespace {

Admission refuse(std::string reason, std::string message) {
  Admission a;
  a.reason = std::move(reason);
  a.message = std::move(message);
  return a;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out.empty() ? "none" : out;
}

}  // namespace

bool imageAllowed(const std::string& image, const AgentPolicy& policy) {
  if (image == policy.default_image) return true;
  auto ref = parseImageReference(image);
  if (!ref) return false;
  return std::any_of(policy.allowed_images.begin(), policy.allowed_images.end(), [&](const std::string& g) {
    auto pattern = parseImagePattern(g);
    return pattern && imageMatches(*pattern, *ref);
  });
}

bool repositoryAllowed(const std::string& url, const AgentPolicy& policy) {
  auto parsed = parseRepositoryUrl(url);
  if (!parsed.url) return false;
  if (policy.repositories.empty()) return true;
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  return std::any_of(policy.repositories.begin(), policy.repositories.end(), [&](const RepositoryRule& r) {
    if (r.host != parsed.url->host) return false;
    return r.organizations.empty() ||
           std::any_of(r.organizations.begin(), r.organizations.end(),
                       [&](const std::string& o) { return lower(o) == lower(parsed.url->organization); });
  });
}

Admission admit(const AgentRun& run, const AgentPolicy& policy) {
  Effective e;
  e.image = run.image.empty() ? policy.default_image : run.image;
  if (!run.image.empty() && !imageAllowed(run.image, policy)) {
    return refuse("ImageNotAllowed", "spec.image " + run.image + " is not allowed by AgentPolicy " + policy.name +
                                         " (spec.images.allowed: " + joined(policy.allowed_images) +
                                         "); use an allowed image or omit spec.image for " + policy.default_image);
  }
  if (!repositoryAllowed(run.repository_url, policy)) {
    std::string hosts;
    for (const auto& r : policy.repositories) {
      hosts += (hosts.empty() ? "" : ", ") + r.host + (r.organizations.empty() ? "" : "/{" + joined(r.organizations) + "}");
    }
    return refuse("RepositoryNotAllowed", "spec.repository.url names a host or organisation AgentPolicy " + policy.name +
                                              " does not allow (spec.repositories: " + hosts +
                                              "); use a repository there or ask the platform team to add it");
  }
  e.model = run.model.empty() ? policy.model_pin : run.model;
  if (!policy.model_pin.empty() && !run.model.empty() && run.model != policy.model_pin) {
    return refuse("ModelNotAllowed", "spec.model " + run.model + " differs from the model AgentPolicy " + policy.name +
                                         " pins (" + policy.model_pin + "); omit spec.model or set it to " + policy.model_pin);
  }

  // Budgets: the run's, else the policy's default; each at most the policy's max.
  auto pick = [](auto run_value, auto default_value) { return run_value ? run_value : default_value; };
  auto tokens = pick(run.budget.tokens, policy.default_budget.tokens);
  auto cost = pick(run.budget.cost_cents, policy.default_budget.cost_cents);
  auto wall = pick(run.budget.wall_clock, policy.default_budget.wall_clock);
  if (!tokens || !cost || !wall) {
    return refuse("BudgetMissing", "the run sets no " + std::string(!tokens ? "spec.budget.tokens" : !cost ? "spec.budget.costUSD" : "spec.budget.wallClock") +
                                       " and AgentPolicy " + policy.name + " has no default for it; set it on the run");
  }
  if (*tokens <= 0 || *cost <= 0 || wall->count() <= 0) {
    return refuse("BudgetInvalid", "spec.budget must be positive in every part; raise the zero or negative value");
  }
  if (policy.max_budget.tokens && *tokens > *policy.max_budget.tokens) {
    return refuse("BudgetOverMax", "spec.budget.tokens " + std::to_string(*tokens) + " exceeds AgentPolicy " + policy.name +
                                       " max of " + std::to_string(*policy.max_budget.tokens) + "; lower it");
  }
  if (policy.max_budget.cost_cents && *cost > *policy.max_budget.cost_cents) {
    return refuse("BudgetOverMax", "spec.budget.costUSD " + formatCents(*cost) + " exceeds AgentPolicy " + policy.name +
                                       " max of " + formatCents(*policy.max_budget.cost_cents) + "; lower it");
  }
  if (policy.max_budget.wall_clock && *wall > *policy.max_budget.wall_clock) {
    return refuse("BudgetOverMax", "spec.budget.wallClock " + formatDuration(*wall) + " exceeds AgentPolicy " +
                                       policy.name + " max of " + formatDuration(*policy.max_budget.wall_clock) + "; lower it");
  }
  e.tokens = *tokens;
  e.cost_cents = *cost;
  e.wall_clock = *wall;

  for (const auto& s : run.stages) {
    bool known = std::any_of(policy.stages.begin(), policy.stages.end(), [&](const StageSpec& st) { return st.name == s; });
    if (!known) {
      std::vector<std::string> names;
      for (const auto& st : policy.stages) names.push_back(st.name);
      return refuse("UnknownStage", "spec.stages names " + s + ", which AgentPolicy " + policy.name +
                                        " does not define (its stages: " + joined(names) +
                                        "); remove it or ask the platform team to add it");
    }
  }
  Admission a;
  a.admitted = true;
  a.reason = "Admitted";
  a.message = "admitted under AgentPolicy " + policy.name;
  a.effective = std::move(e);
  return a;
}

Effective requested(const AgentRun& run, const AgentPolicy& policy) {
  Effective e;
  e.image = run.image.empty() ? policy.default_image : run.image;
  e.model = run.model.empty() ? policy.model_pin : run.model;
  e.tokens = run.budget.tokens.value_or(policy.default_budget.tokens.value_or(0));
  e.cost_cents = run.budget.cost_cents.value_or(policy.default_budget.cost_cents.value_or(0));
  e.wall_clock = run.budget.wall_clock.value_or(policy.default_budget.wall_clock.value_or(std::chrono::milliseconds(0)));
  return e;
}

bool holdsSlot(const AgentRun& run) {
  return !isTerminal(run.phase) && (run.started || run.phase == "Running" || run.phase == "AwaitingApproval");
}

bool isTerminal(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "Cancelled" || phase == "BudgetExceeded" ||
         phase == "TimedOut";
}

Original findOriginal(const AgentRun& run, const std::vector<AgentRun>& same_namespace) {
  Original o;
  if (run.idempotency_key.empty() || run.started) return o;
  const AgentRun* first = nullptr;
  for (const auto& r : same_namespace) {
    if (r.uid == run.uid || r.ns != run.ns || r.idempotency_key != run.idempotency_key) continue;
    // An earlier run, or one that already started (it got there first whatever its timestamp).
    bool earlier = std::tie(r.creation_timestamp, r.name) < std::tie(run.creation_timestamp, run.name);
    if (!(earlier || r.started)) continue;
    if (!first || std::tie(first->creation_timestamp, first->name) > std::tie(r.creation_timestamp, r.name)) first = &r;
  }
  if (first) o = {true, first->name, first->phase};
  return o;
}

bool waitsForSlot(const AgentRun& run) { return !holdsSlot(run) && !isTerminal(run.phase) && !run.cancel; }

bool aheadInLine(const AgentRun& a, const AgentRun& b) {
  return std::tie(a.creation_timestamp, a.ns, a.name) < std::tie(b.creation_timestamp, b.ns, b.name);
}

Slot concurrencySlot(const AgentRun& run, const std::vector<AgentRun>& team, int max_running) {
  int active = 0, ahead = 0;
  for (const auto& r : team) {
    if (r.uid == run.uid) continue;
    if (holdsSlot(r)) ++active;
    else if (waitsForSlot(r) && aheadInLine(r, run)) ++ahead;
  }
  return decideSlot(active, ahead, max_running);
}

Slot decideSlot(int active, int ahead, int max_running) {
  Slot s;
  s.active = active;
  if (active + ahead < max_running) {
    s.may_start = true;
    return s;
  }
  s.position = ahead + 1;
  s.message = "waiting for a slot: " + std::to_string(active) + " of " + std::to_string(max_running) +
              " runs allowed by spec.concurrency.maxRunning are running; this run is number " +
              std::to_string(s.position) + " in line and starts when one finishes";
  return s;
}

// ---------------------------------------------------------------------------------------------
// The reconcile's admission steps (controllers/reconcile.h).

namespace {

// A finished run keeps no live pod (the decision is written before the pod is deleted, so a
// restart between the two lands here). Only the run's own pods: never someone else's pod under
// one of its names.
void planFinished(const RunSnapshot& snap, const AgentRun& run, RunDraft& draft) {
  draft.note(ForgetSpend{});
  for (const auto& [pod_name, pod] : snap.run_pods) {
    auto seen = observePod(pod.get());
    bool ours = pod && (ownedBy(*pod, run.uid) ||
                        (pod_name == agentPodName(run) &&
                         stringAt(*pod, "/metadata/uid") == stringAt(snap.cached_status, "/stages/0/podUID")));
    if (!ours) continue;
    if (auto release = releaseAgentPod(pod.get())) draft.act(PatchPod{pod_name, *release});  // the end is recorded
    if (seen.deleting || (seen.phase != "Pending" && seen.phase != "Running")) continue;
    draft.act(DeletePod{pod_name, stringAt(*pod, "/metadata/uid"), true});
  }
}

// Refused (Pending, Admitted=False, a RunRefused record when the reason is new) or, once
// started, stopped: no terms to care for it under.
void planNotAdmitted(const TermsDecision& terms, bool started, const std::string& policy, const json& old_admitted,
                     RunDraft& draft) {
  const std::string& now = draft.clock().now;
  if (started) {
    draft.status["phase"] = "Failed";
    draft.condition("Succeeded", false, terms.reason, terms.message);
    draft.status["completionTime"] = now;
    draft.audit({{audit::Action::RunFinished, {{"phase", "Failed"}, {"reason", terms.reason}, {"message", terms.message}}}});
  } else {
    draft.status["phase"] = "Pending";
    draft.condition("Admitted", false, terms.reason, terms.message);
    if (!policy.empty() && old_admitted.value("reason", "") != terms.reason) {
      draft.audit({{audit::Action::RunRefused, {{"policy", policy}, {"reason", terms.reason}, {"message", terms.message}}}});
    }
  }
  draft.finish(terms.reason, terms.message, runtime::Action::awaitChange());
}

// Admitted: the status's policy and terms, PolicyChanged, Admitted, and RunAdmitted the first time.
void planAdmitted(const TermsDecision& terms, const Admitted& a, const json& old_status, RunDraft& draft) {
  draft.status["policy"] = a.policy.name;
  draft.status["terms"] = termsJson(terms.terms);
  if (terms.policy_changed || hasCondition(old_status, "PolicyChanged")) {
    draft.condition("PolicyChanged", terms.policy_changed, terms.policy_changed ? terms.changed_reason : "PolicyUnchanged",
                    terms.policy_changed ? terms.changed_message : "the run's policy would grant the terms it runs under");
    if (terms.policy_changed && !conditionTrue(old_status, "PolicyChanged")) {
      draft.note(EmitEvent{draft.snap().regarding, runtime::EventType::Warning, "PolicyChanged", "Admit",
                           terms.changed_message});
    }
  }
  draft.condition("Admitted", true, "Admitted", terms.message);
  if (conditionOf(old_status, "Admitted").value("status", "") == "True") return;
  const auto& e = a.effective;
  json details = {{"policy", a.policy.name}, {"task", a.run.task}, {"repository", a.run.repository_url},
                  {"baseBranch", a.run.base_branch}, {"image", e.image}, {"model", e.model},
                  {"budget", {{"tokens", e.tokens}, {"costUSD", formatCents(e.cost_cents)},
                              {"wallClock", formatDuration(e.wall_clock)}}},
                  {"stages", a.run.stages}};
  if (!a.run.idempotency_key.empty()) details["idempotencyKey"] = a.run.idempotency_key;  // the key ledger reads it
  draft.audit({{audit::Action::RunAdmitted, details}});
}

}  // namespace

std::optional<Admitted> planAdmission(const RunSnapshot& snap, RunDraft& draft) {
  if (!snap.run) {
    draft.status["phase"] = "Pending";
    draft.condition("Admitted", false, "InvalidSpec", snap.run.error().message);
    draft.finish("InvalidSpec", snap.run.error().message, runtime::Action::awaitChange());
    return std::nullopt;
  }
  const AgentRun& run = *snap.run;
  if (isTerminal(run.phase)) {
    planFinished(snap, run, draft);
    return std::nullopt;
  }
  // Admission decides whether the run may start; once its pod exists it is cared for under the
  // terms recorded then (controllers/terms.h), whatever the policy says now.
  auto choice = resolvePolicy(snap.ns, snap.namespace_labels, snap.policies);
  TermsInput in;
  in.run = &run;
  in.recorded = parseTerms(snap.old_status);
  in.choice = &choice;
  for (const auto& p : snap.policies) {
    if (in.recorded && p.name == in.recorded->policy) in.admitted_under = &p;
  }
  in.started = run.started || (snap.agent_pod && ownedBy(*snap.agent_pod, run.uid));
  auto terms = decideTerms(in);
  if (!terms.admitted) {
    planNotAdmitted(terms, in.started, choice.policy ? choice.policy->name : "", conditionOf(snap.old_status, "Admitted"),
                    draft);
    return std::nullopt;
  }
  Admitted a{run, terms.policy, terms.terms.effective};
  if (in.started) a.run.stages = terms.terms.stages;  // the stages it was admitted with
  planAdmitted(terms, a, snap.old_status, draft);
  return a;
}

bool planQueue(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft& draft,
               const RunPlanSettings& settings) {
  const AgentRun& run = a.run;
  if (snap.agent_pod || run.started || run.cancel) return false;
  if (!run.idempotency_key.empty()) {
    auto original = findOriginal(run, team.same_key);
    if (original.found && isTerminal(original.phase)) {
      std::string message = "spec.idempotencyKey " + run.idempotency_key + " was already run by AgentRun " +
                            original.name + " (" + original.phase + "); this run ends as it did without running the task again";
      draft.status["phase"] = original.phase;
      draft.condition("Running", false, "IdempotencyKeyDone", message);
      draft.condition("Succeeded", original.phase == "Succeeded", "IdempotencyKeyDone", message);
      draft.status["completionTime"] = draft.status.value("completionTime", draft.clock().now);
      draft.finish("IdempotencyKeyDone", message, runtime::Action::awaitChange());
      return true;
    }
    if (original.found) {
      std::string message = "spec.idempotencyKey " + run.idempotency_key + " is being run by AgentRun " +
                            original.name + "; this run waits for it and ends as it does";
      draft.status["phase"] = "Pending";
      draft.condition("Running", false, "IdempotencyKeyInProgress", message);
      draft.finish("IdempotencyKeyInProgress", message, runtime::Action::requeueAfter(settings.slot_recheck));
      return true;
    }
  }
  if (team.slot.may_start) return false;
  draft.status["phase"] = "Pending";
  draft.condition("Running", false, "WaitingForSlot", team.slot.message);
  draft.finish("WaitingForSlot", team.slot.message, runtime::Action::requeueAfter(settings.slot_recheck));
  return true;
}

}  // namespace paddock::controllers
