#include "controllers/plan.h"

#include <set>

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

AgentPolicy samplePolicy() {
  auto p = parseAgentPolicy(json::parse(R"({
    "metadata": {"name": "payments", "uid": "p-uid"},
    "spec": {
      "namespaceSelector": {"matchLabels": {"paddock.dev/team": "payments"}},
      "images": {"default": "registry.example.com/payments/agent:2.1.4"},
      "model": {"pin": "claude-sonnet-4-5"},
      "runtimeClassName": "gvisor",
      "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
      "egress": [{"cidr": "140.82.112.0/20", "ports": [443]}, {"host": "api.anthropic.com", "ports": [443]}],
      "secrets": [{"secretName": "anthropic-api-key", "key": "api-key", "stages": ["agent"]},
                  {"secretName": "github-pr-token", "key": "token", "stages": ["pr"]},
                  {"secretName": "deploy-token", "key": "token", "stages": ["deploy"]}],
      "tools": {"allow": ["Read", "Edit"], "deny": ["WebFetch"]},
      "protectedPaths": ["billing/**"],
      "budgets": {"default": {"tokens": 1000, "costUSD": "1", "wallClock": "45m"},
                  "max": {"tokens": 2000, "costUSD": "2", "wallClock": "1h"}}
    }})"));
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

AgentRun sampleRun() {
  auto r = parseAgentRun(json::parse(R"({
    "metadata": {"name": "fix-flake", "namespace": "payments", "uid": "run-uid", "generation": 1},
    "spec": {"task": "Fix the flaky refund test.", "repository": {"url": "https://github.com/acme/payments"}}})"));
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.value();
}

struct Planned {
  AgentPolicy policy = samplePolicy();
  AgentRun run = sampleRun();
  Admission admission = admit(run, policy);
  PlanOptions options;
  json pod() { return planAgentPod(run, policy, admission.effective, options); }
};

void expectHardened(const json& c) {
  SCOPED_TRACE(c.value("name", ""));
  const auto& sc = c["securityContext"];
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  EXPECT_EQ(sc["runAsNonRoot"], true);
  EXPECT_GT(sc["runAsUser"].get<int64_t>(), 0);
  EXPECT_EQ(sc["privileged"], false);
  EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_FALSE(sc["capabilities"].contains("add"));
  EXPECT_EQ(sc["seccompProfile"]["type"], "RuntimeDefault");
}

TEST(PlanAgentPod, IsHardenedAndOwnedByTheRun) {
  Planned p;
  ASSERT_TRUE(p.admission.admitted);
  json pod = p.pod();
  EXPECT_EQ(pod["metadata"]["name"], "fix-flake-agent");
  EXPECT_EQ(pod["metadata"]["labels"][kLabelRun], "fix-flake");
  EXPECT_EQ(pod["metadata"]["labels"][kLabelTeam], "payments");
  EXPECT_EQ(pod["metadata"]["labels"][kLabelStage], "agent");
  const auto& owner = pod["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "AgentRun");
  EXPECT_EQ(owner["uid"], "run-uid");
  EXPECT_EQ(owner["controller"], true);
  const auto& spec = pod["spec"];
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_EQ(spec["enableServiceLinks"], false);
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["hostNetwork"], false);
  EXPECT_EQ(spec["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(spec["runtimeClassName"], "gvisor");
  EXPECT_EQ(spec["activeDeadlineSeconds"], 45 * 60 + 120) << "wall clock plus grace";
  for (const auto& c : spec["containers"]) expectHardened(c);
  for (const auto& c : spec["initContainers"]) expectHardened(c);
  const auto& agent = spec["containers"][0];
  EXPECT_EQ(agent["image"], "registry.example.com/payments/agent:2.1.4");
  EXPECT_EQ(agent["resources"]["limits"]["memory"], "4Gi");
  EXPECT_EQ(pod["metadata"]["annotations"]["prometheus.io/scrape"], "true");
  std::map<std::string, std::string> env;
  for (const auto& e : agent["env"]) {
    EXPECT_FALSE(e.contains("valueFrom")) << "no secret reaches the environment: " << e.dump();
    env[e["name"]] = e.value("value", "");
  }
  EXPECT_EQ(env["OTEL_RESOURCE_ATTRIBUTES"], "agentrun=fix-flake,namespace=payments");
  EXPECT_EQ(env["CLAUDE_CODE_ENABLE_TELEMETRY"], "1");
  EXPECT_EQ(env["ANTHROPIC_MODEL"], "claude-sonnet-4-5");
  EXPECT_FALSE(agent.contains("envFrom"));
}

TEST(PlanAgentPod, MountsOnlyTheAgentStagesSecretsReadOnly) {
  Planned p;
  json pod = p.pod();
  std::vector<std::string> secrets;
  for (const auto& v : pod["spec"]["volumes"]) {
    if (!v.contains("secret")) continue;
    secrets.push_back(v["secret"]["secretName"]);
    EXPECT_EQ(v["secret"]["defaultMode"], 0400);
    for (const auto& item : v["secret"]["items"]) EXPECT_EQ(item["mode"], 0400);
  }
  EXPECT_EQ(secrets, std::vector<std::string>{"anthropic-api-key"}) << "never the PR or deploy token";
  for (const auto& m : pod["spec"]["containers"][0]["volumeMounts"]) {
    if (m["name"].get<std::string>().rfind("secret-", 0) == 0) {
      EXPECT_EQ(m["readOnly"], true);
    }
  }
  // The init containers (the sandbox's install, the workspace clone) get no secret at all.
  for (const auto& init : pod["spec"]["initContainers"]) {
    for (const auto& m : init["volumeMounts"]) EXPECT_NE(m["name"].get<std::string>().rfind("secret-", 0), 0u);
  }
}

TEST(PlanAgentPod, TheAgentStartsThroughTheInjectedSandbox) {
  Planned p;
  p.policy.protected_paths = {".github/workflows/**", "**/*.tf", "/CODEOWNERS"};
  p.policy.sandbox.command = {"/usr/bin/tini", "--", "/usr/local/bin/paddock-agent"};
  json spec = p.pod()["spec"];
  // The literal protected paths are read-only mounts of themselves; the wildcard glob is the
  // launcher's to hold (it reads every glob from the protected-paths file).
  json held = json::array();
  for (const auto& m : spec["containers"][0]["volumeMounts"]) {
    if (m.contains("subPath")) held.push_back(m);
  }
  EXPECT_EQ(held, json({{{"name", "workspace"}, {"mountPath", "/workspace/.github/workflows"}, {"subPath", ".github/workflows"}, {"readOnly", true}},
                        {{"name", "workspace"}, {"mountPath", "/workspace/CODEOWNERS"}, {"subPath", "CODEOWNERS"}, {"readOnly", true}}}));
  // First of the init containers: the operator's image copies the launcher into the pod's volume.
  const json& install = spec["initContainers"][0];
  EXPECT_EQ(install["name"], "sandbox");
  EXPECT_EQ(install["image"], p.options.sandbox_image);
  EXPECT_EQ(install["command"], json({"/usr/local/bin/paddock-sandbox", "install", "--to", "/paddock/sandbox",
                                      "--when-unavailable", "refuse"}));
  EXPECT_EQ(install["volumeMounts"], json::array({{{"name", "sandbox"}, {"mountPath", "/paddock/sandbox"}}}));
  // The agent's command is the launcher's, whatever the image's entrypoint; the image's own
  // entrypoint is what the launcher runs, after "--".
  const json& agent = spec["containers"][0];
  const json command = agent["command"];
  ASSERT_GE(command.size(), 4u);
  EXPECT_EQ(command[0], "/paddock/sandbox/paddock-sandbox");
  auto dashes = std::find(command.begin(), command.end(), "--");
  ASSERT_NE(dashes, command.end());
  EXPECT_EQ(json(std::vector<json>(dashes + 1, command.end())), json({"/usr/bin/tini", "--", "/usr/local/bin/paddock-agent"}));
  EXPECT_FALSE(agent.contains("args")) << "nothing of the image's CMD is appended";
  const std::string flags = json(std::vector<json>(command.begin(), dashes)).dump();
  EXPECT_NE(flags.find(R"("--protected-paths-file","/etc/paddock/task/protected-paths")"), std::string::npos) << flags;
  EXPECT_NE(flags.find(R"("--workspace","/workspace")"), std::string::npos) << flags;
  // Without a gateway, TCP connect to the ports spec.egress allows (the fixture's 443).
  EXPECT_NE(flags.find(R"("--connect-port","443")"), std::string::npos) << flags;
  EXPECT_NE(flags.find(R"("--restrict-tcp")"), std::string::npos) << flags;
  // A policy with no egress ports and no gateway: DNS's port alone, never an unrestricted connect.
  p.policy.egress.clear();
  const json closed = sandboxCommand(p.policy);
  std::vector<std::string> ports;
  for (size_t i = 0; i + 1 < closed.size() && closed[i] != "--"; ++i) {
    if (closed[i] == "--connect-port") ports.push_back(closed[i + 1]);
  }
  EXPECT_EQ(ports, std::vector<std::string>{"53"}) << closed.dump();
  EXPECT_NE(std::find(closed.begin(), closed.end(), "--restrict-tcp"), closed.end());
  // The launcher's volume is read-only to the agent.
  bool mounted = false;
  for (const auto& m : agent["volumeMounts"]) {
    if (m["name"] != "sandbox") continue;
    mounted = true;
    EXPECT_EQ(m["mountPath"], "/paddock/sandbox");
    EXPECT_EQ(m["readOnly"], true);
  }
  EXPECT_TRUE(mounted);
  // Warn: the install and the launcher both carry on without Landlock.
  p.policy.sandbox.warn_when_unavailable = true;
  EXPECT_EQ(p.pod()["spec"]["initContainers"][0]["command"].back(), "warn");
  const json warned = sandboxCommand(p.policy);
  EXPECT_NE(std::find(warned.begin(), warned.end(), "warn"), warned.end());
}

TEST(PlanAgentPod, WritablePathsAreSizeLimitedEmptyDirs) {
  Planned p;
  json pod = p.pod();
  std::map<std::string, std::string> sizes;
  for (const auto& v : pod["spec"]["volumes"]) {
    if (v.contains("emptyDir")) sizes[v["name"]] = v["emptyDir"].value("sizeLimit", "");
  }
  EXPECT_EQ(sizes, (std::map<std::string, std::string>{{"home", "1Gi"}, {"sandbox", "64Mi"}, {"tmp", "1Gi"}, {"workspace", "10Gi"}}));
  // The agent writes to three of them; the sandbox's launcher is read-only to it.
  std::set<std::string> writable;
  for (const auto& m : pod["spec"]["containers"][0]["volumeMounts"]) {
    if (!m.value("readOnly", false)) writable.insert(m["name"]);
  }
  EXPECT_EQ(writable, (std::set<std::string>{"home", "tmp", "workspace"}));
}

TEST(PlanNetworkPolicy, DeniesIngressAndAllowsOnlyDnsAndCidrs) {
  Planned p;
  json np = planNetworkPolicy("payments", p.policy);
  EXPECT_EQ(np["metadata"]["name"], "paddock-payments") << "one per policy and namespace";
  EXPECT_EQ(np["metadata"]["namespace"], "payments");
  EXPECT_FALSE(np["metadata"].contains("ownerReferences")) << "it outlives any one run";
  EXPECT_EQ(np["spec"]["podSelector"]["matchLabels"],
            (json{{kLabelTeam, "payments"}, {"app.kubernetes.io/managed-by", "paddock"}}));
  // Every pod of the team's runs carries the labels the policy selects.
  for (const auto& [k, v] : np["spec"]["podSelector"]["matchLabels"].items()) {
    EXPECT_EQ(p.pod()["metadata"]["labels"][k], v) << k;
  }
  EXPECT_EQ(np["spec"]["policyTypes"], json::array({"Ingress", "Egress"}));
  EXPECT_EQ(np["spec"]["ingress"], json::array());
  const auto& egress = np["spec"]["egress"];
  ASSERT_EQ(egress.size(), 2u) << "DNS and the one CIDR rule; the host rule is not a NetworkPolicy rule";
  EXPECT_EQ(egress[0]["ports"][0]["port"], 53);
  EXPECT_EQ(egress[1]["to"][0]["ipBlock"]["cidr"], "140.82.112.0/20");
  EXPECT_EQ(egress[1]["ports"][0], (json{{"protocol", "TCP"}, {"port", 443}}));
  EXPECT_TRUE(hostEgressUnenforced(p.policy));
  p.policy.egress.pop_back();
  EXPECT_FALSE(hostEgressUnenforced(p.policy)) << "no host rules: nothing left unenforced";
}

TEST(PlanNetworkPolicy, LetsOnlyTheNamedMonitoringPodsScrapeTheMetricsPort) {
  Planned p;
  p.options.scrape_namespace_labels = {{"kubernetes.io/metadata.name", "monitoring"}};
  p.options.scrape_pod_labels = {{"app.kubernetes.io/name", "prometheus"}};
  json np = planNetworkPolicy("payments", p.policy, p.options);
  ASSERT_EQ(np["spec"]["ingress"].size(), 1u) << np.dump();
  const json& rule = np["spec"]["ingress"][0];
  EXPECT_EQ(rule["from"], (json::array({{{"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "monitoring"}}}}},
                                          {"podSelector", {{"matchLabels", {{"app.kubernetes.io/name", "prometheus"}}}}}}})))
      << "one peer: those pods in that namespace, not either";
  EXPECT_EQ(rule["ports"], (json::array({{{"protocol", "TCP"}, {"port", 9464}}})));
  // The port is the one the agent pod serves its metrics on.
  EXPECT_EQ(p.pod()["spec"]["containers"][0]["ports"][0]["containerPort"], rule["ports"][0]["port"]);
  EXPECT_EQ(np["spec"]["policyTypes"], json::array({"Ingress", "Egress"}));

  p.options.scrape_pod_labels.clear();
  EXPECT_EQ(planNetworkPolicy("payments", p.policy, p.options)["spec"]["ingress"][0]["from"][0].size(), 1u)
      << "every pod of the monitoring namespace";
  p.options.scrape_namespace_labels.clear();
  p.options.scrape_pod_labels = {{"app", "prometheus"}};
  EXPECT_EQ(planNetworkPolicy("payments", p.policy, p.options)["spec"]["ingress"], json::array())
      << "without a namespace, no ingress at all (a pod selector alone would open the team's own namespace)";
}

TEST(ParseMatchLabels, KeyValuePairsOrAnErrorNamingTheFlag) {
  auto ok = parseMatchLabels("kubernetes.io/metadata.name=monitoring,app=prometheus", "prometheus-namespace-selector");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::map<std::string, std::string>{{"kubernetes.io/metadata.name", "monitoring"}, {"app", "prometheus"}}));
  EXPECT_TRUE(parseMatchLabels("", "x")->empty());
  EXPECT_TRUE(parseMatchLabels("team=", "x").ok()) << "an empty value is a value";
  for (const char* bad : {"monitoring", "=x", "a=b,a=c", "a b=c", "a=-x", "a=b,,c=d", "a!=b"}) {
    auto r = parseMatchLabels(bad, "prometheus-pod-selector");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--prometheus-pod-selector"), std::string::npos) << r.error().message;
  }
}

TEST(PlanNetworkPolicy, ItsHashMovesWithItsContentOnly) {
  Planned p;
  auto hash = [](const json& o) { return o["metadata"]["annotations"][kAnnotationSpecHash].get<std::string>(); };
  std::string h = hash(planNetworkPolicy("payments", p.policy));
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(hash(planNetworkPolicy("payments", p.policy)), h) << "stable";
  EXPECT_EQ(hash(planNetworkPolicy("other", p.policy)), h) << "the namespace is not content";
  p.policy.egress[0].ports = {443, 22};
  EXPECT_NE(hash(planNetworkPolicy("payments", p.policy)), h) << "a changed rule is applied again";
}

TEST(PlanAgentPod, ReadsTheTaskAndManagedSettingsFromItsOwnAnnotations) {
  Planned p;
  json pod = p.pod();
  const auto& a = pod["metadata"]["annotations"];
  EXPECT_EQ(a["paddock.dev/task"], "Fix the flaky refund test.");
  auto settings = json::parse(a["paddock.dev/managed-settings"].get<std::string>());
  EXPECT_EQ(settings["permissions"]["deny"], json::array({"WebFetch"}));
  EXPECT_EQ(settings["permissions"]["disableBypassPermissionsMode"], "disable");
  EXPECT_EQ(settings["allowManagedPermissionRulesOnly"], true) << "a repository's own settings add no permission rule";
  EXPECT_EQ(settings["allowManagedHooksOnly"], true) << "nor a hook that runs commands outside them";
  EXPECT_EQ(settings["model"], "claude-sonnet-4-5");
  EXPECT_FALSE(a.contains("paddock.dev/managed-mcp")) << "no MCP servers: no managed MCP file";
  EXPECT_EQ(a["paddock.dev/protected-paths"], "billing/**\n");
  EXPECT_EQ(json::parse(a["paddock.dev/repository"].get<std::string>())["url"], "https://github.com/acme/payments");
  // Each file of the task and settings volumes is one of those annotations.
  std::map<std::string, std::string> files;
  for (const auto& v : pod["spec"]["volumes"]) {
    if (v["name"] != "task" && v["name"] != "settings") continue;
    for (const auto& item : v["downwardAPI"]["items"]) files[item["path"]] = item["fieldRef"]["fieldPath"];
  }
  EXPECT_EQ(files, (std::map<std::string, std::string>{
                       {"task.md", "metadata.annotations['paddock.dev/task']"},
                       {"repository.json", "metadata.annotations['paddock.dev/repository']"},
                       {"protected-paths", "metadata.annotations['paddock.dev/protected-paths']"},
                       {"managed-settings.json", "metadata.annotations['paddock.dev/managed-settings']"}}));
  for (const auto& [path, field] : files) {
    std::string annotation = field.substr(std::string("metadata.annotations['").size());
    annotation.resize(annotation.size() - 2);
    EXPECT_TRUE(a.contains(annotation)) << path << " reads " << annotation << ", which the pod does not carry";
  }
}

TEST(PlanStagePod, CarriesTheTaskButNotTheAgentsSettingsAndOnlyItsOwnSecret) {
  Planned p;
  StageSpec pr;
  pr.name = "pr";
  json pod = planStagePod(p.run, p.policy, pr, p.options);
  const auto& a = pod["metadata"]["annotations"];
  EXPECT_EQ(a["paddock.dev/task"], "Fix the flaky refund test.");
  EXPECT_EQ(a["paddock.dev/protected-paths"], "billing/**\n");
  EXPECT_FALSE(a.contains("paddock.dev/managed-settings")) << "the agent's settings are the agent's";
  for (const auto& v : pod["spec"]["volumes"]) {
    for (const auto& item : v.value("downwardAPI", json::object()).value("items", json::array())) {
      std::string field = item["fieldRef"]["fieldPath"];
      std::string annotation = field.substr(std::string("metadata.annotations['").size());
      annotation.resize(annotation.size() - 2);
      EXPECT_TRUE(a.contains(annotation)) << field;
    }
  }
  std::vector<std::string> secrets;
  for (const auto& v : pod["spec"]["volumes"]) {
    if (v.contains("secret")) secrets.push_back(v["secret"]["secretName"]);
  }
  EXPECT_EQ(secrets, std::vector<std::string>{"github-pr-token"});
  EXPECT_EQ(pod["metadata"]["labels"][kLabelTeam], "payments") << "the team's NetworkPolicy selects it";
}


TEST(PlanStagePod, TellsTheStageItsTokenEndpointBaseCommitAndRelease) {
  Planned p;
  StageSpec pr;
  pr.name = "pr";
  json pod = planStagePod(p.run, p.policy, pr, p.options, {std::string(40, 'a'), ""});
  const auto& c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["args"], json::array({"pr", "--workspace", "/workspace", "--repository-file", "/etc/paddock/task/repository.json",
                                    "--protected-paths-file", "/etc/paddock/task/protected-paths", "--result",
                                    "/dev/termination-log", "--token-file", "/var/run/paddock/secrets/github-pr-token/token",
                                    "--base-commit", std::string(40, 'a')}));
  // Its result is read from the file it writes, never from its logs.
  EXPECT_EQ(c["terminationMessagePolicy"], "File");

  StageSpec promote;
  promote.name = "promote";
  promote.endpoint_url = "https://deploy.example.com/api/promote";
  p.policy.secrets.push_back({"release-token", "bearer", {"promote"}});
  json promoting = planStagePod(p.run, p.policy, promote, p.options, {"", "rel-7"});
  json args = promoting["spec"]["containers"][0]["args"];
  std::vector<std::string> tail(args.end() - 6, args.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"--token-file", "/var/run/paddock/secrets/release-token/bearer", "--deploy-url",
                                            "https://deploy.example.com/api/promote", "--release", "rel-7"}));
}

