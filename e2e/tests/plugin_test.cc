// kubectl-paddock end to end: the built plugin run as a process by users authenticated with
// client certificates, each through their own kubeconfig, against the operator and the admission
// policies. kwok plays every pod.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentapprovals;
using kube::resources::agentruns;
using kube::resources::pods;

std::string phaseOf(const json& run) { return run.value(json::json_pointer("/status/phase"), std::string()); }

json stageOf(const json& run, const std::string& name) {
  for (const auto& s : run.value(json::json_pointer("/status/stages"), json::array())) {
    if (s.value("name", "") == name) return s;
  }
  return json::object();
}

// What one run of the plugin printed (stdout and stderr) and its exit status.
struct Output {
  int status = -1;
  std::string text;
};

class PluginE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    team = "plugin-" + randomSuffix();
    ns = std::make_unique<TempNamespace>(*admin, "plugin", json{{"paddock.dev/team", team}});
    json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
    policy["metadata"] = {{"name", team}};
    policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
    policy["spec"]["stages"][0]["approval"]["approvers"] = {{"groups", {"leads"}}};
    ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", policy).ok());
    // The team writes runs and approvals; eve (another team) may only read runs; bob holds approve.
    rbac("author", json::array({{{"apiGroups", {"paddock.dev"}}, {"resources", {"agentruns", "agentapprovals"}},
                                 {"verbs", {"get", "list", "create", "patch"}}},
                                {{"apiGroups", {"events.k8s.io"}}, {"resources", {"events"}}, {"verbs", {"list"}}},
                                {{"apiGroups", {""}}, {"resources", {"pods", "pods/log"}}, {"verbs", {"get"}}}}),
         {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "team"}}});
    rbac("reader", json::array({{{"apiGroups", {"paddock.dev"}}, {"resources", {"agentruns"}}, {"verbs", {"get", "list"}}}}),
         {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "eve"}}});
    rbac("approver", json::array({{{"apiGroups", {"paddock.dev"}}, {"resources", {"agentruns"}}, {"verbs", {"approve"}}}}),
         {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "bob"}}});
    ASSERT_EQ(clusterCommand({"user", "alice", "team"}), 0);
    ASSERT_EQ(clusterCommand({"user", "bob", "team", "leads"}), 0);
    ASSERT_EQ(clusterCommand({"user", "eve", "other"}), 0);

    audit_dir = testing::TempDir() + "plugin-audit-" + randomSuffix();
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

  void rbac(const std::string& name, const json& rules, const json& subjects) {
    const std::string base = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns->name();
    auto r = request(*admin, http::Method::Post, base + "/roles",
                     {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"}, {"metadata", {{"name", name}}}, {"rules", rules}});
    ASSERT_EQ(r.status, 201) << r.body;
    r = request(*admin, http::Method::Post, base + "/rolebindings",
                {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"}, {"metadata", {{"name", name}}},
                 {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
                 {"subjects", subjects}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // Runs kubectl-paddock (built beside the operator) as `user`, in the test's namespace.
  Output plugin(const std::string& user, std::vector<std::string> args) {
    std::string bin = (std::filesystem::path(env("PADDOCK_OPERATOR_BIN")).parent_path() / "kubectl-paddock").string();
    std::vector<std::string> argv = {bin, "--kubeconfig", env("PADDOCK_E2E_CLUSTER_DIR") + "/user-" + user + ".kubeconfig",
                                     "-n", ns->name()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    Output out;
    out.status = p.wait(std::chrono::seconds(30));
    for (const auto& l : p.lines()) out.text += l + "\n";
    return out;
  }

  // Alice asks for a run with a pr stage, and its agent succeeds.
  json awaitingApproval(const std::string& name, const std::string& key = "") {
    json run = loadYaml(repoPath("crds/samples/run.yaml"));
    run["metadata"] = {{"name", name}};
    run["spec"]["idempotencyKey"] = key.empty() ? name : key;
    run["spec"]["stages"] = {"pr"};
    run["spec"]["requestedBy"] = "alice";
    auto alice = clientFor(env("PADDOCK_E2E_CLUSTER_DIR") + "/user-alice.kubeconfig");
    json created;
    // The admission policies may still be loading right after the cluster started.
    EXPECT_TRUE(eventually([&] {
      auto r = request(*alice, http::Method::Post, agentruns.path(ns->name()), run);
      if (r.status == 201) created = json::parse(r.body);
      return r.status == 201;
    }, std::chrono::seconds(20), std::chrono::milliseconds(200)));
    if (created.is_null()) return created;
    EXPECT_TRUE(eventually([&] { return client.get(pods, ns->name(), name + "-agent").ok(); }, std::chrono::seconds(30)));
    // The agent exits 0; its workspace clone reported the commit it started from (the pr stage
    // needs it), as the kwok stages let a test say.
    json clone = {{"stage", "clone"}, {"outcome", "Cloned"}, {"baseCommit", std::string(40, 'a')}};
    EXPECT_TRUE(client.mergePatch(pods, ns->name(), name + "-agent",
                                  {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", "0"},
                                                                  {"kwok.paddock.dev/init-message", clone.dump()}}}}}})
                    .ok());
    return waitRun(created, [](const json& o) { return phaseOf(o) == "AwaitingApproval"; });
  }
  json waitRun(const json& from, const std::function<bool(const json&)>& done) {
    return watchUntil(*admin, agentruns.path(ns->name()) + "?fieldSelector=metadata.name%3D" + from["metadata"]["name"].get<std::string>(),
                      from["metadata"]["resourceVersion"], [&](const std::string&, const json& o) { return done(o); },
                      std::chrono::seconds(60));
  }

  std::unique_ptr<kube::RestClient> admin = adminClient();
  kube::Client client{*admin, {.qps = 0}};
  std::string team, audit_dir;
  std::unique_ptr<TempNamespace> ns;
  std::unique_ptr<Process> op;
};

TEST_F(PluginE2E, BobApprovesAsHimselfAndStatusShowsTheCountedApproval) {
  auto waiting = awaitingApproval("ship");
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());

  auto approved = plugin("bob", {"approve", "ship", "--stage", "pr", "-m", "looks good"});
  ASSERT_EQ(approved.status, 0) << approved.text;
  EXPECT_NE(approved.text.find("created: bob"), std::string::npos) << approved.text;
  EXPECT_NE(approved.text.find("kubectl paddock status ship"), std::string::npos) << approved.text;

  // The API server accepted it, so the admission policy agreed that it names its creator.
  auto listed = client.list(agentapprovals, ns->name());
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1u);
  const json& a = listed->items[0];
  EXPECT_EQ(a["metadata"]["name"].get<std::string>().rfind("ship-pr-bob-", 0), 0u) << a.dump();
  EXPECT_EQ(a["spec"]["run"], "ship");
  EXPECT_EQ(a["spec"]["stage"], "pr");
  EXPECT_EQ(a["spec"]["decision"], "Approve");
  EXPECT_EQ(a["spec"]["comment"], "looks good");
  EXPECT_EQ(a["spec"]["approver"]["username"], "bob");
  EXPECT_EQ(a["spec"]["approver"]["groups"], (json{"team", "leads", "system:authenticated"}));

  // The operator counts it: the pr stage runs.
  auto running = waitRun(waiting, [](const json& o) { return stageOf(o, "pr").value("phase", "") == "Running"; });
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op->lines());
  // Events are written in the background: look until the approval's Event is among them.
  Output status;
  eventually([&] {
    status = plugin("alice", {"status", "ship"});
    return status.text.find("ApprovalCounted") != std::string::npos;
  }, std::chrono::seconds(15), std::chrono::milliseconds(500));
  ASSERT_EQ(status.status, 0) << status.text;
  EXPECT_NE(status.text.find("Phase:         Running (stage pr)"), std::string::npos) << status.text;
  EXPECT_NE(status.text.find("pr     bob       Approve   yes"), std::string::npos) << status.text;
  EXPECT_NE(status.text.find("ApprovalCounted"), std::string::npos) << "the Events table" << status.text;

  // kwok's pods have no logs: a clear error, not a crash.
  auto logs = plugin("alice", {"logs", "ship", "--stage", "pr"});
  EXPECT_EQ(logs.status, 1) << logs.text;
  EXPECT_NE(logs.text.find("cannot read the logs of pod " + ns->name() + "/ship-pr"), std::string::npos) << logs.text;
  EXPECT_NE(logs.text.find("kwok"), std::string::npos) << logs.text;

  // The audit store tells the approval in bob's name.
  auto audit = plugin("alice", {"audit", "ship", "--store", audit_dir});
  EXPECT_EQ(audit.status, 0) << audit.text;
  EXPECT_NE(audit.text.find("bob"), std::string::npos) << audit.text;
}

