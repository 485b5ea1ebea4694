// The ValidatingAdmissionPolicies of charts/paddock/files/admission-policies.yaml on the real API
// server, with users authenticated by client certificates: nobody approves in someone else's
// name, approvals never change, a run's requester is the user who created it, and a Paddock pod's
// task and settings annotations never change.
#include <gtest/gtest.h>

#include <strings.h>

#include <fstream>
#include <iostream>

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

TEST_F(AdmissionPolicyE2E, ARunsRequesterIsStampedFromItsCreatorAndNeverChanges) {
  // Nobody sets it by hand: the mutating policy stamps the creator, with or without stages.
  auto stamped = create(*alice, agentruns, run("fix", {{"stages", {"pr"}}}), false);
  ASSERT_EQ(stamped.status, 201) << stamped.body;
  EXPECT_EQ(json::parse(stamped.body)["spec"].value("requestedBy", ""), "alice");
  auto plain = create(*bob, agentruns, run("plain", json::object()), false);
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(json::parse(plain.body)["spec"].value("requestedBy", ""), "bob") << "every run records its requester";
  // Nobody claims a run for someone else ...
  auto forged = create(*alice, agentruns, run("forged", {{"stages", {"pr"}}, {"requestedBy", "bob"}}), true);
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_NE(forged.body.find("spec.requestedBy must be the user creating the run (alice), not bob"), std::string::npos)
      << forged.body;
  // ... nor takes one over later (not even the admin), nor removes the requester.
  for (auto* who : {bob.get(), admin.get()}) {
    json changed = json::parse(stamped.body);
    changed["spec"]["requestedBy"] = "bob";
    auto res = request(*who, http::Method::Put, agentruns.path(ns->name(), "fix"), changed);
    EXPECT_EQ(res.status / 100, 4) << res.body;
  }
  kube::Client client(*alice, {.qps = 0});
  auto removed = client.mergePatch(agentruns, ns->name(), "fix", {{"spec", {{"requestedBy", nullptr}}}});
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_EQ((*removed)["spec"].value("requestedBy", ""), "alice") << "the requester is put back from the stored run";
}

// Issue 23's self-approval: a run created without stages cannot be given one later, so the
// requester stamped for it stands for every stage it will ever run.
TEST_F(AdmissionPolicyE2E, StagesCannotBeAddedToARunAfterItIsCreated) {
  auto plain = create(*alice, agentruns, run("plain", json::object()), false);
  ASSERT_EQ(plain.status, 201) << plain.body;
  kube::Client client(*alice, {.qps = 0});
  auto added = client.mergePatch(agentruns, ns->name(), "plain", {{"spec", {{"stages", {"pr"}}}}});
  ASSERT_FALSE(added.ok()) << "stages were added after the run was created";
  EXPECT_EQ(added.error().code, 422);
  EXPECT_NE(added.error().message.find("spec.stages is immutable once the run is created"), std::string::npos)
      << added.error().describe();
}

// Where the API server serves no MutatingAdmissionPolicy (here: its binding removed for the test),
// the validating policy is the floor: the creator must name themself, and is told how.
TEST_F(AdmissionPolicyE2E, WithoutTheStampTheCreatorMustNameThemself) {
  const std::string binding = "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicybindings/paddock-run-requested-by";
  auto saved = request(*admin, http::Method::Get, binding);
  ASSERT_EQ(saved.status, 200) << saved.body;
  ASSERT_EQ(request(*admin, http::Method::Delete, binding).status, 200);
  struct Restore {
    kube::RestClient& admin;
    json object;
    ~Restore() {
      object["metadata"] = {{"name", object["metadata"]["name"]}, {"labels", object["metadata"].value("labels", json::object())}};
      EXPECT_EQ(request(admin, http::Method::Post, "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicybindings", object).status, 201);
    }
  } restore{*admin, json::parse(saved.body)};
  http::Response unsigned_run;
  ASSERT_TRUE(eventually([&] {
    unsigned_run = request(*alice, http::Method::Post, agentruns.path(ns->name()), run("unsigned", json::object()));
    if (unsigned_run.status == 201) request(*admin, http::Method::Delete, agentruns.path(ns->name(), "unsigned"));
    return unsigned_run.status != 201;
  }, std::chrono::seconds(20), std::chrono::milliseconds(200))) << "the API server still stamps the requester";
  EXPECT_EQ(unsigned_run.status, 403) << unsigned_run.body;
  EXPECT_NE(unsigned_run.body.find("spec.requestedBy is required: set it to alice"), std::string::npos) << unsigned_run.body;
  auto own = request(*alice, http::Method::Post, agentruns.path(ns->name()), run("signed", {{"requestedBy", "alice"}}));
  EXPECT_EQ(own.status, 201) << own.body;
}

