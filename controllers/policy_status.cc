#include "controllers/policy_status.h"

#include "controllers/gateway.h"

#include "controllers/admission.h"
#include "controllers/policy_checks.h"
#include "controllers/trust.h"
#include "controllers/run_reconciler.h"
#include "operator/common/json.h"
#include "operator/common/log.h"
#include "operator/common/timestamp.h"

namespace paddock::controllers {
namespace {

using nlohmann::json;

// How often a policy is looked at again while Prometheus is in use: the poller's view of its
// queries (series without the pod labels) and checks that could not be made yet.
constexpr std::chrono::seconds kRecheck{30};
// The longest a change of the run counts alone waits to be written.
constexpr std::chrono::seconds kCountsInterval{10};

void setQueriesValid(json& status, const PolicyObservation& seen, int64_t generation, const std::string& now) {
  if (!seen.prometheus) {
    setCondition(status, "QueriesValid", false, "NoPrometheus",
                 "the operator runs without --prometheus-url: spec.budgets.metrics is not used, and token and cost "
                 "budgets are not enforced",
                 generation, now);
    return;
  }
  std::string invalid, ungrouped, unchecked;
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : "; ") + item; };
  for (const auto& [field, v] : seen.queries) {
    if (v.kind == QueryVerdict::Kind::Invalid) add(invalid, field + ": " + v.detail);
    else if (v.kind == QueryVerdict::Kind::Unchecked) add(unchecked, field + ": " + v.detail);
    else if (v.unlabelled > 0) add(ungrouped, field + " returns " + std::to_string(v.unlabelled) + " series without them");
  }
  const std::string consequence =
      ". Until it is fixed, runs of this policy cannot read their usage and end as "
      "spec.budgets.whenMetricsUnavailable says";
  if (!invalid.empty()) {
    setCondition(status, "QueriesValid", false, "InvalidQuery",
                 "Prometheus refuses the query: " + invalid +
                     ". Fix the PromQL: it must return an instant vector summed by namespace, pod and pod_uid "
                     "(docs/budgets.md)" + consequence,
                 generation, now);
  } else if (!ungrouped.empty()) {
    setCondition(status, "QueriesValid", false, "NotGroupedByPod",
                 "a query must group by the labels the scrape sets from the agent pod (namespace, pod, pod_uid): " +
                     ungrouped + "; such series are ignored (docs/budgets.md)" + consequence,
                 generation, now);
  } else if (!unchecked.empty()) {
    setCondition(status, "QueriesValid", false, "NotChecked",
                 "Prometheus could not be asked to check the queries yet (" + unchecked + "); the operator tries again",
                 generation, now);
  } else {
    setCondition(status, "QueriesValid", true, "Valid",
                 "Prometheus accepts spec.budgets.metrics.tokens and spec.budgets.metrics.costUSD", generation, now);
  }
}

void setNetworkPoliciesApplied(json& status, const AgentPolicy& policy, const PolicyObservation& seen,
                               int64_t generation, const std::string& now) {
  const std::string name = networkPolicyName(policy);
  if (seen.network_policies.empty()) {
    setCondition(status, "NetworkPoliciesApplied", true, "NoActiveRuns",
                 "no namespace has an unfinished run of this policy; NetworkPolicy " + name +
                     " is applied in a namespace before its first run's pod starts",
                 generation, now);
    return;
  }
  std::string applied, wrong;
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (const auto& np : seen.network_policies) {
    if (np.missing) add(wrong, np.ns + " (missing)");
    else if (!np.drift.empty()) add(wrong, np.ns + " (differs in " + [&] {
      std::string fields;
      for (const auto& f : np.drift) fields += (fields.empty() ? "" : ", ") + f;
      return fields;
    }() + ")");
    else add(applied, np.ns);
  }
  if (wrong.empty()) {
    setCondition(status, "NetworkPoliciesApplied", true, "Applied",
                 "NetworkPolicy " + name + " is applied as planned in every namespace with unfinished runs: " + applied,
                 generation, now);
  } else {
    setCondition(status, "NetworkPoliciesApplied", false, "NotApplied",
                 "NetworkPolicy " + name + " is not as planned in " + wrong +
                     "; the operator applies it before the namespace's next pod starts and holds new pods back "
                     "until it can. If this stays, read the Events of the namespace's AgentRuns and the operator's "
                     "log (its RBAC needs patch and create on networkpolicies)",
                 generation, now);
  }
}

