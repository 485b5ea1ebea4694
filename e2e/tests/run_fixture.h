// The fixture of the AgentRun e2e tests: a team's policy (the sample's, with a test's changes), a
// namespace that enforces PSA restricted, paddock-operator as a process, and helpers to create
// runs, wait for them on a watch and play the agent's exit through kwok.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {

class RunE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    team = "team-" + randomSuffix();
    ns = std::make_unique<TempNamespace>(*rest, "runs", json{{"paddock.dev/team", team},
                                                            {"pod-security.kubernetes.io/enforce", "restricted"}});
    json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
    policy["metadata"] = {{"name", team}};
    policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
    policy["spec"].merge_patch(policyChanges());
    auto p = client.create(kube::resources::agentpolicies, "", policy);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    op = startOperator();
    ASSERT_TRUE(reconciling(*op))
        << testing::PrintToString(op->lines());
  }
  std::unique_ptr<Process> startOperator() {
    std::vector<std::string> argv = {env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"),
                                     "--listen-address", "127.0.0.1:0", "--leader-election-namespace", ns->name(),
                                     "--pending-deadline", "3s"};
    for (auto& a : operatorArgs()) argv.push_back(a);
    return std::make_unique<Process>(argv);
  }
  void TearDown() override {
    if (op) {
      stopOperator(*op);
    }
    client.remove(kube::resources::agentpolicies, "", team).ok();
    ns.reset();
  }

  // What a test changes in the sample policy (set before the operator starts, so its cache has it).
  virtual json policyChanges() { return json::object(); }
  // Flags a test adds to the operator's.
  virtual std::vector<std::string> operatorArgs() { return {}; }

  json create(const std::string& name, json spec_changes = json::object()) {
    json run = loadYaml(repoPath("crds/samples/run.yaml"));
    run["metadata"] = {{"name", name}};
    run["spec"]["idempotencyKey"] = name;  // a key of its own unless the test sets one
    run["spec"].merge_patch(spec_changes);
    auto r = client.create(kube::resources::agentruns, ns->name(), run);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? *r : json();
  }
  // Waits, on a watch, for the run to satisfy `done`.
  json waitRun(const json& created, const std::function<bool(const json&)>& done) {
    return watchUntil(*rest, kube::resources::agentruns.path(ns->name()) + "?fieldSelector=metadata.name%3D" +
                                 created["metadata"]["name"].get<std::string>(),
                      created["metadata"]["resourceVersion"], [&](const std::string&, const json& o) { return done(o); },
                      std::chrono::seconds(60));
  }
  void agentExits(const std::string& run, int code) {
    auto r = client.mergePatch(kube::resources::pods, ns->name(), run + "-agent",
                               {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", std::to_string(code)}}}}}});
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  std::vector<std::string> eventReasons(const std::string& run) {
    std::vector<std::string> out;
    auto list = client.list(kube::resources::events, ns->name(), {.field_selector = "regarding.name=" + run});
    if (list) {
      for (const auto& e : list->items) out.push_back(e.value("reason", ""));
    }
    return out;
  }

  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, {.qps = 0}};
  std::string team;
  std::unique_ptr<TempNamespace> ns;
  std::unique_ptr<Process> op;
};

}  // namespace paddock::e2e
