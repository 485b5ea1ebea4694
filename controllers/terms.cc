#include "controllers/terms.h"

#include "operator/common/duration.h"

namespace paddock::controllers {

namespace {

// How budgets are read and acted on: the same fields in a policy and in terms.
template <typename From, typename To>
void copyBudgetSettings(const From& from, To& to) {
  to.checkpoint_percent = from.checkpoint_percent;
  to.tokens_query = from.tokens_query;
  to.cost_query = from.cost_query;
  to.metrics_grace = from.metrics_grace;
  to.continue_without_metrics = from.continue_without_metrics;
}

}  // namespace

Terms termsOf(const AgentRun& run, const AgentPolicy& policy, const Effective& effective) {
  Terms t;
  t.policy = policy.name;
  t.effective = effective;
  t.stages = run.stages;
  copyBudgetSettings(policy, t);
  return t;
}

json termsJson(const Terms& t) {
  const Effective& e = t.effective;
  return {{"policy", t.policy},
          {"image", e.image},
          {"model", e.model},
          {"budget", {{"tokens", e.tokens}, {"costUSD", formatCents(e.cost_cents)}, {"wallClock", formatDuration(e.wall_clock)}}},
          {"stages", t.stages},
          {"checkpointPercent", t.checkpoint_percent},
          {"metrics", {{"tokens", t.tokens_query}, {"costUSD", t.cost_query}}},
          {"whenMetricsUnavailable",
           {{"after", formatDuration(t.metrics_grace)}, {"action", t.continue_without_metrics ? "Continue" : "Terminate"}}}};
}

std::optional<Terms> parseTerms(const json& status) {
  auto it = status.find("terms");
  if (it == status.end() || !it->is_object()) return std::nullopt;
  const json& j = *it;
  try {
    Terms t;
    t.policy = j.at("policy").get<std::string>();
    t.effective.image = j.at("image").get<std::string>();
    t.effective.model = j.value("model", "");
    const json& b = j.at("budget");
    t.effective.tokens = b.at("tokens").get<int64_t>();
    auto cents = parseCostCents(b.at("costUSD").get<std::string>());
    auto wall = parseDuration(b.at("wallClock").get<std::string>());
    auto grace = parseDuration(j.at("whenMetricsUnavailable").at("after").get<std::string>());
    if (!cents || !wall || !grace || t.policy.empty()) return std::nullopt;
    t.effective.cost_cents = *cents;
    t.effective.wall_clock = *wall;
    t.stages = j.value("stages", std::vector<std::string>{});
    t.checkpoint_percent = j.at("checkpointPercent").get<int>();
    t.tokens_query = j.at("metrics").at("tokens").get<std::string>();
    t.cost_query = j.at("metrics").at("costUSD").get<std::string>();
    t.metrics_grace = *grace;
    t.continue_without_metrics = j.at("whenMetricsUnavailable").value("action", "") == "Continue";
    return t;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

AgentPolicy policyUnderTerms(const AgentPolicy* current, const Terms& t) {
  AgentPolicy p;
  if (current) p = *current;
  p.name = t.policy;
  copyBudgetSettings(t, p);
  return p;
}

namespace {

TermsDecision refuse(std::string reason, std::string message) {
  return TermsDecision{.admitted = false, .reason = std::move(reason), .message = std::move(message)};
}

// Why the run's policy would not grant its terms now, or nothing.
void comparePolicy(const TermsInput& in, TermsDecision& d) {
  const std::string& name = d.terms.policy;
  const std::string keeps = "; this run started under AgentPolicy " + name +
                            " and is cared for under the terms recorded then (status.terms) until it ends";
  if (!in.choice || !in.choice->policy) {
    d.changed_reason = in.choice ? in.choice->reason : "NoPolicy";
    d.changed_message = (in.choice ? in.choice->message : "no AgentPolicy governs the namespace") + keeps +
                        (in.admitted_under ? "" : ", with egress only to DNS and no gated stage that has not started");
  } else if (in.choice->policy->name != name) {
    d.changed_reason = "PolicyReplaced";
    d.changed_message = "the namespace is now governed by AgentPolicy " + in.choice->policy->name + keeps;
  } else if (auto now = admit(*in.run, *in.choice->policy); !now.admitted) {
    d.changed_reason = now.reason;
    d.changed_message = "AgentPolicy " + name + " changed and would not admit this run now: " + now.message + keeps +
                        "; new runs get the new terms";
  } else {
    return;
  }
  d.policy_changed = true;
}

}  // namespace

TermsDecision decideTerms(const TermsInput& in) {
  if (!in.started) {
    if (!in.choice || !in.choice->policy) {
      return in.choice ? refuse(in.choice->reason, in.choice->message) : refuse("NoPolicy", "no AgentPolicy governs the namespace");
    }
    auto admission = admit(*in.run, *in.choice->policy);
    if (!admission.admitted) return refuse(admission.reason, admission.message);
    TermsDecision d;
    d.admitted = true;
    d.reason = admission.reason;
    d.message = admission.message;
    d.terms = termsOf(*in.run, *in.choice->policy, admission.effective);
    d.policy = *in.choice->policy;
    return d;
  }
  TermsDecision d;
  if (in.recorded) {
    d.terms = *in.recorded;
  } else if (in.choice && in.choice->policy) {
    // Started before its terms were recorded: what it asked for, with the policy's defaults.
    d.terms = termsOf(*in.run, *in.choice->policy, requested(*in.run, *in.choice->policy));
  } else {
    return refuse("NoTerms", "the run's pod started before its terms were recorded and no AgentPolicy governs the "
                             "namespace to say what they were; the run is stopped");
  }
  const AgentPolicy* under = in.recorded ? in.admitted_under : in.choice->policy ? &*in.choice->policy : nullptr;
  TermsInput named = in;
  named.admitted_under = under;
  d.admitted = true;
  d.reason = "Admitted";
  d.message = "admitted under AgentPolicy " + d.terms.policy;
  d.policy = policyUnderTerms(under, d.terms);
  comparePolicy(named, d);
  return d;
}

}  // namespace paddock::controllers
