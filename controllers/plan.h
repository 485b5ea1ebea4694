// Planning the children of an AgentRun: pure functions from the run, its policy and what
// admission decided to the exact objects the operator applies. Deterministic names, owner
// references and labels; no I/O, no clock.
//
// Guarantees
// - The agent pod passes Pod Security Admission "restricted" whatever the policy says: the
//   security context is fixed here and no policy field reaches it.
// - Secrets are mounted as read-only files (mode 0400) into the stage that lists them, never as
//   environment variables; the agent pod gets only secrets whose stages include "agent".
// - The NetworkPolicy denies all ingress but the scrape of the agent's metrics port by the
//   monitoring pods the operator is told of (PlanOptions::scrape_*), and allows egress only to DNS,
//   the policy's CIDR rules and its stages' endpoints. With spec.gateway the CIDR rules give way
//   to the namespace's paddock-gateway, which enforces them and the host rules by name
//   (controllers/gateway.h); without one, runs whose policy has host rules say so in their
//   HostEgressEnforced condition.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "controllers/admission.h"
#include "controllers/api.h"

namespace paddock::controllers {

using nlohmann::json;

struct PlanOptions {
  // The platform's stage image; its workspace init container clones the repository.
  std::string stage_image = "registry.example.com/platform/paddock-stage:1.0";
  int64_t uid = 65532;  // the fixed non-root user every container runs as
  // How long the agent has to save its work after a termination request.
  std::chrono::seconds termination_grace{60};
  // Added to the wall-clock budget for activeDeadlineSeconds, the kubelet's backstop.
  std::chrono::seconds deadline_grace{120};
  std::string workspace_size = "10Gi";
  std::string tmp_size = "1Gi";
  std::string home_size = "1Gi";
  int metrics_port = 9464;  // the OpenTelemetry Prometheus exporter's default
  std::string workspace_storage_class;  // "" for the cluster's default StorageClass
  std::chrono::seconds stage_deadline{3600};  // activeDeadlineSeconds of a gated stage's pod
  // Who may reach metrics_port through the team's NetworkPolicy, so Prometheus can read usage:
  // pods matching scrape_pod_labels (all, when empty) in namespaces matching
  // scrape_namespace_labels. Empty namespace labels: nobody, all ingress stays denied.
  std::map<std::string, std::string> scrape_namespace_labels;
  std::map<std::string, std::string> scrape_pod_labels;
  // paddock-gateway (policies with spec.gateway): the image it runs from (the operator's), and
  // how long an agent pod waits for the gateway to serve its credential.
  std::string gateway_image = "registry.example.com/platform/paddock-operator:1.0";
  std::chrono::seconds credential_wait{600};
  // paddock-sandbox: the image its install init container runs from (the operator's; the
  // binary is static, so it runs in any agent image).
  std::string sandbox_image = "registry.example.com/platform/paddock-operator:1.0";
};

// Where the agent container finds paddock-sandbox (a read-only emptyDir its init container fills).
inline constexpr const char* kSandboxDir = "/paddock/sandbox";
// The agent container's command: paddock-sandbox with the policy's profile, then the image's
// entrypoint (spec.sandbox.command).
json sandboxCommand(const AgentPolicy& policy);

// "key=value,key2=value2" (a label selector of equalities, as kubectl's -l takes them) as
// matchLabels; an error names `flag` and the bad part. "" is no labels.
Result<std::map<std::string, std::string>> parseMatchLabels(const std::string& text, const std::string& flag);

inline constexpr const char* kLabelRun = "paddock.dev/run";
// The run's UID on every child: a name can be taken by anyone, a UID cannot be known before the run exists.
inline constexpr const char* kLabelRunUid = "paddock.dev/run-uid";
inline constexpr const char* kLabelTeam = "paddock.dev/team";
inline constexpr const char* kLabelStage = "paddock.dev/stage";
inline constexpr const char* kAnnotationCheckpoint = "paddock.dev/checkpoint";
// On the agent pod from its creation until the run's status records it (or the run has ended):
// a pod deleted in between stays, terminating, until a restarted operator has recorded it, so it
// can never be taken for a pod that was never made (and made again). The Job controller's
// batch.kubernetes.io/job-tracking finalizer does the same for a Job's pods.
inline constexpr const char* kFinalizerAgentPod = "paddock.dev/agent-pod";
// The planned NetworkPolicy's content hash: the operator re-applies only when it changes.
inline constexpr const char* kAnnotationSpecHash = "paddock.dev/spec-hash";
// What a run's pods read as downward-API files (taskAnnotations); immutable once the pod exists
// (charts/paddock/files/admission-policies.yaml).
inline constexpr const char* kAnnotationTask = "paddock.dev/task";
inline constexpr const char* kAnnotationRepository = "paddock.dev/repository";
inline constexpr const char* kAnnotationProtectedPaths = "paddock.dev/protected-paths";
inline constexpr const char* kAnnotationManagedSettings = "paddock.dev/managed-settings";
// Claude Code's managed MCP configuration (/etc/claude-code/managed-mcp.json): the policy's MCP
// servers, each at the namespace's gateway. Only on the gateway path with MCP servers.
inline constexpr const char* kAnnotationManagedMcp = "paddock.dev/managed-mcp";
// An object's kAnnotationSpecHash, or "".
std::string specHashOf(const json& object);

std::string agentPodName(const AgentRun& run);
// One NetworkPolicy per policy and namespace, selecting the team's pods ("paddock-<policy>").
std::string networkPolicyName(const AgentPolicy& policy);
std::string workspaceClaimName(const AgentRun& run);
std::string stagePodName(const AgentRun& run, const std::string& stage);

// The controller owner reference to the run, so deleting the run collects its children.
json ownerReference(const AgentRun& run);

// What a pod of the run reads as files of a downward-API volume, as annotations of the pod itself
// (no object of its own to write per run): the task, the repository, the protected paths and,
// for the agent, its managed settings (tool allow/deny, MCP servers, model pin).
json taskAnnotations(const AgentRun& run, const AgentPolicy& policy, const Effective* agent);
// The team's NetworkPolicy in a namespace: selects every pod Paddock makes for the policy's runs,
// denies all ingress but the metrics scrape (options.scrape_*) and allows egress only to DNS, the
// policy's CIDR rules and its stages' endpoints (spec.stages[].endpoint.cidr on the URL's port). It
// has no owner: it outlives any one run, and goes with the namespace.
json planNetworkPolicy(const std::string& ns, const AgentPolicy& policy, const PlanOptions& options = {});

// The one security context every Paddock container gets (the agent's, the stages', the
// gateway's): read-only root, options.uid, no privilege escalation, every capability dropped,
// seccomp RuntimeDefault.
json containerSecurity(const PlanOptions& options);
// True when the policy has host egress rules and no gateway: no NetworkPolicy can enforce them.
bool hostEgressUnenforced(const AgentPolicy& policy);
// The agent pod. A run with gated stages keeps its workspace on a claim of its own
// (planWorkspaceClaim) that the stages share; otherwise the workspace is an emptyDir.
json planAgentPod(const AgentRun& run, const AgentPolicy& policy, const Effective& effective,
                  const PlanOptions& options);
json planWorkspaceClaim(const AgentRun& run, const AgentPolicy& policy, const PlanOptions& options);
// What a gated stage's program is told beyond the run (docs/stages.md): the commit the agent
// started from (pr, --base-commit) and the release the deploy stage staged (promote, --release).
struct StageArgs {
  std::string base_commit;
  std::string release;
  std::string partial;  // pr: the agent was stopped before it finished (why): open a draft
};
// A gated stage's pod: the policy's stage image, the shared workspace, and only the secrets
// whose stages name this stage. Its program is `paddock-stage <stage>` with the first of those
// secrets as --token-file and the stage's endpoint as --deploy-url; its result is its termination
// message (terminationMessagePolicy File: never its logs).
json planStagePod(const AgentRun& run, const AgentPolicy& policy, const StageSpec& stage, const PlanOptions& options,
                  const StageArgs& args = {});
// The TCP port of an http(s) URL: the explicit one, else 443 (https) or 80 (http); 0 when unclear.
int urlPort(const std::string& url);

}  // namespace paddock::controllers