TEST(PlanAgentPod, TheCloneRecordsItsCommitInItsTerminationMessage) {
  Planned p;
  json init = p.pod()["spec"]["initContainers"][1];
  EXPECT_EQ(init["name"], "workspace");
  EXPECT_EQ(init["terminationMessagePolicy"], "File");
  json args = init["args"];
  EXPECT_NE(std::find(args.begin(), args.end(), "/dev/termination-log"), args.end()) << args.dump();
}

TEST(PlanNetworkPolicy, AllowsEachStagesEndpointOnItsPort) {
  Planned p;
  StageSpec deploy;
  deploy.name = "deploy";
  deploy.endpoint_url = "https://deploy.example.com:8443/api/releases";
  deploy.endpoint_cidr = "198.18.0.10/32";
  p.policy.stages.push_back(deploy);
  json np = planNetworkPolicy("payments", p.policy);
  json last = np["spec"]["egress"].back();
  EXPECT_EQ(last, json::parse(R"({"to":[{"ipBlock":{"cidr":"198.18.0.10/32"}}],"ports":[{"protocol":"TCP","port":8443}]})"));
}

TEST(UrlPort, ExplicitOrTheSchemesDefault) {
  EXPECT_EQ(urlPort("https://deploy.example.com/x"), 443);
  EXPECT_EQ(urlPort("http://198.18.0.10/x"), 80);
  EXPECT_EQ(urlPort("https://deploy.example.com:8443"), 8443);
  EXPECT_EQ(urlPort("https://[2001:db8::1]:9443/x"), 9443);
  EXPECT_EQ(urlPort("https://[2001:db8::1]/x"), 443);
  EXPECT_EQ(urlPort("https://u:p@deploy.example.com/x"), 0);
  EXPECT_EQ(urlPort("https://deploy.example.com:99999/"), 0);
  EXPECT_EQ(urlPort("https://deploy.example.com:/"), 0);
  EXPECT_EQ(urlPort("ftp://deploy.example.com/"), 0);
  EXPECT_EQ(urlPort("deploy.example.com"), 0);
}

}  // namespace
}  // namespace paddock::controllers
