// The AgentPolicy status controller (the leader runs it): what the operator observes about each
// policy, written to its status subresource only when it changed, with observedGeneration.
//   QueriesValid  each spec.budgets.metrics query is one Prometheus accepts: checked when the
//                 policy is applied or changes, as an instant query evaluated at a time before
//                 any data (cheap; a parse or type error comes back as errorType bad_data), and
//                 grouped by the pod labels (the poller saw no series without them)
//   runs          how many runs the policy governs (their status.policy names it), how many of
//                 them are unfinished; a change of these alone is written at most every 10 s
//   modelPin      the model every run of the policy is given, when it pins one
//   NetworkPoliciesApplied  the team NetworkPolicy is in every namespace with unfinished runs of
//                 the policy, as planned (from the NetworkPolicy cache, so a missing or edited
//                 one shows here until the run reconciler puts it back)
//   GatewaysApplied  with spec.gateway: paddock-gateway's Deployment has a ready replica in every
//                 namespace with unfinished runs of the policy (read from the API server at each
//                 look); without spec.gateway the condition is absent
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/api.h"
#include "controllers/plan.h"
#include "controllers/usage.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/prometheus/client.h"
#include "operator/runtime/controller.h"

namespace paddock::controllers {

// What Prometheus said of one query.
struct QueryVerdict {
  enum class Kind { Valid, Invalid, Unchecked };
  Kind kind = Kind::Unchecked;
  std::string detail;  // Prometheus's error (Invalid), or why it could not be asked (Unchecked)
  int unlabelled = 0;  // series of its last poll without the namespace, pod and pod_uid labels
};

// What the check of a query (an instant query evaluated at t=1) says: Invalid for Prometheus's
// bad_data or a result that is not an instant vector, Unchecked when Prometheus could not be asked.
QueryVerdict verdictOf(const Result<promapi::QueryResult>& checked);

// The team's NetworkPolicy in one namespace with unfinished runs of the policy, as cached.
struct NetworkPolicyState {
  std::string ns;
  bool missing = false;
  std::vector<std::string> drift;  // the fields that differ from the plan
};

// paddock-gateway in one namespace with unfinished runs of the policy.
struct GatewayState {
  std::string ns;
  bool available = false;
  std::string reason, message;  // gatewayAvailability's verdict on its Deployment
};

struct PolicyObservation {
  bool prometheus = true;                       // the operator reads usage from a Prometheus
  std::map<std::string, QueryVerdict> queries;  // by field, "spec.budgets.metrics.tokens"
  int64_t runs = 0, active = 0;
  std::vector<NetworkPolicyState> network_policies;  // one per namespace with unfinished runs
  std::vector<GatewayState> gateways;                // likewise, when the policy has spec.gateway
};

// The policy's status as it should be: old_status with the QueriesValid condition (its
// NetworkPoliciesApplied and GatewaysApplied conditions (lastTransitionTime kept unless they flip), runs, modelPin
// and observedGeneration.
nlohmann::json planPolicyStatus(const AgentPolicy& policy, int64_t generation, const PolicyObservation& seen,
                                const nlohmann::json& old_status, const std::string& now);

// Runs per policy, kept from the runs informer's events: each run is read once per change.
class PolicyRunCounter {
 public:
  // Feed it every event of the runs informer; returns the policies whose counts changed.
  std::vector<std::string> observe(const kube::InformerEvent& event);
  // {governed, unfinished}.
  std::pair<int64_t, int64_t> counts(const std::string& policy) const;
  // The namespaces with unfinished runs of the policy, sorted.
  std::vector<std::string> activeNamespaces(const std::string& policy) const;

 private:
  struct Entry {
    std::string policy;
    bool active = false;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> runs_;  // guarded by mu_; by run key
};

class PolicyStatusReconciler : public runtime::Reconciler {
 public:
  // `prometheus` and `board` are null when the operator reads no usage. The counter must be fed
  // the runs informer's events, and the policy's key requeued on its NetworkPolicies' events (see
  // main.cc); `plan` is what the run reconciler plans NetworkPolicies with.
  PolicyStatusReconciler(kube::Client& client, kube::Informer& policies, const PolicyRunCounter& counter,
                         promapi::PrometheusClient* prometheus, const UsageBoard* board,
                         const kube::Informer& network_policies, PlanOptions plan)
      : client_(client), policies_(policies), counter_(counter), prometheus_(prometheus), board_(board),
        network_policies_(network_policies), plan_(std::move(plan)) {}

  runtime::ReconcileResult reconcile(const std::string& key, const CancelToken& cancel) override;

 private:
  // Prometheus's verdict on a query, asked once per query text (again later while it cannot be asked).
  QueryVerdict check(const std::string& query, const CancelToken& cancel);

  kube::Client& client_;
  kube::Informer& policies_;
  const PolicyRunCounter& counter_;
  promapi::PrometheusClient* prometheus_;
  const UsageBoard* board_;
  const kube::Informer& network_policies_;
  const PlanOptions plan_;
  std::mutex written_mu_;
  // By policy: when its status was last written. A change of the run counts alone waits until
  // kCountsInterval has passed since, so a burst of runs does not become a burst of writes.
  std::map<std::string, std::chrono::steady_clock::time_point> written_;  // guarded by written_mu_
  std::mutex verdicts_mu_;
  std::map<std::string, QueryVerdict> verdicts_;  // guarded by verdicts_mu_; by query text, settled ones only
};

}  // namespace paddock::controllers
