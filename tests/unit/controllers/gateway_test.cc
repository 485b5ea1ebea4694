// paddock-gateway in a team's namespace, planned without a server (controllers/gateway.h): the
// objects, where the model key and the run's credential go, the agent pod's path through the
// gateway, and the reconcile's gateway steps.
#include "controllers/gateway.h"

#include <gtest/gtest.h>

#include <functional>

#include "controllers/reconcile.h"
#include "controllers/status.h"
#include "gateway/config.h"
#include "operator/common/json.h"
#include "tests/unit/controllers/plan_fixture.h"

namespace paddock::controllers {
namespace {

using nlohmann::json;

using plantest::all;
using plantest::kClock;
const std::string kHashA(64, 'a');
const std::string kHashB = std::string(63, '0') + "b";

json policySpec() {
  return json::parse(R"js({
      "namespaceSelector": {"matchLabels": {"paddock.dev/team": "payments"}},
      "images": {"default": "registry.example.com/payments/agent:2.1.4"},
      "model": {"pin": "claude-sonnet-4-5"},
      "egress": [{"cidr": "140.82.112.0/20", "ports": [443]}, {"host": "github.com", "ports": [443]},
                 {"host": "*.npmjs.org"}],
      "secrets": [{"secretName": "anthropic-api-key", "key": "api-key", "stages": ["agent"]},
                  {"secretName": "npm-token", "key": "token", "stages": ["agent"]}],
      "budgets": {"default": {"tokens": 1000, "costUSD": "1", "wallClock": "45m"}, "checkpointPercent": 60},
      "gateway": {"modelKey": {"secretName": "anthropic-api-key", "key": "api-key"},
                  "upstream": "https://api.anthropic.com",
                  "prices": {"claude-sonnet-4-5": {"input": "3", "output": "15", "cacheRead": "0.30", "cacheWrite": "3.75"}}}
    })js");
}

AgentPolicy policy(json spec = policySpec()) {
  auto p = parseAgentPolicy({{"metadata", {{"name", "payments"}}}, {"spec", spec}});
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

json runObject(const std::string& name = "fix", json status = json::object()) {
  json o = {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"},
            {"metadata", {{"name", name}, {"namespace", "payments"}, {"uid", name + "-uid"}, {"generation", 1},
                          {"creationTimestamp", "2026-12-07T09:59:00Z"}, {"resourceVersion", "7"}}},
            {"spec", {{"task", "Fix it."}, {"repository", {{"url", "https://github.com/acme/payments"}}}}}};
  if (!status.empty()) o["status"] = status;
  return o;
}

AgentRun run(json status = json::object()) {
  auto r = parseAgentRun(runObject("fix", status));
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.value();
}

json gatewayStatusOf(const std::string& sha, const std::string& phase = "Running") {
  return {{"phase", phase}, {"gateway", {{"credentialSHA256", sha}, {"credentialSecret", "fix-gateway-" + sha.substr(0, 10)},
                                         {"budget", {{"tokens", 1000}, {"costUSD", "1.00"}}}}}};
}

const json* volumeNamed(const json& pod_spec, const std::string& name) {
  for (const auto& v : pod_spec["volumes"]) {
    if (v.value("name", "") == name) return &v;
  }
  return nullptr;
}

json envFrom(const json& container, const std::string& name) {
  for (const auto& e : container.value("env", json::array())) {
    if (e.value("name", "") == name) return e.value("valueFrom", json());
  }
  return nullptr;
}

std::string envOf(const json& container, const std::string& name) {
  for (const auto& e : container.value("env", json::array())) {
    if (e.value("name", "") == name) return e.value("value", "");
  }
  return "";
}

// Every secretName a pod spec mounts.
std::set<std::string> secretsMounted(const json& pod_spec) {
  std::set<std::string> out;
  for (const auto& v : pod_spec.value("volumes", json::array())) {
    if (v.contains("secret")) out.insert(v["secret"].value("secretName", ""));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The namespace's objects

TEST(GatewayObjects, FourObjectsConfigurationFirstEachWithItsHash) {
  auto objects = planGatewayObjects("payments", policy(), {{"fix", kHashA, 1000, 100}}, PlanOptions{});
  std::vector<std::string> kinds;
  for (const auto& o : objects) {
    kinds.push_back(o["kind"]);
    EXPECT_EQ(stringAt(o, "/metadata/name"), "paddock-gateway");
    EXPECT_EQ(stringAt(o, "/metadata/namespace"), "payments");
    EXPECT_EQ(specHashOf(o).size(), 16u) << o["kind"];
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"ConfigMap", "NetworkPolicy", "Service", "Deployment"}));
  // The hash follows the content: another run changes the ConfigMap's, nothing else's.
  auto more = planGatewayObjects("payments", policy(), {{"fix", kHashA, 1000, 100}, {"other", kHashB, {}, {}}}, PlanOptions{});
  EXPECT_NE(specHashOf(more[0]), specHashOf(objects[0]));
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(specHashOf(more[i]), specHashOf(objects[i])) << more[i]["kind"];
  EXPECT_EQ(planGatewayObjects("payments", policy(), {{"fix", kHashA, 1000, 100}}, PlanOptions{}), objects) << "deterministic";
}

// The objects as the API server returns them: the plan with the server's defaults added.
std::map<std::string, json> served(const std::vector<json>& planned) {
  std::map<std::string, json> out;
  for (json o : planned) {
    o["metadata"]["uid"] = "uid-" + o["kind"].get<std::string>();
    o["metadata"]["resourceVersion"] = "9";
    o["metadata"]["managedFields"] = json::array({{{"manager", "paddock-operator"}}});
    if (o["kind"] == "Deployment") {
      o["spec"]["revisionHistoryLimit"] = 10;
      o["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst";
      o["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log";
      o["status"] = {{"replicas", 1}, {"availableReplicas", 1}};
    }
    if (o["kind"] == "Service") o["spec"]["clusterIP"] = "198.19.0.12";
    // Fields at their zero value are left out (omitempty), as the server returns them.
    if (o["kind"] == "Deployment") {
      for (const char* f : {"hostIPC", "hostNetwork", "hostPID"}) {
        EXPECT_EQ(o["spec"]["template"]["spec"].value(f, true), false) << f;
        o["spec"]["template"]["spec"].erase(f);
      }
    }
    out[o["kind"]] = o;
  }
  return out;
}

std::vector<std::string> kindsOf(const NamespaceGatewayPlan& plan, GatewayWrite::Op op) {
  std::vector<std::string> out;
  for (const auto& w : plan.writes) {
    if (w.op == op) out.push_back(w.kind);
  }
  return out;
}

TEST(NamespaceGateway, AppliesWhatIsMissingThenNothingWhileTheServerHoldsThePlan) {
  const std::vector<GatewayRun> runs = {{"fix", kHashA, 1000, 100}};
  auto p = policy();
  auto plan = planNamespaceGateway("payments", &p, runs, {}, PlanOptions{});
  EXPECT_EQ(kindsOf(plan, GatewayWrite::Op::Apply), (std::vector<std::string>{"ConfigMap", "NetworkPolicy", "Service", "Deployment"}));
  for (const auto& w : plan.writes) EXPECT_EQ(w.reason, "Missing");
  EXPECT_TRUE(plan.watch);
  auto live = served(planGatewayObjects("payments", p, runs, PlanOptions{}));
  auto steady = planNamespaceGateway("payments", &p, runs, live, PlanOptions{});
  EXPECT_TRUE(steady.writes.empty()) << "the server's defaults are no drift: " << steady.writes[0].kind << " "
                                     << testing::PrintToString(steady.writes[0].drift);
  EXPECT_TRUE(steady.watch) << "looks again, to undo edits";
  // A new run: only the configuration changes.
  auto more = planNamespaceGateway("payments", &p, {{"fix", kHashA, 1000, 100}, {"other", kHashB, {}, {}}}, live, PlanOptions{});
  ASSERT_EQ(more.writes.size(), 1u);
  EXPECT_EQ(more.writes[0].kind, "ConfigMap");
  EXPECT_EQ(more.writes[0].reason, "PlanChanged");
}

TEST(NamespaceGateway, AnEditedObjectIsPutBackNamingTheFields) {
  const std::vector<GatewayRun> runs = {{"fix", kHashA, 1000, 100}};
  auto p = policy();
  auto live = served(planGatewayObjects("payments", p, runs, PlanOptions{}));
  live["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil.example.com/gateway:1";
  live["Deployment"]["spec"]["replicas"] = 0;
  live["NetworkPolicy"]["spec"]["ingress"].push_back({{"from", json::array({{{"ipBlock", {{"cidr", "0.0.0.0/0"}}}}})}});
  live["ConfigMap"]["metadata"]["labels"].erase("paddock.dev/component");
  auto plan = planNamespaceGateway("payments", &p, runs, live, PlanOptions{});
  std::map<std::string, std::vector<std::string>> drift;
  for (const auto& w : plan.writes) {
    EXPECT_EQ(w.reason, "Edited") << w.kind;
    drift[w.kind] = w.drift;
  }
  EXPECT_EQ(drift["Deployment"], (std::vector<std::string>{"spec.replicas", "spec.template.spec.containers[0].image"}));
  EXPECT_EQ(drift["NetworkPolicy"], std::vector<std::string>{"spec.ingress"});
  EXPECT_EQ(drift["ConfigMap"], std::vector<std::string>{"metadata.labels.paddock.dev/component"});
  EXPECT_FALSE(drift.count("Service"));
}

TEST(NamespaceGateway, WhatAnotherFieldManagerAddedMakesTheObjectReplaced) {
  const std::vector<GatewayRun> runs = {{"fix", kHashA, 1000, 100}};
  auto p = policy();
  auto live = served(planGatewayObjects("payments", p, runs, PlanOptions{}));
  // Others' writes that are theirs to make: the Deployment's status and revision annotation.
  live["Deployment"]["metadata"]["managedFields"].push_back(
      {{"manager", "kube-controller-manager"}, {"operation", "Update"}, {"subresource", "status"},
       {"fieldsV1", json::parse(R"({"f:status": {"f:replicas": {}}})")}});
  live["Deployment"]["metadata"]["managedFields"].push_back(
      {{"manager", "kube-controller-manager"}, {"operation", "Update"},
       {"fieldsV1", json::parse(R"({"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}})")}});
  EXPECT_TRUE(planNamespaceGateway("payments", &p, runs, live, PlanOptions{}, "paddock-operator").writes.empty());
  // An init container added by someone else: no planned field differs, yet the object is theirs in part.
  live["Deployment"]["spec"]["template"]["spec"]["initContainers"] = {{{"name", "peek"}, {"image", "busybox"}}};
  live["Deployment"]["metadata"]["managedFields"].push_back(
      {{"manager", "kubectl-patch"}, {"operation", "Update"},
       {"fieldsV1", json::parse(R"({"f:spec": {"f:template": {"f:spec": {"f:initContainers": {}}}}})")}});
  auto plan = planNamespaceGateway("payments", &p, runs, live, PlanOptions{}, "paddock-operator");
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, "Deployment");
  EXPECT_EQ(plan.writes[0].reason, "Edited");
  EXPECT_EQ(plan.writes[0].drift, std::vector<std::string>{"managedFields: kubectl-patch"});
  EXPECT_EQ(plan.writes[0].replace_uid, "uid-Deployment") << "deleted by UID, then made again";
  EXPECT_EQ(foreignOwners(live["Deployment"], "kubectl-patch"), std::vector<std::string>{}) << "its own fields are not foreign";
}

TEST(NamespaceGateway, GoneOnceNoRunNeedsItOnlyWhatIsOurs) {
  auto p = policy();
  auto live = served(planGatewayObjects("payments", p, {{"fix", kHashA, 1000, 100}}, PlanOptions{}));
  live["Service"]["metadata"]["labels"] = {{"app", "someone-elses"}};  // not ours: left alone
  auto plan = planNamespaceGateway("payments", &p, {}, live, PlanOptions{});
  EXPECT_EQ(kindsOf(plan, GatewayWrite::Op::Delete), (std::vector<std::string>{"Deployment", "ConfigMap", "NetworkPolicy"}))
      << "the NetworkPolicy, which the operator caches, last";
  for (const auto& w : plan.writes) EXPECT_EQ(w.reason, "NoRuns");
  EXPECT_FALSE(plan.watch);
  EXPECT_TRUE(planNamespaceGateway("payments", &p, {}, {}, PlanOptions{}).writes.empty()) << "nothing there, nothing to do";
  // A policy without spec.gateway: the same.
  json spec = policySpec();
  spec.erase("gateway");
  auto plain = policy(spec);
  auto dropped = planNamespaceGateway("payments", &plain, {{"fix", kHashA, 1000, 100}}, live, PlanOptions{});
  EXPECT_EQ(kindsOf(dropped, GatewayWrite::Op::Delete).size(), 3u);
  EXPECT_EQ(dropped.writes[0].reason, "NoGateway");
  // Runs but no governing policy (deleted, or the namespace relabelled): the runs keep their gateway.
  auto orphaned = planNamespaceGateway("payments", nullptr, {{"fix", kHashA, 1000, 100}}, live, PlanOptions{});
  EXPECT_TRUE(orphaned.writes.empty());
  EXPECT_TRUE(orphaned.watch);
}

TEST(NamespaceGateway, AFinishedRunDropsOutOfTheConfiguration) {
  auto runs = gatewayRunsOf("payments", {std::make_shared<const json>(runObject("fix", gatewayStatusOf(kHashA, "Succeeded"))),
                                         std::make_shared<const json>(runObject("other", gatewayStatusOf(kHashB)))});
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].name, "other");
  auto p = policy();
  auto plan = planNamespaceGateway("payments", &p, runs, {}, PlanOptions{});
  ASSERT_FALSE(plan.writes.empty());
  json config = json::parse(plan.writes[0].object["data"]["config.yaml"].get<std::string>());
  ASSERT_EQ(config["runs"].size(), 1u) << config["runs"].dump();
  EXPECT_EQ(config["runs"][0]["name"], "other");
  EXPECT_EQ(config["runs"][0]["tokenSHA256"], kHashB);
}

TEST(NamespaceGateway, AStoppedRunIsNoLongerServedButKeepsTheGatewayForItsPrStage) {
  json stopped = gatewayStatusOf(kHashA, "AwaitingApproval");
  stopped["stages"] = json::array({{{"name", "agent"}, {"phase", "BudgetExceeded"}, {"partial", true}}, {{"name", "pr"}}});
  auto runs = gatewayRunsOf("payments", {std::make_shared<const json>(runObject("fix", stopped))});
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(runs[0].stopped);
  auto p = policy();
  auto plan = planNamespaceGateway("payments", &p, runs, {}, PlanOptions{});
  ASSERT_EQ(plan.writes.size(), 4u) << "the gateway stays: the pr stage reaches its forge through it";
  for (const auto& w : plan.writes) EXPECT_EQ(w.op, GatewayWrite::Op::Apply) << w.kind;
  json config = json::parse(plan.writes[0].object["data"]["config.yaml"].get<std::string>());
  EXPECT_TRUE(config["runs"].empty()) << "the stopped agent's credential is no longer served: " << config["runs"].dump();
  EXPECT_FALSE(gatewayRunOfObject(runObject("fix", gatewayStatusOf(kHashA)))->stopped);
}

TEST(GatewayObjects, TheConfigurationIsOneTheGatewayAccepts) {
  json cm = planGatewayConfigMap("payments", policy(), {{"zeta", kHashB, {}, {}}, {"fix", kHashA, 1000, 150}});
  auto parsed = gateway::parseConfig(cm["data"]["config.yaml"].get<std::string>());
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const auto& c = parsed.value();
  EXPECT_EQ(c.listen, "0.0.0.0:8080");
  EXPECT_EQ(c.pinned_model, "claude-sonnet-4-5");
  EXPECT_EQ(c.api_key_file, "/var/run/paddock/model-key/api-key");
  ASSERT_EQ(c.prices.count("claude-sonnet-4-5"), 1u);
  EXPECT_EQ(c.prices.at("claude-sonnet-4-5").output, 15000);  // nano-USD per token
  ASSERT_EQ(c.runs.size(), 2u);
  EXPECT_EQ(c.runs[0].name, "fix") << "sorted by name";
  EXPECT_EQ(c.runs[0].ns, "payments");
  EXPECT_EQ(c.runs[0].token_sha256, kHashA);
  EXPECT_EQ(c.runs[0].limits.tokens, 1000);
  EXPECT_EQ(c.runs[0].limits.cost_nano, 1'500'000'000);
  EXPECT_EQ(c.runs[1].limits, gateway::Limits{}) << "no cap recorded: none";
  ASSERT_EQ(c.egress.size(), 3u);
  const std::string text = cm.dump();
  EXPECT_EQ(text.find("\"api-key\":"), std::string::npos);
}

TEST(GatewayObjects, TheModelKeyIsMountedOnlyIntoTheGatewaysHardenedPod) {
  PlanOptions o;
  o.gateway_image = "registry.example.com/platform/paddock-operator:2.0";
  json d = planGatewayDeployment("payments", policy(), o);
  const json& pod = d["spec"]["template"]["spec"];
  EXPECT_EQ(d["spec"]["replicas"], 1) << "the ledger lives in one process";
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["enableServiceLinks"], false);
  ASSERT_EQ(pod["containers"].size(), 1u);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "registry.example.com/platform/paddock-operator:2.0");
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(c["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(secretsMounted(pod), std::set<std::string>{"anthropic-api-key"});
  const json* key = volumeNamed(pod, "model-key");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ((*key)["secret"]["items"][0]["key"], "api-key");
  EXPECT_EQ((*key)["secret"]["items"][0]["path"], "api-key");
  EXPECT_EQ((*key)["secret"]["defaultMode"], 0400);
  // The selector is the one the Service and the agents' NetworkPolicy name.
  json svc = planGatewayService("payments", policy());
  EXPECT_EQ(svc["spec"]["selector"], d["spec"]["selector"]["matchLabels"]);
  EXPECT_EQ(svc["spec"]["ports"][0]["port"], kGatewayPort);
}

TEST(GatewayObjects, TheGatewayIsReachableOnlyFromTheTeamsPodsAndTheScrape) {
  PlanOptions o;
  json np = planGatewayNetworkPolicy("payments", policy(), o);
  ASSERT_EQ(np["spec"]["ingress"].size(), 1u) << "no scrape configured: the team only";
  EXPECT_EQ(np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"][kLabelTeam], "payments");
  EXPECT_EQ(np["spec"]["ingress"][0]["ports"][0]["port"], kGatewayPort);
  o.scrape_namespace_labels = {{"kubernetes.io/metadata.name", "monitoring"}};
  np = planGatewayNetworkPolicy("payments", policy(), o);
  ASSERT_EQ(np["spec"]["ingress"].size(), 2u);
  EXPECT_EQ(np["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "monitoring");
}

// ---------------------------------------------------------------------------------------------
// The run's credential and its agent pod

TEST(GatewayCredential, AMalformedHashIsNeverServed) {
  EXPECT_TRUE(gatewayRunOf("fix", gatewayStatusOf(kHashA)));
  for (const json& bad : {json(std::string(63, 'a')), json(std::string(65, 'a')), json(std::string(64, 'A')),
                          json(std::string(63, 'a') + "g"), json(42), json(nullptr), json("")}) {
    json status = gatewayStatusOf(kHashA);
    status["gateway"]["credentialSHA256"] = bad;
    EXPECT_FALSE(gatewayRunOf("fix", status)) << bad.dump();
  }
  EXPECT_FALSE(gatewayRunOf("fix", json::object()));
  EXPECT_FALSE(gatewayRunOf("fix", {{"gateway", "x"}}));
  // The namespace's runs: malformed, finished and other namespaces' runs are left out.
  json malformed = gatewayStatusOf(kHashA);
  malformed["gateway"]["credentialSHA256"] = "not-a-hash";
  json other_ns = runObject("elsewhere", gatewayStatusOf(kHashA));
  other_ns["metadata"]["namespace"] = "billing";
  std::vector<kube::ObjectPtr> runs = {
      std::make_shared<const json>(runObject("b-live", gatewayStatusOf(kHashB))),
      std::make_shared<const json>(runObject("a-live", gatewayStatusOf(kHashA, "Pending"))),
      std::make_shared<const json>(runObject("done", gatewayStatusOf(kHashA, "Succeeded"))),
      std::make_shared<const json>(runObject("failed", gatewayStatusOf(kHashA, "BudgetExceeded"))),
      std::make_shared<const json>(runObject("bad", malformed)),
      std::make_shared<const json>(runObject("no-gateway", {{"phase", "Running"}})),
      std::make_shared<const json>(other_ns),
      nullptr};
  auto served = gatewayRunsOf("payments", runs);
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[0].name, "a-live");
  EXPECT_EQ(served[1].name, "b-live");
  EXPECT_EQ(served[1].tokens, 1000);
  EXPECT_EQ(served[1].cost_cents, 100);
}

TEST(GatewayCredential, TheSecretIsOwnedByTheRunAndNamedByItsHash) {
  AgentRun r = run();
  json s = planCredentialSecret(r, policy(), "the-token", kHashA);
  EXPECT_EQ(stringAt(s, "/metadata/name"), "fix-gateway-aaaaaaaaaa");
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["uid"], "fix-uid");
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["kind"], "AgentRun");
  EXPECT_EQ(s["stringData"][kCredentialKey], "the-token");
  json st = gatewayStatus(r, admit(r, policy()).effective, kHashA);
  EXPECT_EQ(st["credentialSecret"], "fix-gateway-aaaaaaaaaa");
  EXPECT_EQ(st["credentialSHA256"], kHashA);
  EXPECT_EQ(st.dump().find("the-token"), std::string::npos);
}

TEST(GatewayAgentPod, GetsTheGatewayAndTheCredentialButNeverTheKey) {
  AgentPolicy p = policy();
  AgentRun r = run(gatewayStatusOf(kHashA, "Pending"));
  ASSERT_EQ(r.gateway_credential_secret, "fix-gateway-aaaaaaaaaa");
  PlanOptions o;
  json pod = planAgentPod(r, p, admit(r, p).effective, o);
  const json& spec = pod["spec"];
  EXPECT_EQ(secretsMounted(spec), (std::set<std::string>{"npm-token", "fix-gateway-aaaaaaaaaa"}))
      << "the model key is the gateway's alone, though spec.secrets gives it to the agent stage";
  const json* agent = nullptr;
  for (const auto& c : spec["containers"]) {
    if (c["name"] == "agent") agent = &c;
  }
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(envOf(*agent, "ANTHROPIC_BASE_URL"), "http://paddock-gateway:8080");
  // The proxies carry the run's credential, from its own Secret (the gateway counts a refused
  // egress as the run's); nothing else comes from a Secret.
  const json proxy_from = {{"secretKeyRef", {{"name", "fix-gateway-aaaaaaaaaa"}, {"key", kProxyUrlKey}}}};
  EXPECT_EQ(envFrom(*agent, "HTTPS_PROXY"), proxy_from);
  EXPECT_EQ(envFrom(*agent, "http_proxy"), proxy_from);
  EXPECT_EQ(envOf(*agent, "NO_PROXY"), "paddock-gateway");
  EXPECT_EQ(envOf(*agent, "GIT_HTTP_PROXY_AUTHMETHOD"), "basic") << "git sends them without waiting for a 407";
  EXPECT_EQ(envOf(*agent, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"), "1");
  EXPECT_EQ(envOf(*agent, "PADDOCK_GATEWAY_CREDENTIAL_FILE"), "/var/run/paddock/gateway/credential");
  for (const auto& e : agent->value("env", json::array())) {
    if (e.contains("valueFrom")) EXPECT_EQ(e["valueFrom"], proxy_from) << e.dump();
    EXPECT_EQ(e.value("name", "").find("API_KEY"), std::string::npos) << e.dump();
  }
  bool mounted = false;
  for (const auto& m : (*agent)["volumeMounts"]) {
    if (m["name"] == "gateway-credential") mounted = m["mountPath"] == "/var/run/paddock/gateway" && m["readOnly"] == true;
  }
  EXPECT_TRUE(mounted);
  // Claude Code reads its API key from the credential file.
  json settings = json::parse(pod["metadata"]["annotations"][kAnnotationManagedSettings].get<std::string>());
  EXPECT_EQ(settings["apiKeyHelper"], "cat /var/run/paddock/gateway/credential");
  // The wait for the gateway comes first; the workspace clone goes through the proxy (the
  // sandbox's install reaches nothing).
  ASSERT_EQ(spec["initContainers"].size(), 3u);
  EXPECT_EQ(spec["initContainers"][0]["name"], "gateway-credential");
  EXPECT_EQ(spec["initContainers"][0]["image"], o.gateway_image);
  EXPECT_EQ(envOf(spec["initContainers"][0], "NO_PROXY"), "paddock-gateway") << "it asks the gateway directly";
  EXPECT_EQ(spec["initContainers"][1]["name"], "sandbox");
  EXPECT_EQ(envOf(spec["initContainers"][1], "HTTPS_PROXY"), "");
  EXPECT_EQ(spec["initContainers"][2]["name"], "workspace");
  EXPECT_EQ(envFrom(spec["initContainers"][2], "HTTPS_PROXY"), proxy_from);
  // Under the sandbox the agent may open TCP connections to the gateway's port alone (and DNS's).
  const json command = (*agent)["command"];
  std::vector<std::string> ports;
  for (size_t i = 0; i + 1 < command.size() && command[i] != "--"; ++i) {
    if (command[i] == "--connect-port") ports.push_back(command[i + 1]);
  }
  EXPECT_EQ(ports, (std::vector<std::string>{"53", "8080"})) << command.dump();
  EXPECT_NE(std::find(command.begin(), command.end(), "--restrict-tcp"), command.end());
}

TEST(GatewayStagePod, ThePrStageReachesItsForgeThroughTheGatewayAndDeployItsEndpointDirectly) {
  AgentPolicy p = policy();
  AgentRun r = run();
  json pr = planStagePod(r, p, StageSpec{.name = "pr"}, PlanOptions{});
  EXPECT_EQ(envOf(pr["spec"]["containers"][0], "HTTPS_PROXY"), "http://paddock-gateway:8080");
  EXPECT_EQ(envOf(pr["spec"]["containers"][0], "NO_PROXY"), "paddock-gateway");
  json deploy = planStagePod(r, p, StageSpec{.name = "deploy", .endpoint_url = "https://deploy.example:8443"}, PlanOptions{});
  EXPECT_EQ(envOf(deploy["spec"]["containers"][0], "HTTPS_PROXY"), "");
  json spec = policySpec();
  spec.erase("gateway");
  pr = planStagePod(r, policy(spec), StageSpec{.name = "pr"}, PlanOptions{});
  EXPECT_EQ(envOf(pr["spec"]["containers"][0], "HTTPS_PROXY"), "") << "without a gateway the NetworkPolicy's CIDRs apply";
}

TEST(GatewayAgentPod, WithoutAGatewayNothingChanges) {
  json spec = policySpec();
  spec.erase("gateway");
  AgentPolicy p = policy(spec);
  AgentRun r = run();
  json pod = planAgentPod(r, p, admit(r, p).effective, PlanOptions{});
  EXPECT_EQ(secretsMounted(pod["spec"]), (std::set<std::string>{"anthropic-api-key", "npm-token"}));
  EXPECT_EQ(pod.dump().find("paddock-gateway"), std::string::npos);
}

TEST(GatewayNetworkPolicy, TheAgentReachesOnlyTheGatewayAndTheClusterDns) {
  json np = planNetworkPolicy("payments", policy());
  const json& egress = np["spec"]["egress"];
  ASSERT_EQ(egress.size(), 2u) << egress.dump();
  EXPECT_EQ(egress[0]["to"][0]["podSelector"]["matchLabels"]["k8s-app"], "kube-dns");
  EXPECT_EQ(egress[1]["to"][0]["podSelector"]["matchLabels"][kLabelComponent], "gateway");
  EXPECT_EQ(egress[1]["ports"], json::array({{{"protocol", "TCP"}, {"port", kGatewayPort}}}));
  EXPECT_EQ(np.dump().find("ipBlock"), std::string::npos) << "the CIDR rules are the gateway's to enforce";
  EXPECT_FALSE(hostEgressUnenforced(policy()));
  json spec = policySpec();
  spec.erase("gateway");
  EXPECT_TRUE(hostEgressUnenforced(policy(spec)));
  EXPECT_NE(planNetworkPolicy("payments", policy(spec)).dump().find("140.82.112.0/20"), std::string::npos);
}

TEST(GatewayPolicy, ABadGatewaySpecNamesTheField) {
  json spec = policySpec();
  spec["gateway"]["modelKey"].erase("key");
  auto p = parseAgentPolicy({{"metadata", {{"name", "payments"}}}, {"spec", spec}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("spec.gateway.modelKey"), std::string::npos) << p.error().message;
  spec = policySpec();
  spec["gateway"]["prices"] = json::object();
  p = parseAgentPolicy({{"metadata", {{"name", "payments"}}}, {"spec", spec}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("spec.gateway.prices"), std::string::npos) << p.error().message;
}

// ---------------------------------------------------------------------------------------------
// MCP servers through the gateway

json mcpSpec() {
  json spec = policySpec();
  spec["tools"] = {{"allow", {"Read"}},
                   {"mcpServers",
                    {{{"name", "everything"}, {"url", "http://198.18.0.7:3001/mcp"}, {"allowTools", {"echo", "add"}},
                      {"credential", {{"secretName", "mcp-everything"}, {"key", "token"}}}},
                     {{"name", "docs"}, {"url", "https://docs.example.com/mcp"}, {"allowTools", {"search"}}}}}};
  return spec;
}

TEST(GatewayMcp, TheGatewayIsConfiguredWithEachServerItsToolsAndItsCredentialFile) {
  json cm = planGatewayConfigMap("payments", policy(mcpSpec()), {{"fix", kHashA, 1000, 150}});
  auto parsed = gateway::parseConfig(cm["data"]["config.yaml"].get<std::string>());
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const auto& servers = parsed.value().mcp_servers;
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0].name, "everything");
  EXPECT_EQ(servers[0].url, "http://198.18.0.7:3001/mcp");
  EXPECT_EQ(servers[0].tools, (std::vector<std::string>{"echo", "add"}));
  EXPECT_EQ(servers[0].credential_file, "/var/run/paddock/mcp/everything/credential");
  EXPECT_EQ(servers[0].credential_header, "Authorization");
  EXPECT_EQ(servers[1].credential_file, "") << "a server without a credential gets none";
}

TEST(GatewayMcp, EachServersCredentialIsMountedOnlyIntoTheGatewaysPod) {
  AgentPolicy p = policy(mcpSpec());
  PlanOptions o;
  json d = planGatewayDeployment("payments", p, o);
  const json& pod = d["spec"]["template"]["spec"];
  EXPECT_EQ(secretsMounted(pod), (std::set<std::string>{"anthropic-api-key", "mcp-everything"}));
  const json* v = volumeNamed(pod, "mcp-everything");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ((*v)["secret"]["items"][0]["key"], "token");
  EXPECT_EQ((*v)["secret"]["items"][0]["path"], "credential");
  bool mounted = false;
  for (const auto& m : pod["containers"][0]["volumeMounts"]) {
    if (m["name"] == "mcp-everything") mounted = m["mountPath"] == "/var/run/paddock/mcp/everything" && m["readOnly"] == true;
  }
  EXPECT_TRUE(mounted);
  AgentRun r = run(gatewayStatusOf(kHashA, "Pending"));
  json agent = planAgentPod(r, p, admit(r, p).effective, o);
  EXPECT_EQ(secretsMounted(agent["spec"]).count("mcp-everything"), 0u) << "the agent never holds the server's credential";
}

TEST(GatewayMcp, ClaudeCodeSeesOnlyTheGatewaysServersWithTheRunsCredentialAndTheirToolsAllowed) {
  AgentPolicy p = policy(mcpSpec());
  AgentRun r = run(gatewayStatusOf(kHashA, "Pending"));
  json pod = planAgentPod(r, p, admit(r, p).effective, PlanOptions{});
  const json& annotations = pod["metadata"]["annotations"];
  ASSERT_TRUE(annotations.contains(kAnnotationManagedMcp));
  json mcp = json::parse(annotations[kAnnotationManagedMcp].get<std::string>());
  EXPECT_EQ(mcp["mcpServers"].size(), 2u);
  EXPECT_EQ(mcp["mcpServers"]["everything"],
            json({{"type", "http"}, {"url", "http://paddock-gateway:8080/mcp/everything"},
                  {"headersHelper", "cat /var/run/paddock/gateway/mcp-headers"}}));
  EXPECT_EQ(annotations[kAnnotationManagedMcp].get<std::string>().find("198.18.0.7"), std::string::npos)
      << "the agent is never told where the server is";
  json settings = json::parse(annotations[kAnnotationManagedSettings].get<std::string>());
  EXPECT_EQ(settings["permissions"]["allow"],
            json({"Read", "mcp__everything__echo", "mcp__everything__add", "mcp__docs__search"}));
  // The file beside the managed settings, and the headers beside the credential.
  const json* settings_volume = volumeNamed(pod["spec"], "settings");
  ASSERT_NE(settings_volume, nullptr);
  EXPECT_EQ((*settings_volume)["downwardAPI"]["items"][1]["path"], "managed-mcp.json");
  const json* credential = volumeNamed(pod["spec"], "gateway-credential");
  ASSERT_NE(credential, nullptr);
  EXPECT_EQ((*credential)["secret"]["items"][1]["key"], kMcpHeadersKey);
  json secret = planCredentialSecret(r, p, "the-token", kHashA);
  EXPECT_EQ(json::parse(secret["stringData"][kMcpHeadersKey].get<std::string>()),
            json({{"Authorization", "Bearer the-token"}}));
  EXPECT_EQ(secret["stringData"][kProxyUrlKey], "http://run:the-token@paddock-gateway:8080");
  // Without MCP servers there is no managed MCP file.
  json plain = planAgentPod(r, policy(), admit(r, policy()).effective, PlanOptions{});
  EXPECT_FALSE(plain["metadata"]["annotations"].contains(kAnnotationManagedMcp));
  EXPECT_EQ(volumeNamed(plain["spec"], "settings")->at("downwardAPI")["items"].size(), 1u);
}

TEST(GatewayMcp, ABadServerNamesTheFieldAndTheFix) {
  struct Case {
    std::string what;
    std::function<void(json&)> edit;
    std::string field;
  };
  std::vector<Case> cases = {
      {"no gateway", [](json& s) { s.erase("gateway"); }, "spec.tools.mcpServers: needs spec.gateway"},
      {"a name that is no label", [](json& s) { s["tools"]["mcpServers"][0]["name"] = "Every_Thing"; }, "spec.tools.mcpServers[0].name"},
      {"a name twice", [](json& s) { s["tools"]["mcpServers"][1]["name"] = "everything"; }, "spec.tools.mcpServers[1].name"},
      {"no URL scheme", [](json& s) { s["tools"]["mcpServers"][0]["url"] = "198.18.0.7:3001/mcp"; }, "spec.tools.mcpServers[0].url"},
      {"a port past 65535", [](json& s) { s["tools"]["mcpServers"][0]["url"] = "http://198.18.0.7:99999/mcp"; },
       "spec.tools.mcpServers[0].url"},
      {"a port that is no number", [](json& s) { s["tools"]["mcpServers"][0]["url"] = "http://mcp.test:abc/mcp"; },
       "spec.tools.mcpServers[0].url"},
      {"no tools", [](json& s) { s["tools"]["mcpServers"][0]["allowTools"] = json::array(); }, "spec.tools.mcpServers[0].allowTools"},
      {"a credential without its key", [](json& s) { s["tools"]["mcpServers"][0]["credential"].erase("key"); },
       "spec.tools.mcpServers[0].credential"},
  };
  for (const auto& c : cases) {
    json spec = mcpSpec();
    c.edit(spec);
    auto p = parseAgentPolicy({{"metadata", {{"name", "payments"}}}, {"spec", spec}});
    ASSERT_FALSE(p.ok()) << c.what;
    EXPECT_NE(p.error().message.find(c.field), std::string::npos) << c.what << ": " << p.error().message;
  }
}

TEST(GatewayPolicy, UsageIsTheGatewaysCountersUnlessThePolicyNamesItsQueries) {
  auto p = policy();
  EXPECT_EQ(p.tokens_query, kGatewayTokensQuery);
  EXPECT_EQ(p.cost_query, kGatewayCostQuery);
  json spec = policySpec();
  spec["budgets"]["metrics"] = {{"tokens", kDefaultTokensQuery}};  // the agent's own report, as a cross-check
  p = policy(spec);
  EXPECT_EQ(p.tokens_query, kDefaultTokensQuery);
  EXPECT_EQ(p.cost_query, kGatewayCostQuery);
  spec.erase("gateway");
  spec["budgets"].erase("metrics");
  p = policy(spec);
  EXPECT_EQ(p.tokens_query, kDefaultTokensQuery) << "without a gateway, Claude Code's own metrics";
  EXPECT_EQ(p.cost_query, kDefaultCostQuery);
}

TEST(GatewayLiveness, FromTheInitContainerAndTheDeployment) {
  EXPECT_EQ(credentialLiveness(nullptr).reason, "Loading");
  json pod = {{"status", {{"initContainerStatuses", json::array({{{"name", "gateway-credential"},
                                                                  {"state", {{"running", json::object()}}}}})}}}};
  EXPECT_EQ(credentialLiveness(&pod).reason, "Loading");
  pod["status"]["initContainerStatuses"][0]["state"] = {{"terminated", {{"exitCode", 0}}}};
  EXPECT_TRUE(credentialLiveness(&pod).live);
  pod["status"]["initContainerStatuses"][0]["state"] = {{"terminated", {{"exitCode", 1}, {"message", "timed out after 600s"}}}};
  auto l = credentialLiveness(&pod);
  EXPECT_FALSE(l.live);
  EXPECT_EQ(l.reason, "NotLoaded");
  EXPECT_NE(l.message.find("timed out after 600s"), std::string::npos);

  EXPECT_EQ(gatewayAvailability(nullptr).reason, "NotFound");
  json d = {{"status", {{"replicas", 1}, {"conditions", json::array({{{"type", "Available"}, {"status", "False"},
                                                                     {"message", "Deployment does not have minimum availability."}}})}}}};
  auto a = gatewayAvailability(&d);
  EXPECT_FALSE(a.live);
  EXPECT_EQ(a.reason, "Unavailable");
  EXPECT_NE(a.message.find("minimum availability"), std::string::npos);
  d["status"]["availableReplicas"] = 1;
  EXPECT_TRUE(gatewayAvailability(&d).live);
}

// ---------------------------------------------------------------------------------------------
// The reconcile's gateway steps

RunSnapshot snapshot(const json& object, kube::ObjectPtr pod = nullptr) {
  return plantest::snapshotOf(object, policy(), std::move(pod));
}

TeamFacts team() { return plantest::currentTeam(policy()); }

RunPlan planAll(const RunSnapshot& snap, const TeamFacts& t) {
  RunPlanSettings set;
  set.prometheus = false;
  RunDraft draft(snap, kClock);
  auto a = planAdmission(snap, draft);
  EXPECT_TRUE(a.has_value());
  if (!a) return draft.take();
  return planRun(snap, *a, t, draft, set, kClock);
}


TEST(PlanGateway, TheCredentialIsIssuedBeforeThePodAndOnlyItsHashIsRecorded) {
  auto snap = snapshot(runObject());
  TeamFacts t = team();
  t.fresh_credential = TeamFacts::Credential{std::string(64, '7'), kHashA};
  auto plan = planAll(snap, t);
  EXPECT_TRUE(all<CreateAgentPod>(plan).empty()) << "the pod waits for the next pass";
  auto secrets = all<CreateSecret>(plan);
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0]->secret["stringData"][kCredentialKey], std::string(64, '7'));
  // The Secret's creation is recorded before it is made, by name and hash.
  size_t secret_at = 0, audit_at = 0, status_at = 0;
  for (size_t i = 0; i < plan.actions.size(); ++i) {
    if (std::holds_alternative<CreateSecret>(plan.actions[i])) secret_at = i;
    if (std::holds_alternative<WriteStatus>(plan.actions[i])) status_at = i;
    if (const auto* a = std::get_if<AppendAudit>(&plan.actions[i])) {
      for (const auto& [action, details] : a->records) {
        if (details.value("kind", "") != "Secret") continue;
        audit_at = i;
        EXPECT_EQ(details["credentialSHA256"], kHashA);
      }
    }
  }
  EXPECT_LT(audit_at, secret_at);
  EXPECT_LT(secret_at, status_at);
  const json& status = all<WriteStatus>(plan).back()->status;
  EXPECT_EQ(stringAt(status, "/gateway/credentialSHA256"), kHashA);
  EXPECT_EQ(stringAt(status, "/gateway/credentialSecret"), "fix-gateway-aaaaaaaaaa");
  EXPECT_EQ(status["gateway"]["budget"], json({{"tokens", 1000}, {"costUSD", "1"}}));
  EXPECT_EQ(conditionOf(status, "GatewayCredentialLive").value("reason", ""), "Loading");
  EXPECT_EQ(conditionOf(status, "HostEgressEnforced").value("status", ""), "True");
  for (const auto& a : plan.actions) {
    if (const auto* w = std::get_if<WriteStatus>(&a)) {
      EXPECT_EQ(w->status.dump().find("7777777777"), std::string::npos);
    }
    if (const auto* w = std::get_if<AppendAudit>(&a)) {
      for (const auto& [action, details] : w->records) EXPECT_EQ(details.dump().find("7777777777"), std::string::npos);
    }
  }
  EXPECT_EQ(plan.next.requeue_after, std::chrono::milliseconds(5000)) << "looks again while the gateway loads it";
}

TEST(PlanGateway, TheNextPassCreatesThePodWithTheCredentialNeverTheKey) {
  auto first = snapshot(runObject());
  TeamFacts t = team();
  t.fresh_credential = TeamFacts::Credential{std::string(64, '7'), kHashA};
  auto issued = planAll(first, t);
  json status = all<WriteStatus>(issued).back()->status;

  auto second = snapshot(runObject("fix", status));
  auto plan = planAll(second, team());
  EXPECT_TRUE(all<CreateSecret>(plan).empty()) << "issued once";
  auto pods = all<CreateAgentPod>(plan);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(secretsMounted(pods[0]->pod["spec"]).count("fix-gateway-aaaaaaaaaa"), 1u);
  EXPECT_EQ(secretsMounted(pods[0]->pod["spec"]).count("anthropic-api-key"), 0u);
  EXPECT_EQ(plan.next.requeue_after, std::chrono::milliseconds(5000)) << "looks again while the gateway loads it";
}

TEST(PlanGateway, AGatewayWithoutAReadyReplicaIsAConditionAndAWarningOnlyWhenLostOrStuck) {
  auto pass = [](const json& status, const json& deployment) {
    auto snap = snapshot(runObject("fix", status));
    TeamFacts t = team();
    t.gateway_deployment_read = true;
    if (!deployment.is_null()) t.gateway_deployment = std::make_shared<const json>(deployment);
    RunDraft draft(snap, kClock);
    auto a = planAdmission(snap, draft);
    EXPECT_TRUE(a);
    if (a) planGatewayCredential(snap, *a, t, draft);
    std::vector<EmitEvent> events;
    for (const auto* e : all<EmitEvent>(draft.plan)) events.push_back(*e);
    return std::pair{draft.status, events};
  };
  const json starting = {{"status", {{"replicas", 1}}}};
  const json ready = {{"status", {{"replicas", 1}, {"availableReplicas", 1}}}};
  const json stuck = {{"status", {{"replicas", 1}, {"conditions", json::array({
                          {{"type", "Progressing"}, {"status", "False"}, {"reason", "ProgressDeadlineExceeded"},
                           {"message", "ReplicaSet \"paddock-gateway-1\" has timed out progressing."}}})}}}};
  // Starting: the condition, no Warning.
  auto [s1, e1] = pass(gatewayStatusOf(kHashA, "Pending"), starting);
  EXPECT_EQ(conditionOf(s1, "GatewayReady").value("reason", ""), "Unavailable");
  EXPECT_TRUE(e1.empty());
  auto [s0, e0] = pass(gatewayStatusOf(kHashA, "Pending"), nullptr);
  EXPECT_EQ(conditionOf(s0, "GatewayReady").value("reason", ""), "NotFound");
  EXPECT_TRUE(e0.empty());
  // Ready, then lost: one Warning, told once.
  auto [s2, e2] = pass(gatewayStatusOf(kHashA, "Pending"), ready);
  EXPECT_EQ(conditionOf(s2, "GatewayReady").value("status", ""), "True");
  auto [s3, e3] = pass(s2, starting);
  ASSERT_EQ(e3.size(), 1u);
  EXPECT_EQ(e3[0].reason, "GatewayNotReady");
  EXPECT_EQ(e3[0].type, runtime::EventType::Warning);
  EXPECT_TRUE(pass(s3, starting).second.empty()) << "told once";
  // Stuck past its progress deadline: a Warning naming the Deployment's words, once.
  auto [s4, e4] = pass(s1, stuck);
  EXPECT_EQ(conditionOf(s4, "GatewayReady").value("reason", ""), "ProgressDeadlineExceeded");
  ASSERT_EQ(e4.size(), 1u);
  EXPECT_NE(e4[0].message.find("timed out progressing"), std::string::npos) << e4[0].message;
  EXPECT_TRUE(pass(s4, stuck).second.empty());
}

}  // namespace
}  // namespace paddock::controllers
