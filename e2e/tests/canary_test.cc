// No secret value ever leaves its Secret: a canary placed in every Secret the run's policy mounts
// must not appear in the audit store, the operator's logs, Events, or any status Paddock writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SecretCanary, NeverAppearsInTheAuditStoreLogsEventsOrStatus) {
  const std::string canary = "sk-ant-canary-" + randomSuffix() + randomSuffix();
  auto rest = adminClient();
  kube::Client client{*rest, {.qps = 0}};
  std::string team = "canary-" + randomSuffix();
  TempNamespace ns(*rest, "canary", json{{"paddock.dev/team", team}, {"pod-security.kubernetes.io/enforce", "restricted"}});
  // Every Secret the sample policy names, each holding the canary.
  json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
  for (const auto& s : policy["spec"]["secrets"]) {
    json secret = {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", s["secretName"]}}},
                   {"stringData", {{s["key"].get<std::string>(), canary}}}};
    auto r = request(*rest, http::Method::Post, "/api/v1/namespaces/" + ns.name() + "/secrets", secret);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  // A run the operator refuses: created before its namespace has a policy (the API server checks a
  // run against its policy when it is applied), so the operator's own admission refuses it.
  json refused = loadYaml(repoPath("crds/samples/run.yaml"));
  refused["metadata"] = {{"name", "refused"}};
  refused["spec"]["idempotencyKey"] = "refused";
  refused["spec"]["image"] = "docker.io/evil/agent:1";
  ASSERT_TRUE(client.create(kube::resources::agentruns, ns.name(), refused).ok());
  policy["metadata"] = {{"name", team}};
  policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
  ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", policy).ok());

  std::string audit_dir = testing::TempDir() + "canary-audit-" + randomSuffix();
  Process op({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address",
              "127.0.0.1:0", "--leader-election-namespace", ns.name(), "--audit-store", audit_dir, "--log-level", "debug",
              "--prometheus-url", env("PADDOCK_E2E_PROMETHEUS_URL"), "--budget-interval", "1s"});
  ASSERT_TRUE(reconciling(op))
      << testing::PrintToString(op.lines());

  // A run that goes through (the refused one is there already).
  json run = loadYaml(repoPath("crds/samples/run.yaml"));
  run["metadata"] = {{"name", "ok"}};
  auto created = client.create(kube::resources::agentruns, ns.name(), run);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto phase = [](const json& o) { return o.value(json::json_pointer("/status/phase"), std::string()); };
  auto running = watchUntil(*rest, kube::resources::agentruns.path(ns.name()) + "?fieldSelector=metadata.name%3Dok",
                            (*created)["metadata"]["resourceVersion"],
                            [&](const std::string&, const json& o) { return phase(o) == "Running"; }, std::chrono::seconds(60));
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op.lines());
  ASSERT_TRUE(client.mergePatch(kube::resources::pods, ns.name(), "ok-agent",
                                {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", "0"}}}}}}).ok());
  ASSERT_FALSE(watchUntil(*rest, kube::resources::agentruns.path(ns.name()) + "?fieldSelector=metadata.name%3Dok",
                          running["metadata"]["resourceVersion"],
                          [&](const std::string&, const json& o) { return phase(o) == "Succeeded"; }, std::chrono::seconds(60))
                   .is_null());
  // The agent's secret is mounted by name: the pod spec carries names, never the value.
  auto pod = client.get(kube::resources::pods, ns.name(), "ok-agent");
  ASSERT_TRUE(pod.ok());
  EXPECT_NE(pod->dump().find("anthropic-api-key"), std::string::npos);
  EXPECT_EQ(pod->dump().find(canary), std::string::npos);
  op.signal(SIGTERM);
  ASSERT_EQ(op.wait(std::chrono::seconds(20)), 0);

  // Search everything Paddock wrote.
  std::string audit;
  for (const auto& f : std::filesystem::recursive_directory_iterator(audit_dir)) {
    if (f.is_regular_file()) audit += slurp(f.path());
  }
  EXPECT_NE(audit.find("\"SecretMounted\""), std::string::npos) << "the audit store should record the mount";
  EXPECT_NE(audit.find("anthropic-api-key"), std::string::npos);
  EXPECT_EQ(audit.find(canary), std::string::npos) << "a secret value is in the audit store";
  std::string logs;
  for (const auto& l : op.lines()) logs += l + "\n";
  EXPECT_NE(logs.find("run status"), std::string::npos) << "the search needs the operator's logs";
  EXPECT_EQ(logs.find(canary), std::string::npos) << "a secret value is in the operator's logs";
  auto events = client.list(kube::resources::events, ns.name());
  ASSERT_TRUE(events.ok());
  EXPECT_FALSE(events->items.empty());
  for (const auto& e : events->items) EXPECT_EQ(e.dump().find(canary), std::string::npos) << e.dump();
  auto runs = client.list(kube::resources::agentruns, ns.name());
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->items.size(), 2u);
  for (const auto& r : runs->items) EXPECT_EQ(r.dump().find(canary), std::string::npos) << r.dump();
  auto configmaps = client.list(kube::resources::configmaps, ns.name());
  ASSERT_TRUE(configmaps.ok());
  for (const auto& c : configmaps->items) EXPECT_EQ(c.dump().find(canary), std::string::npos) << c.dump();
  client.remove(kube::resources::agentpolicies, "", team).ok();
  std::filesystem::remove_all(audit_dir);
}

}  // namespace
}  // namespace paddock::e2e
