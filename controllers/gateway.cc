#include "controllers/gateway.h"

#include <algorithm>
#include <cstdio>

#include "controllers/reconcile.h"
#include "controllers/status.h"
#include "controllers/stages.h"
#include "operator/common/json.h"

namespace paddock::controllers {
namespace {

json gatewayLabels() {
  return {{kLabelComponent, "gateway"}, {"app.kubernetes.io/name", kGatewayName}, {"app.kubernetes.io/managed-by", "paddock"}};
}
json gatewaySelector() { return {{kLabelComponent, "gateway"}, {"app.kubernetes.io/managed-by", "paddock"}}; }

// FNV-1a over the text: stable across processes and builds.
std::string contentHash(const json& content) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : content.dump()) h = (h ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

json gatewayMetadata(const std::string& ns, const AgentPolicy& policy, const json& content) {
  return {{"name", kGatewayName},
          {"namespace", ns},
          {"labels", gatewayLabels()},
          {"annotations", {{kAnnotationSpecHash, contentHash(content)}, {"paddock.dev/policy", policy.name}}}};
}

bool hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

json env(const std::string& name, const std::string& value) { return {{"name", name}, {"value", value}}; }

}  // namespace

std::string gatewayUrl() { return std::string("http://") + kGatewayName + ":" + std::to_string(kGatewayPort); }
std::string credentialSecretName(const AgentRun& run, const std::string& credential_sha256) {
  return run.name + "-gateway-" + credential_sha256.substr(0, 10);
}

std::optional<GatewayRun> gatewayRunOf(const std::string& name, const json& status) {
  if (!status.is_object() || !status.contains("gateway") || !status["gateway"].is_object()) return std::nullopt;
  const json& g = status["gateway"];
  if (!g.contains("credentialSHA256") || !g["credentialSHA256"].is_string()) return std::nullopt;
  GatewayRun r{name, g["credentialSHA256"].get<std::string>(), std::nullopt, std::nullopt};
  if (!hex64(r.credential_sha256)) return std::nullopt;
  if (g.contains("budget") && g["budget"].is_object()) {
    const json& budget = g["budget"];
    if (budget.contains("tokens") && budget["tokens"].is_number_integer()) r.tokens = budget["tokens"].get<int64_t>();
    if (budget.contains("costUSD") && budget["costUSD"].is_string()) r.cost_cents = parseCostCents(budget["costUSD"].get<std::string>());
  }
  return r;
}

json gatewayStatus(const AgentRun& run, const Effective& effective, const std::string& credential_sha256) {
  json budget = json::object();
  if (effective.tokens > 0) budget["tokens"] = effective.tokens;
  if (effective.cost_cents > 0) budget["costUSD"] = formatCents(effective.cost_cents);
  return {{"service", kGatewayName}, {"credentialSecret", credentialSecretName(run, credential_sha256)},
          {"credentialSHA256", credential_sha256}, {"budget", budget}};
}

std::optional<GatewayRun> gatewayRunOfObject(const json& run) {
  if (!run.is_object() || !run.contains("status") || !run["status"].is_object()) return std::nullopt;
  const json& status = run["status"];
  if (isTerminal(status.value("phase", ""))) return std::nullopt;
  auto r = gatewayRunOf(stringAt(run, "/metadata/name"), status);
  if (r) r->stopped = handedOff(status);
  return r;
}

std::vector<GatewayRun> gatewayRunsOf(const std::string& ns, const std::vector<kube::ObjectPtr>& runs) {
  std::vector<GatewayRun> out;
  for (const auto& o : runs) {
    if (!o || stringAt(*o, "/metadata/namespace") != ns) continue;
    if (auto r = gatewayRunOfObject(*o)) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](const GatewayRun& a, const GatewayRun& b) { return a.name < b.name; });
  return out;
}

