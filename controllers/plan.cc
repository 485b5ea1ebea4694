#include "controllers/plan.h"

#include "controllers/gateway.h"
#include "operator/common/glob.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cctype>
#include <cstdio>
#include <set>

namespace paddock::controllers {
namespace {

json labels(const AgentRun& run, const AgentPolicy& policy, const std::string& stage) {
  json l = {{kLabelRun, run.name}, {kLabelRunUid, run.uid}, {kLabelTeam, policy.name}, {"app.kubernetes.io/managed-by", "paddock"}};
  if (!stage.empty()) l[kLabelStage] = stage;
  return l;
}

json metadata(const std::string& name, const AgentRun& run, const AgentPolicy& policy, const std::string& stage) {
  return {{"name", name},
          {"namespace", run.ns},
          {"labels", labels(run, policy, stage)},
          {"ownerReferences", json::array({ownerReference(run)})}};
}

bool forStage(const SecretMount& s, const std::string& stage) {
  return std::find(s.stages.begin(), s.stages.end(), stage) != s.stages.end();
}

std::string secretVolumeName(size_t i) { return "secret-" + std::to_string(i); }

}  // namespace

// The one security context every Paddock container gets.
json containerSecurity(const PlanOptions& o) {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"runAsNonRoot", true},
          {"runAsUser", o.uid},
          {"runAsGroup", o.uid},
          {"privileged", false},
          {"capabilities", {{"drop", json::array({"ALL"})}}},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

std::string agentPodName(const AgentRun& run) { return run.name + "-agent"; }
std::string networkPolicyName(const AgentPolicy& policy) { return "paddock-" + policy.name; }

std::string specHashOf(const json& object) {
  const auto& meta = object.value("metadata", json::object());
  return meta.value("annotations", json::object()).value(kAnnotationSpecHash, std::string());
}
std::string workspaceClaimName(const AgentRun& run) { return run.name + "-workspace"; }
std::string stagePodName(const AgentRun& run, const std::string& stage) { return run.name + "-" + stage; }

json ownerReference(const AgentRun& run) {
  return {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"}, {"name", run.name},
          {"uid", run.uid}, {"controller", true}, {"blockOwnerDeletion", true}};
}

json taskAnnotations(const AgentRun& run, const AgentPolicy& policy, const Effective* agent) {
  std::string protected_paths;
  for (const auto& p : policy.protected_paths) protected_paths += p + "\n";
  json a = {{kAnnotationTask, run.task},
            {kAnnotationRepository, json{{"url", run.repository_url}, {"baseBranch", run.base_branch}}.dump(2)},
            {kAnnotationProtectedPaths, protected_paths}};
  if (agent) {
    // Managed settings outrank every other layer; only their permission rules and hooks count (a
    // repository's .claude/settings.json can neither widen the tools nor run a hook's command
    // outside them), and bypass mode is off.
    // The MCP tools the policy allows are allowed here too: the gateway is where they are enforced.
    json allow = policy.tools_allow;
    for (const auto& m : policy.mcp_servers) {
      for (const auto& t : m.allow_tools) allow.push_back("mcp__" + m.name + "__" + t);
    }
    json settings = {{"permissions", {{"allow", allow},
                                      {"deny", policy.tools_deny},
                                      {"disableBypassPermissionsMode", "disable"}}},
                     {"allowManagedPermissionRulesOnly", true},
                     {"allowManagedHooksOnly", true}};
    if (!agent->model.empty()) settings["model"] = agent->model;
    // The gateway path: Claude Code asks this command for its API key, which is the run's credential.
    if (policy.gateway) settings["apiKeyHelper"] = std::string("cat ") + kCredentialDir + "/" + kCredentialKey;
    a[kAnnotationManagedSettings] = settings.dump(2);
    // Managed MCP servers take exclusive control: a repository's .mcp.json adds none. Each is the
    // gateway's /mcp/<name>, with the run's credential from headersHelper.
    if (policy.gateway && !policy.mcp_servers.empty()) {
      json servers = json::object();
      for (const auto& m : policy.mcp_servers) {
        servers[m.name] = {{"type", "http"},
                           {"url", gatewayUrl() + "/mcp/" + m.name},
                           {"headersHelper", std::string("cat ") + kCredentialDir + "/" + kMcpHeadersKey}};
      }
      a[kAnnotationManagedMcp] = json{{"mcpServers", servers}}.dump(2);
    }
  }
  return a;
}

namespace {

// The pods of the policy's runs: the team label, on pods Paddock made.
json teamSelector(const AgentPolicy& policy) {
  return {{kLabelTeam, policy.name}, {"app.kubernetes.io/managed-by", "paddock"}};
}

json sharedMetadata(const std::string& name, const std::string& ns, const AgentPolicy& policy, const json& spec) {
  // FNV-1a over the spec's text: stable across processes and builds.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : spec.dump()) h = (h ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return {{"name", name},
          {"namespace", ns},
          {"labels", teamSelector(policy)},
          {"annotations", {{kAnnotationSpecHash, hex}}}};
}

}  // namespace

