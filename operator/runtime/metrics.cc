#include "operator/runtime/metrics.h"

#include "operator/common/version.h"

#include <prometheus/text_serializer.h>

namespace paddock::runtime {
namespace {

using prometheus::Histogram;

const Histogram::BucketBoundaries kLatency = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1,     2.5,  5,     10,   30};

class QueueMetrics final : public WorkQueueMetrics {
 public:
  QueueMetrics(prometheus::Gauge& depth, prometheus::Counter& adds, prometheus::Counter& retries,
               prometheus::Histogram& latency, prometheus::Histogram& work)
      : depth_(depth), adds_(adds), retries_(retries), latency_(latency), work_(work) {}
  void depth(std::size_t n) override { depth_.Set(static_cast<double>(n)); }
  void added() override { adds_.Increment(); }
  void retried() override { retries_.Increment(); }
  void queueLatency(Duration d) override { latency_.Observe(std::chrono::duration<double>(d).count()); }
  void workDuration(Duration d) override { work_.Observe(std::chrono::duration<double>(d).count()); }

 private:
  prometheus::Gauge& depth_;
  prometheus::Counter& adds_;
  prometheus::Counter& retries_;
  prometheus::Histogram& latency_;
  prometheus::Histogram& work_;
};

prometheus::ClientMetric value(const std::string& resource, double v, bool counter) {
  prometheus::ClientMetric m;
  m.label = {{"resource", resource}};
  if (counter) m.counter.value = v;
  else m.gauge.value = v;
  return m;
}

}  // namespace

// Reads informers' counters at scrape time, so the watch path updates only atomics.
class Metrics::InformerCollector final : public prometheus::Collectable {
 public:
  void add(const kube::Informer& i) {
    std::lock_guard lock(mu_);
    informers_.push_back(&i);
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard lock(mu_);
    prometheus::MetricFamily restarts{"paddock_watch_restarts_total",
                                      "Watches re-established after an error, a 410 Gone or a silent connection.",
                                      prometheus::MetricType::Counter, {}};
    prometheus::MetricFamily relists{"paddock_watch_relists_total", "Full lists, the first one included.",
                                     prometheus::MetricType::Counter, {}};
    prometheus::MetricFamily silent{"paddock_watch_silent_total", "Watches found silent and reconnected.",
                                    prometheus::MetricType::Counter, {}};
    prometheus::MetricFamily events{"paddock_watch_events_total", "Watch events applied to the cache.",
                                    prometheus::MetricType::Counter, {}};
    prometheus::MetricFamily objects{"paddock_informer_objects", "Objects in the informer's cache.",
                                     prometheus::MetricType::Gauge, {}};
    for (const auto* i : informers_) {
      const auto& s = i->stats();
      const auto& r = i->resource().plural;
      restarts.metric.push_back(value(r, static_cast<double>(s.watch_restarts.load()), true));
      relists.metric.push_back(value(r, static_cast<double>(s.lists.load()), true));
      silent.metric.push_back(value(r, static_cast<double>(s.silent_restarts.load()), true));
      events.metric.push_back(value(r, static_cast<double>(s.events.load()), true));
      objects.metric.push_back(value(r, static_cast<double>(i->size()), false));
    }
    return {restarts, relists, silent, events, objects};
  }

 private:
  mutable std::mutex mu_;
  std::vector<const kube::Informer*> informers_;
};

// A gauge family computed when Prometheus scrapes (addGauges).
class ComputedGauges final : public prometheus::Collectable {
 public:
  ComputedGauges(std::string name, std::string help, std::vector<std::string> labels,
                 std::function<Metrics::GaugeReading()> read)
      : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)), read_(std::move(read)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family{name_, help_, prometheus::MetricType::Gauge, {}};
    for (const auto& [values, v] : read_()) {
      prometheus::ClientMetric m;
      for (size_t i = 0; i < labels_.size() && i < values.size(); ++i) m.label.push_back({labels_[i], values[i]});
      m.gauge.value = v;
      family.metric.push_back(std::move(m));
    }
    return {family};
  }

 private:
  std::string name_, help_;
  std::vector<std::string> labels_;
  std::function<Metrics::GaugeReading()> read_;
};