json renderGatewayConfig(const std::string& ns, const AgentPolicy& policy, std::vector<GatewayRun> runs) {
  const GatewaySpec spec = policy.gateway.value_or(GatewaySpec{});
  json prices = json::object();
  for (const auto& [model, p] : spec.prices) {
    prices[model] = {{"input", p.input}, {"output", p.output}, {"cacheRead", p.cache_read}, {"cacheWrite", p.cache_write}};
  }
  std::sort(runs.begin(), runs.end(), [](const GatewayRun& a, const GatewayRun& b) { return a.name < b.name; });
  json served = json::array();
  for (const auto& r : runs) {
    if (r.stopped) continue;
    json budget = json::object();
    if (r.tokens) budget["tokens"] = *r.tokens;
    if (r.cost_cents) budget["costUSD"] = formatCents(*r.cost_cents);
    served.push_back({{"namespace", ns}, {"name", r.name}, {"tokenSHA256", r.credential_sha256}, {"budget", budget}});
  }
  json egress = json::array();
  for (const auto& rule : policy.egress) {
    json e = rule.host.empty() ? json{{"cidr", rule.cidr}} : json{{"host", rule.host}};
    if (!rule.ports.empty()) e["ports"] = rule.ports;
    egress.push_back(std::move(e));
  }
  json config = {{"listen", "0.0.0.0:" + std::to_string(kGatewayPort)},
                 {"upstream", spec.upstream},
                 {"apiKeyFile", std::string(kGatewayKeyDir) + "/api-key"},
                 {"auditDir", kGatewayAuditDir},
                 {"checkpointPercent", policy.checkpoint_percent},
                 {"prices", prices},
                 {"runs", served},
                 {"egress", egress}};
  if (!policy.model_pin.empty()) config["model"] = {{"pin", policy.model_pin}};
  json mcp = json::array();
  for (const auto& m : policy.mcp_servers) {
    json server = {{"name", m.name}, {"url", m.url}, {"tools", m.allow_tools}};
    if (!m.secret.empty()) {
      server["credentialFile"] = std::string(kGatewayMcpDir) + "/" + m.name + "/credential";
      server["credentialHeader"] = m.header;
    }
    mcp.push_back(std::move(server));
  }
  if (!mcp.empty()) config["mcpServers"] = std::move(mcp);
  return config;
}

json planGatewayConfigMap(const std::string& ns, const AgentPolicy& policy, const std::vector<GatewayRun>& runs) {
  json config = renderGatewayConfig(ns, policy, runs);
  json data = {{"config.yaml", config.dump(2) + "\n"}};
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", gatewayMetadata(ns, policy, data)}, {"data", data}};
}

