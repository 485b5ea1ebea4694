// Gated stages end to end, with users authenticated by client certificates: after the agent, a
// pr stage (one approval from the leads) and a deploy stage (two from on-call) each wait for
// approvals that a SubjectAccessReview vouches for, then run as their own pod with only their own
// secret, on the run's shared workspace claim. kwok plays every pod.
#include <gtest/gtest.h>

#include <algorithm>
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

const std::string kStart = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";  // the commit the clone recorded

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
    policy["spec"]["stages"][2]["approval"]["approvers"] = {{"groups", {"oncall"}}};  // promote
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
  json createRun(const std::string& name, std::vector<std::string> stages = {"pr", "deploy"}, const json& spec = json::object()) {
    json run = loadYaml(repoPath("crds/samples/run.yaml"));
    run["spec"].update(spec);
    run["metadata"] = {{"name", name}};
    run["spec"]["idempotencyKey"] = name;
    run["spec"]["stages"] = stages;
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
  // kwok ends the pod with `code`; `message` becomes its containers' termination message (a stage's
  // result JSON) and `init_message` its init containers' (the workspace clone's result).
  void podExits(const std::string& pod, int code, const std::string& message = "", const std::string& init_message = "") {
    ASSERT_TRUE(eventually([&] { return client.get(pods, ns->name(), pod).ok(); }, std::chrono::seconds(20))) << pod;
    json annotations = {{"kwok.paddock.dev/exit", std::to_string(code)}};
    if (!message.empty()) annotations["kwok.paddock.dev/message"] = message;
    if (!init_message.empty()) annotations["kwok.paddock.dev/init-message"] = init_message;
    ASSERT_TRUE(client.mergePatch(pods, ns->name(), pod, {{"metadata", {{"annotations", annotations}}}}).ok());
  }
  // The agent succeeds; its workspace was cloned at kStart.
  void agentSucceeds(const std::string& run) {
    podExits(run + "-agent", 0, "", json{{"stage", "clone"}, {"outcome", "Cloned"}, {"baseCommit", kStart}}.dump());
  }
  // Alice's run `name` with `stages`: its agent succeeds, and the run waits for its first stage's
  // approvals (null when it does not get there).
  json awaitingApproval(const std::string& name, std::vector<std::string> stages) {
    auto run = createRun(name, std::move(stages));
    if (run.is_null()) return run;
    auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
    if (running.is_null()) return running;
    agentSucceeds(name);
    return waitRun(running, [](const json& o) { return phaseOf(o) == "AwaitingApproval"; });
  }
  static std::vector<std::string> argsOf(const json& pod) {
    return pod["spec"]["containers"][0]["args"].get<std::vector<std::string>>();
  }
  static std::string argAfter(const json& pod, const std::string& flag) {
    auto args = argsOf(pod);
    auto at = std::find(args.begin(), args.end(), flag);
    return at == args.end() || at + 1 == args.end() ? "" : *(at + 1);
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
  agentSucceeds("ship");

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
  EXPECT_EQ(argAfter(*pr_pod, "--base-commit"), kStart) << "the pr stage is told the commit the agent started from";
  EXPECT_EQ(argAfter(*pr_pod, "--token-file"), "/var/run/paddock/secrets/github-pr-token/token");
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
  EXPECT_EQ(argAfter(*deploy_pod, "--deploy-url"), "https://deploy.example.com/api/releases");
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
  agentSucceeds("nope");
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


// Issues 25.15 and 22.4: a pr stage refused for a protected path exits 3; the run says so, with
// the stage's own result (read from its termination message), not "exit code 0".
TEST_F(StageE2E, AStageFailureCarriesItsRealExitCodeAndResult) {
  auto waiting = awaitingApproval("guarded", {"pr"});
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(stageOf(waiting, "agent")["baseCommit"], kStart) << "the clone's record reaches status";
  decide("bob", "bob-guarded", "guarded", "pr", "Approve");
  auto pr = waitRun(waiting, [](const json& o) { return stageOf(o, "pr").value("phase", "") == "Running"; });
  ASSERT_FALSE(pr.is_null()) << testing::PrintToString(op->lines());
  json refused = {{"stage", "pr"},
                  {"outcome", "Refused"},
                  {"reason", "ProtectedPath"},
                  {"message", "the change touches 1 protected path(s) of the policy (first: .github/workflows/ci.yml); "
                              "nothing was pushed"},
                  {"refusedPaths", {".github/workflows/ci.yml"}},
                  {"findings", {{{"file", "config.py"}, {"line", 3}, {"pattern", "github-token"}}}}};
  podExits("guarded-pr", 3, refused.dump());
  auto failed = waitRun(pr, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null()) << testing::PrintToString(op->lines());
  std::string message = condition(failed, "Succeeded").value("message", "");
  EXPECT_NE(message.find("exit code 3"), std::string::npos) << message;
  EXPECT_NE(message.find("Refused, ProtectedPath"), std::string::npos) << message;
  EXPECT_NE(message.find("config.py:3:github-token"), std::string::npos) << message;
  json st = stageOf(failed, "pr");
  EXPECT_EQ(st["exitCode"], 3) << st.dump();
  EXPECT_EQ(st["outcome"], "Refused");
  EXPECT_EQ(st["refusedPaths"], json::array({".github/workflows/ci.yml"}));
  EXPECT_EQ(st["findings"], json::array({"config.py:3:github-token"}));
}

// Issue 22.4: the pull request a pr stage opened is in status and in a printer column.
TEST_F(StageE2E, ThePullRequestIsInStatusAndAPrinterColumn) {
  auto waiting = awaitingApproval("opened", {"pr"});
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  decide("bob", "bob-opened", "opened", "pr", "Approve");
  auto pr = waitRun(waiting, [](const json& o) { return stageOf(o, "pr").value("phase", "") == "Running"; });
  ASSERT_FALSE(pr.is_null());
  const std::string url = "https://github.com/acme/payments/pull/17";
  json opened = {{"stage", "pr"}, {"outcome", "PullRequestOpened"}, {"branch", "paddock/opened"},
                 {"commit", std::string(40, 'b')}, {"baseCommit", kStart},
                 {"pullRequest", {{"url", url}, {"number", 17}}}};
  podExits("opened-pr", 0, opened.dump());
  auto done = waitRun(pr, [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(done["status"]["pullRequestURL"], url);
  EXPECT_EQ(stageOf(done, "pr")["pullRequest"]["number"], 17);
  EXPECT_EQ(stageOf(done, "pr")["branch"], "paddock/opened");
  EXPECT_EQ(stageOf(done, "pr")["exitCode"], 0);

  http::Request table{http::Method::Get, agentruns.path(ns->name()) + "/opened"};
  table.headers.emplace_back("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io");
  auto answer = admin->send(table);
  ASSERT_TRUE(answer.ok());
  json t = json::parse(answer->body);
  size_t column = 0;
  for (; column < t["columnDefinitions"].size() && t["columnDefinitions"][column]["name"] != "PR"; ++column) {
  }
  ASSERT_LT(column, t["columnDefinitions"].size()) << t.dump();
  EXPECT_EQ(t["rows"][0]["cells"][column], url);
}

// A run stopped at its budget (here its wall clock, the operator's own timer) with a pr stage
// hands its partial work on: the agent pod is stopped but the run is not over; the pr stage waits
// for its approval, is told --partial, and the deploy stage never runs; the run ends TimedOut with
// the draft's address.
TEST_F(StageE2E, AnAgentStoppedAtItsBudgetHandsItsPartialWorkToADraftPullRequest) {
  auto run = createRun("partial", {"pr", "deploy"}, {{"budget", {{"wallClock", "6s"}}}});
  ASSERT_FALSE(run.is_null());
  auto running = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op->lines());
  // The workspace clone's record, as the kubelet writes it when the init container ends.
  const std::string now = "2026-12-07T10:00:00Z";
  json clone = {{"name", "workspace"}, {"ready", true}, {"restartCount", 0}, {"image", "paddock-stage"}, {"imageID", ""},
                {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}, {"startedAt", now}, {"finishedAt", now},
                                           {"message", json{{"stage", "clone"}, {"outcome", "Cloned"}, {"baseCommit", kStart}}.dump()}}}}}};
  auto patched = client.mergePatch(pods, ns->name(), "partial-agent", {{"status", {{"initContainerStatuses", {clone}}}}}, "status");
  ASSERT_TRUE(patched.ok()) << patched.error().describe();

  auto waiting = waitRun(running, [](const json& o) { return phaseOf(o) == "AwaitingApproval"; });
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  json agent = stageOf(waiting, "agent");
  EXPECT_EQ(agent["phase"], "TimedOut");
  EXPECT_EQ(agent.value("partial", false), true) << agent.dump();
  EXPECT_EQ(agent["baseCommit"], kStart);
  EXPECT_EQ(condition(waiting, "BudgetExceeded").value("reason", ""), "WallClockExceeded");
  EXPECT_TRUE(eventually([&] {
    auto p = client.get(pods, ns->name(), "partial-agent");
    return !p.ok() && p.error().code == 404;
  }, std::chrono::seconds(60))) << "the stopped agent's pod is still there";

  decide("bob", "bob-partial", "partial", "pr", "Approve");
  auto pr = waitRun(waiting, [](const json& o) { return stageOf(o, "pr").value("phase", "") == "Running"; });
  ASSERT_FALSE(pr.is_null()) << testing::PrintToString(op->lines());
  auto pod = client.get(pods, ns->name(), "partial-pr");
  ASSERT_TRUE(pod.ok());
  EXPECT_NE(argAfter(*pod, "--partial").find("spec.budget.wallClock"), std::string::npos) << pod->dump();
  EXPECT_EQ(argAfter(*pod, "--base-commit"), kStart);
  const std::string url = "https://github.com/acme/payments/pull/18";
  podExits("partial-pr", 0, json{{"stage", "pr"}, {"outcome", "PullRequestOpened"}, {"branch", "paddock/partial"},
                                 {"commit", std::string(40, 'c')}, {"baseCommit", kStart},
                                 {"pullRequest", {{"url", url}, {"number", 18}}}}.dump());
  auto done = waitRun(pr, [](const json& o) { return phaseOf(o) == "TimedOut"; });
  ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(done["status"]["pullRequestURL"], url);
  EXPECT_EQ(stageOf(done, "pr").value("partial", false), true);
  EXPECT_EQ(stageOf(done, "deploy")["phase"], "Skipped");
  EXPECT_NE(condition(done, "Succeeded").value("message", "").find("its partial work is the draft pull request " + url), std::string::npos)
      << condition(done, "Succeeded").dump();
  EXPECT_FALSE(client.get(pods, ns->name(), "partial-deploy").ok()) << "partial work goes no further than a draft";
}

