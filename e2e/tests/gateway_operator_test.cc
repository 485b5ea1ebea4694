// The operator's side of paddock-gateway on a real API server (kwok plays the pods): a policy
// with spec.gateway gets its namespace a gateway (ConfigMap, Deployment, Service, NetworkPolicy),
// each run a credential Secret whose hash alone the run's status and the gateway's configuration
// hold, and an agent pod that reaches the model and the outside only through the gateway; the
// policy's status says where its gateways are ready.
#include <gtest/gtest.h>

#include "controllers/gateway.h"
#include "e2e/tests/run_fixture.h"
#include "e2e/tests/support.h"
#include "operator/audit/blob.h"
#include "operator/common/json.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {

std::set<std::string> secretsMounted(const json& pod_spec) {
  std::set<std::string> out;
  for (const auto& v : pod_spec.value("volumes", json::array())) {
    if (v.contains("secret")) out.insert(v["secret"].value("secretName", ""));
  }
  return out;
}

// The runs the gateway's configuration serves, by name -> credential hash.
std::map<std::string, std::string> servedRuns(const json& config_map) {
  std::map<std::string, std::string> out;
  auto text = config_map.value(json::json_pointer("/data/config.yaml"), std::string());
  if (text.empty()) return out;
  for (const auto& r : json::parse(text).value("runs", json::array())) out[r.value("name", "")] = r.value("tokenSHA256", "");
  return out;
}

class GatewayRunE2E : public RunE2E {
  json policyChanges() override {
    return json::parse(R"({
      "egress": [{"host": "api.anthropic.com", "ports": [443]}, {"host": "github.com", "ports": [443]},
                 {"cidr": "140.82.112.0/20", "ports": [443]}],
      "gateway": {"modelKey": {"secretName": "anthropic-api-key", "key": "api-key"},
                  "prices": {"claude-sonnet-4-5": {"input": "3", "output": "15", "cacheRead": "0.30", "cacheWrite": "3.75"}}}
    })");
  }
  std::vector<std::string> operatorArgs() override {
    return {"--gateway-image", "registry.example.com/platform/paddock-operator:e2e", "--gateway-resync", "1s", "--log-level", "debug"};
  }
};