json planNetworkPolicy(const std::string& ns, const AgentPolicy& policy, const PlanOptions& options) {
  json dns_ports = json::array({{{"protocol", "UDP"}, {"port", 53}}, {{"protocol", "TCP"}, {"port", 53}}});
  json egress = json::array();
  egress.push_back({{"to", json::array({{{"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "kube-system"}}}}},
                                         {"podSelector", {{"matchLabels", {{"k8s-app", "kube-dns"}}}}}}})},
                    {"ports", dns_ports}});
  for (const auto& rule : policy.egress) {
    // With a gateway the agent reaches these through it (the gateway allows the addresses).
    if (rule.cidr.empty() || policy.gateway) continue;
    json ports = json::array();
    for (int p : rule.ports) ports.push_back({{"protocol", "TCP"}, {"port", p}});
    egress.push_back({{"to", json::array({{{"ipBlock", {{"cidr", rule.cidr}}}}})}, {"ports", ports}});
  }
  if (policy.gateway) {
    // The namespace's gateway: the model relay and the egress proxy that allows hosts by name.
    egress.push_back({{"to", json::array({{{"podSelector", {{"matchLabels", {{kLabelComponent, "gateway"},
                                                                           {"app.kubernetes.io/managed-by", "paddock"}}}}}}})},
                      {"ports", json::array({{{"protocol", "TCP"}, {"port", kGatewayPort}}})}});
  }
  for (const auto& stage : policy.stages) {
    int port = urlPort(stage.endpoint_url);
    if (stage.endpoint_cidr.empty() || port == 0) continue;
    egress.push_back({{"to", json::array({{{"ipBlock", {{"cidr", stage.endpoint_cidr}}}}})},
                      {"ports", json::array({{{"protocol", "TCP"}, {"port", port}}})}});
  }
  json ingress = json::array();
  if (!options.scrape_namespace_labels.empty()) {
    json peer = {{"namespaceSelector", {{"matchLabels", options.scrape_namespace_labels}}}};
    if (!options.scrape_pod_labels.empty()) peer["podSelector"] = {{"matchLabels", options.scrape_pod_labels}};
    ingress.push_back({{"from", json::array({peer})},
                       {"ports", json::array({{{"protocol", "TCP"}, {"port", options.metrics_port}}})}});
  }
  json spec = {{"podSelector", {{"matchLabels", teamSelector(policy)}}},
               {"policyTypes", json::array({"Ingress", "Egress"})},
               {"ingress", ingress},
               {"egress", egress}};
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", sharedMetadata(networkPolicyName(policy), ns, policy, spec)},
          {"spec", spec}};
}

namespace {

// A label name (optionally prefixed by a DNS subdomain and "/") or value: at most 63 characters
// of letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
bool labelPart(const std::string& s, bool may_be_empty) {
  if (s.empty()) return may_be_empty;
  if (s.size() > 63 || !std::isalnum(static_cast<unsigned char>(s.front())) ||
      !std::isalnum(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool labelKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return labelPart(key, false);
  std::string prefix = key.substr(0, slash);
  return !prefix.empty() && prefix.size() <= 253 && labelPart(prefix, false) && labelPart(key.substr(slash + 1), false);
}

}  // namespace

Result<std::map<std::string, std::string>> parseMatchLabels(const std::string& text, const std::string& flag) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    std::string pair = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() : comma + 1;
    auto eq = pair.find('=');
    std::string key = pair.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    if (eq == std::string::npos || !labelKey(key) || !labelPart(value, true) || out.count(key)) {
      return Error::local("InvalidFlag", "--" + flag + ": \"" + pair +
                                             "\" is not a label key=value (write key=value pairs separated by commas, "
                                             "e.g. kubernetes.io/metadata.name=monitoring)");
    }
    out[key] = value;
  }
  return out;
}

