// The ValidatingAdmissionPolicies of charts/paddock/files/admission-policies.yaml on the real API
// server, with users authenticated by client certificates: nobody approves in someone else's
// name, approvals never change, a run's requester is the user who created it, and a Paddock pod's
// task and settings annotations never change.
#include <gtest/gtest.h>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentapprovals;
using kube::resources::agentruns;

class AdmissionPolicyE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ns = std::make_unique<TempNamespace>(*admin, "vap");
    // Alice and Bob, both team leads, may write runs and approvals here.
    json role = {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"}, {"metadata", {{"name", "team"}}},
                 {"rules", json::array({{{"apiGroups", {"paddock.dev"}}, {"resources", {"agentruns", "agentapprovals"}},
                                         {"verbs", {"get", "list", "create", "update", "patch"}}}})}};
    json binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"}, {"metadata", {{"name", "team"}}},
                    {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "team"}}},
                    {"subjects", json::array({{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "team-leads"}}})}};
    ASSERT_EQ(request(*admin, http::Method::Post, "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns->name() + "/roles", role).status, 201);
    ASSERT_EQ(request(*admin, http::Method::Post, "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns->name() + "/rolebindings", binding).status, 201);
    for (const char* user : {"alice", "bob"}) ASSERT_EQ(clusterCommand({"user", user, "team-leads"}), 0);
    alice = clientFor(env("PADDOCK_E2E_CLUSTER_DIR") + "/user-alice.kubeconfig");
    bob = clientFor(env("PADDOCK_E2E_CLUSTER_DIR") + "/user-bob.kubeconfig");
  }

  json run(const std::string& name, json spec_changes) {
    json r = loadYaml(repoPath("crds/samples/run.yaml"));
    r["metadata"] = {{"name", name}};
    r["spec"].merge_patch(spec_changes);
    return r;
  }
  json approval(const std::string& name, json approver) {
    return {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentApproval"}, {"metadata", {{"name", name}}},
            {"spec", {{"run", "fix"}, {"stage", "pr"}, {"decision", "Approve"}, {"approver", approver}}}};
  }
  // Creates as `who`, retrying while the API server has not loaded the policies yet (they are
  // applied with the CRDs and take effect within a second or two).
  http::Response create(kube::RestClient& who, const kube::Resource& r, const json& object, bool expect_denied) {
    http::Response res;
    eventually([&] {
      res = request(who, http::Method::Post, r.path(ns->name()), object);
      if (res.status == 201 && expect_denied) {
        request(*admin, http::Method::Delete, r.path(ns->name(), object["metadata"]["name"]));
        return false;
      }
      return true;
    }, std::chrono::seconds(20), std::chrono::milliseconds(200));
    return res;
  }

  std::unique_ptr<kube::RestClient> admin = adminClient();
  std::unique_ptr<kube::RestClient> alice, bob;
  std::unique_ptr<TempNamespace> ns;
};

TEST_F(AdmissionPolicyE2E, AnApprovalInSomeoneElsesNameIsRejected) {
  auto forged = create(*alice, agentapprovals, approval("forged", {{"username", "bob"}}), true);
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_NE(forged.body.find("spec.approver.username must be the user creating the approval (alice), not bob"),
            std::string::npos) << forged.body;
  auto claimed = create(*alice, agentapprovals, approval("claimed", {{"username", "alice"}, {"groups", {"team-leads", "admins"}}}), true);
  EXPECT_EQ(claimed.status, 403) << claimed.body;
  EXPECT_NE(claimed.body.find("spec.approver.groups may list only groups alice is in"), std::string::npos) << claimed.body;
  auto own = create(*alice, agentapprovals, approval("own", {{"username", "alice"}, {"groups", {"team-leads"}}}), false);
  EXPECT_EQ(own.status, 201) << own.body;
}

TEST_F(AdmissionPolicyE2E, ApprovalsAreImmutable) {
  auto own = create(*alice, agentapprovals, approval("own", {{"username", "alice"}}), false);
  ASSERT_EQ(own.status, 201) << own.body;
  json changed = json::parse(own.body);
  changed["spec"]["decision"] = "Reject";
  // Not even the cluster admin may change a decision.
  auto res = request(*admin, http::Method::Put, agentapprovals.path(ns->name(), "own"), changed);
  EXPECT_EQ(res.status / 100, 4) << res.body;
  EXPECT_NE(res.body.find("immutable"), std::string::npos) << res.body;
}

TEST_F(AdmissionPolicyE2E, ARunsRequesterIsItsCreatorAndNeverChanges) {
  auto missing = create(*alice, agentruns, run("unsigned", {{"stages", {"pr"}}}), true);
  EXPECT_EQ(missing.status / 100, 4) << missing.body;
  EXPECT_NE(missing.body.find("spec.requestedBy is required when spec.stages asks for gated stages: set it to alice"),
            std::string::npos) << missing.body;
  auto forged = create(*alice, agentruns, run("forged", {{"stages", {"pr"}}, {"requestedBy", "bob"}}), true);
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_NE(forged.body.find("spec.requestedBy must be the user creating the run (alice), not bob"), std::string::npos)
      << forged.body;
  auto own = create(*alice, agentruns, run("fix", {{"stages", {"pr"}}, {"requestedBy", "alice"}}), false);
  ASSERT_EQ(own.status, 201) << own.body;
  // Bob cannot take the run over, and neither can the admin.
  for (auto* who : {bob.get(), admin.get()}) {
    json changed = json::parse(own.body);
    changed["spec"]["requestedBy"] = "bob";
    auto res = request(*who, http::Method::Put, agentruns.path(ns->name(), "fix"), changed);
    EXPECT_EQ(res.status / 100, 4) << res.body;
  }
  // A run without gated stages needs no requester, and cannot get one later.
  auto plain = create(*bob, agentruns, run("plain", json::object()), false);
  ASSERT_EQ(plain.status, 201) << plain.body;
  json stamped = json::parse(plain.body);
  stamped["spec"]["requestedBy"] = "bob";
  auto res = request(*bob, http::Method::Put, agentruns.path(ns->name(), "plain"), stamped);
  EXPECT_EQ(res.status, 403) << res.body;
  EXPECT_NE(res.body.find("spec.requestedBy cannot be set or changed after the run is created"), std::string::npos) << res.body;
}

TEST_F(AdmissionPolicyE2E, APaddockPodsTaskAndSettingsCannotChange) {
  // A pod as the operator plans it (only the parts the policy reads matter here).
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "agent"},
                            {"labels", {{"app.kubernetes.io/managed-by", "paddock"}}},
                            {"annotations", {{"paddock.dev/task", "Fix the flaky test."},
                                             {"paddock.dev/managed-settings", R"({"permissions":{"deny":["WebFetch"]}})"}}}}},
              {"spec", {{"containers", json::array({{{"name", "agent"}, {"image", "registry.example.com/agent:1"}}})}}}};
  ASSERT_EQ(request(*admin, http::Method::Post, kube::resources::pods.path(ns->name()), pod).status, 201);
  kube::Client client(*admin, {.qps = 0});
  auto patch = [&](const json& body) { return client.mergePatch(kube::resources::pods, ns->name(), "agent", body); };
  // Not even the cluster admin loosens the deny list, drops it, or drops the label to get past.
  // (Retried while the API server has not loaded the policy yet.)
  Result<json> loosened = Error{};
  eventually([&] {
    loosened = patch({{"metadata", {{"annotations", {{"paddock.dev/managed-settings", "{}"}}}}}});
    if (loosened) patch({{"metadata", {{"annotations", {{"paddock.dev/managed-settings", pod["metadata"]["annotations"]["paddock.dev/managed-settings"]}}}}}});
    return !loosened.ok();
  }, std::chrono::seconds(20), std::chrono::milliseconds(200));
  ASSERT_FALSE(loosened.ok()) << "the settings of a running agent were loosened";
  EXPECT_EQ(loosened.error().code, 403) << loosened.error().describe();
  EXPECT_NE(loosened.error().message.find("metadata.annotations paddock.dev/managed-settings of a Paddock pod cannot change"),
            std::string::npos) << loosened.error().describe();
  auto dropped = patch({{"metadata", {{"annotations", {{"paddock.dev/managed-settings", nullptr}}}}}});
  ASSERT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.error().code, 403) << dropped.error().describe();
  auto sneaky = patch({{"metadata", {{"labels", {{"app.kubernetes.io/managed-by", nullptr}}},
                                     {"annotations", {{"paddock.dev/task", "Something else."}}}}}});
  ASSERT_FALSE(sneaky.ok()) << "dropping the label let the task change";
  EXPECT_EQ(sneaky.error().code, 403) << sneaky.error().describe();
  // The checkpoint request, the operator's one annotation on a running pod, still goes through.
  auto checkpoint = patch({{"metadata", {{"annotations", {{"paddock.dev/checkpoint", "tokens 61%"}}}}}});
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.error().describe();
}

}  // namespace
}  // namespace paddock::e2e