TEST_F(GatewayRunE2E, TheNamespaceGetsItsGatewayAndTheRunACredentialWhoseHashAloneIsRecorded) {
  auto run = create("gw");
  auto issued = waitRun(run, [](const json& o) {
    return !o.value(json::json_pointer("/status/gateway/credentialSHA256"), std::string()).empty();
  });
  ASSERT_FALSE(issued.is_null()) << testing::PrintToString(op->lines());
  const std::string sha = issued["status"]["gateway"]["credentialSHA256"];
  const std::string secret_name = issued["status"]["gateway"]["credentialSecret"];
  EXPECT_EQ(secret_name, "gw-gateway-" + sha.substr(0, 10));
  EXPECT_EQ(issued["status"]["gateway"]["budget"], json({{"tokens", 100000}, {"costUSD", "1"}})) << "the run's own budget";

  // The Secret holds the token whose SHA-256 the status records; the status never holds the token.
  auto secret = client.get(kube::resources::secrets, ns->name(), secret_name);
  ASSERT_TRUE(secret.ok()) << secret.error().describe();
  const std::string token = base64Decode(secret->value(json::json_pointer("/data/credential"), std::string()));
  ASSERT_EQ(token.size(), 64u);
  EXPECT_EQ(audit::blobHash(token), "sha256:" + sha);
  EXPECT_EQ((*secret)["metadata"]["ownerReferences"][0]["uid"], issued["metadata"]["uid"]) << "goes with the run";
  EXPECT_EQ(issued.dump().find(token), std::string::npos);

  // The agent pod: the gateway's address and the credential, never the model key.
  auto pod = watchUntil(*rest, kube::resources::pods.path(ns->name()) + "?fieldSelector=metadata.name%3Dgw-agent",
                        issued["metadata"]["resourceVersion"],
                        [](const std::string& type, const json&) { return type == "ADDED"; }, std::chrono::seconds(60));
  ASSERT_FALSE(pod.is_null()) << testing::PrintToString(op->lines());
  auto mounted = secretsMounted(pod["spec"]);
  EXPECT_EQ(mounted.count("anthropic-api-key"), 0u) << pod["spec"]["volumes"].dump();
  EXPECT_EQ(mounted.count(secret_name), 1u);
  EXPECT_EQ(pod["spec"]["initContainers"][0]["name"], "gateway-credential");
  bool base_url = false;
  for (const auto& e : pod["spec"]["containers"][0]["env"]) {
    base_url |= e.value("name", "") == "ANTHROPIC_BASE_URL" && e.value("value", "") == "http://paddock-gateway:8080";
  }
  EXPECT_TRUE(base_url) << pod["spec"]["containers"][0]["env"].dump();

  // The namespace's gateway: its configuration serves the run by hash. The four objects are
  // applied in order (configuration first, the Deployment that reads it after), so wait on the last.
  EXPECT_TRUE(eventually([&] {
    auto cm = client.get(kube::resources::configmaps, ns->name(), "paddock-gateway");
    return cm.ok() && servedRuns(*cm)["gw"] == sha &&
           client.get(kube::resources::deployments, ns->name(), "paddock-gateway").ok();
  }, std::chrono::seconds(30))) << testing::PrintToString(op->lines());
  auto cm = client.get(kube::resources::configmaps, ns->name(), "paddock-gateway");
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm->dump().find(token), std::string::npos);
  auto deployment = client.get(kube::resources::deployments, ns->name(), "paddock-gateway");
  ASSERT_TRUE(deployment.ok()) << deployment.error().describe();
  const json& gw_pod = (*deployment)["spec"]["template"]["spec"];
  EXPECT_EQ(secretsMounted(gw_pod), std::set<std::string>{"anthropic-api-key"});
  EXPECT_EQ(gw_pod["containers"][0]["image"], "registry.example.com/platform/paddock-operator:e2e");
  EXPECT_EQ(gw_pod["automountServiceAccountToken"], false);
  EXPECT_TRUE(client.get(kube::resources::services, ns->name(), "paddock-gateway").ok());
  EXPECT_TRUE(client.get(kube::resources::networkpolicies, ns->name(), "paddock-gateway").ok());
  // The team's NetworkPolicy lets the agent reach the gateway and DNS; the policy's egress CIDR is
  // the gateway's to allow (only the stages' endpoints stay, as before).
  auto team_np = client.get(kube::resources::networkpolicies, ns->name(), "paddock-" + team);
  ASSERT_TRUE(team_np.ok());
  EXPECT_EQ(team_np->dump().find("140.82.112.0/20"), std::string::npos) << (*team_np)["spec"].dump();
  EXPECT_NE(team_np->dump().find("\"paddock.dev/component\":\"gateway\""), std::string::npos) << (*team_np)["spec"].dump();

  auto running = waitRun(issued, [](const json& o) { return phaseOf(o) == "Running"; });
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(running, "HostEgressEnforced")["status"], "True");
  EXPECT_EQ(condition(running, "HostEgressEnforced")["reason"], "Gateway");
  // kwok completes the pod's init containers, the credential wait among them.
  auto live = waitRun(issued, [](const json& o) {
    auto c = condition(o, "GatewayCredentialLive");
    return c.is_object() && c.value("status", "") == "True";
  });
  ASSERT_FALSE(live.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(live, "GatewayCredentialLive")["reason"], "Live");

  // The policy's status: the namespace's gateway is ready (kube-controller-manager's Deployment
  // controller makes its pod, kwok runs it).
  const std::string ns_name = ns->name();
  auto policy = watchUntil(*rest, kube::resources::agentpolicies.path("") + "?fieldSelector=metadata.name%3D" + team, "",
                           [&](const std::string&, const json& o) {
                             auto c = condition(o, "GatewaysApplied");
                             return c.is_object() && c.value("status", "") == "True" &&
                                    c.value("message", "").find(ns_name) != std::string::npos;
                           },
                           std::chrono::seconds(90));
  ASSERT_FALSE(policy.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(condition(policy, "GatewaysApplied")["reason"], "Available");

  // A second run: the namespace's gateway serves both.
  auto second = create("gw2");
  ASSERT_FALSE(waitRun(second, [](const json& o) { return phaseOf(o) == "Running"; }).is_null()) << testing::PrintToString(op->lines());
  ASSERT_TRUE(eventually([&] {
    auto c = client.get(kube::resources::configmaps, ns->name(), "paddock-gateway");
    return c.ok() && servedRuns(*c).size() == 2;
  }, std::chrono::seconds(30))) << testing::PrintToString(op->lines());

  // An edit of the gateway's Deployment (another image, no replica) is put back within the
  // resync period, with a Warning that names the fields.
  auto edited = client.mergePatch(kube::resources::deployments, ns->name(), "paddock-gateway",
                                  json::parse(R"({"spec": {"replicas": 0, "template": {"spec": {"containers": [
                                    {"name": "gateway", "image": "evil.example.com/gateway:1"}]}}}})"));
  ASSERT_TRUE(edited.ok()) << edited.error().describe();
  auto restored = watchUntil(*rest, kube::resources::deployments.path(ns->name()) + "?fieldSelector=metadata.name%3Dpaddock-gateway",
                             (*edited)["metadata"]["resourceVersion"], [](const std::string&, const json& o) {
                               return o.value(json::json_pointer("/spec/replicas"), -1) == 1 &&
                                      stringAt(o, "/spec/template/spec/containers/0/image") ==
                                          "registry.example.com/platform/paddock-operator:e2e";
                             },
                             std::chrono::seconds(30));
  ASSERT_FALSE(restored.is_null()) << testing::PrintToString(op->lines());
  json warning;
  EXPECT_TRUE(eventually([&] {
    auto list = client.list(kube::resources::events, ns->name(), {.field_selector = "regarding.name=paddock-gateway"});
    for (const auto& e : list ? list->items : std::vector<json>{}) {
      if (e.value("reason", "") == "GatewayObjectRestored") warning = e;
    }
    return warning.is_object();
  }, std::chrono::seconds(30)));
  EXPECT_EQ(warning.value("type", ""), "Warning");
  EXPECT_NE(warning.value("note", "").find("spec.replicas"), std::string::npos) << warning.dump();
  EXPECT_NE(warning.value("note", "").find("spec.template.spec.containers[0].image"), std::string::npos) << warning.dump();
  // Looked at again and again, a gateway as planned is not written again.
  auto applies = [&](const std::string& msg, const std::string& kind) {
    int n = 0;
    for (const auto& line : op->lines()) {
      json l = json::parse(line, nullptr, false);
      n += l.is_object() && l.value("msg", "") == msg && l.value("kind", "") == kind;
    }
    return n;
  };
  const std::string applied = "applied the namespace's gateway object", replaced = "restored an edited gateway object";
  const int deployment_applies = applies(applied, "Deployment");
  EXPECT_EQ(applies(replaced, "Deployment"), 1) << "replaced once";
  const std::string generation = std::to_string(restored["metadata"]["generation"].get<int64_t>());
  EXPECT_EQ(deployment_applies, 1) << "only its creation; the restore is logged as such";
  auto resyncs = [&] {
    int n = 0;
    for (const auto& line : op->lines()) {
      json l = json::parse(line, nullptr, false);
      n += l.is_object() && l.value("msg", "") == "looked at the namespace's gateway" && l.value("namespace", "") == ns->name();
    }
    return n;
  };
  std::map<std::string, std::pair<int, int>> writes;  // kind -> applies, replacements before the resyncs
  for (const char* kind : {"ConfigMap", "NetworkPolicy", "Service", "Deployment"}) writes[kind] = {applies(applied, kind), applies(replaced, kind)};
  const int looked = resyncs();
  ASSERT_TRUE(eventually([&] { return resyncs() >= looked + 3; }, std::chrono::seconds(30))) << "no resync";
  for (const auto& [kind, before] : writes) {
    EXPECT_EQ(applies(applied, kind), before.first) << kind << " applied again";
    EXPECT_EQ(applies(replaced, kind), before.second) << kind << " found edited again";
  }
  auto now = client.get(kube::resources::deployments, ns->name(), "paddock-gateway");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(std::to_string((*now)["metadata"]["generation"].get<int64_t>()), generation);
  EXPECT_EQ((*now)["metadata"]["uid"], restored["metadata"]["uid"]) << "made again after the restore";

  // A finished run leaves the configuration: its credential no longer works.
  agentExits("gw", 0);
  auto done = waitRun(running, [](const json& o) { return phaseOf(o) == "Succeeded"; });
  ASSERT_FALSE(done.is_null());
  auto dropped = watchUntil(*rest, kube::resources::configmaps.path(ns->name()) + "?fieldSelector=metadata.name%3Dpaddock-gateway",
                            cm->value(json::json_pointer("/metadata/resourceVersion"), std::string()),
                            [](const std::string&, const json& o) { return servedRuns(o).count("gw") == 0; },
                            std::chrono::seconds(30));
  EXPECT_FALSE(dropped.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(servedRuns(dropped).count("gw2"), 1u);

  // The last run ends: the namespace's gateway goes, all four objects.
  agentExits("gw2", 0);
  ASSERT_FALSE(waitRun(second, [](const json& o) { return phaseOf(o) == "Succeeded"; }).is_null());
  auto gone = [&](const kube::Resource& r) {
    auto got = client.get(r, ns->name(), "paddock-gateway");
    return !got.ok() && got.error().code == 404;
  };
  EXPECT_TRUE(eventually([&] {
    return gone(kube::resources::deployments) && gone(kube::resources::configmaps) && gone(kube::resources::services) &&
           gone(kube::resources::networkpolicies);
  }, std::chrono::seconds(30))) << testing::PrintToString(op->lines());
}

}  // namespace
}  // namespace paddock::e2e
