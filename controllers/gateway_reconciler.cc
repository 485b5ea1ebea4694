#include "controllers/gateway_reconciler.h"

#include <set>

#include "controllers/admission.h"
#include "controllers/status.h"
#include "operator/common/json.h"
#include "operator/common/log.h"

namespace paddock::controllers {
namespace {

const kube::Resource& resourceOf(const std::string& kind) {
  static const std::map<std::string, const kube::Resource*> kinds = {
      {"ConfigMap", &kube::resources::configmaps},
      {"NetworkPolicy", &kube::resources::networkpolicies},
      {"Service", &kube::resources::services},
      {"Deployment", &kube::resources::deployments}};
  return *kinds.at(kind);
}

}  // namespace

std::vector<std::string> GatewayReconciler::observeRun(const kube::InformerEvent& e) {
  if (!e.object) return {};
  const std::string ns = stringAt(*e.object, "/metadata/namespace"), name = stringAt(*e.object, "/metadata/name");
  std::optional<GatewayRun> served;
  if (e.type == kube::InformerEvent::Type::Upsert) served = gatewayRunOfObject(*e.object);
  std::lock_guard lock(mu_);
  auto& mine = runs_[ns];
  auto it = mine.find(name);
  bool changed;
  if (served) {
    changed = it == mine.end() || it->second.credential_sha256 != served->credential_sha256 ||
              it->second.tokens != served->tokens || it->second.cost_cents != served->cost_cents ||
              it->second.stopped != served->stopped;
    mine[name] = std::move(*served);
  } else {
    changed = it != mine.end();
    if (changed) mine.erase(it);
  }
  if (mine.empty()) runs_.erase(ns);
  return changed ? std::vector<std::string>{ns} : std::vector<std::string>{};
}

std::vector<std::string> GatewayReconciler::namespacesOfPolicy(const kube::InformerEvent& e) const {
  auto had = [](const kube::ObjectPtr& p) { return p && p->contains(json::json_pointer("/spec/gateway")); };
  if (!had(e.object) && !had(e.old)) return {};
  if (e.type == kube::InformerEvent::Type::Upsert && e.object && e.old &&
      e.object->value(json::json_pointer("/metadata/generation"), 0) == e.old->value(json::json_pointer("/metadata/generation"), 0)) {
    return {};
  }
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [ns, runs] : runs_) out.push_back(ns);
  return out;
}

std::vector<std::string> GatewayReconciler::namespaceOf(const kube::InformerEvent& e) const {
  std::lock_guard lock(mu_);
  return runs_.count(e.key) ? std::vector<std::string>{e.key} : std::vector<std::string>{};
}

std::vector<std::string> GatewayReconciler::namespacesToLookAt() const {
  std::set<std::string> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [ns, runs] : runs_) out.insert(ns);
  }
  for (auto* cache : {&pods_, &network_policies_}) {
    for (const auto& o : cache->list()) {
      if (stringAt(*o, "/metadata/labels/paddock.dev~1component") == "gateway") out.insert(stringAt(*o, "/metadata/namespace"));
    }
  }
  return {out.begin(), out.end()};
}

std::vector<GatewayRun> GatewayReconciler::runsOf(const std::string& ns) const {
  std::lock_guard lock(mu_);
  std::vector<GatewayRun> out;
  if (auto it = runs_.find(ns); it != runs_.end()) {
    for (const auto& [name, run] : it->second) out.push_back(run);  // by name, as the map keeps them
  }
  return out;
}

runtime::ReconcileResult GatewayReconciler::reconcile(const std::string& ns, const CancelToken& cancel) {
  // Gather: the governing policy (none when the namespace is gone or not governed by exactly one).
  std::optional<AgentPolicy> policy;
  if (auto namespace_object = namespaces_.get(ns)) {
    std::vector<AgentPolicy> policies;
    for (const auto& p : policies_.list()) {
      if (auto parsed = parseAgentPolicy(*p)) policies.push_back(std::move(*parsed));
    }
    policy = resolvePolicy(ns, labelsOf(*namespace_object), policies).policy;
  }
  const auto runs = runsOf(ns);
  std::map<std::string, json> live;
  for (const char* kind : {"ConfigMap", "NetworkPolicy", "Service", "Deployment"}) {
    auto got = client_.get(resourceOf(kind), ns, kGatewayName, cancel);
    if (got) live[kind] = std::move(got.value());
    else if (got.error().code != 404) return runtime::reconcileErrorFrom(got.error());
  }

  const auto plan = planNamespaceGateway(ns, policy ? &*policy : nullptr, runs, live, options_.plan, options_.field_manager);

  // Execute, in the plan's order.
  for (const auto& w : plan.writes) {
    const std::string& name = kGatewayName;
    if (w.op == GatewayWrite::Op::Delete) {
      kube::DeleteOptions del;
      del.precondition_uid = stringAt(live[w.kind], "/metadata/uid");
      auto r = client_.remove(resourceOf(w.kind), ns, name, del, cancel);
      if (!r && r.error().code != 404) return runtime::reconcileErrorFrom(r.error());
      log::info("deleted the namespace's gateway object", {{"namespace", ns}, {"kind", w.kind}, {"reason", w.reason}});
      continue;
    }
    if (!w.replace_uid.empty()) {
      kube::DeleteOptions del;
      del.precondition_uid = w.replace_uid;
      auto gone = client_.remove(resourceOf(w.kind), ns, name, del, cancel);
      if (!gone && gone.error().code != 404) return runtime::reconcileErrorFrom(gone.error());
    }
    auto r = client_.apply(resourceOf(w.kind), ns, name, w.object, options_.field_manager, true, "", cancel);
    if (!r) return runtime::reconcileErrorFrom(r.error());
    if (w.reason == "Edited") {
      std::string fields;
      for (const auto& f : w.drift) fields += (fields.empty() ? "" : ", ") + f;
      log::warn("restored an edited gateway object", {{"namespace", ns}, {"kind", w.kind}, {"fields", fields}});
      if (events_) {
        events_->warning(runtime::ObjectReference::from(*r), "GatewayObjectRestored", "Restore",
                         w.kind + " " + name + " was edited away from its plan (" + fields +
                             "); Paddock replaced it with its plan. Change the AgentPolicy's spec.gateway instead.");
      }
    } else {
      log::info("applied the namespace's gateway object", {{"namespace", ns}, {"kind", w.kind}, {"reason", w.reason}});
    }
  }
  log::debug("looked at the namespace's gateway", {{"namespace", ns}, {"writes", plan.writes.size()}});
  if (plan.watch) return runtime::Action::requeueAfter(options_.resync);
  return runtime::Action::awaitChange();
}

}  // namespace paddock::controllers