// Issue 23.7: deploy stages a release at the policy's endpoint (which the team's NetworkPolicy
// allows), and promote, after approvals of its own, is told that release.
TEST_F(StageE2E, PromoteRunsAfterItsOwnApprovalWithTheStagedRelease) {
  auto waiting = awaitingApproval("release", {"deploy", "promote"});
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  auto np = client.get(kube::resources::networkpolicies, ns->name(), "paddock-" + team);
  ASSERT_TRUE(np.ok());
  EXPECT_NE(np->dump().find(R"({"ports":[{"port":443,"protocol":"TCP"}],"to":[{"ipBlock":{"cidr":"198.18.0.10/32"}}]})"),
            std::string::npos)
      << (*np)["spec"].dump();
  decide("bob", "bob-release", "release", "deploy", "Approve");
  decide("carol", "carol-release", "release", "deploy", "Approve");
  auto deploying = waitRun(waiting, [](const json& o) { return stageOf(o, "deploy").value("phase", "") == "Running"; });
  ASSERT_FALSE(deploying.is_null()) << testing::PrintToString(op->lines());
  podExits("release-deploy", 0, json{{"stage", "deploy"}, {"outcome", "Staged"}, {"release", {{"id", "rel-9"}}}}.dump());
  auto promote_wait = waitRun(deploying, [](const json& o) { return stageOf(o, "promote").value("phase", "") == "AwaitingApproval"; });
  ASSERT_FALSE(promote_wait.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(stageOf(promote_wait, "deploy")["release"]["id"], "rel-9");
  EXPECT_FALSE(client.get(pods, ns->name(), "release-promote").ok()) << "promote started on deploy's approvals";
  decide("carol", "carol-promote", "release", "promote", "Approve");
  auto promoting = waitRun(promote_wait, [](const json& o) { return stageOf(o, "promote").value("phase", "") == "Running"; });
  ASSERT_FALSE(promoting.is_null()) << testing::PrintToString(op->lines());
  auto pod = client.get(pods, ns->name(), "release-promote");
  ASSERT_TRUE(pod.ok());
  EXPECT_EQ(argAfter(*pod, "--release"), "rel-9");
  EXPECT_EQ(argAfter(*pod, "--deploy-url"), "https://deploy.example.com/api/promote");
  EXPECT_EQ(secretsOf(*pod), std::set<std::string>{"deploy-token"});
  podExits("release-promote", 0, json{{"stage", "promote"}, {"outcome", "Promoted"}, {"release", {{"id", "rel-9"}}}}.dump());
  auto done = waitRun(promoting, [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
}

// Issue 23.6: a stage pod whose workspace claim is gone stays Pending; the run fails at the
// pending deadline with a condition that names the claim.
TEST_F(StageE2E, AStagePodThatCannotStartFailsTheRunNamingTheCause) {
  stopOperator(*op);
  op = std::make_unique<Process>(std::vector<std::string>{
      env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address", "127.0.0.1:0",
      "--leader-election-namespace", ns->name(), "--audit-store", audit_dir, "--pending-deadline", "4s"});
  ASSERT_TRUE(reconciling(*op));
  auto waiting = awaitingApproval("lost", {"pr"});
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  ASSERT_TRUE(client.remove(kube::resources::persistentvolumeclaims, ns->name(), "lost-workspace").ok());
  // Gone, or going (a claim's protection finalizer may hold it a moment): either way the stage
  // pod cannot mount it.
  ASSERT_TRUE(eventually([&] {
    auto claim = client.get(kube::resources::persistentvolumeclaims, ns->name(), "lost-workspace");
    return !claim.ok() || claim->contains(json::json_pointer("/metadata/deletionTimestamp"));
  }, std::chrono::seconds(30)));
  decide("bob", "bob-lost", "lost", "pr", "Approve");
  auto failed = waitRun(waiting, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null()) << testing::PrintToString(op->lines());
  json c = condition(failed, "Succeeded");
  EXPECT_EQ(c["reason"], "WorkspaceClaimMissing") << c.dump();
  EXPECT_NE(c.value("message", "").find("lost-workspace"), std::string::npos) << c.dump();
  EXPECT_EQ(stageOf(failed, "pr")["phase"], "Failed");
  EXPECT_TRUE(eventually([&] { return !client.get(pods, ns->name(), "lost-pr").ok(); }, std::chrono::seconds(30)))
      << "the stuck pod is deleted";
}

// Issue 25.5 (stage side): an approval for a stage the run never asked for starts nothing and
// counts for nothing.
TEST_F(StageE2E, AnApprovalForAStageTheRunDoesNotHaveIsNeverCounted) {
  auto waiting = awaitingApproval("only-pr", {"pr"});
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  // The approval admission policy may refuse it at apply time; if it gets through, it counts for nothing.
  json stray = {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentApproval"}, {"metadata", {{"name", "carol-deploy"}}},
                {"spec", {{"run", "only-pr"}, {"stage", "deploy"}, {"decision", "Approve"},
                          {"approver", {{"username", "carol"}, {"groups", groups["carol"]}}}}}};
  auto sent = request(*users["carol"], http::Method::Post, agentapprovals.path(ns->name()), stray);
  EXPECT_TRUE(sent.status == 201 || sent.status == 422 || sent.status == 403) << sent.body;
  decide("bob", "bob-pr", "only-pr", "pr", "Reject");  // a marker: once this is seen, carol's was too
  auto failed = waitRun(waiting, [](const json& o) { return phaseOf(o) == "Failed"; });
  ASSERT_FALSE(failed.is_null());
  EXPECT_TRUE(stageOf(failed, "deploy").is_null()) << failed["status"]["stages"].dump();
  for (const auto& a : stageOf(failed, "pr")["approvals"]) EXPECT_NE(a["name"], "carol-deploy");
  EXPECT_FALSE(client.get(pods, ns->name(), "only-pr-deploy").ok());
  // Audited as refused, in carol's name, never as counted.
  for (const auto& r : auditRecords()) {
    if (r.dump().find("carol-deploy") == std::string::npos) continue;
    EXPECT_EQ(r["action"], "ApprovalRefused") << r.dump();
    EXPECT_EQ(r["details"]["reason"], "UnknownStage") << r.dump();
  }
}

}  // namespace
}  // namespace paddock::e2e
