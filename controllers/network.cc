// The reconcile's NetworkPolicy step (controllers/reconcile.h).
#include "controllers/network.h"

#include "operator/common/json.h"

namespace paddock::controllers {

std::optional<NetworkPolicyWrite> networkPolicyToWrite(json planned, kube::ObjectPtr live,
                                                       const std::optional<AppliedWrite>& applied,
                                                       std::chrono::steady_clock::time_point now) {
  NetworkPolicyWrite w{std::move(planned), std::move(live), {}, false};
  const std::string hash = specHashOf(w.planned);
  if (w.live) {
    // Compared as what it means, never by its hash annotation.
    w.drift = networkPolicyDrift(w.planned, *w.live);
    if (w.drift.empty()) return std::nullopt;
    w.edited = specHashOf(*w.live) == hash;
  }
  // The cache lags behind our own write: a missing one is trusted for a few seconds (several runs
  // of a team start together); a drifted one only while the cache shows an older generation than
  // the one we wrote, so an edit right after our write is still seen.
  if (applied && applied->hash == hash) {
    bool lagging = w.live ? intAt(*w.live, "/metadata/generation") < applied->generation
                          : now - applied->at < std::chrono::seconds(5);
    if (lagging) return std::nullopt;
  }
  return w;
}

void planNetwork(const Admitted& a, const TeamFacts& team, RunDraft& draft, const RunPlanSettings& settings,
                 const PlanClock& clock) {
  const AgentPolicy& policy = a.policy;
  const std::string name = networkPolicyName(policy);
  auto w = networkPolicyToWrite(planNetworkPolicy(a.run.ns, policy, settings.plan), team.network_policy, team.applied,
                                clock.steady);
  if (w) {
    // Missing: created (or put back). Drifted: replaced with the plan, the fields that differed
    // recorded, and an edit (content that is not the plan its hash annotation claims) told as a
    // Warning on the NetworkPolicy itself. Recorded before it is applied.
    json details = {{"kind", "NetworkPolicy"}, {"name", name}, {"sharedBy", "AgentPolicy " + policy.name}};
    if (w->live) details.update({{"fields", w->drift}, {"reason", w->edited ? "Edited" : "PlanChanged"}});
    draft.audit({{w->live ? audit::Action::ChildRestored : audit::Action::ChildCreated, details}});
    std::optional<EmitEvent> restored;
    if (w->edited) {
      auto ref = runtime::ObjectReference::from(*w->live);
      ref.api_version = "networking.k8s.io/v1", ref.kind = "NetworkPolicy";
      restored = EmitEvent{ref, runtime::EventType::Warning, "NetworkPolicyRestored", "Restore",
                           "NetworkPolicy " + name + " was edited away from its plan (" + joinFields(w->drift) +
                               "); Paddock put back the rules of AgentPolicy " + policy.name +
                               ". Change egress in the AgentPolicy, not here"};
    }
    draft.act(ApplyNetworkPolicy{std::move(*w), std::move(restored)});
  }
  if (hostEgressUnenforced(policy)) {
    draft.condition("HostEgressEnforced", false, "NoFQDNSupport",
                    "the policy's host egress rules (spec.egress[].host) are not enforced: the team's NetworkPolicy "
                    "enforces only spec.egress[].cidr, so allow the hosts' addresses as CIDR rules where they must be "
                    "reached");
  }
}

}  // namespace paddock::controllers
