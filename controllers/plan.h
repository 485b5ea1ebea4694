// Planning the children of an AgentRun: pure functions from the run, its policy and what
// admission decided to the exact objects the operator applies. Deterministic names, owner
// references and labels; no I/O, no clock.
//
// Guarantees
// - The agent pod passes Pod Security Admission "restricted" whatever the policy says: the
//   security context is fixed here and no policy field reaches it.
// - Secrets are mounted as read-only files (mode 0400) into the stage that lists them, never as
//   environment variables; the agent pod gets only secrets whose stages include "agent".
// - The NetworkPolicy denies all ingress and allows egress only to DNS and the policy's CIDR
//   rules. Host rules need an FQDN-aware CNI: rendered as a CiliumNetworkPolicy when enabled.
#pragma once

#include <chrono>
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
  bool cilium = false;      // render host egress rules as a CiliumNetworkPolicy
  std::string workspace_storage_class;  // "" for the cluster's default StorageClass
  std::chrono::seconds stage_deadline{3600};  // activeDeadlineSeconds of a gated stage's pod
};

inline constexpr const char* kLabelRun = "paddock.dev/run";
// The run's UID on every child: a name can be taken by anyone, a UID cannot be known before the run exists.
inline constexpr const char* kLabelRunUid = "paddock.dev/run-uid";
inline constexpr const char* kLabelTeam = "paddock.dev/team";
inline constexpr const char* kLabelStage = "paddock.dev/stage";
inline constexpr const char* kAnnotationCheckpoint = "paddock.dev/checkpoint";
// The planned NetworkPolicy's content hash: the operator re-applies only when it changes.
inline constexpr const char* kAnnotationSpecHash = "paddock.dev/spec-hash";
// What a run's pods read as downward-API files (taskAnnotations); immutable once the pod exists
// (charts/paddock/files/admission-policies.yaml).
inline constexpr const char* kAnnotationTask = "paddock.dev/task";
inline constexpr const char* kAnnotationRepository = "paddock.dev/repository";
inline constexpr const char* kAnnotationProtectedPaths = "paddock.dev/protected-paths";
inline constexpr const char* kAnnotationManagedSettings = "paddock.dev/managed-settings";
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
// denies all ingress and allows egress only to DNS and the policy's CIDR rules. It has no owner:
// it outlives any one run, and goes with the namespace.
json planNetworkPolicy(const std::string& ns, const AgentPolicy& policy);
// A CiliumNetworkPolicy for the policy's host rules, when Cilium support is on and there are any.
std::optional<json> planCiliumPolicy(const std::string& ns, const AgentPolicy& policy, const PlanOptions& options);
// True when the policy has host egress rules that nothing will enforce with these options.
bool hostEgressUnenforced(const AgentPolicy& policy, const PlanOptions& options);
// The agent pod. A run with gated stages keeps its workspace on a claim of its own
// (planWorkspaceClaim) that the stages share; otherwise the workspace is an emptyDir.
json planAgentPod(const AgentRun& run, const AgentPolicy& policy, const Effective& effective,
                  const PlanOptions& options);
json planWorkspaceClaim(const AgentRun& run, const AgentPolicy& policy, const PlanOptions& options);
// A gated stage's pod: the policy's stage image, the shared workspace, and only the secrets
// whose stages name this stage.
json planStagePod(const AgentRun& run, const AgentPolicy& policy, const StageSpec& stage, const PlanOptions& options);

}  // namespace paddock::controllers
