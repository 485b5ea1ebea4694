#include "controllers/trust.h"

#include <gtest/gtest.h>

#include "controllers/plan.h"

namespace paddock::controllers {
namespace {

AgentPolicy policy() {
  auto p = parseAgentPolicy(json::parse(R"({
    "metadata": {"name": "payments"},
    "spec": {
      "namespaceSelector": {"matchLabels": {"paddock.dev/team": "payments"}},
      "images": {"default": "registry.example.com/payments/agent:2.1.4"},
      "egress": [{"cidr": "140.82.112.0/20", "ports": [443]}],
      "secrets": [{"secretName": "anthropic-api-key", "key": "api-key", "stages": ["agent"]}],
      "tools": {"allow": ["Read"], "deny": ["WebFetch"]},
      "protectedPaths": ["billing/**"],
      "budgets": {"default": {"tokens": 1000, "costUSD": "1", "wallClock": "45m"}}
    }})"));
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

AgentRun run() {
  auto r = parseAgentRun(json::parse(R"({
    "metadata": {"name": "fix", "namespace": "payments", "uid": "run-uid"},
    "spec": {"task": "Fix it.", "repository": {"url": "https://github.com/acme/payments"}, "stages": ["pr"]}})"));
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.value();
}

json plannedPod() {
  auto p = policy();
  auto r = run();
  return planAgentPod(r, p, admit(r, p).effective, PlanOptions{});
}

// The pod as the API server returns it: the plan with the fields it fills in.
json readBack(json pod) {
  pod["metadata"]["uid"] = "pod-uid";
  pod["metadata"]["resourceVersion"] = "42";
  pod["metadata"]["annotations"]["kwok.paddock.dev/exit"] = "0";  // annotations other than the task's are free
  pod["spec"]["serviceAccountName"] = "default";
  pod["spec"]["nodeName"] = "kwok-node-0";
  pod["spec"]["dnsPolicy"] = "ClusterFirst";
  pod["spec"]["tolerations"] = json::array({{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}}});
  for (auto& c : pod["spec"]["containers"]) {
    c["terminationMessagePath"] = "/dev/termination-log";
    for (auto& port : c["ports"]) port["protocol"] = "TCP";
  }
  for (auto& v : pod["spec"]["volumes"]) {
    if (v.contains("downwardAPI")) {
      for (auto& i : v["downwardAPI"]["items"]) i["fieldRef"]["apiVersion"] = "v1";
    }
  }
  pod["status"] = {{"phase", "Running"}};
  return pod;
}

TEST(OwnedBy, OnlyTheControllerReferenceWithTheRunsUid) {
  json pod = plannedPod();
  EXPECT_TRUE(ownedBy(pod, "run-uid"));
  EXPECT_FALSE(ownedBy(pod, "another-uid"));
  EXPECT_FALSE(ownedBy(pod, "")) << "an empty UID proves nothing";
  pod["metadata"]["ownerReferences"][0]["controller"] = false;
  EXPECT_FALSE(ownedBy(pod, "run-uid")) << "only a controller reference makes it the run's";
  EXPECT_FALSE(ownedBy(json{{"metadata", {{"name", "fix-agent"}}}}, "run-uid")) << "a name proves nothing";
}

TEST(PodFingerprint, APlannedPodReadBackMatchesItsPlan) {
  json planned = plannedPod();
  EXPECT_TRUE(fingerprintDrift(podFingerprint(planned), podFingerprint(readBack(planned))).empty())
      << podFingerprint(planned).dump(2) << "\n" << podFingerprint(readBack(planned)).dump(2);
  EXPECT_EQ(podFingerprint(planned)["metadata.labels[\"paddock.dev/run-uid\"]"], "run-uid");
  EXPECT_LT(podFingerprint(planned).dump().size(), 4096u) << "it is kept in the run's status";
}

TEST(PodFingerprint, NamesEachSecurityRelevantChange) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    std::vector<std::string> fields;
  };
  std::vector<Case> cases = {
      {"label stripped", [](json& p) { p["metadata"]["labels"].erase(kLabelTeam); }, {"metadata.labels[\"paddock.dev/team\"]"}},
      {"label changed", [](json& p) { p["metadata"]["labels"][kLabelTeam] = "other"; }, {"metadata.labels[\"paddock.dev/team\"]"}},
      {"label added (another NetworkPolicy may select it)", [](json& p) { p["metadata"]["labels"]["role"] = "db"; },
       {"metadata.labels[\"role\"]"}},
      {"image patched", [](json& p) { p["spec"]["containers"][0]["image"] = "docker.io/evil/agent:1"; },
       {"spec.containers[0].image"}},
      {"init image patched", [](json& p) { p["spec"]["initContainers"][0]["image"] = "docker.io/evil/clone:1"; },
       {"spec.initContainers[0].image"}},
      {"managed settings swapped", [](json& p) { p["metadata"]["annotations"][kAnnotationManagedSettings] = "{}"; },
       {"metadata.annotations[\"paddock.dev/managed-settings\"]"}},
      {"owner reference removed", [](json& p) { p["metadata"].erase("ownerReferences"); }, {"metadata.ownerReferences"}},
      {"ephemeral container added",
       [](json& p) { p["spec"]["ephemeralContainers"] = json::array({{{"name", "debug"}, {"image", "busybox"}}}); },
       {"spec.ephemeralContainers", "spec.ephemeralContainers[0]", "spec.ephemeralContainers[0].image"}},
      {"privileged", [](json& p) { p["spec"]["containers"][0]["securityContext"]["privileged"] = true; }, {"spec.containers[0]"}},
      {"host network", [](json& p) { p["spec"]["hostNetwork"] = true; }, {"spec.hostNetwork"}},
      {"hostPath volume", [](json& p) { p["spec"]["volumes"].push_back({{"name", "root"}, {"hostPath", {{"path", "/"}}}}); },
       {"spec.volumes"}},
      {"service account token", [](json& p) { p["spec"]["automountServiceAccountToken"] = true; },
       {"spec.automountServiceAccountToken"}},
  };
  json planned = podFingerprint(plannedPod());
  for (const auto& c : cases) {
    json live = readBack(plannedPod());
    c.edit(live);
    EXPECT_EQ(fingerprintDrift(planned, podFingerprint(live)), c.fields) << c.name;
  }
}

