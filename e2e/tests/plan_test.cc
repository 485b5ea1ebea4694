// The planned agent pod on the real API server: admitted where Pod Security Admission enforces
// "restricted", and run by kwok; its team's NetworkPolicy is accepted as planned.
#include "controllers/plan.h"
#include "controllers/trust.h"

#include <gtest/gtest.h>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using namespace controllers;

TEST(PlanE2E, AgentPodPassesRestrictedPodSecurityAndRuns) {
  auto rest = adminClient();
  kube::Client client(*rest, {.qps = 0});
  TempNamespace ns(*rest, "plan", {{"pod-security.kubernetes.io/enforce", "restricted"},
                                   {"pod-security.kubernetes.io/enforce-version", "latest"}});
  auto policy = parseAgentPolicy(json::parse(R"({
    "metadata": {"name": "team"},
    "spec": {"namespaceSelector": {}, "images": {"default": "registry.example.com/team/agent:1"},
             "runtimeClassName": "", "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
             "egress": [{"cidr": "198.19.64.0/18", "ports": [443]}],
             "secrets": [{"secretName": "api-key", "key": "key", "stages": ["agent"]}],
             "budgets": {"default": {"tokens": 10, "costUSD": "1", "wallClock": "10m"}}}})"));
  ASSERT_TRUE(policy.ok()) << policy.error().describe();
  // The run exists so the children's owner reference points at a real object.
  auto created = client.create(kube::resources::agentruns, ns.name(),
                               {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"},
                                {"metadata", {{"name", "planned"}}},
                                {"spec", {{"task", "t"}, {"repository", {{"url", "https://example.com/r.git"}}}}}});
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto run = parseAgentRun(*created);
  ASSERT_TRUE(run.ok());
  auto admission = admit(*run, *policy);
  ASSERT_TRUE(admission.admitted) << admission.message;
  PlanOptions options;
  auto np = client.create(kube::resources::networkpolicies, ns.name(), planNetworkPolicy(ns.name(), *policy));
  ASSERT_TRUE(np.ok()) << np.error().describe();
  auto pod = client.create(kube::resources::pods, ns.name(), planAgentPod(*run, *policy, admission.effective, options));
  ASSERT_TRUE(pod.ok()) << "restricted PodSecurity refused the planned pod: " << pod.error().describe();
  auto running = watchUntil(*rest, kube::resources::pods.path(ns.name()) + "?fieldSelector=metadata.name%3Dplanned-agent",
                            (*pod)["metadata"]["resourceVersion"],
                            [](const std::string&, const json& p) {
                              return p.value(json::json_pointer("/status/phase"), std::string()) == "Running";
                            },
                            std::chrono::seconds(60));
  EXPECT_FALSE(running.is_null()) << "the planned pod did not reach Running on a kwok node";
  // Read back, with the API server's defaults and kwok's status, each matches its plan: the
  // operator's tamper checks see no drift in an untouched pod or NetworkPolicy (docs/trust.md).
  json planned_pod = planAgentPod(*run, *policy, admission.effective, options);
  EXPECT_EQ(fingerprintDrift(podFingerprint(planned_pod), podFingerprint(running)), std::vector<std::string>{})
      << running.dump();
  auto live_np = client.get(kube::resources::networkpolicies, ns.name(), "paddock-team");
  ASSERT_TRUE(live_np.ok());
  EXPECT_EQ(networkPolicyDrift(planNetworkPolicy(ns.name(), *policy), *live_np), std::vector<std::string>{}) << live_np->dump();

  // Deleting the run collects its children (kube-controller-manager's garbage collector). No
  // operator runs here, and none recorded the pod: its finalizer holds it, terminating, until it
  // is taken off by hand as docs/reliability.md says; then it goes.
  ASSERT_TRUE(client.remove(kube::resources::agentruns, ns.name(), "planned").ok());
  EXPECT_TRUE(eventually([&] {
    auto left = client.get(kube::resources::pods, ns.name(), "planned-agent");
    return left.ok() && left->contains(json::json_pointer("/metadata/deletionTimestamp"));
  }, std::chrono::seconds(60))) << "the garbage collector did not delete the run's pod";
  auto held = client.get(kube::resources::pods, ns.name(), "planned-agent");
  ASSERT_TRUE(held.ok()) << "the pod went although no operator took its finalizer off";
  EXPECT_EQ(held->value(json::json_pointer("/metadata/finalizers"), json::array()), json::array({kFinalizerAgentPod}));
  ASSERT_TRUE(client.mergePatch(kube::resources::pods, ns.name(), "planned-agent", {{"metadata", {{"finalizers", nullptr}}}}).ok());
  EXPECT_TRUE(eventually([&] {
    auto left = client.get(kube::resources::pods, ns.name(), "planned-agent");
    return !left.ok() && left.error().code == 404;
  }, std::chrono::seconds(60))) << "the pod stayed after its finalizer was taken off";
  EXPECT_TRUE(client.get(kube::resources::networkpolicies, ns.name(), "paddock-team").ok())
      << "the team's NetworkPolicy outlives the run";
}

}  // namespace
}  // namespace paddock::e2e