void Metrics::addGauges(const std::string& name, const std::string& help, std::vector<std::string> labels,
                        std::function<GaugeReading()> read) {
  computed_.push_back(std::make_shared<ComputedGauges>(name, help, std::move(labels), std::move(read)));
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()), informers_(std::make_shared<InformerCollector>()) {
  auto& r = *registry_;
  prometheus::BuildGauge().Name("paddock_build_info")
      .Help("Always 1; the labels say which Paddock runs: version and git commit.")
      .Register(r).Add({{"version", version()}, {"commit", gitCommit()}}).Set(1);
  api_requests_ = &prometheus::BuildCounter().Name("paddock_api_requests_total")
                       .Help("Requests to the Kubernetes API by verb, resource and HTTP status (0: no response).").Register(r);
  api_latency_ = &prometheus::BuildHistogram().Name("paddock_api_request_duration_seconds")
                      .Help("Kubernetes API request latency by verb.").Register(r);
  reconciles_ = &prometheus::BuildCounter().Name("paddock_reconcile_total")
                     .Help("Reconciles by controller and result (success, requeue, transient, conflict, terminal).").Register(r);
  reconcile_time_ = &prometheus::BuildHistogram().Name("paddock_reconcile_time_seconds")
                         .Help("How long reconciles took, by controller.").Register(r);
  queue_depth_ = &prometheus::BuildGauge().Name("paddock_workqueue_depth").Help("Keys ready to be processed.").Register(r);
  queue_adds_ = &prometheus::BuildCounter().Name("paddock_workqueue_adds_total").Help("Keys added to the work queue.").Register(r);
  queue_retries_ = &prometheus::BuildCounter().Name("paddock_workqueue_retries_total")
                        .Help("Keys re-queued with backoff after a failed reconcile.").Register(r);
  queue_latency_ = &prometheus::BuildHistogram().Name("paddock_workqueue_queue_duration_seconds")
                        .Help("How long keys waited in the queue before a worker took them.").Register(r);
  queue_work_ = &prometheus::BuildHistogram().Name("paddock_workqueue_work_duration_seconds")
                     .Help("How long workers held keys.").Register(r);
  prom_latency_ = &prometheus::BuildHistogram().Name("paddock_prometheus_query_duration_seconds")
                       .Help("Latency of budget queries to Prometheus (its _count is the number of queries).").Register(r);
  prom_errors_ = &prometheus::BuildCounter().Name("paddock_prometheus_query_errors_total")
                      .Help("Budget queries to Prometheus that failed, by reason.").Register(r);
  budget_ratio_ = &prometheus::BuildGauge().Name("paddock_budget_used_ratio")
                       .Help("Fraction of each budget a running AgentRun has used (1 is the limit).").Register(r);
  checkpoints_ = &prometheus::BuildCounter().Name("paddock_budget_checkpoints_total")
                      .Help("Checkpoint requests sent to agents, by the budget that reached the soft limit.").Register(r);
  terminations_ = &prometheus::BuildCounter().Name("paddock_budget_terminations_total")
                       .Help("Runs stopped by budget enforcement, by reason.").Register(r);
  ignored_series_ = &prometheus::BuildCounter()
                         .Name("paddock_usage_series_ignored_total")
                         .Help("Usage series a budget query returned that belong to no agent pod the operator made "
                               "(reason unlabelled: no namespace, pod and pod_uid labels; unknown_pod: no such pod of a run; negative: below zero)")
                         .Register(r);
  leader_ = &prometheus::BuildGauge().Name("paddock_leader").Help("1 while this process is the leader.").Register(r).Add({});
}

kube::RequestObserver Metrics::apiObserver() {
  return [this](const std::string& verb, const std::string& resource, int code, std::chrono::duration<double> took) {
    api_requests_->Add({{"verb", verb}, {"resource", resource}, {"code", std::to_string(code)}}).Increment();
    api_latency_->Add({{"verb", verb}}, kLatency).Observe(took.count());
  };
}

ReconcileObserver Metrics::reconcileObserver(const std::string& controller) {
  auto& time = reconcile_time_->Add({{"controller", controller}}, kLatency);
  return [this, controller, &time](const std::string& result, std::chrono::duration<double> took) {
    reconciles_->Add({{"controller", controller}, {"result", result}}).Increment();
    time.Observe(took.count());
  };
}

std::unique_ptr<WorkQueueMetrics> Metrics::workQueue(const std::string& name) {
  prometheus::Labels l = {{"name", name}};
  return std::make_unique<QueueMetrics>(queue_depth_->Add(l), queue_adds_->Add(l), queue_retries_->Add(l),
                                        queue_latency_->Add(l, kLatency), queue_work_->Add(l, kLatency));
}

BudgetObserver Metrics::budgetObserver() {
  BudgetObserver o;
  o.query = [this](std::chrono::duration<double> took, const std::string& error) {
    prom_latency_->Add({}, kLatency).Observe(took.count());
    if (!error.empty()) prom_errors_->Add({{"reason", error}}).Increment();
  };
  o.ratio = [this](const std::string& ns, const std::string& run, const std::string& metric, double ratio) {
    budget_ratio_->Add({{"namespace", ns}, {"agentrun", run}, {"metric", metric}}).Set(ratio);
  };
  o.forget = [this](const std::string& ns, const std::string& run) {
    for (const char* metric : {"tokens", "costUSD", "wallClock"}) {
      prometheus::Labels l = {{"namespace", ns}, {"agentrun", run}, {"metric", metric}};
      if (budget_ratio_->Has(l)) budget_ratio_->Remove(&budget_ratio_->Add(l));
    }
  };
  o.checkpoint = [this](const std::string& metric) { checkpoints_->Add({{"metric", metric}}).Increment(); };
  o.termination = [this](const std::string& reason) { terminations_->Add({{"reason", reason}}).Increment(); };
  o.ignored = [this](const std::string& reason, int count) { ignored_series_->Add({{"reason", reason}}).Increment(count); };
  return o;
}

void Metrics::addInformer(const kube::Informer& informer) { informers_->add(informer); }

std::string Metrics::scrape() const {
  auto families = registry_->Collect();
  auto more = informers_->Collect();
  families.insert(families.end(), more.begin(), more.end());
  for (const auto& c : computed_) {
    auto computed = c->Collect();
    families.insert(families.end(), computed.begin(), computed.end());
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace paddock::runtime
