// The operator's Prometheus metrics, in one place: reconciles, work queues, watches, API
// requests and leadership. Names follow controller-runtime's where there is one to mirror.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/workqueue.h"

namespace paddock::runtime {

// What budget enforcement reports. Every member may be empty (no metrics).
struct BudgetObserver {
  // One Prometheus query: how long it took, and its error's reason ("" when it succeeded).
  std::function<void(std::chrono::duration<double> took, const std::string& error_reason)> query;
  // A run's used fraction of one budget ("tokens", "costUSD", "wallClock").
  std::function<void(const std::string& ns, const std::string& run, const std::string& metric, double ratio)> ratio;
  // The run ended: its series go.
  std::function<void(const std::string& ns, const std::string& run)> forget;
  std::function<void(const std::string& metric)> checkpoint;
  // A run stopped by its budget; reason BudgetExceeded:<metric> or MetricsUnavailable.
  std::function<void(const std::string& reason)> termination;
  // Usage series bound to no agent pod of a run, ignored: reason "unlabelled" or "unknown_pod".
  std::function<void(const std::string& reason, int count)> ignored;
};

class Metrics {
 public:
  Metrics();

  // For kube::Client: paddock_api_requests_total{verb,resource,code}, paddock_api_request_duration_seconds{verb}.
  kube::RequestObserver apiObserver();
  // For a Controller: paddock_reconcile_total{controller,result}, paddock_reconcile_time_seconds{controller}.
  ReconcileObserver reconcileObserver(const std::string& controller);
  // For a WorkQueue named `name`: depth, adds, retries, queue and work durations.
  std::unique_ptr<WorkQueueMetrics> workQueue(const std::string& name);
  // Exports an informer's counters (watch restarts, relists, events, cached objects). The
  // informer must outlive this object.
  void addInformer(const kube::Informer& informer);
  // paddock_prometheus_query_duration_seconds, paddock_prometheus_query_errors_total{reason},
  // paddock_budget_used_ratio{namespace,agentrun,metric}, paddock_budget_checkpoints_total{metric},
  // paddock_budget_terminations_total{reason}, paddock_usage_series_ignored_total{reason}.
  BudgetObserver budgetObserver();
  // paddock_leader: 1 while this process leads.
  void setLeader(bool leading) { leader_->Set(leading ? 1 : 0); }

  // A gauge family read at scrape time: `read` returns each series' label values (in the order
  // of `labels`) and value. `read` must stay callable while this object lives. Add them all
  // before serving /metrics.
  using GaugeReading = std::vector<std::pair<std::vector<std::string>, double>>;
  void addGauges(const std::string& name, const std::string& help, std::vector<std::string> labels,
                 std::function<GaugeReading()> read);

  prometheus::Registry& registry() { return *registry_; }
  // Everything, in the Prometheus text format.
  std::string scrape() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* api_requests_;
  prometheus::Family<prometheus::Histogram>* api_latency_;
  prometheus::Family<prometheus::Counter>* reconciles_;
  prometheus::Family<prometheus::Histogram>* reconcile_time_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Counter>* queue_adds_;
  prometheus::Family<prometheus::Counter>* queue_retries_;
  prometheus::Family<prometheus::Histogram>* queue_latency_;
  prometheus::Family<prometheus::Histogram>* queue_work_;
  prometheus::Gauge* leader_;
  prometheus::Family<prometheus::Histogram>* prom_latency_;
  prometheus::Family<prometheus::Counter>* prom_errors_;
  prometheus::Family<prometheus::Gauge>* budget_ratio_;
  prometheus::Family<prometheus::Counter>* checkpoints_;
  prometheus::Family<prometheus::Counter>* terminations_;
  prometheus::Family<prometheus::Counter>* ignored_series_;

  class InformerCollector;
  std::shared_ptr<InformerCollector> informers_;
  std::vector<std::shared_ptr<prometheus::Collectable>> computed_;  // addGauges
};

}  // namespace paddock::runtime
