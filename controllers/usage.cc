#include "controllers/usage.h"

#include <algorithm>
#include <set>

#include "controllers/admission.h"
#include "controllers/api.h"
#include "controllers/gateway.h"
#include "controllers/plan.h"
#include "operator/common/json.h"
#include "operator/common/log.h"

namespace paddock::controllers {

std::optional<PodOwner> agentPodOwner(const json& pod, const std::string& uid) {
  if (uid.empty() || stringAt(pod, "/metadata/uid") != uid) return std::nullopt;
  const json labels = pod.value(json::json_pointer("/metadata/labels"), json::object());
  if (labels.value(kLabelStage, "") != "agent" || labels.value("app.kubernetes.io/managed-by", "") != "paddock") {
    return std::nullopt;
  }
  for (const auto& ref : pod.value(json::json_pointer("/metadata/ownerReferences"), json::array())) {
    if (ref.value("kind", "") != "AgentRun" || !ref.value("controller", false)) continue;
    AgentRun run;
    run.name = ref.value("name", "");
    if (run.name.empty() || stringAt(pod, "/metadata/name") != agentPodName(run)) return std::nullopt;
    return PodOwner{stringAt(pod, "/metadata/namespace") + "/" + run.name, ref.value("uid", "")};
  }
  return std::nullopt;
}

std::optional<std::string> gatewaySeriesRun(const json& pod, const SeriesSource& source) {
  if (source.uid.empty() || stringAt(pod, "/metadata/uid") != source.uid) return std::nullopt;
  const json labels = pod.value(json::json_pointer("/metadata/labels"), json::object());
  if (labels.value(kLabelComponent, "") != "gateway" || labels.value("app.kubernetes.io/managed-by", "") != "paddock") {
    return std::nullopt;
  }
  const std::string replicas_prefix = std::string(kGatewayName) + "-";
  bool made = false;
  for (const auto& ref : pod.value(json::json_pointer("/metadata/ownerReferences"), json::array())) {
    made |= ref.value("kind", "") == "ReplicaSet" && ref.value("controller", false) &&
            ref.value("name", "").starts_with(replicas_prefix);
  }
  bool hex12 = source.credential.size() == 12 &&
               std::all_of(source.credential.begin(), source.credential.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!made || !hex12 || source.agentrun.empty() || source.agentrun.find('/') != std::string::npos) return std::nullopt;
  return stringAt(pod, "/metadata/namespace") + "/" + source.agentrun;
}

bool gatewayCredentialIs(const json& run, const std::string& credential) {
  auto sha = stringAt(run, "/status/gateway/credentialSHA256");
  return sha.size() == 64 && credential.size() == 12 && sha.starts_with(credential);
}

BoundUsage bindToRuns(const std::vector<promapi::Sample>& samples, const RunOfSeries& run_of) {
  BoundUsage out;
  for (const auto& s : samples) {
    auto label = [&s](const char* name) {
      auto it = s.labels.find(name);
      return it == s.labels.end() ? std::string() : it->second;
    };
    SeriesSource source{label(kSeriesNamespace), label(kSeriesPod), label(kSeriesPodUid), label(kSeriesRun),
                        label(kSeriesCredential)};
    if (source.ns.empty() || source.pod.empty() || source.uid.empty()) {
      ++out.unlabelled;
      continue;
    }
    if (s.value < 0) {
      ++out.negative;
      continue;
    }
    auto run = run_of(source);
    if (!run) {
      ++out.unknown_pod;
      continue;
    }
    out.by_run[*run] += s.value;
  }
  return out;
}

std::vector<std::string> UsageBoard::publish(const std::string& query, std::map<std::string, double> by_run,
                                             Clock::time_point, int unlabelled) {
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
  s.unlabelled = unlabelled;
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
  r.unlabelled = s.unlabelled;
  if (auto v = s.values.find(run_key); v != s.values.end()) r.value = v->second;
  return r;
}

std::map<std::string, double> UsageBoard::readAll(const std::string& prefix, const std::string& run_key) const {
  std::lock_guard lock(mu_);
  std::map<std::string, double> out;
  for (auto it = queries_.lower_bound(prefix); it != queries_.end() && it->first.starts_with(prefix); ++it) {
    if (auto v = it->second.values.find(run_key); v != it->second.values.end()) out[it->first.substr(prefix.size())] = v->second;
  }
  return out;
}

std::optional<std::string> UsagePoller::runOfSeries(const SeriesSource& source, bool gateway_query) const {
  auto cached = pods_.get(source.ns + "/" + source.pod);
  if (!cached) return std::nullopt;
  if (auto owner = gateway_query ? std::nullopt : agentPodOwner(*cached, source.uid)) {
    auto run = runs_.get(owner->run_key);
    if (!run || stringAt(*run, "/metadata/uid") != owner->run_uid) return std::nullopt;
    return owner->run_key;
  }
  auto key = gatewaySeriesRun(*cached, source);
  if (!key) return std::nullopt;
  auto run = runs_.get(*key);
  if (!run || !gatewayCredentialIs(*run, source.credential)) return std::nullopt;
  return key;
}

std::vector<std::string> UsagePoller::pollRefusals(const CancelToken& cancel) {
  auto result = prometheus_.query(kGatewayRefusalsQuery, cancel);
  if (!result) {
    // Informational figures: a failure changes no decision, the last readings stay.
    log::debug("cannot read the gateways' refusals from Prometheus", {{"error", result.error().describe()}});
    return {};
  }
  std::map<std::string, std::vector<promapi::Sample>> by_reason;
  for (auto& s : result->samples) {
    auto reason = s.labels.find("reason");
    if (reason != s.labels.end() && !reason->second.empty()) by_reason[reason->second].push_back(std::move(s));
  }
  std::vector<std::string> changed;
  auto now = UsageBoard::Clock::now();
  for (auto& [reason, samples] : by_reason) {
    auto bound = bindToRuns(samples, [this](const SeriesSource& source) { return runOfSeries(source, true); });
    for (auto& key : board_.publish(std::string(kGatewayRefusalsQuery) + "\n" + reason, std::move(bound.by_run), now)) {
      changed.push_back(std::move(key));
    }
  }
  return changed;
}

int UsagePoller::pollOnce(const CancelToken& cancel, const std::function<void(const std::string&)>& wake) {
  std::set<std::string> queries;
  bool gateways = false;
  for (const auto& p : policies_.list()) {
    auto policy = parseAgentPolicy(*p);
    if (!policy) continue;
    queries.insert(policy->tokens_query);
    queries.insert(policy->cost_query);
    gateways = gateways || policy->gateway.has_value();
  }
  bool flipped = false;
  int made = 0;
  // Runs are woken once every query of the round is on the board, so none decides from a round
  // half read (its tokens series new, its cost series not yet).
  std::set<std::string> moved;
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
    const bool gateway_query = q == kGatewayTokensQuery || q == kGatewayCostQuery;
    auto bound = bindToRuns(result->samples,
                            [this, gateway_query](const SeriesSource& source) { return runOfSeries(source, gateway_query); });
    if (observer_.ignored) {
      if (bound.unlabelled) observer_.ignored("unlabelled", bound.unlabelled);
      if (bound.unknown_pod) observer_.ignored("unknown_pod", bound.unknown_pod);
      if (bound.negative) observer_.ignored("negative", bound.negative);
    }
    if (bound.unlabelled && board_.read(q, "").unlabelled == 0) {
      log::warn("a usage query returns series without the pod labels it must group by; they are ignored",
                {{"query", q}, {"series", bound.unlabelled}, {"groupBy", "namespace, pod, pod_uid"}});
    }
    auto before = board_.read(q, "");
    bool was_failing = !before.readable;
    // A query's first answer: the runs that counted it as not read yet look again.
    if (!before.polled) flipped = true;
    for (auto& key : board_.publish(q, std::move(bound.by_run), now, bound.unlabelled)) moved.insert(std::move(key));
    if (was_failing) {
      log::info("usage from Prometheus readable again", {{"query", q}});
      flipped = true;
    }
  }
  if (gateways && !cancel.cancelled()) {
    ++made;
    for (auto& key : pollRefusals(cancel)) moved.insert(std::move(key));
  }
  if (flipped) {
    // Every unfinished run depends on the queries: let each look at its budget again.
    for (const auto& r : runs_.list()) {
      if (!isTerminal(stringAt(*r, "/status/phase"))) moved.insert(kube::objectKey(*r));
    }
  }
  for (const auto& key : moved) wake(key);
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