TEST_F(PluginE2E, CancelSetsSpecCancelAndTheRunEndsCancelled) {
  auto waiting = awaitingApproval("stop");
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  auto cancelled = plugin("alice", {"cancel", "stop"});
  ASSERT_EQ(cancelled.status, 0) << cancelled.text;
  EXPECT_NE(cancelled.text.find("cancel requested"), std::string::npos) << cancelled.text;
  auto run = client.get(agentruns, ns->name(), "stop");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ((*run)["spec"]["cancel"], true);
  auto done = waitRun(waiting, [](const json& o) { return phaseOf(o) == "Cancelled"; });
  EXPECT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
}

TEST_F(PluginE2E, StatusShowsTheEventsOfThisRunNotOfADeletedNamesake) {
  // A run named "again" is cancelled (a Cancelled Event about it), deleted and created anew.
  auto waiting = awaitingApproval("again");
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  ASSERT_EQ(plugin("alice", {"cancel", "again"}).status, 0);
  ASSERT_FALSE(waitRun(waiting, [](const json& o) { return phaseOf(o) == "Cancelled"; }).is_null());
  ASSERT_TRUE(eventually([&] { return plugin("alice", {"status", "again"}).text.find("Cancelled") != std::string::npos; },
                         std::chrono::seconds(20), std::chrono::milliseconds(500)))
      << "the first run's Cancelled Event";
  ASSERT_TRUE(client.remove(agentruns, ns->name(), "again").ok());
  ASSERT_TRUE(eventually([&] {
    auto gone = client.get(agentruns, ns->name(), "again");
    return !gone && gone.error().code == 404;
  }, std::chrono::seconds(30)));
  auto again = awaitingApproval("again", "again-2");
  ASSERT_FALSE(again.is_null()) << testing::PrintToString(op->lines());
  auto shown = plugin("alice", {"status", "again"});
  ASSERT_EQ(shown.status, 0) << shown.text;
  EXPECT_NE(shown.text.find("Phase:         AwaitingApproval"), std::string::npos) << shown.text;
  EXPECT_EQ(shown.text.find("Cancelled"), std::string::npos) << "an Event of the deleted namesake is shown:\n" << shown.text;
}

