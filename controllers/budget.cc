#include "controllers/budget.h"

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

}  // namespace paddock::controllers