TEST(JudgePod, OwnershipByRecordedUidElseTheOwnerReference) {
  json planned = plannedPod();
  json fp = podFingerprint(planned);
  json live = readBack(planned);
  using V = PodJudgement::Verdict;
  EXPECT_EQ(judgePod(nullptr, "run-uid", "", fp).verdict, V::Absent);
  EXPECT_EQ(judgePod(&live, "run-uid", "pod-uid", fp).verdict, V::Ours);
  EXPECT_EQ(judgePod(&live, "run-uid", "", fp).verdict, V::Ours) << "after a restart the owner reference decides";
  EXPECT_EQ(judgePod(&live, "run-uid", "an-earlier-pod", fp).verdict, V::NotOurs) << "another pod took the name";
  json squatter = {{"metadata", {{"name", "fix-agent"}, {"uid", "s"}, {"labels", {{"app.kubernetes.io/managed-by", "paddock"}}}}},
                   {"spec", {{"containers", json::array({{{"name", "agent"}, {"image", "busybox"}}})}}}};
  EXPECT_EQ(judgePod(&squatter, "run-uid", "", fp).verdict, V::NotOurs) << "made before the run: it cannot know its UID";
  json stripped = live;
  stripped["metadata"]["labels"].erase(kLabelTeam);
  stripped["metadata"].erase("ownerReferences");
  auto j = judgePod(&stripped, "run-uid", "pod-uid", fp);
  EXPECT_EQ(j.verdict, V::Tampered) << "the recorded UID says it is ours, whatever its owner reference says now";
  EXPECT_EQ(j.fields, (std::vector<std::string>{"metadata.labels[\"paddock.dev/team\"]", "metadata.ownerReferences"}));
  EXPECT_EQ(judgePod(&stripped, "run-uid", "pod-uid", json::object()).verdict, V::Ours) << "no recorded plan, nothing to compare";
}

