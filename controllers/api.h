// Paddock's API types (paddock.dev/v1alpha1) as the controllers read them, parsed from the JSON
// the API server returns. Parsing is total: a field of the wrong shape becomes an error that names
// the field, never an exception, so a bad object becomes a condition rather than a crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"

namespace paddock::controllers {

using nlohmann::json;

// A budget; each part is optional (unset: take the policy's default).
struct Budget {
  std::optional<int64_t> tokens;
  std::optional<int64_t> cost_cents;  // costUSD "6.25" is 625
  std::optional<std::chrono::milliseconds> wall_clock;
};

struct LabelSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
};

struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;

  // Kubernetes semantics: every label and every expression must hold; an empty selector matches all.
  bool matches(const std::map<std::string, std::string>& labels) const;
};

struct StageSpec {
  std::string name;
  std::string image;
  std::vector<std::string> approver_users;
  std::vector<std::string> approver_groups;
  int min_approvals = 1;
  std::chrono::milliseconds approval_timeout{72LL * 3600 * 1000};
  // spec.stages[].endpoint of a deploy or promote stage: where the stage sends the release, and
  // the addresses the team's NetworkPolicy lets pods reach it at (on the URL's port).
  std::string endpoint_url;
  std::string endpoint_cidr;
};

struct SecretMount {
  std::string secret_name;
  std::string key;
  std::vector<std::string> stages;
};

// spec.repositories[]: a Git host runs may target and, when listed, the organisations on it.
struct RepositoryRule {
  std::string host;
  std::vector<std::string> organizations;  // empty: every organisation
};

struct EgressRule {
  std::string cidr;  // exactly one of cidr and host
  std::string host;
  std::vector<int> ports;
};

// Claude Code's own metric names, as its OpenTelemetry Prometheus exporter writes them, summed
// per agent pod by the labels service discovery sets (controllers/usage.h, docs/budgets.md).
inline constexpr const char* kDefaultTokensQuery = "sum by (namespace, pod, pod_uid) (claude_code_token_usage_tokens_total)";
inline constexpr const char* kDefaultCostQuery = "sum by (namespace, pod, pod_uid) (claude_code_cost_usage_USD_total)";
// Under spec.gateway the defaults are the gateway's own counters, which it keeps per run as it
// relays each model call: summed per gateway pod and per run (agentrun and the first 12 hex digits
// of the run's credential hash, labels the gateway writes); controllers/usage.h binds them.
inline constexpr const char* kGatewayTokensQuery =
    "sum by (namespace, pod, pod_uid, agentrun, credential) (paddock_gateway_tokens_total)";
inline constexpr const char* kGatewayCostQuery =
    "sum by (namespace, pod, pod_uid, agentrun, credential) (paddock_gateway_cost_usd_total)";
// What the gateway refused per run and reason (model calls, MCP messages, tool calls the agent
// reports refused), bound to runs as the two above; the run's status.usage.refusals shows them.
inline constexpr const char* kGatewayRefusalsQuery =
    "sum by (namespace, pod, pod_uid, agentrun, credential, reason) (paddock_gateway_refusals_total)";
// The former defaults, grouped by labels the agent writes itself; a policy that still holds them
// (the CRD once stored them) gets the defaults above.
inline constexpr const char* kFormerTokensQuery = "sum by (agentrun, namespace) (claude_code_token_usage_tokens_total)";
inline constexpr const char* kFormerCostQuery = "sum by (agentrun, namespace) (claude_code_cost_usage_USD_total)";

// spec.gateway: the paddock-gateway runs in each governed namespace (docs/gateway.md).
struct ModelPrice {
  std::string input, output, cache_read, cache_write;  // USD per million tokens, as written
};
struct GatewaySpec {
  std::string key_secret, key_key;  // spec.gateway.modelKey: the model key, mounted only into the gateway
  std::string upstream = "https://api.anthropic.com";
  std::map<std::string, ModelPrice> prices;
};

