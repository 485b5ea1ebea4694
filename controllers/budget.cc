#include "controllers/budget.h"

#include "controllers/reconcile.h"
#include "controllers/status.h"
#include "operator/common/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace paddock::controllers {
namespace {

using std::chrono::milliseconds;

std::string count(double v) { return std::to_string(static_cast<int64_t>(std::floor(v))); }

std::string usedOf(Metric m, const BudgetInput& in) {
  switch (m) {
    case Metric::Tokens: return count(in.tokens) + " of " + std::to_string(in.tokens_limit) + " tokens";
    case Metric::CostUSD: return "$" + formatUSD(in.cost_usd) + " of $" + formatUSD(in.cost_limit_cents / 100.0);
    case Metric::WallClock: return formatDuration(in.elapsed) + " of " + formatDuration(in.wall_clock_limit);
  }
  return "";
}

}  // namespace

Counter advance(Counter c, double reading) {
  if (!std::isfinite(reading) || reading < 0) return c;
  c.total += reading >= c.last_reading ? reading - c.last_reading : reading;
  c.last_reading = reading;
  return c;
}

const char* metricName(Metric m) {
  switch (m) {
    case Metric::Tokens: return "tokens";
    case Metric::CostUSD: return "costUSD";
    case Metric::WallClock: return "wallClock";
  }
  return "";
}

BudgetDecision decideBudget(const BudgetInput& in) {
  BudgetDecision d;
  auto ratio = [](double used, double limit) { return limit > 0 ? used / limit : 0.0; };
  d.tokens_ratio = ratio(in.tokens, static_cast<double>(in.tokens_limit));
  d.cost_ratio = ratio(in.cost_usd * 100.0, static_cast<double>(in.cost_limit_cents));
  d.wall_clock_ratio = ratio(static_cast<double>(in.elapsed.count()), static_cast<double>(in.wall_clock_limit.count()));
  const std::pair<Metric, double> ratios[] = {
      {Metric::Tokens, d.tokens_ratio}, {Metric::CostUSD, d.cost_ratio}, {Metric::WallClock, d.wall_clock_ratio}};
  auto highest = *std::max_element(std::begin(ratios), std::end(ratios),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
  double soft = in.checkpoint_percent / 100.0;

  // When the wall clock next changes the decision.
  auto wall_at = [&](double fraction) {
    return milliseconds(static_cast<int64_t>(std::ceil(fraction * static_cast<double>(in.wall_clock_limit.count()))));
  };
  auto sooner = [&](milliseconds after) {
    after = std::max(after, milliseconds(1));
    if (!d.recheck_after || after < *d.recheck_after) d.recheck_after = after;
  };
  if (in.wall_clock_limit.count() > 0) {
    if (!in.checkpoint_requested && in.elapsed < wall_at(soft)) sooner(wall_at(soft) - in.elapsed);
    else if (in.elapsed < in.wall_clock_limit) sooner(in.wall_clock_limit - in.elapsed);
  }
  if (in.unreadable_for && !in.continue_when_unreadable && *in.unreadable_for < in.grace) {
    sooner(in.grace - *in.unreadable_for);
  }

  if (highest.second >= 1.0) {
    d.exceeded = highest.first;
    d.message = std::string("spec.budget.") + metricName(highest.first) + " is spent: " + usedOf(highest.first, in) +
                " used; the agent pod is stopped with a grace period to push its work in progress. To go on, create "
                "a new AgentRun with a larger spec.budget." + metricName(highest.first) + " (within the policy's max)";
    return d;
  }
  if (in.unreadable_for && *in.unreadable_for >= in.grace && !in.continue_when_unreadable) {
    d.stop_unreadable = true;
    d.message = "usage metrics have been unreadable for " + formatDuration(*in.unreadable_for) +
                (in.unreadable_cause.empty() ? std::string() : " (" + in.unreadable_cause + ")") +
                ", longer than the policy's spec.budgets.whenMetricsUnavailable.after (" + formatDuration(in.grace) +
                ") with action Terminate: the run is stopped because its spend cannot be checked. Fix the Prometheus "
                "connection or query, or the scrape of the agent pod (docs/budgets.md), or set the action to Continue "
                "to let runs go on without token and cost limits";
    return d;
  }
  if (!in.checkpoint_requested && highest.second >= soft && in.checkpoint_percent > 0) {
    d.checkpoint = highest.first;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%d%%", static_cast<int>(std::floor(highest.second * 100)));
    d.message = std::string("spec.budget.") + metricName(highest.first) + " is " + pct + " used (" +
                usedOf(highest.first, in) + "), past the policy's checkpointPercent " +
                std::to_string(in.checkpoint_percent) +
                ": the agent is asked to checkpoint its work (pod annotation paddock.dev/checkpoint)";
  }
  return d;
}

std::optional<UsageUnavailable> usageUnavailable(const std::vector<UsageQueryState>& queries, const std::string& pod) {
  std::optional<UsageUnavailable> out;
  std::string failed, missing;
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : "; ") + item; };
  for (const auto& q : queries) {
    if (q.polled && q.error.empty() && q.has_series) continue;
    std::string field = std::string("spec.budgets.metrics.") + metricName(q.metric) + " (" + q.query + ")";
    auto for_ = q.polled && !q.error.empty() ? q.failing_for : q.missing_for;
    if (!out) out = UsageUnavailable{};
    out->unreadable_for = std::max(out->unreadable_for, for_);
    if (!q.polled) add(missing, field + " has not been read from Prometheus yet");
    else if (!q.error.empty()) add(failed, field + " fails: " + q.error);
    else add(missing, field + " returns no series for the agent pod " + pod);
  }
  if (!out) return out;
  out->reason = failed.empty() ? "NoUsageSeries" : "QueryFailed";
  out->cause = failed;
  if (!missing.empty()) add(out->cause, missing);
  return out;
}