TEST_F(PluginE2E, ListWatchCompletionAndMachineReadableOutput) {
  auto waiting = awaitingApproval("seen");
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  const std::string uid = waiting["metadata"]["uid"];

  // list: the CRD's printer columns, rendered by the API server.
  auto listed = plugin("alice", {"list"});
  ASSERT_EQ(listed.status, 0) << listed.text;
  EXPECT_NE(listed.text.find("NAME"), std::string::npos) << listed.text;
  EXPECT_NE(listed.text.find("PHASE"), std::string::npos) << listed.text;
  EXPECT_EQ(listed.text.find("REPOSITORY"), std::string::npos) << "priority 1 columns are not shown:\n" << listed.text;
  EXPECT_NE(listed.text.find("AwaitingApproval"), std::string::npos) << listed.text;
  auto as_json = plugin("alice", {"list", "-o", "json"});
  ASSERT_EQ(as_json.status, 0) << as_json.text;
  auto list = json::parse(as_json.text, nullptr, false);
  ASSERT_TRUE(list.is_object()) << as_json.text;
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["metadata"]["uid"], uid);
  // -A needs list in every namespace: alice has it only in her own; the error says so.
  auto everywhere = plugin("alice", {"list", "-A"});
  EXPECT_EQ(everywhere.status, 1) << everywhere.text;
  EXPECT_NE(everywhere.text.find("cannot list AgentRuns in any namespace"), std::string::npos) << everywhere.text;

  // status -o json|yaml: the run and its Events.
  auto status = plugin("alice", {"status", "seen", "-o", "json"});
  ASSERT_EQ(status.status, 0) << status.text;
  auto doc = json::parse(status.text, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << status.text;
  EXPECT_EQ(doc["run"]["metadata"]["uid"], uid);
  EXPECT_EQ(doc["run"]["status"]["phase"], "AwaitingApproval");
  ASSERT_TRUE(doc["events"].is_array());
  for (const auto& e : doc["events"]) EXPECT_EQ(e["regarding"]["uid"], uid);
  auto yaml = plugin("alice", {"status", "seen", "-o", "yaml"});
  ASSERT_EQ(yaml.status, 0) << yaml.text;
  YAML::Node node = YAML::Load(yaml.text);
  EXPECT_EQ(node["run"]["metadata"]["uid"].as<std::string>(), uid);

  // Completion: run names from the API server, as kubectl's plugin completion expects them.
  auto completed = plugin("alice", {"__complete", "status", "se"});
  EXPECT_EQ(completed.status, 0);
  EXPECT_EQ(completed.text, "seen\n:4\n");
  auto script = plugin("alice", {"completion", "bash"});
  ASSERT_EQ(script.status, 0);
  const std::string file = testing::TempDir() + "paddock-completion-" + randomSuffix() + ".bash";
  { std::ofstream(file) << script.text; }
  Process syntax({"/bin/bash", "-n", file});
  EXPECT_EQ(syntax.wait(std::chrono::seconds(10)), 0) << testing::PrintToString(syntax.lines());
  std::filesystem::remove(file);

  // watch: a line per phase until the run ends; exit 3 because it did not succeed.
  std::string bin = (std::filesystem::path(env("PADDOCK_OPERATOR_BIN")).parent_path() / "kubectl-paddock").string();
  Process watch({bin, "--kubeconfig", env("PADDOCK_E2E_CLUSTER_DIR") + "/user-alice.kubeconfig", "-n", ns->name(), "watch", "seen"});
  ASSERT_FALSE(watch.waitForLine([](const std::string& l) { return l.find("AwaitingApproval") != std::string::npos; },
                                 std::chrono::seconds(20)).empty());
  ASSERT_EQ(plugin("alice", {"cancel", "seen"}).status, 0);
  EXPECT_EQ(watch.wait(std::chrono::seconds(60)), 3) << testing::PrintToString(watch.lines());
  EXPECT_NE(watch.lines().back().find("Cancelled"), std::string::npos) << testing::PrintToString(watch.lines());
}

TEST_F(PluginE2E, AUserWhoMayNotCreateApprovalsGetsAClearError) {
  auto waiting = awaitingApproval("guarded");
  ASSERT_FALSE(waiting.is_null()) << testing::PrintToString(op->lines());
  auto refused = plugin("eve", {"approve", "guarded", "--stage", "pr"});
  EXPECT_EQ(refused.status, 1) << refused.text;
  EXPECT_NE(refused.text.find("User \"eve\" cannot create resource \"agentapprovals\""), std::string::npos) << refused.text;
  EXPECT_NE(refused.text.find("eve needs a Role granting create on agentapprovals.paddock.dev"), std::string::npos) << refused.text;
  auto listed = client.list(agentapprovals, ns->name());
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->items.empty());

  // A stage the run does not ask for, and a missing run, are named before anything is created.
  auto wrong = plugin("bob", {"approve", "guarded", "--stage", "deploy"});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.text.find("has no gated stage \"deploy\""), std::string::npos) << wrong.text;
  auto missing = plugin("bob", {"status", "nosuchrun"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.text.find("AgentRun " + ns->name() + "/nosuchrun not found"), std::string::npos) << missing.text;
}

}  // namespace
}  // namespace paddock::e2e