TEST(JoinFields, ReadsAsAList) {
  EXPECT_EQ(joinFields({"a"}), "a");
  EXPECT_EQ(joinFields({"a", "b"}), "a and b");
  EXPECT_EQ(joinFields({"a", "b", "c"}), "a, b and c");
}

TEST(NetworkPolicyDrift, ComparesWhatTheSpecMeansNotItsHash) {
  json planned = planNetworkPolicy("payments", policy());
  json live = planned;
  live["spec"].erase("ingress");  // the API server leaves out an empty list
  live["metadata"]["resourceVersion"] = "7";
  EXPECT_TRUE(networkPolicyDrift(planned, live).empty());

  json widened = live;  // the hash annotation left as it was
  widened["spec"]["egress"].push_back({{"to", json::array({{{"ipBlock", {{"cidr", "0.0.0.0/0"}}}}})}});
  EXPECT_EQ(networkPolicyDrift(planned, widened), std::vector<std::string>{"spec.egress"});

  json open_ingress = live;
  open_ingress["spec"]["ingress"] = json::array({json::object()});  // [{}] allows every source
  EXPECT_EQ(networkPolicyDrift(planned, open_ingress), std::vector<std::string>{"spec.ingress"});

  json narrowed = live;  // selects no pod: the team's pods run unrestricted
  narrowed["spec"]["podSelector"]["matchLabels"]["nothing"] = "here";
  EXPECT_EQ(networkPolicyDrift(planned, narrowed), std::vector<std::string>{"spec.podSelector"});

  json egress_only = live;
  egress_only["spec"]["policyTypes"] = json::array({"Egress"});
  EXPECT_EQ(networkPolicyDrift(planned, egress_only), std::vector<std::string>{"spec.policyTypes"});

  json unlabelled = live;
  unlabelled["metadata"]["labels"].erase("app.kubernetes.io/managed-by");
  EXPECT_EQ(networkPolicyDrift(planned, unlabelled), std::vector<std::string>{"metadata.labels[\"app.kubernetes.io/managed-by\"]"});
}

AgentApproval approval(const char* name, const char* run_name, const char* stage, const char* created) {
  AgentApproval a;
  a.ns = "payments", a.name = name, a.run = run_name, a.stage = stage, a.creation_timestamp = created, a.username = "bob";
  return a;
}

TEST(UnmatchedApprovals, ThoseForAStageTheRunDidNotAskFor) {
  auto r = run();
  std::vector<AgentApproval> approvals = {
      approval("late-deploy", "fix", "deploy", "2026-01-01T00:00:02Z"),
      approval("ok", "fix", "pr", "2026-01-01T00:00:00Z"),
      approval("early-deploy", "fix", "deploy", "2026-01-01T00:00:01Z"),
      approval("other-run", "another", "deploy", "2026-01-01T00:00:00Z"),
  };
  auto u = unmatchedApprovals(r, {"pr"}, approvals);
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].name, "early-deploy") << "in creation order";
  EXPECT_EQ(u[1].name, "late-deploy");
  EXPECT_EQ(u[0].stage, "deploy");
  EXPECT_NE(u[0].reason.find("AgentApproval early-deploy is for stage deploy, which AgentRun fix did not ask for (its stages: pr)"),
            std::string::npos)
      << u[0].reason;
  EXPECT_EQ(unmatchedApprovals(r, {"pr", "deploy"}, approvals).size(), 0u);
  auto none = unmatchedApprovals(r, {}, approvals);
  ASSERT_EQ(none.size(), 3u) << "a run without stages has no approvals to match";
  EXPECT_NE(none[0].reason.find("(its stages: none)"), std::string::npos);
}

}  // namespace
}  // namespace paddock::controllers