// charts/paddock/examples/argocd-application.yaml's AgentRun, as shipped, applied as Argo CD's
// application controller applies it: server-side apply by its service account, again and again.
TEST_F(AdmissionPolicyE2E, TheArgoCdExampleRunIsAppliedByArgoCdsServiceAccount) {
  std::ifstream in(repoPath("charts/paddock/examples/argocd-application.yaml"));
  std::string text(std::istreambuf_iterator<char>(in), {});
  json example;
  for (const auto& doc : loadYamlDocuments(text)) {
    if (doc.value("kind", "") == "AgentRun") example = doc;
  }
  ASSERT_FALSE(example.is_null()) << "the example has no AgentRun";
  example["metadata"]["namespace"] = ns->name();
  TempNamespace argocd(*admin, "argocd");
  auto controller = serviceAccountClient(*admin, argocd.name(), "argocd-application-controller");
  std::string sa = "system:serviceaccount:" + argocd.name() + ":argocd-application-controller";
  json binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"}, {"metadata", {{"name", "argocd"}}},
                  {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "team"}}},
                  {"subjects", json::array({{{"kind", "ServiceAccount"}, {"name", "argocd-application-controller"},
                                             {"namespace", argocd.name()}}})}};
  ASSERT_EQ(request(*admin, http::Method::Post, "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns->name() + "/rolebindings", binding).status, 201);
  kube::Client argo(*controller, {.qps = 0});
  std::string name = example["metadata"]["name"];
  Result<json> applied = Error{};
  ASSERT_TRUE(eventually([&] {  // until the RoleBinding is in the authorizer's cache
    applied = argo.apply(agentruns, ns->name(), name, example, "argocd-controller");
    return applied.ok();
  }, std::chrono::seconds(20), std::chrono::milliseconds(200))) << applied.error().describe();
  EXPECT_EQ((*applied)["spec"].value("requestedBy", ""), sa) << "the requester is the identity the API server vouches for";
  // The next sync applies the same file, which does not carry spec.requestedBy.
  auto again = argo.apply(agentruns, ns->name(), name, example, "argocd-controller");
  ASSERT_TRUE(again.ok()) << "a second sync of an unchanged run must go through: " << again.error().describe();
  EXPECT_EQ((*again)["spec"].value("requestedBy", ""), sa);
  EXPECT_EQ((*again)["spec"]["stages"], json::array({"pr"}));
}

TEST_F(AdmissionPolicyE2E, APaddockPodsTaskAndSettingsCannotChange) {
  // A pod as the operator plans it (only the parts the policy reads matter here).
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "agent"},
                            {"labels", {{"app.kubernetes.io/managed-by", "paddock"}, {"paddock.dev/team", "payments"}}},
                            {"annotations", {{"paddock.dev/task", "Fix the flaky test."},
                                             {"paddock.dev/managed-settings", R"({"permissions":{"deny":["WebFetch"]}})"}}}}},
              {"spec", {{"containers", json::array({{{"name", "agent"}, {"image", "registry.example.com/agent:1"},
                                                     {"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}}}})}}}};
  ASSERT_EQ(request(*admin, http::Method::Post, kube::resources::pods.path(ns->name()), pod).status, 201);
  kube::Client client(*admin, {.qps = 0});
  auto patch = [&](const json& body) { return client.mergePatch(kube::resources::pods, ns->name(), "agent", body); };
  // Not even the cluster admin loosens the deny list, drops it, or drops the label to get past.
  // (Retried while the API server has not loaded the policy yet.)
  Result<json> loosened = Error{};
  eventually([&] {
    loosened = patch({{"metadata", {{"annotations", {{"paddock.dev/managed-settings", "{}"}}}}}});
    if (loosened) {
      EXPECT_TRUE(patch({{"metadata", {{"annotations", {{"paddock.dev/managed-settings", pod["metadata"]["annotations"]["paddock.dev/managed-settings"]}}}}}}).ok());
    }
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
  // Its labels (the NetworkPolicy selects it by them), images, resources, owner and debug
  // containers stay as the operator made them (issue 25 item 3, issue 23 item 4).
  struct Case { const char* name; std::string subresource; json patch; const char* message; } cases[] = {
      {"the team label changed", "", {{"metadata", {{"labels", {{"paddock.dev/team", "other"}}}}}},
       "metadata.labels paddock.dev/team of a Paddock pod cannot change"},
      {"the team label removed", "", {{"metadata", {{"labels", {{"paddock.dev/team", nullptr}}}}}},
       "metadata.labels paddock.dev/team of a Paddock pod cannot change"},
      {"the managed-by label removed", "", {{"metadata", {{"labels", {{"app.kubernetes.io/managed-by", nullptr}}}}}},
       "metadata.labels app.kubernetes.io/managed-by of a Paddock pod cannot change"},
      {"a paddock.dev label added", "", {{"metadata", {{"labels", {{"paddock.dev/run", "other"}}}}}},
       "metadata.labels paddock.dev/run of a Paddock pod cannot change"},
      {"the image swapped", "", {{"spec", {{"containers", json::array({{{"name", "agent"}, {"image", "docker.io/evil/agent:1"}}})}}}},
       "spec.containers[].image and spec.initContainers[].image of a Paddock pod cannot change"},
      {"a debug container added", "ephemeralcontainers",
       {{"spec", {{"ephemeralContainers", json::array({{{"name", "debug"}, {"image", "docker.io/library/busybox:1"},
                                                          {"targetContainerName", "agent"}}})}}}},
       "spec.ephemeralContainers cannot be added to a Paddock pod"},
      {"given another owner", "",
       {{"metadata", {{"ownerReferences", json::array({{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "x"},
                                                        {"uid", "00000000-0000-0000-0000-000000000001"}}})}}}},
       "metadata.ownerReferences of a Paddock pod cannot change"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    http::Request req{http::Method::Patch, kube::resources::pods.path(ns->name(), "agent") + (c.subresource.empty() ? "" : "/" + c.subresource)};
    req.body = c.patch.dump();
    req.headers.emplace_back("Content-Type", "application/strategic-merge-patch+json");
    auto res = admin->send(req);
    ASSERT_TRUE(res.ok()) << res.error().describe();
    EXPECT_EQ(res->status, 403) << res->body;
    EXPECT_NE(res->body.find(c.message), std::string::npos) << res->body;
  }
  // The checkpoint request, the operator's one annotation on a running pod, still goes through,
  // and so do labels that are not Paddock's.
  auto checkpoint = patch({{"metadata", {{"annotations", {{"paddock.dev/checkpoint", "tokens 61%"}}}}}});
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.error().describe();
  auto other_label = patch({{"metadata", {{"labels", {{"example.com/reviewed", "yes"}}}}}});
  EXPECT_TRUE(other_label.ok()) << other_label.error().describe();
}

// Issue 25 item 14: what the operator's admission refuses is refused when the run is applied, by
// paddock-run-policy with the team's AgentPolicy as its parameter (the operator need not run).
class RunPolicyE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    json p = loadYaml(repoPath("crds/samples/policy.yaml"));
    p["metadata"] = {{"name", team}};
    // In, NotIn, Exists and DoesNotExist together: the namespaces below test each.
    p["spec"]["namespaceSelector"] = {{"matchExpressions", json::array({
        {{"key", "paddock.dev/team"}, {"operator", "In"}, {"values", {team}}},
        {{"key", "tier"}, {"operator", "NotIn"}, {"values", {"sandbox"}}},
        {{"key", "enrolled"}, {"operator", "Exists"}},
        {{"key", "frozen"}, {"operator", "DoesNotExist"}}})}};
    p["spec"]["images"]["allowed"] = {"registry.example.com/sample/*", "registry.example.com/tools/agent:1.*",
                                      "registry.example.com/pinned/agent@sha256:" + std::string(64, 'a')};
    p["spec"]["repositories"] = json::array({{{"host", "github.com"}, {"organizations", {"example"}}}, {{"host", "git.example.com"}}});
    ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", p).ok());
  }
  void TearDown() override { client.remove(kube::resources::agentpolicies, "", team).ok(); }

  json run(const std::string& name, json spec_changes) {
    json r = loadYaml(repoPath("crds/samples/run.yaml"));
    r["metadata"] = {{"name", name}};
    r["spec"].merge_patch(spec_changes);
    return r;
  }
  // Creates the run in `ns`, retrying while the API server has not seen the new policy yet when
  // a refusal is expected.
  http::Response create(const std::string& ns, const json& object, bool expect_denied) {
    http::Response res;
    eventually([&] {
      res = request(*admin, http::Method::Post, agentruns.path(ns), object);
      if (res.status == 201 && expect_denied) {
        request(*admin, http::Method::Delete, agentruns.path(ns, object["metadata"]["name"]));
        return false;
      }
      return true;
    }, std::chrono::seconds(20), std::chrono::milliseconds(200));
    return res;
  }

  std::unique_ptr<kube::RestClient> admin = adminClient();
  kube::Client client{*admin, {.qps = 0}};
  const std::string team = "vap-" + randomSuffix();
  TempNamespace governed{*admin, "vap-team", json{{"paddock.dev/team", team}, {"enrolled", "yes"}}};
};

TEST_F(RunPolicyE2E, ARunOutsideItsPolicyIsRefusedWhenApplied) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  struct Case { const char* name; json spec; std::string message; } refused[] = {
      {"image outside the allow-list", {{"image", "docker.io/evil/agent:1"}},
       "spec.image docker.io/evil/agent:1 is not allowed by AgentPolicy " + team + " (spec.images.allowed: "},
      {"a look-alike path", {{"image", "registry.example.com/sample-evil/x:1"}}, "spec.image registry.example.com/sample-evil/x:1 is not allowed"},
      {"a sub-path", {{"image", "registry.example.com/sample/x/agent:1"}}, "is not allowed by AgentPolicy"},
      {"the registry as a subdomain", {{"image", "registry.example.com.evil.io/sample/agent:1"}}, "is not allowed by AgentPolicy"},
      {"the registry as a path", {{"image", "evil.io/registry.example.com/sample/agent:1"}}, "is not allowed by AgentPolicy"},
      {"another port", {{"image", "registry.example.com:5000/sample/agent:1"}}, "is not allowed by AgentPolicy"},
      {"a tag outside the tag glob", {{"image", "registry.example.com/tools/agent:2.0"}}, "is not allowed by AgentPolicy"},
      {"no tag where the glob wants one", {{"image", "registry.example.com/tools/agent"}}, "is not allowed by AgentPolicy"},
      {"another digest", {{"image", "registry.example.com/pinned/agent@sha256:" + std::string(64, 'b')}}, "is not allowed by AgentPolicy"},
      {"the pinned image by tag", {{"image", "registry.example.com/pinned/agent:1"}}, "is not allowed by AgentPolicy"},
      {"another model", {{"model", "claude-opus-4"}},
       "spec.model claude-opus-4 differs from the model AgentPolicy " + team + " pins (claude-sonnet-4-5); omit spec.model or set it to claude-sonnet-4-5"},
      {"an undefined stage", {{"stages", {"pr", "release"}}},
       "spec.stages names release, which AgentPolicy " + team + " does not define (its stages: pr, deploy, promote)"},
      {"tokens over the max", {{"budget", {{"tokens", 10000001}}}},
       "spec.budget.tokens 10000001 exceeds AgentPolicy " + team + " max of 10000000; lower it"},
      {"cost over the max", {{"budget", {{"costUSD", "40.01"}}}}, "spec.budget.costUSD 40.01 exceeds AgentPolicy " + team + " max of 40"},
      {"wall clock over the max", {{"budget", {{"wallClock", "4h1m"}}}}, "spec.budget.wallClock 4h1m exceeds AgentPolicy " + team + " max of 4h"},
      {"another organisation", {{"repository", {{"url", "https://github.com/evil/hello"}}}},
       "spec.repository.url names a host or organisation AgentPolicy " + team +
           " does not allow (spec.repositories: github.com/{example}, git.example.com)"},
      {"another host", {{"repository", {{"url", "git@gitlab.com:example/hello.git"}}}}, "spec.repository.url names a host or organisation"},
  };
  struct Allowed { const char* name; json spec; } allowed[] = {
      {"the default image", {{"image", "registry.example.com/sample/agent:1.0"}}},
      {"an image in the allowed path", {{"image", "registry.example.com/sample/other:3"}}},
      {"an image by digest in the allowed path", {{"image", "registry.example.com/sample/other@" + digest}}},
      {"a tag inside the tag glob", {{"image", "registry.example.com/tools/agent:1.4"}}},
      {"the pinned digest", {{"image", "registry.example.com/pinned/agent@" + digest}}},
      {"the pinned model", {{"model", "claude-sonnet-4-5"}}},
      {"defined stages", {{"stages", {"pr", "deploy"}}}},
      {"budgets at the max", {{"budget", {{"tokens", 10000000}, {"costUSD", "40.00"}, {"wallClock", "4h"}}}}},
      {"an allowed organisation in another case", {{"repository", {{"url", "git@github.com:Example/hello.git"}}}}},
      {"any organisation on a host without a list", {{"repository", {{"url", "ssh://git@git.example.com:2222/any/hello"}}}}},
  };
  size_t i = 0, refused_count = 0;
  for (const auto& c : refused) {
    SCOPED_TRACE(c.name);
    auto res = create(governed.name(), run("refused-" + std::to_string(i++), c.spec), true);
    EXPECT_EQ(res.status, 403) << res.body;
    EXPECT_NE(res.body.find(c.message), std::string::npos) << res.body;
    if (res.status == 403) ++refused_count;
  }
  for (const auto& c : allowed) {
    SCOPED_TRACE(c.name);
    auto res = create(governed.name(), run("allowed-" + std::to_string(i++), c.spec), false);
    EXPECT_EQ(res.status, 201) << res.body;
  }
  std::cout << "paddock-run-policy: " << refused_count << " of " << std::size(refused) << " runs refused when applied, "
            << std::size(allowed) << " allowed\n";
}

TEST_F(RunPolicyE2E, OnlyTheNamespacesThePolicySelectsAreChecked) {
  json evil = run("evil", {{"image", "docker.io/evil/agent:1"}});
  auto res = create(governed.name(), evil, true);
  ASSERT_EQ(res.status, 403) << "the governed namespace must refuse it: " << res.body;
  struct Case { const char* name; json labels; } others[] = {
      {"NotIn excludes it", {{"paddock.dev/team", team}, {"enrolled", "yes"}, {"tier", "sandbox"}}},
      {"Exists wants a label it lacks", {{"paddock.dev/team", team}}},
      {"DoesNotExist finds a label it has", {{"paddock.dev/team", team}, {"enrolled", "yes"}, {"frozen", "yes"}}},
      {"In wants another team", {{"paddock.dev/team", "other-" + team}, {"enrolled", "yes"}}},
  };
  for (const auto& c : others) {
    SCOPED_TRACE(c.name);
    TempNamespace other(*admin, "vap-other", c.labels);
    auto got = request(*admin, http::Method::Post, agentruns.path(other.name()), evil);
    EXPECT_EQ(got.status, 201) << "a namespace the policy does not select is not its business: " << got.body;
  }
}

TEST_F(RunPolicyE2E, AnUpdateIsCheckedOnlyForWhatItChanges) {
  auto created = create(governed.name(), run("fix", {{"budget", {{"tokens", 9000000}}}}), false);
  ASSERT_EQ(created.status, 201) << created.body;
  auto raised = client.mergePatch(agentruns, governed.name(), "fix", {{"spec", {{"budget", {{"tokens", 20000000}}}}}});
  ASSERT_FALSE(raised.ok()) << "a budget raised over the max after creation";
  EXPECT_EQ(raised.error().code, 403);
  EXPECT_NE(raised.error().message.find("spec.budget.tokens 20000000 exceeds AgentPolicy " + team), std::string::npos)
      << raised.error().describe();
  // The platform team lowers the max below the run's budget: the run can still be cancelled.
  ASSERT_TRUE(client.mergePatch(kube::resources::agentpolicies, "", team,
                                {{"spec", {{"budgets", {{"default", {{"tokens", 1000}}}, {"max", {{"tokens", 1000}}}}}}}})
                  .ok());
  Result<json> cancelled = Error{};
  eventually([&] {
    cancelled = client.mergePatch(agentruns, governed.name(), "fix", {{"spec", {{"cancel", true}}}});
    return cancelled.ok();
  }, std::chrono::seconds(10), std::chrono::milliseconds(200));
  EXPECT_TRUE(cancelled.ok()) << cancelled.error().describe();
}

// Issue 25 item 13: a policy that allows everything is applied, and kubectl prints warnings.
TEST(PolicyWarningsE2E, APolicyThatAllowsEverythingIsAppliedWithWarnings) {
  auto admin = adminClient();
  kube::Client client{*admin, {.qps = 0}};
  json p = loadYaml(repoPath("crds/samples/policy.yaml"));
  const std::string name = "wide-" + randomSuffix();
  p["metadata"] = {{"name", name}};
  p["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", name}}}};
  p["spec"]["egress"].push_back({{"cidr", "0.0.0.0/0"}, {"ports", {443}}});
  p["spec"]["allowCloudMetadataEgress"] = true;
  p["spec"]["stages"][0]["approval"]["approvers"]["groups"] = {"system:authenticated"};
  p["spec"]["images"]["allowed"] = {"*"};
  p["spec"].erase("repositories");
  auto warnings = [](const http::Response& r) {
    std::string all;
    for (const auto& [k, v] : r.headers) {
      if (k.size() == 7 && strncasecmp(k.c_str(), "warning", 7) == 0) all += v + "\n";
    }
    return all;
  };
  http::Response res;
  ASSERT_TRUE(eventually([&] {  // until the API server has loaded the warning policy
    res = request(*admin, http::Method::Post, kube::resources::agentpolicies.path(""), p);
    if (res.status == 201 && warnings(res).empty()) client.remove(kube::resources::agentpolicies, "", name).ok();
    return res.status != 201 || !warnings(res).empty();
  }, std::chrono::seconds(20), std::chrono::milliseconds(200)));
  ASSERT_EQ(res.status, 201) << res.body;
  std::string w = warnings(res);
  for (const char* expected : {"spec.egress[].cidr 0.0.0.0/0 allows run pods to reach every address",
                               "spec.stages[].approval.approvers of stage pr include every user or service account",
                               "spec.images.allowed lists", "spec.repositories is unset, so runs may target any Git host",
                               "spec.allowCloudMetadataEgress is true"}) {
    EXPECT_NE(w.find(expected), std::string::npos) << "missing warning: " << expected << "\n" << w;
  }
  client.remove(kube::resources::agentpolicies, "", name).ok();
  // The control: the sample policy is applied without a warning.
  json narrow = loadYaml(repoPath("crds/samples/policy.yaml"));
  narrow["metadata"] = {{"name", name + "-narrow"}};
  narrow["spec"]["namespaceSelector"] = p["spec"]["namespaceSelector"];
  auto quiet = request(*admin, http::Method::Post, kube::resources::agentpolicies.path(""), narrow);
  ASSERT_EQ(quiet.status, 201) << quiet.body;
  EXPECT_EQ(warnings(quiet), "");
  client.remove(kube::resources::agentpolicies, "", name + "-narrow").ok();
}

}  // namespace
}  // namespace paddock::e2e