// spec.tools.mcpServers[]: a remote MCP server (streamable HTTP) the runs reach only through the
// namespace's gateway, which allows `allow_tools`, checks arguments and adds the credential.
struct McpServerSpec {
  std::string name;  // a DNS label of at most 40: /mcp/<name> on the gateway, mcp__<name>__<tool> in Claude Code
  std::string url;   // http(s)://host[:port]/path
  std::vector<std::string> allow_tools;
  std::string secret, key;                // credential: the Secret (in the team's namespace) and key; "" for none
  std::string header = "Authorization";  // the header that carries it ("Bearer <value>" for Authorization)
};

// spec.sandbox: how paddock-sandbox (sandbox/, docs/sandbox.md) starts the agent.
struct SandboxSpec {
  // The agent image's entrypoint, which the sandbox execs once its Landlock ruleset is applied
  // (the pod's command is the sandbox's, so the image's own ENTRYPOINT is not run).
  std::vector<std::string> command = {"/usr/local/bin/paddock-agent"};
  bool warn_when_unavailable = false;  // whenUnavailable: Warn (the default, Refuse, fails the run)
};

struct AgentPolicy {
  std::string name;
  std::string uid;
  LabelSelector namespace_selector;
  std::string default_image;
  std::vector<std::string> allowed_images;  // globs
  std::string model_pin;                    // "" when the policy pins no model
  Budget default_budget;
  Budget max_budget;
  int checkpoint_percent = 60;
  // spec.budgets.metrics: PromQL returning each agent pod's usage, grouped by namespace, pod and
  // pod_uid (unset: Claude Code's own metrics, or the gateway's counters under spec.gateway).
  std::string tokens_query = kDefaultTokensQuery;
  std::string cost_query = kDefaultCostQuery;
  // spec.budgets.whenMetricsUnavailable: how long usage may be unreadable, then stop or carry on.
  std::chrono::milliseconds metrics_grace{5 * 60 * 1000};
  bool continue_without_metrics = false;  // action Continue (the default is Terminate)
  int max_running = 10;
  // spec.idempotency.retention: how long a finished run's idempotencyKey is remembered after the
  // run itself is deleted (the run index's ledger, from the audit log); 0 while the run exists only.
  std::chrono::milliseconds idempotency_retention{0};
  std::vector<StageSpec> stages;
  std::vector<SecretMount> secrets;
  std::string runtime_class_name;
  json resources = json::object();  // a container's resources: {limits: {...}, requests: {...}}
  std::vector<EgressRule> egress;
  std::optional<GatewaySpec> gateway;  // spec.gateway; nullopt: agents hold the key themselves
  bool allow_cloud_metadata_egress = false;
  std::vector<RepositoryRule> repositories;  // empty: any host
  std::vector<std::string> tools_allow;
  std::vector<std::string> tools_deny;
  std::vector<McpServerSpec> mcp_servers;
  std::vector<std::string> protected_paths;
  SandboxSpec sandbox;
};

struct AgentRun {
  std::string ns;
  std::string name;
  std::string uid;
  int64_t generation = 0;
  std::string creation_timestamp;  // RFC 3339, for ordering runs that wait for a slot
  std::string task;
  std::string repository_url;
  std::string base_branch = "main";
  std::string image;               // "" means the policy's default
  std::string model;               // "" means the policy's pin
  Budget budget;
  std::vector<std::string> stages;
  std::string idempotency_key;
  std::string requested_by;  // spec.requestedBy: the creating user (admission policy)
  bool cancel = false;
  std::string phase;     // status.phase, "" before the first status write
  bool started = false;  // its agent pod was created (status.stages records it)
  // status.gateway.credentialSecret: the Secret holding the run's gateway credential, once issued.
  std::string gateway_credential_secret;
};

// "6", "6.5", "6.25" -> cents; nullopt for anything else.
std::optional<int64_t> parseCostCents(const std::string& text);
std::string formatCents(int64_t cents);

Result<AgentPolicy> parseAgentPolicy(const json& object);
Result<AgentRun> parseAgentRun(const json& object);

}  // namespace paddock::controllers