std::chrono::system_clock::time_point missingSince(std::optional<std::chrono::system_clock::time_point> last_seen,
                                                   bool reported_before,
                                                   std::chrono::system_clock::time_point first_look,
                                                   std::optional<std::chrono::system_clock::time_point> running_since) {
  if (last_seen) return *last_seen;
  if (reported_before || !running_since) return first_look;
  return std::min(*running_since, first_look);
}

std::string formatUSD(double usd) {
  if (!std::isfinite(usd) || usd < 0) usd = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", usd);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string formatDuration(milliseconds d) {
  auto s = d.count() / 1000;
  if (s <= 0) return std::to_string(d.count()) + "ms";
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
  if (s % 60 || out.empty()) out += std::to_string(s % 60) + "s";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The reconcile's budget step (controllers/reconcile.h).

namespace {

using std::chrono::milliseconds;
using Wall = std::chrono::system_clock::time_point;

// The run's spend: this process's cache, else (first look since it started) what status recorded.
Spend spendOf(const AgentRun& run, const TeamFacts& team, const json& old_usage, Wall wall) {
  if (team.spend && team.spend->uid == run.uid) return *team.spend;
  const json readings = old_usage.value("readings", json::object());
  Spend spend{run.uid, {numberAt(old_usage, "tokens"), numberAt(readings, "tokens")},
              {numberAt(old_usage, "costUSD"), numberAt(readings, "costUSD")}};
  spend.first_look = wall;
  spend.reported_before = spend.tokens.total > 0 || spend.cost.total > 0;
  return spend;
}

// Brings `spend` up to date from the board's readings; what is unreadable (a failing query, or
// one without a series for the run's agent pod), if anything. A query without a series for the
// run's own agent pod is unreadable usage, never zero spend.
std::optional<UsageUnavailable> readSpend(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team,
                                          Spend& spend, Wall started, Wall wall) {
  std::optional<Wall> running_since;
  for (const auto& c : snap.old_status.value("conditions", json::array())) {
    if (c.value("type", "") == "Running" && c.value("status", "") == "True") running_since = parseTime(c.value("lastTransitionTime", ""));
  }
  const auto& pod = snap.agent_pod;
  std::string pod_name = a.run.ns + "/" + agentPodName(a.run) + (pod ? " (uid " + stringAt(*pod, "/metadata/uid") + ")" : "");
  std::vector<UsageQueryState> states;
  for (auto [metric, query, reading, counter, seen] :
       {std::tuple{Metric::Tokens, &a.policy.tokens_query, &team.tokens, &spend.tokens, &spend.tokens_seen},
        std::tuple{Metric::CostUSD, &a.policy.cost_query, &team.cost, &spend.cost, &spend.cost_seen}}) {
    UsageQueryState s{metric, *query, reading->polled};
    if (reading->polled && !reading->readable) {
      s.error = reading->error;
      s.failing_for = std::chrono::duration_cast<milliseconds>(wall - std::max(reading->unreadable_since, started));
    } else if (reading->value) {
      *counter = advance(*counter, *reading->value);
      *seen = wall;
      s.has_series = true;
    } else if (reading->polled) {
      auto since = missingSince(*seen, spend.reported_before, spend.first_look, running_since);
      s.missing_for = std::chrono::duration_cast<milliseconds>(wall - since);
    }  // not read yet (this process just started leading): no clock runs until the first answer
    states.push_back(std::move(s));
  }
  return usageUnavailable(states, pod_name);
}

void budgetConditions(const BudgetDecision& d, const std::optional<UsageUnavailable>& unavailable,
                      const AgentPolicy& policy, bool prometheus, RunDraft& draft) {
  if (!prometheus) {
    draft.condition("BudgetMetricsAvailable", false, "NoPrometheus",
                    "the operator runs without --prometheus-url, so spec.budget.tokens and spec.budget.costUSD are not "
                    "enforced; spec.budget.wallClock is");
  } else if (unavailable) {
    draft.condition("BudgetMetricsAvailable", false, unavailable->reason,
                    "usage cannot be read from Prometheus: " + unavailable->cause + "; once it has been unreadable for " +
                        formatDuration(policy.metrics_grace) + " the policy's action " +
                        (policy.continue_without_metrics ? "Continue lets the run go on without token and cost limits"
                                                         : "Terminate stops the run"));
  } else {
    draft.condition("BudgetMetricsAvailable", true, "MetricsRead", "usage is read from Prometheus");
  }
  if (d.checkpoint) draft.condition("BudgetCheckpoint", true, "CheckpointRequested", d.message);
  if (d.exceeded) {
    draft.condition("BudgetExceeded", true, *d.exceeded == Metric::WallClock ? "WallClockExceeded" : "BudgetExceeded",
                    d.message);
  }
}

// Usage in status: when the spend moved, at most every usage_write_interval, and at once when a
// threshold is crossed or the gateway counted a new refusal; the wall clock alone does not cause
// a write.
void usageStatus(const BudgetDecision& d, const Spend& spend, milliseconds elapsed, const json& old_usage,
                 const std::map<std::string, int64_t>& refusals, const RunPlanSettings& settings, RunDraft& draft) {
  const std::string& now = draft.clock().now;
  json usage = {{"tokens", static_cast<int64_t>(spend.tokens.total)},
                {"costUSD", formatUSD(spend.cost.total)},
                {"wallClockSeconds", std::max<int64_t>(0, elapsed.count() / 1000)},
                {"observedAt", now},
                {"readings", {{"tokens", spend.tokens.last_reading}, {"costUSD", spend.cost.last_reading}}}};
  // What the gateway refused the run, by reason (once there is any).
  if (!refusals.empty()) usage["refusals"] = refusals;
  bool moved = old_usage.value("tokens", json()) != usage["tokens"] || old_usage.value("costUSD", json()) != usage["costUSD"];
  auto last = parseTime(old_usage.value("observedAt", ""));
  bool due = !last || draft.clock().wall - *last >= settings.usage_write_interval;
  bool crossing = d.checkpoint || d.exceeded || d.stop_unreadable;
  // A refusal is rare and is news: shown at once.
  bool refused = old_usage.value("refusals", json()) != usage.value("refusals", json());
  draft.status["usage"] = old_usage.empty() || crossing || refused || (moved && due) ? usage : old_usage;
}

// The run's usage brought up to date and what its budget calls for; usage and the budget
// conditions written into the draft's status.
std::pair<BudgetDecision, Spend> budgetStatus(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team,
                                              RunDraft& draft, const RunPlanSettings& settings, Wall wall) {
  const json& old_status = snap.old_status;
  const json old_usage = old_status.contains("usage") && old_status["usage"].is_object() ? old_status["usage"] : json::object();
  Spend spend = spendOf(a.run, team, old_usage, wall);
  auto started = parseTime(draft.status.value("startTime", "")).value_or(wall);
  BudgetInput in;
  in.tokens_limit = a.effective.tokens;
  in.cost_limit_cents = a.effective.cost_cents;
  in.wall_clock_limit = a.effective.wall_clock;
  in.checkpoint_percent = a.policy.checkpoint_percent;
  in.elapsed = std::chrono::duration_cast<milliseconds>(wall - started);
  in.grace = a.policy.metrics_grace;
  in.continue_when_unreadable = a.policy.continue_without_metrics;
  in.checkpoint_requested = conditionTrue(old_status, "BudgetCheckpoint") || spend.checkpointed;
  std::optional<UsageUnavailable> unavailable;
  if (settings.prometheus) {
    unavailable = readSpend(snap, a, team, spend, started, wall);
    if (unavailable) in.unreadable_for = unavailable->unreadable_for, in.unreadable_cause = unavailable->cause;
  }
  in.tokens = spend.tokens.total;
  in.cost_usd = spend.cost.total;
  auto d = decideBudget(in);
  budgetConditions(d, unavailable, a.policy, settings.prometheus, draft);
  usageStatus(d, spend, in.elapsed, old_usage, team.refusals, settings, draft);
  return {d, spend};
}

}  // namespace

std::optional<milliseconds> planBudget(const RunSnapshot& snap, const Admitted& a, const TeamFacts& team,
                                       LifecycleDecision& d, RunDraft& draft, const RunPlanSettings& settings,
                                       const PlanClock& clock) {
  auto [b, spend] = budgetStatus(snap, a, team, draft, settings, clock.wall);
  draft.note(RememberSpend{spend});
  draft.note(ReportBudget{true, b.tokens_ratio, b.cost_ratio, b.wall_clock_ratio, "", ""});
  if (b.exceeded || b.stop_unreadable) {
    json spent = draft.status.value("usage", json::object());
    spent.erase("readings");
    draft.audit({{audit::Action::BudgetExceeded,
                  {{"budget", b.exceeded ? metricName(*b.exceeded) : "metrics"}, {"spent", spent}, {"message", b.message}}}});
    bool wall_clock = b.exceeded == Metric::WallClock;
    d.phase = wall_clock ? "TimedOut" : b.exceeded ? "BudgetExceeded" : "Failed";
    d.reason = wall_clock ? "WallClockExceeded" : b.exceeded ? "BudgetExceeded" : "MetricsUnavailable";
    d.message = b.message;
    d.delete_pod = true;
    d.hand_off = b.exceeded && std::find(a.run.stages.begin(), a.run.stages.end(), "pr") != a.run.stages.end();
    draft.note(ReportBudget{false, 0, 0, 0,
                            b.exceeded ? std::string("BudgetExceeded:") + metricName(*b.exceeded) : "MetricsUnavailable", ""});
  } else if (b.checkpoint) {
    // The request reaches the agent as a file of its downward-API volume; the condition is
    // written after, so a crash in between asks again (the patch is idempotent).
    draft.audit({{audit::Action::CheckpointRequested, {{"budget", metricName(*b.checkpoint)}, {"message", b.message}}}});
    std::string value = std::string(metricName(*b.checkpoint)) + " " +
                        std::to_string(static_cast<int>(100 * std::max({b.tokens_ratio, b.cost_ratio, b.wall_clock_ratio}))) + "%";
    draft.act(PatchPod{agentPodName(a.run), {{"metadata", {{"annotations", {{"paddock.dev/checkpoint", value}}}}}}});
    spend.checkpointed = true;
    draft.note(RememberSpend{spend});
    draft.note(EmitEvent{snap.regarding, runtime::EventType::Normal, "CheckpointRequested", "Checkpoint", b.message});
    draft.note(ReportBudget{false, 0, 0, 0, "", metricName(*b.checkpoint)});
    draft.note(LogLine{false, "checkpoint requested",
                       {{"key", snap.key}, {"budget", metricName(*b.checkpoint)}, {"message", b.message}}});
  }
  return b.recheck_after;
}

}  // namespace paddock::controllers