bool hostEgressUnenforced(const AgentPolicy& policy) {
  if (policy.gateway) return false;
  return std::any_of(policy.egress.begin(), policy.egress.end(), [](const EgressRule& r) { return !r.host.empty(); });
}

namespace {

json workspaceVolume(const AgentRun& run, const PlanOptions& o) {
  if (run.stages.empty()) return {{"name", "workspace"}, {"emptyDir", {{"sizeLimit", o.workspace_size}}}};
  return {{"name", "workspace"}, {"persistentVolumeClaim", {{"claimName", workspaceClaimName(run)}}}};
}

// A downward-API file holding one of the pod's own annotations.
json annotationFile(const std::string& annotation, const std::string& path) {
  return {{"path", path}, {"fieldRef", {{"fieldPath", "metadata.annotations['" + annotation + "']"}}}};
}

// The run's task, repository and protected paths (taskAnnotations), read-only.
json taskVolume() {
  return {{"name", "task"},
          {"downwardAPI",
           {{"defaultMode", 0444},
            {"items", json::array({annotationFile(kAnnotationTask, "task.md"),
                                   annotationFile(kAnnotationRepository, "repository.json"),
                                   annotationFile(kAnnotationProtectedPaths, "protected-paths")})}}}};
}

// The stage's secrets as read-only files under /var/run/paddock/secrets/<secret>/<key>.
void mountSecrets(const AgentPolicy& policy, const std::string& stage, json& volumes, json& mounts) {
  for (size_t i = 0; i < policy.secrets.size(); ++i) {
    const auto& s = policy.secrets[i];
    if (!forStage(s, stage)) continue;
    // With a gateway the model key is the gateway's alone, whatever spec.secrets says.
    if (stage == "agent" && policy.gateway && s.secret_name == policy.gateway->key_secret) continue;
    volumes.push_back({{"name", secretVolumeName(i)},
                       {"secret", {{"secretName", s.secret_name},
                                   {"defaultMode", 0400},
                                   {"items", json::array({{{"key", s.key}, {"path", s.key}, {"mode", 0400}}})}}}});
    mounts.push_back({{"name", secretVolumeName(i)},
                      {"mountPath", "/var/run/paddock/secrets/" + s.secret_name},
                      {"readOnly", true}});
  }
}

json podSecurity(const PlanOptions& o) {
  return {{"runAsNonRoot", true}, {"runAsUser", o.uid}, {"runAsGroup", o.uid}, {"fsGroup", o.uid},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

}  // namespace

json planWorkspaceClaim(const AgentRun& run, const AgentPolicy& policy, const PlanOptions& o) {
  json spec = {{"accessModes", json::array({"ReadWriteOnce"})},
               {"resources", {{"requests", {{"storage", o.workspace_size}}}}}};
  if (!o.workspace_storage_class.empty()) spec["storageClassName"] = o.workspace_storage_class;
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"metadata", metadata(workspaceClaimName(run), run, policy, "agent")},
          {"spec", spec}};
}

int urlPort(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return 0;
  std::string name = url.substr(0, scheme);
  size_t host = scheme + 3, end = url.find_first_of("/?#", host);
  std::string authority = url.substr(host, end == std::string::npos ? std::string::npos : end - host);
  if (authority.find('@') != std::string::npos || authority.empty()) return 0;
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    std::string digits = authority.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return 0;
    int port = std::stoi(digits);
    return port >= 1 && port <= 65535 ? port : 0;
  }
  return name == "https" ? 443 : name == "http" ? 80 : 0;
}

