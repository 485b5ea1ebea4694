#include "controllers/usage.h"

#include <set>

#include "controllers/admission.h"
#include "controllers/api.h"
#include "operator/common/json.h"
#include "operator/common/log.h"

namespace paddock::controllers {

std::vector<std::string> UsageBoard::publish(const std::string& query, std::map<std::string, double> by_run,
                                             Clock::time_point) {
  std::lock_guard lock(mu_);
  auto& s = queries_[query];
  std::vector<std::string> changed;
  for (const auto& [key, v] : by_run) {
    auto old = s.values.find(key);
    if (old == s.values.end() || old->second != v) changed.push_back(key);
  }
  for (const auto& [key, v] : s.values) {
    if (!by_run.count(key)) changed.push_back(key);
  }
  s.values = std::move(by_run);
  s.polled = true;
  s.ok = true;
  s.error.clear();
  return changed;
}

bool UsageBoard::fail(const std::string& query, const std::string& error, Clock::time_point at) {
  std::lock_guard lock(mu_);
  auto& s = queries_[query];
  bool was_ok = s.ok;
  if (s.ok || !s.polled) s.failing_since = at;
  s.polled = true;
  s.ok = false;
  s.error = error;
  return was_ok;
}

UsageBoard::Reading UsageBoard::read(const std::string& query, const std::string& run_key) const {
  std::lock_guard lock(mu_);
  Reading r;
  auto it = queries_.find(query);
  if (it == queries_.end()) return r;
  const auto& s = it->second;
  r.polled = s.polled;
  r.readable = s.ok;
  r.unreadable_since = s.failing_since;
  r.error = s.error;
  if (auto v = s.values.find(run_key); v != s.values.end()) r.value = v->second;
  return r;
}

int UsagePoller::pollOnce(const CancelToken& cancel, const std::function<void(const std::string&)>& wake) {
  std::set<std::string> queries;
  for (const auto& p : policies_.list()) {
    auto policy = parseAgentPolicy(*p);
    if (!policy) continue;
    queries.insert(policy->tokens_query);
    queries.insert(policy->cost_query);
  }
  bool flipped = false;
  int made = 0;
  for (const auto& q : queries) {
    if (cancel.cancelled()) break;
    auto start = std::chrono::steady_clock::now();
    auto result = prometheus_.query(q, cancel);
    ++made;
    auto took = std::chrono::steady_clock::now() - start;
    if (observer_.query) observer_.query(took, result ? "" : result.error().reason);
    auto now = UsageBoard::Clock::now();
    if (!result) {
      if (board_.fail(q, result.error().describe(), now)) {
        log::warn("cannot read usage from Prometheus", {{"query", q}, {"error", result.error().describe()}});
        flipped = true;
      }
      continue;
    }
    for (const auto& w : result->warnings) log::warn("Prometheus warns about a usage query", {{"query", q}, {"warning", w}});
    std::map<std::string, double> by_run;
    for (const auto& s : result->samples) {
      auto ns = s.labels.find("namespace");
      auto run = s.labels.find("agentrun");
      if (ns == s.labels.end() || run == s.labels.end()) continue;  // not grouped by run: not ours
      by_run[ns->second + "/" + run->second] = s.value;
    }
    bool was_failing = !board_.read(q, "").readable;
    for (const auto& key : board_.publish(q, std::move(by_run), now)) wake(key);
    if (was_failing) {
      log::info("usage from Prometheus readable again", {{"query", q}});
      flipped = true;
    }
  }
  if (flipped) {
    // Every unfinished run depends on the queries: let each look at its budget again.
    for (const auto& r : runs_.list()) {
      if (!isTerminal(stringAt(*r, "/status/phase"))) wake(kube::objectKey(*r));
    }
  }
  return made;
}

void UsagePoller::run(const CancelToken& cancel, const std::function<void(const std::string&)>& wake) {
  auto next = std::chrono::steady_clock::now();
  while (!cancel.cancelled()) {
    pollOnce(cancel, wake);
    next += interval_;
    auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // a slow round does not make the next ones bunch up
    cancel.waitFor(std::chrono::duration_cast<std::chrono::milliseconds>(next - now));
  }
}

}  // namespace paddock::controllers