json planGatewayDeployment(const std::string& ns, const AgentPolicy& policy, const PlanOptions& o) {
  const GatewaySpec spec = policy.gateway.value_or(GatewaySpec{});
  json probe = {{"httpGet", {{"path", "/healthz"}, {"port", kGatewayPort}}}, {"periodSeconds", 10}};
  json container = {
      {"name", "gateway"},
      {"image", o.gateway_image},
      {"imagePullPolicy", "IfNotPresent"},
      {"command", json::array({"/usr/local/bin/paddock-gateway"})},
      {"args", json::array({"--config", std::string(kGatewayConfigDir) + "/config.yaml"})},
      {"ports", json::array({{{"name", "http"}, {"containerPort", kGatewayPort}}})},
      {"readinessProbe", probe},
      {"livenessProbe", probe},
      {"volumeMounts", json::array({{{"name", "config"}, {"mountPath", kGatewayConfigDir}, {"readOnly", true}},
                                    {{"name", "model-key"}, {"mountPath", kGatewayKeyDir}, {"readOnly", true}},
                                    {{"name", "audit"}, {"mountPath", kGatewayAuditDir}}})},
      {"securityContext", containerSecurity(o)},
      {"resources", {{"limits", {{"cpu", "1"}, {"memory", "512Mi"}}}, {"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}};
  json volumes = json::array(
      {{{"name", "config"}, {"configMap", {{"name", kGatewayName}, {"defaultMode", 0444}}}},
       {{"name", "model-key"},
        {"secret", {{"secretName", spec.key_secret},
                    {"defaultMode", 0400},
                    {"items", json::array({{{"key", spec.key_key}, {"path", "api-key"}, {"mode", 0400}}})}}}},
       {{"name", "audit"}, {"emptyDir", {{"sizeLimit", o.tmp_size}}}}});
  // Each MCP server's credential, read by the gateway on each call (a rotated Secret applies).
  // Optional: a missing Secret fails that server's calls with a message naming it, not the
  // gateway's start (the model calls of every run go on).
  for (const auto& m : policy.mcp_servers) {
    if (m.secret.empty()) continue;
    volumes.push_back({{"name", "mcp-" + m.name},
                       {"secret", {{"secretName", m.secret},
                                   {"optional", true},
                                   {"defaultMode", 0400},
                                   {"items", json::array({{{"key", m.key}, {"path", "credential"}, {"mode", 0400}}})}}}});
    container["volumeMounts"].push_back(
        {{"name", "mcp-" + m.name}, {"mountPath", std::string(kGatewayMcpDir) + "/" + m.name}, {"readOnly", true}});
  }
  json pod_spec = {{"automountServiceAccountToken", false},
                   {"enableServiceLinks", false},
                   {"hostNetwork", false},
                   {"hostPID", false},
                   {"hostIPC", false},
                   {"securityContext", {{"runAsNonRoot", true}, {"runAsUser", o.uid}, {"runAsGroup", o.uid},
                                        {"fsGroup", o.uid}, {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
                   {"containers", json::array({container})},
                   {"volumes", volumes}};
  json template_meta = {{"labels", gatewayLabels()},
                        {"annotations", {{"prometheus.io/scrape", "true"},
                                         {"prometheus.io/port", std::to_string(kGatewayPort)},
                                         {"prometheus.io/path", "/metrics"}}}};
  // One replica: the ledger that caps a run's spend lives in the gateway's memory.
  json deployment_spec = {{"replicas", 1},
                          {"strategy", {{"type", "Recreate"}}},
                          {"selector", {{"matchLabels", gatewaySelector()}}},
                          {"template", {{"metadata", template_meta}, {"spec", pod_spec}}}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", gatewayMetadata(ns, policy, deployment_spec)},
          {"spec", deployment_spec}};
}

json planGatewayService(const std::string& ns, const AgentPolicy& policy) {
  json spec = {{"type", "ClusterIP"},
               {"selector", gatewaySelector()},
               {"ports", json::array({{{"name", "http"}, {"port", kGatewayPort}, {"targetPort", kGatewayPort},
                                       {"protocol", "TCP"}}})}};
  return {{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", gatewayMetadata(ns, policy, spec)}, {"spec", spec}};
}

json planGatewayNetworkPolicy(const std::string& ns, const AgentPolicy& policy, const PlanOptions& o) {
  json port = json::array({{{"protocol", "TCP"}, {"port", kGatewayPort}}});
  json team = {{kLabelTeam, policy.name}, {"app.kubernetes.io/managed-by", "paddock"}};
  json ingress = json::array({{{"from", json::array({{{"podSelector", {{"matchLabels", team}}}}})}, {"ports", port}}});
  if (!o.scrape_namespace_labels.empty()) {
    json peer = {{"namespaceSelector", {{"matchLabels", o.scrape_namespace_labels}}}};
    if (!o.scrape_pod_labels.empty()) peer["podSelector"] = {{"matchLabels", o.scrape_pod_labels}};
    ingress.push_back({{"from", json::array({peer})}, {"ports", port}});
  }
  json spec = {{"podSelector", {{"matchLabels", gatewaySelector()}}},
               {"policyTypes", json::array({"Ingress", "Egress"})},
               {"ingress", ingress},
               {"egress", json::array({json::object()})}};
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", gatewayMetadata(ns, policy, spec)},
          {"spec", spec}};
}

std::vector<json> planGatewayObjects(const std::string& ns, const AgentPolicy& policy, const std::vector<GatewayRun>& runs,
                                     const PlanOptions& options) {
  return {planGatewayConfigMap(ns, policy, runs), planGatewayNetworkPolicy(ns, policy, options),
          planGatewayService(ns, policy), planGatewayDeployment(ns, policy, options)};
}

json planCredentialSecret(const AgentRun& run, const AgentPolicy& policy, const std::string& token,
                          const std::string& credential_sha256) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"type", "Opaque"},
          {"metadata", {{"name", credentialSecretName(run, credential_sha256)},
                        {"namespace", run.ns},
                        {"labels", {{kLabelRun, run.name}, {kLabelRunUid, run.uid}, {kLabelTeam, policy.name},
                                    {"app.kubernetes.io/managed-by", "paddock"}}},
                        {"ownerReferences", json::array({ownerReference(run)})}}},
          {"stringData", {{kCredentialKey, token},
                          {kMcpHeadersKey, json{{"Authorization", "Bearer " + token}}.dump()},
                          {kProxyUrlKey, std::string("http://run:") + token + "@" + kGatewayName + ":" + std::to_string(kGatewayPort)}}}};
}

json gatewayProxyEnv() {
  const std::string url = gatewayUrl();
  return json::array({env("HTTPS_PROXY", url), env("HTTP_PROXY", url), env("https_proxy", url), env("http_proxy", url),
                      env("NO_PROXY", kGatewayName), env("no_proxy", kGatewayName)});
}

void addGatewayToAgentPod(json& pod, const AgentRun& run, const PlanOptions& o) {
  json& spec = pod["spec"];
  spec["volumes"].push_back({{"name", "gateway-credential"},
                             {"secret", {{"secretName", run.gateway_credential_secret},
                                         {"defaultMode", 0400},
                                         {"items", json::array({{{"key", kCredentialKey}, {"path", kCredentialKey}, {"mode", 0400}},
                                                                {{"key", kMcpHeadersKey}, {"path", kMcpHeadersKey}, {"mode", 0400}}})}}}});
  json mount = {{"name", "gateway-credential"}, {"mountPath", kCredentialDir}, {"readOnly", true}};
  const std::string url = gatewayUrl(), file = std::string(kCredentialDir) + "/" + kCredentialKey;
  // The run's proxies carry its credential (from its Secret), so the gateway knows whose egress it refuses.
  json proxies = gatewayProxyEnv();
  for (auto& e : proxies) {
    if (e["name"] == "NO_PROXY" || e["name"] == "no_proxy") continue;
    e = {{"name", e["name"]}, {"valueFrom", {{"secretKeyRef", {{"name", run.gateway_credential_secret}, {"key", kProxyUrlKey}}}}}};
  }
  // git (libcurl's "any" method) sends the proxy's credentials only once challenged; the gateway
  // answers a refused CONNECT at once, so git is told to send them with its first request.
  proxies.push_back(env("GIT_HTTP_PROXY_AUTHMETHOD", "basic"));
  for (auto& c : spec["containers"]) {
    if (c.value("name", "") != "agent") continue;
    c["volumeMounts"].push_back(mount);
    // Model calls go to the gateway directly; everything else through it as a proxy, by name.
    for (auto e : proxies) c["env"].push_back(e);
    for (auto e : {env("ANTHROPIC_BASE_URL", url), env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                   env("PADDOCK_GATEWAY_CREDENTIAL_FILE", file)}) {
      c["env"].push_back(std::move(e));
    }
  }
  // Before the workspace clone: the agent starts only once the gateway serves its credential.
  json wait = {{"name", "gateway-credential"},
               {"image", o.gateway_image},
               {"imagePullPolicy", "IfNotPresent"},
               {"command", json::array({"/usr/local/bin/paddock-gateway"})},
               {"args", json::array({"--wait-for-credential", file, "--gateway-url", url, "--wait-timeout",
                                     std::to_string(o.credential_wait.count()) + "s"})},
               {"env", json::array({env("NO_PROXY", kGatewayName)})},
               {"volumeMounts", json::array({mount})},
               {"securityContext", containerSecurity(o)},
               {"terminationMessagePolicy", "FallbackToLogsOnError"},
               {"resources", {{"limits", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}};
  json init = json::array({wait});
  for (auto c : spec.value("initContainers", json::array())) {
    // The workspace clone reaches the repository's host through the gateway too.
    if (c.value("name", "") == "workspace") for (auto e : proxies) c["env"].push_back(e);
    init.push_back(std::move(c));
  }
  spec["initContainers"] = init;
}

CredentialLiveness credentialLiveness(const json* pod) {
  if (!pod || !pod->is_object()) {
    return {false, "Loading", "the run's credential is issued; the agent pod waits until the gateway serves it"};
  }
  for (const auto& c : pod->value(json::json_pointer("/status/initContainerStatuses"), json::array())) {
    if (!c.is_object() || c.value("name", "") != "gateway-credential") continue;
    auto code = json::json_pointer("/state/terminated/exitCode");
    if (c.contains(code) && c[code].is_number_integer()) {
      if (c[code].get<int>() == 0) return {true, "Live", "the gateway accepts the run's credential"};
      return {false, "NotLoaded",
              "the gateway did not accept the run's credential in time (" + stringAt(c, "/state/terminated/message") +
                  "); check the paddock-gateway Deployment in the namespace and its logs"};
    }
  }
  return {false, "Loading",
          "waiting for the gateway to load the run's credential (the kubelet refreshes its mounted "
          "configuration, usually within a minute)"};
}

CredentialLiveness gatewayAvailability(const json* deployment) {
  const std::string where = std::string("the ") + kGatewayName + " Deployment";
  if (!deployment || !deployment->is_object()) {
    return {false, "NotFound", where + " is not there yet; the operator applies it with the run's first pass"};
  }
  if (deployment->value(json::json_pointer("/status/availableReplicas"), 0) >= 1) {
    return {true, "Available", where + " has a ready replica"};
  }
  std::string why, reason = "Unavailable";
  for (const auto& c : deployment->value(json::json_pointer("/status/conditions"), json::array())) {
    if (!c.is_object() || c.value("status", "") != "False") continue;
    // The Deployment's own verdict that its rollout is stuck (progressDeadlineSeconds).
    if (c.value("type", "") == "Progressing") reason = "ProgressDeadlineExceeded";
    if (why.empty() && c.contains("message") && c["message"].is_string()) why = c["message"].get<std::string>();
  }
  return {false, reason,
          where + " has no ready replica" + (why.empty() ? std::string() : " (" + why + ")") +
              "; check its pods and events, and that the model key Secret named by spec.gateway.modelKey exists"};
}

// ---------------------------------------------------------------------------------------------
// The reconcile's gateway steps (controllers/reconcile.h).

bool planGatewayCredential(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team, RunDraft& draft) {
  if (!a.policy.gateway) return false;
  if (gatewayRunOf(a.run.name, draft.status)) {
    if (handedOff(snap.old_status)) return false;  // the agent is stopped: its conditions stay as they were
    auto live = credentialLiveness(snap.agent_pod.get());
    draft.condition("GatewayCredentialLive", live.live, live.reason, live.message);
    if (!live.live && team.gateway_deployment_read) {
      auto ready = gatewayAvailability(team.gateway_deployment.get());
      const json was = conditionOf(snap.old_status, "GatewayReady");
      draft.condition("GatewayReady", ready.live, ready.reason, ready.message);
      // A Warning when a gateway that served stops, or its rollout is stuck; a gateway still
      // starting (the common case for a namespace's first run) is only the condition.
      bool lost = was.value("status", "") == "True", stuck = ready.reason == "ProgressDeadlineExceeded";
      if (!ready.live && was.value("reason", "") != ready.reason && (lost || stuck)) {
        draft.note(EmitEvent{snap.regarding, runtime::EventType::Warning, "GatewayNotReady", "WaitForGateway", ready.message});
      }
    } else if (live.live) {
      draft.condition("GatewayReady", true, "Available", "the gateway serves the run's credential");
    }
    return false;
  }
  // Issued before the pod exists, in a pass of its own: the status records the hash before any
  // pod can present the credential. A pod made without a gateway (the policy gained one later)
  // keeps what it was planned with.
  if (a.run.started || !team.fresh_credential) return false;
  const std::string& sha = team.fresh_credential->sha256;
  const std::string name = credentialSecretName(a.run, sha);
  draft.audit({{audit::Action::ChildCreated,
                {{"kind", "Secret"}, {"name", name}, {"purpose", "gateway credential"}, {"credentialSHA256", sha}}}});
  draft.act(CreateSecret{planCredentialSecret(a.run, a.policy, team.fresh_credential->token, sha)}, true);
  draft.status["gateway"] = gatewayStatus(a.run, a.effective, sha);
  const std::string message = "the run's credential for paddock-gateway is issued (Secret " + name +
                              "); the agent pod waits until the gateway serves it";
  draft.condition("GatewayCredentialLive", false, "Loading", message);
  draft.finish("CredentialIssued", message, runtime::Action::awaitChange());
  return true;
}

void planGatewayWait(const Admitted& a, RunPlan& plan, const json& draft_status) {
  if (!a.policy.gateway) return;
  // The run's status as this plan leaves it: the last status it writes or defers, else the draft's.
  const json* status = &draft_status;
  for (const auto& action : plan.actions) {
    if (const auto* w = std::get_if<WriteStatus>(&action)) status = &w->status;
    if (const auto* d = std::get_if<DeferStatus>(&action)) status = &d->status;
  }
  if (!gatewayRunOf(a.run.name, *status) || isTerminal(status->value("phase", "")) || handedOff(*status)) return;
  bool live = conditionOf(*status, "GatewayCredentialLive").value("status", "") == "True";
  constexpr std::chrono::milliseconds kGatewayRecheck{5000};
  if (!live && (!plan.next.requeue_after || *plan.next.requeue_after > kGatewayRecheck)) {
    plan.next = runtime::Action::requeueAfter(kGatewayRecheck);
  }
}

namespace {

void collectDrift(const json& planned, const json& live, const std::string& path, std::vector<std::string>& out) {
  if (planned.is_object()) {
    if (!live.is_object()) {
      out.push_back(path);
      return;
    }
    for (const auto& [k, v] : planned.items()) {
      const std::string at = path.empty() ? k : path + "." + k;
      // The API server leaves out a field at its zero value (false, 0, "", empty): not drift.
      bool zero = v == false || v == 0 || v == "" || ((v.is_object() || v.is_array()) && v.empty());
      if (!live.contains(k)) {
        if (!zero) out.push_back(at);
      } else {
        collectDrift(v, live[k], at, out);
      }
    }
  } else if (planned.is_array()) {
    if (!live.is_array() || live.size() != planned.size()) {
      out.push_back(path);
      return;
    }
    for (size_t i = 0; i < planned.size(); ++i) collectDrift(planned[i], live[i], path + "[" + std::to_string(i) + "]", out);
  } else if (planned != live) {
    out.push_back(path);
  }
}

bool ours(const json& object) {
  const json labels = object.value(json::json_pointer("/metadata/labels"), json::object());
  const json selector = gatewaySelector();
  for (const auto& [k, v] : selector.items()) {
    if (labels.value(k, json()) != v) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> plannedFieldsDrift(const json& planned, const json& live) {
  std::vector<std::string> out;
  for (const char* part : {"metadata", "spec", "data"}) {
    if (!planned.contains(part)) continue;
    json want = planned[part];
    if (want.is_object()) {
      want.erase("name");
      want.erase("namespace");
    }
    collectDrift(want, live.value(part, json()), part, out);
  }
  return out;
}

std::vector<std::string> foreignOwners(const json& live, const std::string& ours) {
  std::vector<std::string> out;
  for (const auto& entry : live.value(json::json_pointer("/metadata/managedFields"), json::array())) {
    if (!entry.is_object() || entry.value("manager", "") == ours || !entry.value("subresource", "").empty()) continue;
    const json fields = entry.value("fieldsV1", json::object());
    if (!fields.is_object()) continue;
    bool owns = fields.contains("f:spec") || fields.contains("f:data") || fields.contains("f:binaryData") ||
                fields.value(json::json_pointer("/f:metadata"), json::object()).contains("f:labels");
    if (owns) out.push_back("managedFields: " + entry.value("manager", std::string("(unnamed)")));
  }
  return out;
}

NamespaceGatewayPlan planNamespaceGateway(const std::string& ns, const AgentPolicy* policy, const std::vector<GatewayRun>& runs,
                                          const std::map<std::string, json>& live, const PlanOptions& options,
                                          const std::string& field_manager) {
  NamespaceGatewayPlan plan;
  if (!policy && !runs.empty()) {
    plan.watch = true;
    return plan;
  }
  if (!policy || !policy->gateway || runs.empty()) {
    const std::string reason = policy && policy->gateway ? "NoRuns" : "NoGateway";
    // The NetworkPolicy last: it is in the operator's cache, so a gateway half deleted by a crash
    // is still found by the next leader (GatewayReconciler::namespacesToLookAt).
    for (const char* kind : {"Deployment", "Service", "ConfigMap", "NetworkPolicy"}) {
      auto it = live.find(kind);
      if (it != live.end() && ours(it->second)) plan.writes.push_back({GatewayWrite::Op::Delete, kind, json(), reason, {}});
    }
    return plan;
  }
  plan.watch = true;
  for (auto& object : planGatewayObjects(ns, *policy, runs, options)) {
    const std::string kind = object.value("kind", "");
    auto it = live.find(kind);
    GatewayWrite w{GatewayWrite::Op::Apply, kind, json(), "", {}};
    if (it == live.end()) {
      w.reason = "Missing";
    } else if (specHashOf(it->second) != specHashOf(object)) {
      w.reason = "PlanChanged";
    } else if (auto drift = plannedFieldsDrift(object, it->second); !drift.empty() || !foreignOwners(it->second, field_manager).empty()) {
      for (auto& f : foreignOwners(it->second, field_manager)) drift.push_back(std::move(f));
      w.reason = "Edited";
      w.drift = std::move(drift);
      w.replace_uid = stringAt(it->second, "/metadata/uid");
    } else {
      continue;
    }
    w.object = std::move(object);
    plan.writes.push_back(std::move(w));
  }
  return plan;
}

}  // namespace paddock::controllers