namespace {

// paddock-stage's arguments for a stage (docs/stages.md).
json stageArgs(const AgentPolicy& policy, const StageSpec& stage, const StageArgs& args) {
  json out = json::array({stage.name, "--workspace", "/workspace", "--repository-file", "/etc/paddock/task/repository.json",
                          "--protected-paths-file", "/etc/paddock/task/protected-paths", "--result",
                          "/dev/termination-log"});
  auto add = [&out](const char* flag, const std::string& value) {
    out.push_back(flag);
    out.push_back(value);
  };
  for (const auto& s : policy.secrets) {
    if (!forStage(s, stage.name)) continue;
    add("--token-file", "/var/run/paddock/secrets/" + s.secret_name + "/" + s.key);
    break;
  }
  if (!stage.endpoint_url.empty()) add("--deploy-url", stage.endpoint_url);
  if (!args.base_commit.empty()) add("--base-commit", args.base_commit);
  if (!args.release.empty()) add("--release", args.release);
  if (!args.partial.empty()) add("--partial", args.partial);
  return out;
}

}  // namespace

json planStagePod(const AgentRun& run, const AgentPolicy& policy, const StageSpec& stage, const PlanOptions& o,
                  const StageArgs& args) {
  json volumes = json::array({
      workspaceVolume(run, o),
      {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", o.tmp_size}}}},
      {{"name", "home"}, {"emptyDir", {{"sizeLimit", o.home_size}}}},
      taskVolume(),
  });
  json mounts = json::array({
      {{"name", "workspace"}, {"mountPath", "/workspace"}},
      {{"name", "tmp"}, {"mountPath", "/tmp"}},
      {{"name", "home"}, {"mountPath", "/home/stage"}},
      {{"name", "task"}, {"mountPath", "/etc/paddock/task"}, {"readOnly", true}},
  });
  mountSecrets(policy, stage.name, volumes, mounts);
  json env = json::array({
      {{"name", "HOME"}, {"value", "/home/stage"}},
      {{"name", "PADDOCK_RUN"}, {"value", run.name}},
      {{"name", "PADDOCK_NAMESPACE"}, {"value", run.ns}},
      {{"name", "PADDOCK_STAGE"}, {"value", stage.name}},
      {{"name", "PADDOCK_TASK_FILE"}, {"value", "/etc/paddock/task/task.md"}},
      {{"name", "PADDOCK_SECRETS_DIR"}, {"value", "/var/run/paddock/secrets"}},
  });
  // The pr stage's forge and remote are reached through the gateway, as the agent's are; deploy
  // and promote reach their endpoint directly (spec.stages[].endpoint.cidr).
  if (policy.gateway && stage.name == "pr") {
    for (auto e : gatewayProxyEnv()) env.push_back(std::move(e));
  }
  json container = {{"name", "stage"},
                    {"image", stage.image.empty() ? o.stage_image : stage.image},
                    {"imagePullPolicy", "IfNotPresent"},
                    {"workingDir", "/workspace"},
                    {"args", stageArgs(policy, stage, args)},
                    {"env", env},
                    {"volumeMounts", mounts},
                    {"securityContext", containerSecurity(o)},
                    {"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}},
                    {"terminationMessagePath", "/dev/termination-log"},
                    {"terminationMessagePolicy", "File"}};
  json spec = {{"restartPolicy", "Never"},
               {"automountServiceAccountToken", false},
               {"enableServiceLinks", false},
               {"terminationGracePeriodSeconds", o.termination_grace.count()},
               {"activeDeadlineSeconds", o.stage_deadline.count()},
               {"securityContext", podSecurity(o)},
               {"containers", json::array({container})},
               {"volumes", volumes}};
  if (!policy.runtime_class_name.empty()) spec["runtimeClassName"] = policy.runtime_class_name;
  json meta = metadata(stagePodName(run, stage.name), run, policy, stage.name);
  meta["annotations"] = taskAnnotations(run, policy, nullptr);
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", spec}};
}

// The agent pod's init container that clones the repository into the workspace.
static json workspaceCloneContainer(const PlanOptions& o) {
  return {{"name", "workspace"},
          {"image", o.stage_image},
          {"imagePullPolicy", "IfNotPresent"},
          // Its result (the commit the workspace starts from) is its termination message, which
          // the pr stage is later told: a record the agent, which runs after it, cannot alter.
          {"args", json::array({"clone", "--repository-file", "/etc/paddock/task/repository.json",
                                "--into", "/workspace", "--result", "/dev/termination-log"})},
          {"terminationMessagePath", "/dev/termination-log"},
          {"terminationMessagePolicy", "File"},
          {"volumeMounts", json::array({{{"name", "workspace"}, {"mountPath", "/workspace"}},
                                        {{"name", "tmp"}, {"mountPath", "/tmp"}},
                                        {{"name", "task"}, {"mountPath", "/etc/paddock/task"}, {"readOnly", true}}})},
          {"securityContext", containerSecurity(o)},
          {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "512Mi"}}}}}};
}

