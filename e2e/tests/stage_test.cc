// Gated stages end to end, with users authenticated by client certificates: after the agent, a
// pr stage (one approval from the leads) and a deploy stage (two from on-call) each wait for
// approvals that a SubjectAccessReview vouches for, then run as their own pod with only their own
// secret, on the run's shared workspace claim. kwok plays every pod.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentapprovals;
using kube::resources::agentruns;
using kube::resources::pods;

json stageOf(const json& run, const std::string& name) {
  for (const auto& s : run.value(json::json_pointer("/status/stages"), json::array())) {
    if (s.value("name", "") == name) return s;
  }
  return nullptr;
}

// The names of the Secrets a pod mounts.
std::set<std::string> secretsOf(const json& pod) {
  std::set<std::string> out;
  for (const auto& v : pod["spec"].value("volumes", json::array())) {
    if (v.contains("secret")) out.insert(v["secret"].value("secretName", ""));
  }
  return out;
}

class StageE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    team = "stages-" + randomSuffix();
    ns = std::make_unique<TempNamespace>(*admin, "stages", json{{"paddock.dev/team", team},
                                                               {"pod-security.kubernetes.io/enforce", "restricted"}});
    json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
    policy["metadata"] = {{"name", team}};
    policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
    policy["spec"]["stages"][0]["approval"]["approvers"] = {{"groups", {"leads"}}};
    policy["spec"]["stages"][1]["approval"]["approvers"] = {{"groups", {"oncall"}}};
    policy["spec"]["secrets"].push_back({{"secretName", "deploy-token"}, {"key", "token"}, {"stages", {"deploy"}}});
    ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", policy).ok());
    // Everyone in the team may write runs and approvals; only bob and carol hold the approve verb.
    auto rbac = [&](const std::string& kind, json body) {
      auto r = request(*admin, http::Method::Post,
                       "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns->name() + "/" + kind, body);
      ASSERT_EQ(r.status, 201) << r.body;
    };
    auto role = [](const std::string& name, json rules) {
      return json{{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"}, {"metadata", {{"name", name}}}, {"rules", rules}};
    };
    auto binding = [](const std::string& name, json subjects) {
      return json{{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"}, {"metadata", {{"name", name}}},
                  {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
                  {"subjects", subjects}};
    };
    rbac("roles", role("author", json::array({{{"apiGroups", {"paddock.dev"}}, {"resources", {"agentruns", "agentapprovals"}},
                                               {"verbs", {"get", "list", "create"}}}})));
    rbac("rolebindings", binding("author", json::array({{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"},
                                                          {"name", "team"}}})));
    rbac("roles", role("approver", json::array({{{"apiGroups", {"paddock.dev"}}, {"resources", {"agentruns"}},
                                                 {"verbs", {"approve"}}}})));
    rbac("rolebindings", binding("approver", json::array({{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "bob"}},
                                                          {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "carol"}}})));
    ASSERT_EQ(clusterCommand({"user", "alice", "team", "leads"}), 0);
    ASSERT_EQ(clusterCommand({"user", "bob", "team", "leads", "oncall"}), 0);
    ASSERT_EQ(clusterCommand({"user", "carol", "team", "oncall"}), 0);
    ASSERT_EQ(clusterCommand({"user", "dave", "team", "leads"}), 0);
    for (const char* u : {"alice", "bob", "carol", "dave"}) {
      users[u] = clientFor(env("PADDOCK_E2E_CLUSTER_DIR") + "/user-" + u + ".kubeconfig");
      groups[u] = {"team"};
    }
    groups["alice"].push_back("leads");
    groups["bob"] = {"team", "leads", "oncall"};
    groups["carol"].push_back("oncall");
    groups["dave"].push_back("leads");

    audit_dir = testing::TempDir() + "stages-audit-" + randomSuffix();
    op = std::make_unique<Process>(std::vector<std::string>{
        env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address", "127.0.0.1:0",
        "--leader-election-namespace", ns->name(), "--audit-store", audit_dir});
    ASSERT_TRUE(reconciling(*op))
        << testing::PrintToString(op->lines());
  }
  void TearDown() override {
    if (op) {
      stopOperator(*op);
    }
    client.remove(kube::resources::agentpolicies, "", team).ok();
    ns.reset();
    std::filesystem::remove_all(audit_dir);
  }

  // Alice asks for a run with gated stages.
  json createRun(const std::string& name) {
    json run = loadYaml(repoPath("crds/samples/run.yaml"));
    run["metadata"] = {{"name", name}};
    run["spec"]["idempotencyKey"] = name;
    run["spec"]["stages"] = {"pr", "deploy"};
    run["spec"]["requestedBy"] = "alice";
    json created;
    // The admission policies may still be loading right after the cluster started.
    EXPECT_TRUE(eventually([&] {
      auto r = request(*users["alice"], http::Method::Post, agentruns.path(ns->name()), run);
      if (r.status == 201) created = json::parse(r.body);
      return r.status == 201;
    }, std::chrono::seconds(20), std::chrono::milliseconds(200)));
    return created;
  }
  void decide(const std::string& who, const std::string& name, const std::string& run, const std::string& stage,
              const std::string& decision) {
    json a = {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentApproval"}, {"metadata", {{"name", name}}},
              {"spec", {{"run", run}, {"stage", stage}, {"decision", decision},
                        {"approver", {{"username", who}, {"groups", groups[who]}}}}}};
    auto r = request(*users[who], http::Method::Post, agentapprovals.path(ns->name()), a);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  json waitRun(const json& from, const std::function<bool(const json&)>& done) {
    return watchUntil(*admin, agentruns.path(ns->name()) + "?fieldSelector=metadata.name%3D" + from["metadata"]["name"].get<std::string>(),
                      from["metadata"]["resourceVersion"], [&](const std::string&, const json& o) { return done(o); },
                      std::chrono::seconds(60));
  }
  void podExits(const std::string& pod, int code) {
    ASSERT_TRUE(eventually([&] { return client.get(pods, ns->name(), pod).ok(); }, std::chrono::seconds(20))) << pod;
    ASSERT_TRUE(client.mergePatch(pods, ns->name(), pod, {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", std::to_string(code)}}}}}})
                    .ok());
  }
  std::vector<json> auditRecords() {
    std::vector<json> out;
    for (const auto& f : std::filesystem::directory_iterator(audit_dir)) {
      std::ifstream in(f.path());
      for (std::string line; std::getline(in, line);) {
        auto j = json::parse(line, nullptr, false);
        if (j.is_object()) out.push_back(j);
      }
    }
    return out;
  }

  std::unique_ptr<kube::RestClient> admin = adminClient();
  kube::Client client{*admin, {.qps = 0}};
  std::string team, audit_dir;
  std::unique_ptr<TempNamespace> ns;
  std::map<std::string, std::unique_ptr<kube::RestClient>> users;
  std::map<std::string, std::vector<std::string>> groups;
  std::unique_ptr<Process> op;
};

TEST_F(StageE2E, ApprovalsTheApiServerVouchesForOpenEachStageWithOnlyItsOwnSecret) {
  auto run = createRun("ship");
  ASSERT_FALSE(run.is_null());
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op->lines());
  auto agent_pod = client.get(pods, ns->name(), "ship-agent");
  ASSERT_TRUE(agent_pod.ok());
  EXPECT_EQ(secretsOf(*agent_pod), std::set<std::string>{"anthropic-api-key"}) << "the agent pod carries another stage's token";
  EXPECT_TRUE(client.get(kube::resources::persistentvolumeclaims, ns->name(), "ship-workspace").ok());
  podExits("ship-agent", 0);

  auto waiting = waitRun(running, [](const json& o) { return phaseOf(o) == "AwaitingApproval"; });
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(waiting["status"]["currentStage"], "pr");
  EXPECT_EQ(stageOf(waiting, "agent")["phase"], "Succeeded");
  EXPECT_EQ(stageOf(waiting, "pr")["phase"], "AwaitingApproval");

  // Alice cannot approve her own run; Dave is a lead without the approve verb. Neither counts.
  decide("alice", "alice-pr", "ship", "pr", "Approve");
  decide("dave", "dave-pr", "ship", "pr", "Approve");
  auto refused = waitRun(waiting, [](const json& o) { return stageOf(o, "pr").value("approvals", json::array()).size() == 2; });
  ASSERT_FALSE(refused.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(phaseOf(refused), "AwaitingApproval");
  for (const auto& a : stageOf(refused, "pr")["approvals"]) {
    EXPECT_FALSE(a["counted"].get<bool>()) << a.dump();
    std::string expected = a["approver"] == "alice" ? "requester" : "approve verb";
    EXPECT_NE(a["reason"].get<std::string>().find(expected), std::string::npos) << a.dump();
  }
  EXPECT_FALSE(client.get(pods, ns->name(), "ship-pr").ok()) << "the pr stage started without a counted approval";

  // Bob may approve: the pr stage runs with the PR token and nothing else, on the shared workspace.
  decide("bob", "bob-pr", "ship", "pr", "Approve");
  auto pr = waitRun(refused, [](const json& o) { return stageOf(o, "pr").value("phase", "") == "Running"; });
  ASSERT_FALSE(pr.is_null()) << testing::PrintToString(op->lines());
  auto pr_pod = client.get(pods, ns->name(), "ship-pr");
  ASSERT_TRUE(pr_pod.ok());
  EXPECT_EQ(secretsOf(*pr_pod), std::set<std::string>{"github-pr-token"});
  EXPECT_EQ((*pr_pod)["spec"]["containers"][0]["image"], "registry.example.com/platform/paddock-stage:1.0");
  EXPECT_NE(pr_pod->dump().find("\"claimName\":\"ship-workspace\""), std::string::npos);
  EXPECT_NE(agent_pod->dump().find("\"claimName\":\"ship-workspace\""), std::string::npos);
  podExits("ship-pr", 0);

  // Deploy needs two distinct on-call approvers: Bob twice is still one.
  auto deploy_wait = waitRun(pr, [](const json& o) { return stageOf(o, "deploy").value("phase", "") == "AwaitingApproval"; });
  ASSERT_FALSE(deploy_wait.is_null());
  decide("bob", "bob-deploy", "ship", "deploy", "Approve");
  decide("bob", "bob-deploy-again", "ship", "deploy", "Approve");
  auto one = waitRun(deploy_wait, [](const json& o) { return stageOf(o, "deploy").value("approvals", json::array()).size() == 2; });
  ASSERT_FALSE(one.is_null());
  EXPECT_EQ(stageOf(one, "deploy")["phase"], "AwaitingApproval");
  EXPECT_NE(stageOf(one, "deploy")["message"].get<std::string>().find("1 of 2 approvals"), std::string::npos);
  decide("carol", "carol-deploy", "ship", "deploy", "Approve");
  auto deploying = waitRun(one, [](const json& o) { return stageOf(o, "deploy").value("phase", "") == "Running"; });
  ASSERT_FALSE(deploying.is_null()) << testing::PrintToString(op->lines());
  auto deploy_pod = client.get(pods, ns->name(), "ship-deploy");
  ASSERT_TRUE(deploy_pod.ok());
  EXPECT_EQ(secretsOf(*deploy_pod), std::set<std::string>{"deploy-token"});
  podExits("ship-deploy", 0);
  auto done = waitRun(deploying, [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null());

  // Every approval is audited in its approver's name, with why it did or did not count.
  std::map<std::string, std::vector<std::string>> by_actor;
  std::string approvals_seen;
  for (const auto& r : auditRecords()) {
    std::string action = r.value("action", "");
    if (action == "ApprovalCounted" || action == "ApprovalRefused") {
      by_actor[r.value("actor", "")].push_back(action);
      approvals_seen += r.dump() + "\n";
    }
  }
  SCOPED_TRACE(approvals_seen);
  EXPECT_EQ(by_actor["alice"], std::vector<std::string>{"ApprovalRefused"});
  EXPECT_EQ(by_actor["dave"], std::vector<std::string>{"ApprovalRefused"});
  EXPECT_EQ(by_actor["bob"], (std::vector<std::string>{"ApprovalCounted", "ApprovalCounted", "ApprovalRefused"}));
  EXPECT_EQ(by_actor["carol"], std::vector<std::string>{"ApprovalCounted"});
}

TEST_F(StageE2E, ARejectFailsTheRunAndLaterStagesNeverRun) {
  auto run = createRun("nope");
  ASSERT_FALSE(run.is_null());
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null());
  podExits("nope-agent", 0);
  auto waiting = waitRun(running, [](const json& o) { return phaseOf(o) == "AwaitingApproval"; });
  ASSERT_FALSE(waiting.is_null());
  decide("bob", "bob-no", "nope", "pr", "Reject");
  auto failed = waitRun(waiting, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(stageOf(failed, "pr")["phase"], "Failed");
  EXPECT_NE(stageOf(failed, "pr")["message"].get<std::string>().find("rejected by bob"), std::string::npos);
  EXPECT_FALSE(client.get(pods, ns->name(), "nope-pr").ok());
  EXPECT_FALSE(client.get(pods, ns->name(), "nope-deploy").ok());
}

}  // namespace
}  // namespace paddock::e2e
