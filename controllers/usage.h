// Usage from Prometheus: the poller makes one instant query per distinct PromQL among the
// policies every interval, whatever the number of runs, and posts each run's reading on the
// board; the reconciler reads the board and decides (controllers/budget.h).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "operator/common/cancel.h"
#include "operator/kube/informer.h"
#include "operator/prometheus/client.h"
#include "operator/runtime/metrics.h"

namespace paddock::controllers {

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
  };

  // A successful query: its readings replace the previous ones. Returns the runs whose reading
  // changed, appeared or vanished.
  std::vector<std::string> publish(const std::string& query, std::map<std::string, double> by_run, Clock::time_point at);
  // A failed query. Returns true when it had worked until now.
  bool fail(const std::string& query, const std::string& error, Clock::time_point at);
  Reading read(const std::string& query, const std::string& run_key) const;

 private:
  struct State {
    std::map<std::string, double> values;
    bool polled = false;
    bool ok = true;
    Clock::time_point failing_since{};
    std::string error;
  };
  mutable std::mutex mu_;
  std::map<std::string, State> queries_;  // guarded by mu_
};

class UsagePoller {
 public:
  UsagePoller(promapi::PrometheusClient& prometheus, kube::Informer& policies, kube::Informer& runs, UsageBoard& board,
              std::chrono::milliseconds interval, runtime::BudgetObserver observer = {})
      : prometheus_(prometheus), policies_(policies), runs_(runs), board_(board), interval_(interval),
        observer_(std::move(observer)) {}

  // Polls every interval until `cancel`; `wake` gets each run whose decision may have changed: its
  // reading moved, or a query it depends on started or stopped failing.
  void run(const CancelToken& cancel, const std::function<void(const std::string& run_key)>& wake);
  // One round: every distinct query once. Returns how many queries were made.
  int pollOnce(const CancelToken& cancel, const std::function<void(const std::string& run_key)>& wake);

 private:
  promapi::PrometheusClient& prometheus_;
  kube::Informer& policies_;
  kube::Informer& runs_;
  UsageBoard& board_;
  std::chrono::milliseconds interval_;
  runtime::BudgetObserver observer_;
};

}  // namespace paddock::controllers