json sandboxCommand(const AgentPolicy& policy) {
  json cmd = json::array({std::string(kSandboxDir) + "/paddock-sandbox", "--workspace", "/workspace",
                          "--protected-paths-file", "/etc/paddock/task/protected-paths", "--writable", "/home/agent",
                          "--writable", "/tmp", "--when-unavailable", policy.sandbox.warn_when_unavailable ? "warn" : "refuse"});
  // TCP connect: the gateway's port alone on the gateway path, else the ports spec.egress allows;
  // and DNS's (its answers fall back to TCP; the NetworkPolicy lets it reach only kube-dns).
  std::set<int> ports = {53};
  if (policy.gateway) ports.insert(kGatewayPort);
  else for (const auto& rule : policy.egress) ports.insert(rule.ports.begin(), rule.ports.end());
  cmd.push_back("--restrict-tcp");
  for (int p : ports) cmd.insert(cmd.end(), {"--connect-port", std::to_string(p)});
  cmd.push_back("--");
  for (const auto& part : policy.sandbox.command) cmd.push_back(part);
  return cmd;
}

namespace {

// Copies paddock-sandbox from the operator's image into the pod's sandbox volume and reports, in
// its termination message, the node's Landlock ABI (observeSandbox reads it).
json sandboxInstallContainer(const AgentPolicy& policy, const PlanOptions& o) {
  return {{"name", "sandbox"},
          {"image", o.sandbox_image},
          {"imagePullPolicy", "IfNotPresent"},
          {"command", json::array({"/usr/local/bin/paddock-sandbox", "install", "--to", kSandboxDir, "--when-unavailable",
                                   policy.sandbox.warn_when_unavailable ? "warn" : "refuse"})},
          {"volumeMounts", json::array({{{"name", "sandbox"}, {"mountPath", kSandboxDir}}})},
          {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}, {"limits", {{"memory", "64Mi"}}}}},
          {"securityContext", containerSecurity(o)}};
}

}  // namespace

