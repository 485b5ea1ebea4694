// The operator's Prometheus metrics, in one place: reconciles, work queues, watches, API
// requests and leadership. Names follow controller-runtime's where there is one to mirror.
#pragma once

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
  // paddock_leader: 1 while this process leads.
  void setLeader(bool leading) { leader_->Set(leading ? 1 : 0); }

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

  class InformerCollector;
  std::shared_ptr<InformerCollector> informers_;
};

}  // namespace paddock::runtime