void setGatewaysApplied(json& status, const AgentPolicy& policy, const PolicyObservation& seen, int64_t generation,
                        const std::string& now) {
  if (!policy.gateway) {
    if (status.contains("conditions") && status["conditions"].is_array()) {
      auto& conditions = status["conditions"];
      for (auto it = conditions.begin(); it != conditions.end();) {
        it = it->is_object() && it->value("type", json()) == "GatewaysApplied" ? conditions.erase(it) : it + 1;
      }
    }
    return;
  }
  if (seen.gateways.empty()) {
    setCondition(status, "GatewaysApplied", true, "NoActiveRuns",
                 std::string("no namespace has an unfinished run of this policy; ") + kGatewayName +
                     " is applied in a namespace with its first run",
                 generation, now);
    return;
  }
  std::string ready, not_ready;
  for (const auto& g : seen.gateways) {
    if (g.available) ready += (ready.empty() ? "" : ", ") + g.ns;
    else not_ready += (not_ready.empty() ? "" : "; ") + g.ns + ": " + g.reason + ", " + g.message;
  }
  if (not_ready.empty()) {
    setCondition(status, "GatewaysApplied", true, "Available",
                 std::string(kGatewayName) + " has a ready replica in every namespace with unfinished runs: " + ready,
                 generation, now);
  } else {
    setCondition(status, "GatewaysApplied", false, "NotReady",
                 std::string(kGatewayName) + " is not ready in " + not_ready +
                     ". Runs there wait for it before their agent starts",
                 generation, now);
  }
}

}  // namespace

json planPolicyStatus(const AgentPolicy& policy, int64_t generation, const PolicyObservation& seen,
                      const json& old_status, const std::string& now) {
  json status = old_status.is_object() ? old_status : json::object();
  setQueriesValid(status, seen, generation, now);
  setNetworkPoliciesApplied(status, policy, seen, generation, now);
  setGatewaysApplied(status, policy, seen, generation, now);
  // What the policy opens to everything (the API server warned about the same when it was applied).
  auto findings = permissivePolicyFindings(policy);
  if (findings.empty()) {
    setCondition(status, "Permissive", false, "NothingOpenToAll",
                 "the policy allows no egress to every address, no approvals by every user, no image and every "
                 "repository host only as it lists them",
                 generation, now);
  } else {
    std::string message;
    for (const auto& f : findings) message += (message.empty() ? "" : "; ") + f.message;
    setCondition(status, "Permissive", true, "OpenToAll", message, generation, now);
  }
  status["runs"] = {{"governed", seen.runs}, {"active", seen.active}};
  if (policy.model_pin.empty()) status.erase("modelPin");
  else status["modelPin"] = policy.model_pin;
  status["observedGeneration"] = generation;
  return status;
}

std::vector<std::string> PolicyRunCounter::observe(const kube::InformerEvent& event) {
  Entry now;
  bool exists = event.type == kube::InformerEvent::Type::Upsert && event.object;
  if (exists) {
    now.policy = stringAt(*event.object, "/status/policy");
    now.active = !isTerminal(stringAt(*event.object, "/status/phase"));
  }
  std::lock_guard lock(mu_);
  auto it = runs_.find(event.key);
  Entry before = it == runs_.end() ? Entry{} : it->second;
  if (exists && !now.policy.empty()) runs_[event.key] = now;
  else if (it != runs_.end()) runs_.erase(it);
  if (before.policy == now.policy && before.active == now.active) return {};
  std::vector<std::string> changed;
  if (!before.policy.empty()) changed.push_back(before.policy);
  if (!now.policy.empty() && now.policy != before.policy) changed.push_back(now.policy);
  return changed;
}

std::pair<int64_t, int64_t> PolicyRunCounter::counts(const std::string& policy) const {
  std::lock_guard lock(mu_);
  int64_t governed = 0, active = 0;
  for (const auto& [_, e] : runs_) {
    if (e.policy != policy) continue;
    ++governed;
    if (e.active) ++active;
  }
  return {governed, active};
}

std::vector<std::string> PolicyRunCounter::activeNamespaces(const std::string& policy) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, e] : runs_) {
    if (e.policy != policy || !e.active) continue;
    std::string ns = key.substr(0, key.find('/'));
    if (out.empty() || out.back() != ns) out.push_back(ns);  // keys sort by namespace first
  }
  return out;
}

