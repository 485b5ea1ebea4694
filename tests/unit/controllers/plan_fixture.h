// What the table tests of the AgentRun reconcile's plan share (reconcile_test.cc, gateway_test.cc):
// the clock, a run's snapshot under a given policy, team facts in which the team's NetworkPolicy is
// current and a slot is free, and the actions of one type in a plan.
#pragma once

#include <chrono>
#include <vector>

#include "controllers/reconcile.h"

namespace paddock::controllers::plantest {

using nlohmann::json;

inline const auto kWall = std::chrono::system_clock::from_time_t(1796637600);  // 2026-12-07T10:00:00Z
inline const PlanClock kClock{kWall, std::chrono::steady_clock::time_point(std::chrono::hours(1)), "2026-12-07T10:00:00Z"};

// Run `object` (payments/fix) as the reconciler gathers it, in namespace payments governed by `policy`.
inline RunSnapshot snapshotOf(const json& object, const AgentPolicy& policy, kube::ObjectPtr pod = nullptr) {
  RunSnapshot s;
  s.key = "payments/fix", s.ns = "payments", s.name = "fix";
  s.object = std::make_shared<const json>(object);
  s.generation = 1;
  s.regarding = runtime::ObjectReference::from(object);
  s.cached_status = object.value("status", json::object());
  s.old_status = s.cached_status;
  s.run = parseAgentRun(object);
  s.policies = {policy};
  s.namespace_labels = {{"paddock.dev/team", "payments"}};
  s.agent_pod = std::move(pod);
  return s;
}

// Team facts in which the team's NetworkPolicy is current and the run may take a slot.
inline TeamFacts currentTeam(const AgentPolicy& policy) {
  TeamFacts t;
  t.network_policy = std::make_shared<const json>(planNetworkPolicy("payments", policy));
  t.slot.may_start = true;
  return t;
}

template <typename T>
std::vector<const T*> all(const RunPlan& plan) {
  std::vector<const T*> out;
  for (const auto& a : plan.actions) {
    if (const auto* t = std::get_if<T>(&a)) out.push_back(t);
  }
  return out;
}

}  // namespace paddock::controllers::plantest