json planAgentPod(const AgentRun& run, const AgentPolicy& policy, const Effective& effective,
                  const PlanOptions& o) {
  json settingsFiles = json::array({annotationFile(kAnnotationManagedSettings, "managed-settings.json")});
  if (policy.gateway && !policy.mcp_servers.empty()) settingsFiles.push_back(annotationFile(kAnnotationManagedMcp, "managed-mcp.json"));
  json volumes = json::array({
      workspaceVolume(run, o),
      {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", o.tmp_size}}}},
      {{"name", "home"}, {"emptyDir", {{"sizeLimit", o.home_size}}}},
      taskVolume(),
      {{"name", "settings"},
       {"downwardAPI",
        {{"defaultMode", 0444},
         {"items", settingsFiles}}}},
      {{"name", "control"},
       {"downwardAPI",
        {{"defaultMode", 0444},
         {"items", json::array({{{"path", "annotations"}, {"fieldRef", {{"fieldPath", "metadata.annotations"}}}}})}}}},
      {{"name", "sandbox"}, {"emptyDir", {{"sizeLimit", "64Mi"}}}},
  });
  json mounts = json::array({
      {{"name", "sandbox"}, {"mountPath", kSandboxDir}, {"readOnly", true}},
      {{"name", "workspace"}, {"mountPath", "/workspace"}},
      {{"name", "tmp"}, {"mountPath", "/tmp"}},
      {{"name", "home"}, {"mountPath", "/home/agent"}},
      {{"name", "task"}, {"mountPath", "/etc/paddock/task"}, {"readOnly", true}},
      {{"name", "settings"}, {"mountPath", "/etc/claude-code"}, {"readOnly", true}},
      {{"name", "control"}, {"mountPath", "/etc/paddock/control"}, {"readOnly", true}},
  });
  // Each protected literal path (".github/workflows/**", "CODEOWNERS") read-only over itself: the
  // kernel refuses any write, create, delete or rename there (the kubelet makes a missing one
  // as an empty folder), and paddock-sandbox's Landlock rules hold only the wildcard globs.
  std::set<std::string> literal;
  for (const auto& glob : policy.protected_paths) {
    if (auto path = literalPath(glob); !path.empty()) literal.insert(path);
  }
  for (const auto& path : literal) {
    mounts.push_back({{"name", "workspace"}, {"mountPath", "/workspace/" + path}, {"subPath", path}, {"readOnly", true}});
  }
  mountSecrets(policy, "agent", volumes, mounts);
  json env = json::array({
      {{"name", "HOME"}, {"value", "/home/agent"}},
      {{"name", "PADDOCK_RUN"}, {"value", run.name}},
      {{"name", "PADDOCK_TASK_FILE"}, {"value", "/etc/paddock/task/task.md"}},
      {{"name", "PADDOCK_CONTROL_FILE"}, {"value", "/etc/paddock/control/annotations"}},
      {{"name", "PADDOCK_SECRETS_DIR"}, {"value", "/var/run/paddock/secrets"}},
      {{"name", "CLAUDE_CODE_ENABLE_TELEMETRY"}, {"value", "1"}},
      {{"name", "OTEL_METRICS_EXPORTER"}, {"value", "prometheus"}},
      {{"name", "OTEL_RESOURCE_ATTRIBUTES"}, {"value", "agentrun=" + run.name + ",namespace=" + run.ns}},
  });
  if (!effective.model.empty()) env.push_back({{"name", "ANTHROPIC_MODEL"}, {"value", effective.model}});

  json agent = {{"name", "agent"},
                {"image", effective.image},
                {"imagePullPolicy", "IfNotPresent"},
                {"command", sandboxCommand(policy)},
                {"workingDir", "/workspace"},
                {"env", env},
                {"ports", json::array({{{"name", "metrics"}, {"containerPort", o.metrics_port}}})},
                {"volumeMounts", mounts},
                {"securityContext", containerSecurity(o)},
                {"terminationMessagePolicy", "FallbackToLogsOnError"}};
  if (!policy.resources.empty()) agent["resources"] = policy.resources;
  json workspace = workspaceCloneContainer(o);
  auto wall = std::chrono::duration_cast<std::chrono::seconds>(effective.wall_clock);
  json spec = {{"restartPolicy", "Never"},
               {"automountServiceAccountToken", false},
               {"enableServiceLinks", false},
               {"hostNetwork", false},
               {"hostPID", false},
               {"hostIPC", false},
               {"terminationGracePeriodSeconds", o.termination_grace.count()},
               {"activeDeadlineSeconds", (wall + o.deadline_grace).count()},
               {"securityContext", podSecurity(o)},
               {"initContainers", json::array({sandboxInstallContainer(policy, o), workspace})},
               {"containers", json::array({agent})},
               {"volumes", volumes}};
  if (!policy.runtime_class_name.empty()) spec["runtimeClassName"] = policy.runtime_class_name;
  json meta = metadata(agentPodName(run), run, policy, "agent");
  meta["finalizers"] = json::array({kFinalizerAgentPod});
  meta["annotations"] = taskAnnotations(run, policy, &effective);
  meta["annotations"].update({{"prometheus.io/scrape", "true"},
                              {"prometheus.io/port", std::to_string(o.metrics_port)},
                              {"prometheus.io/path", "/metrics"}});
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", spec}};
  if (policy.gateway) addGatewayToAgentPod(pod, run, o);
  return pod;
}

}  // namespace paddock::controllers