QueryVerdict verdictOf(const Result<promapi::QueryResult>& checked) {
  QueryVerdict v;
  if (checked) {
    v.kind = QueryVerdict::Kind::Valid;
  } else if (checked.error().reason == "Prometheus:bad_data" || checked.error().reason == "BadResultType") {
    v.kind = QueryVerdict::Kind::Invalid;  // Prometheus's verdict on the query itself
    v.detail = checked.error().message;
  } else {
    v.detail = checked.error().describe();  // it could not be asked (down, refused, unauthorized)
  }
  return v;
}

QueryVerdict PolicyStatusReconciler::check(const std::string& query, const CancelToken& cancel) {
  {
    std::lock_guard lock(verdicts_mu_);
    if (auto it = verdicts_.find(query); it != verdicts_.end()) return it->second;
  }
  QueryVerdict v = verdictOf(prometheus_->query(query, cancel, 1.0));
  if (v.kind == QueryVerdict::Kind::Unchecked) return v;  // asked again at the next look
  std::lock_guard lock(verdicts_mu_);
  verdicts_[query] = v;
  return v;
}

runtime::ReconcileResult PolicyStatusReconciler::reconcile(const std::string& key, const CancelToken& cancel) {
  auto object = policies_.get(key);
  if (!object) return runtime::Action::awaitChange();
  auto policy = parseAgentPolicy(*object);
  if (!policy) return runtime::Action::awaitChange();  // the schema refuses what cannot be read
  PolicyObservation seen;
  seen.prometheus = prometheus_ != nullptr;
  if (prometheus_) {
    for (const auto& [field, query] : {std::pair{"spec.budgets.metrics.tokens", &policy->tokens_query},
                                       std::pair{"spec.budgets.metrics.costUSD", &policy->cost_query}}) {
      QueryVerdict v = check(*query, cancel);
      if (board_) v.unlabelled = board_->read(*query, "").unlabelled;
      seen.queries[field] = v;
    }
  }
  std::tie(seen.runs, seen.active) = counter_.counts(policy->name);
  for (const auto& ns : counter_.activeNamespaces(policy->name)) {
    NetworkPolicyState np{ns};
    auto live = network_policies_.get(ns + "/" + networkPolicyName(*policy));
    if (!live) np.missing = true;
    else np.drift = networkPolicyDrift(planNetworkPolicy(ns, *policy, plan_), *live);
    seen.network_policies.push_back(std::move(np));
    if (policy->gateway) {
      // One read per namespace and look: the operator keeps no Deployment cache.
      auto deployment = client_.get(kube::resources::deployments, ns, kGatewayName, cancel);
      auto verdict = gatewayAvailability(deployment.ok() ? &*deployment : nullptr);
      seen.gateways.push_back({ns, verdict.live, verdict.reason, verdict.message});
    }
  }
  const json old_status = object->value("status", json::object());
  int64_t generation = object->value(json::json_pointer("/metadata/generation"), int64_t{0});
  json status = planPolicyStatus(*policy, generation, seen, old_status, formatMicroTime(std::chrono::system_clock::now()).substr(0, 19) + "Z");
  auto next = prometheus_ || policy->gateway ? runtime::Action::requeueAfter(kRecheck) : runtime::Action::awaitChange();
  if (status == old_status) return next;
  {
    json without_counts = status;
    without_counts["runs"] = old_status.value("runs", json());
    std::lock_guard lock(written_mu_);
    auto last = written_.find(policy->name);
    std::chrono::steady_clock::duration since = kCountsInterval;
    if (last != written_.end()) since = std::chrono::steady_clock::now() - last->second;
    if (without_counts == old_status && since < kCountsInterval) {
      return runtime::Action::requeueAfter(std::chrono::duration_cast<std::chrono::milliseconds>(kCountsInterval - since));
    }
  }
  json updated = *object;
  updated["status"] = status;
  auto written = client_.replace(kube::resources::agentpolicies, "", policy->name, updated, "status", cancel);
  if (!written) {
    if (written.error().code == 404) return runtime::Action::awaitChange();
    return runtime::reconcileErrorFrom(written.error());
  }
  {
    std::lock_guard lock(written_mu_);
    written_[policy->name] = std::chrono::steady_clock::now();
  }
  log::info("policy status", {{"policy", policy->name}, {"status", status}});
  return next;
}

}  // namespace paddock::controllers
