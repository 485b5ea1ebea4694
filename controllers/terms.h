// The terms a run was admitted with, and the rule for what a later policy edit changes (issue 23).
//
// Admission decides whether a run may start. The terms it granted (the image, the model, the
// budgets and how they are read, the gated stages) are recorded in status.terms with the run's
// first status write, before or with its pod; from the moment the pod exists the run is cared for
// (cancel, completion, budgets, stages) under those recorded terms, whatever its policy or its own
// spec says later. A policy edit tightens only what has not started: runs still waiting are
// admitted again under the new policy, and a gated stage that has not started takes the current
// policy's definition of it (approvers, image, secrets). When the policy is deleted or no longer
// governs the namespace, a started run carries on under its terms with nothing more than they
// grant: egress shrinks to DNS (the team's NetworkPolicy is planned with no rules), and gated
// stages no policy defines do not start. A PolicyChanged condition says so. Pure functions; the
// state lives in status, so a restarted operator decides the same.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/admission.h"
#include "controllers/api.h"

namespace paddock::controllers {

using nlohmann::json;

struct Terms {
  std::string policy;   // the AgentPolicy that admitted the run
  Effective effective;  // image, model, token, cost and wall-clock budgets
  std::vector<std::string> stages;
  int checkpoint_percent = 60;
  std::string tokens_query = kDefaultTokensQuery;
  std::string cost_query = kDefaultCostQuery;
  std::chrono::milliseconds metrics_grace{5 * 60 * 1000};
  bool continue_without_metrics = false;
};

Terms termsOf(const AgentRun& run, const AgentPolicy& policy, const Effective& effective);
json termsJson(const Terms& terms);
// status.terms; nullopt when it is absent or not in the shape termsJson writes.
std::optional<Terms> parseTerms(const json& status);

// The policy a started run is cared for under: `current` (the policy its terms name, when it
// still exists) or else a bare one of that name, with the budget settings of the terms.
AgentPolicy policyUnderTerms(const AgentPolicy* current, const Terms& terms);

struct TermsInput {
  const AgentRun* run = nullptr;
  bool started = false;               // the run's agent pod was created
  std::optional<Terms> recorded;      // status.terms
  const PolicyChoice* choice = nullptr;  // what governs the namespace now
  // The policy named by the recorded terms, when it still exists (whether or not it still
  // governs the namespace).
  const AgentPolicy* admitted_under = nullptr;
};

struct TermsDecision {
  bool admitted = false;  // the run may go on: admitted now, or started under its terms
  std::string reason;     // the Admitted condition: Admitted, or why not
  std::string message;
  AgentPolicy policy;     // what the reconcile goes on with (budget settings from the terms)
  Terms terms;            // what status.terms holds from now on
  bool policy_changed = false;  // PolicyChanged: the run's policy would not grant these terms now
  std::string changed_reason;
  std::string changed_message;
};

TermsDecision decideTerms(const TermsInput& in);

}  // namespace paddock::controllers
