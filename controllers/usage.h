// Usage from Prometheus: the poller makes one instant query per distinct PromQL among the
// policies every interval, whatever the number of runs, and posts each run's reading on the
// board; the reconciler reads the board and decides (controllers/budget.h).
//
// A series counts for a run only through the pod that exported it: the query groups by the
// labels the scrape's service discovery sets from the pod (namespace, pod, pod_uid; never labels
// the agent writes, docs/budgets.md), and the series is the run's when that pod is the agent pod
// the operator made for the run (its name and UID). On the gateway path (spec.gateway) the
// series come from the namespace's paddock-gateway pod instead, which counts every run's model
// calls itself: such a series is the run's that its `agentrun` and `credential` labels name (the
// gateway writes them; an agent cannot export series under the gateway pod's name), when that run
// exists and its recorded credential hash starts with `credential`, so a namesake run made later
// is never charged an earlier one's spend. Every other series is ignored and counted.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "operator/common/cancel.h"
#include "operator/kube/informer.h"
#include "operator/prometheus/client.h"
#include "operator/runtime/metrics.h"

namespace paddock::controllers {

// The labels every budget query must group by, set by service discovery from the scraped pod.
inline constexpr const char* kSeriesNamespace = "namespace";
inline constexpr const char* kSeriesPod = "pod";
inline constexpr const char* kSeriesPodUid = "pod_uid";

// The run an agent pod belongs to, when `pod` is an agent pod Paddock made with uid `uid`: the
// agent stage and managed-by labels, a controller owner reference to an AgentRun, and the name
// the operator gives that run's agent pod. The caller checks that the run still has `run_uid`.
struct PodOwner {
  std::string run_key;  // "namespace/name"
  std::string run_uid;
};
std::optional<PodOwner> agentPodOwner(const nlohmann::json& pod, const std::string& uid);

// The labels of a gateway series that name the run (paddock-gateway writes them).
inline constexpr const char* kSeriesRun = "agentrun";
inline constexpr const char* kSeriesCredential = "credential";

// Where a series came from: the scraped pod, and the run a gateway series names.
struct SeriesSource {
  std::string ns, pod, uid;
  std::string agentrun, credential;  // set only by a gateway's series
};

// The run ("namespace/name") a series of the paddock-gateway pod `pod` is charged to: the pod has
// uid `source.uid` and is the one a paddock-gateway Deployment of the operator made (its labels
// and a controller ReplicaSet named after the Deployment), and the series names a run and 12
// lowercase hex digits of its credential's hash. The caller checks the hash against the run's status.
std::optional<std::string> gatewaySeriesRun(const nlohmann::json& pod, const SeriesSource& source);
// Whether a gateway series with label `credential` is run `run`'s: its recorded credential hash
// (status.gateway.credentialSHA256, 64 hex digits) starts with it. A namesake made later has another.
bool gatewayCredentialIs(const nlohmann::json& run, const std::string& credential);

// A query's samples, bound to runs: summed per run when `run_of` names one; the others, and any
// negative sample (which could only cancel out a run's charge), are counted, never charged.
struct BoundUsage {
  std::map<std::string, double> by_run;
  int unlabelled = 0;   // without the namespace, pod and pod_uid labels: the query does not group by them
  int unknown_pod = 0;  // from a pod that is no agent pod of a run the operator made, nor its gateway's for a run
  int negative = 0;     // a negative value: no counter of usage is ever below zero
};
using RunOfSeries = std::function<std::optional<std::string>(const SeriesSource& source)>;
BoundUsage bindToRuns(const std::vector<promapi::Sample>& samples, const RunOfSeries& run_of);

// The latest reading of each query for each run ("namespace/name"), and whether the query works.
class UsageBoard {
 public:
  using Clock = std::chrono::system_clock;
  struct Reading {
    std::optional<double> value;           // nullopt: the query has no series for the run
    bool polled = false;                   // the query has been tried at least once
    bool readable = true;                  // its last try succeeded
    Clock::time_point unreadable_since{};  // when it started failing
    std::string error;                     // why it fails
    int unlabelled = 0;                    // series of its last answer without the pod labels
  };

  // A successful query: its readings replace the previous ones. Returns the runs whose reading
  // changed, appeared or vanished.
  // `unlabelled` counts the series it returned without the pod labels (BoundUsage).
  std::vector<std::string> publish(const std::string& query, std::map<std::string, double> by_run, Clock::time_point at,
                                   int unlabelled = 0);
  // A failed query. Returns true when it had worked until now.
  bool fail(const std::string& query, const std::string& error, Clock::time_point at);
  Reading read(const std::string& query, const std::string& run_key) const;
  // A run's values of every query whose text starts with `prefix`, by the rest of the text (the
  // refusals are published as one query per reason: kGatewayRefusalsQuery + "\n" + reason).
  std::map<std::string, double> readAll(const std::string& prefix, const std::string& run_key) const;

 private:
  struct State {
    std::map<std::string, double> values;
    bool polled = false;
    bool ok = true;
    Clock::time_point failing_since{};
    std::string error;
    int unlabelled = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, State> queries_;  // guarded by mu_
};

class UsagePoller {
 public:
  // `pods` caches the operator's own pods: a series is bound to a run through its agent pod.
  UsagePoller(promapi::PrometheusClient& prometheus, kube::Informer& policies, kube::Informer& runs, kube::Informer& pods,
              UsageBoard& board, std::chrono::milliseconds interval, runtime::BudgetObserver observer = {})
      : prometheus_(prometheus), policies_(policies), runs_(runs), pods_(pods), board_(board), interval_(interval),
        observer_(std::move(observer)) {}

  // Polls every interval until `cancel`; `wake` gets each run whose decision may have changed: its
  // reading moved, or a query it depends on started or stopped failing.
  void run(const CancelToken& cancel, const std::function<void(const std::string& run_key)>& wake);
  // One round: every distinct query once. Returns how many queries were made.
  int pollOnce(const CancelToken& cancel, const std::function<void(const std::string& run_key)>& wake);

 private:
  // The run a series is charged to: the one whose agent pod exported it, or the one a gateway
  // pod's series names (this process's caches: the pod's name and UID, the run's credential hash).
  // A gateway query (kGatewayTokensQuery, kGatewayCostQuery) is bound through gateway pods only:
  // an agent exporting series of the gateway's names is charged nothing by them.
  std::optional<std::string> runOfSeries(const SeriesSource& source, bool gateway_query) const;
  // kGatewayRefusalsQuery, published per reason; the runs whose counts changed.
  std::vector<std::string> pollRefusals(const CancelToken& cancel);
  promapi::PrometheusClient& prometheus_;
  kube::Informer& policies_;
  kube::Informer& runs_;
  kube::Informer& pods_;
  UsageBoard& board_;
  std::chrono::milliseconds interval_;
  runtime::BudgetObserver observer_;
};

}  // namespace paddock::controllers
