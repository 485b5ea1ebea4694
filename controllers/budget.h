// Budgets: how much of its tokens, cost and wall clock a run has used, and what follows from it.
// Pure functions; the usage poller and the reconciler do the I/O (see DESIGN.md, "Budgets").
//   - at checkpointPercent of any budget the agent is asked once to checkpoint its work;
//   - at 100 % of any budget the run is stopped (BudgetExceeded; TimedOut for the wall clock);
//   - usage that cannot be read for longer than the policy's grace stops the run, unless the
//     policy says Continue. A query that answers without a series for the run's agent pod is
//     unreadable usage too, never zero spend (an agent that never reported, or whose series went).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace paddock::controllers {

// A usage total that never goes backwards. An agent's counters restart from zero when its process
// does; a reading below the last one is counted as new usage since that restart.
struct Counter {
  double total = 0;
  double last_reading = 0;
};
Counter advance(Counter counter, double reading);

enum class Metric { Tokens, CostUSD, WallClock };
// The budget's field name: "tokens", "costUSD" or "wallClock".
const char* metricName(Metric m);

struct BudgetInput {
  // The run's effective budget.
  int64_t tokens_limit = 0;
  int64_t cost_limit_cents = 0;
  std::chrono::milliseconds wall_clock_limit{0};
  int checkpoint_percent = 60;
  // Usage so far.
  double tokens = 0;
  double cost_usd = 0;
  std::chrono::milliseconds elapsed{0};  // since the agent pod was created
  // How long the run's usage metrics have been unreadable (nullopt: they are readable, or
  // Prometheus is not configured), and what the policy does about it.
  std::optional<std::chrono::milliseconds> unreadable_for;
  std::string unreadable_cause;  // what is unreadable (usageUnavailable's cause), for the message
  std::chrono::milliseconds grace{5 * 60 * 1000};
  bool continue_when_unreadable = false;
  bool checkpoint_requested = false;  // the BudgetCheckpoint condition is already True
};

struct BudgetDecision {
  double tokens_ratio = 0, cost_ratio = 0, wall_clock_ratio = 0;  // used / limit
  std::optional<Metric> exceeded;     // the budget spent (the most overspent when several are)
  std::optional<Metric> checkpoint;   // ask for a checkpoint now, because of this budget
  bool stop_unreadable = false;       // the grace for unreadable metrics is over and the action is Terminate
  std::string message;                // for the exceeded, unreadable or checkpoint decision, in that order
  // When the clock alone changes the decision next (the wall clock's checkpoint or limit, the
  // end of the grace); nullopt when only new readings can.
  std::optional<std::chrono::milliseconds> recheck_after;
};

BudgetDecision decideBudget(const BudgetInput& in);

// What one usage query (spec.budgets.metrics.tokens or .costUSD) last said about a run.
struct UsageQueryState {
  Metric metric = Metric::Tokens;  // Tokens or CostUSD
  std::string query;               // its PromQL
  bool polled = false;             // tried at least once; until then it counts as missing
  std::string error;               // non-empty: the query itself fails (Prometheus's or the transport's error)
  std::chrono::milliseconds failing_for{0};
  bool has_series = false;         // its last answer holds a series bound to the run's agent pod
  std::chrono::milliseconds missing_for{0};  // how long it has had none (see missingSince)
};

struct UsageUnavailable {
  std::chrono::milliseconds unreadable_for{0};  // the longest of the queries' failing or missing times
  std::string reason;                           // QueryFailed, or NoUsageSeries when every query answers
  std::string cause;                            // names the field, its query, and what went wrong
};

// Whether the run's usage can be read: nullopt only when every query has been polled and answered
// with a series for the run (a query not read yet is no reading either). `pod` names the run's agent pod in the cause ("ns/name (uid ...)").
std::optional<UsageUnavailable> usageUnavailable(const std::vector<UsageQueryState>& queries, const std::string& pod);

// Since when a run's usage series has been missing: when this process last saw it; else, for a
// run that reported before this process looked (its status holds usage), this process's first
// look; else since the run has been running (or the first look, when that is unknown).
std::chrono::system_clock::time_point missingSince(std::optional<std::chrono::system_clock::time_point> last_seen,
                                                   bool reported_before,
                                                   std::chrono::system_clock::time_point first_look,
                                                   std::optional<std::chrono::system_clock::time_point> running_since);

// Dollars as a decimal string with at most four places, without trailing zeros: "3.1", "0.0042".
std::string formatUSD(double usd);
// "45m", "1h30m", "12s": a duration for messages.
std::string formatDuration(std::chrono::milliseconds d);

}  // namespace paddock::controllers
