#include "controllers/run_index.h"

#include <ctime>
#include <mutex>
#include <tuple>

#include "operator/common/json.h"

namespace paddock::controllers {
namespace {

// "2026-12-01T10:00:00Z" -> seconds since the epoch; 0 for anything else (it sorts first).
int64_t epochSeconds(const std::string& stamp) {
  std::tm tm{};
  if (stamp.size() < 19 || !strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::pair<std::string_view, std::string_view> splitKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {key, {}};
  return {std::string_view(key).substr(0, slash), std::string_view(key).substr(slash + 1)};
}

bool terminal(const RunSummary& r) { return r.phase && isTerminal(*r.phase); }
bool holds(const RunSummary& r) {
  return !terminal(r) && (r.started || (r.phase && (*r.phase == "Running" || *r.phase == "AwaitingApproval")));
}
bool waits(const RunSummary& r) { return !holds(r) && !terminal(r) && !r.cancel; }

}  // namespace

RunSummary summarizeRun(const json& object, std::string* phase) {
  RunSummary s;
  auto parsed = parseAgentRun(object);
  if (parsed) {
    const AgentRun& r = *parsed;
    s.uid = r.uid, s.idempotency_key = r.idempotency_key, s.created = epochSeconds(r.creation_timestamp);
    s.cancel = r.cancel, s.started = r.started;
    if (phase) *phase = r.phase;
  } else {
    // An unreadable spec never starts; it still counts for nothing.
    s.uid = stringAt(object, "/metadata/uid");
    s.created = epochSeconds(stringAt(object, "/metadata/creationTimestamp"));
    s.cancel = true;
    if (phase) *phase = "Pending";
  }
  for (const auto& c : object.value(json::json_pointer("/status/conditions"), json::array())) {
    if (c.value("type", "") == "Running" && c.value("reason", "") == "WaitingForSlot") s.waiting_for_slot = true;
  }
  return s;
}

const std::string* RunIndex::intern(const std::string& phase) {
  return &phases_.try_emplace(phase, phase).first->second;
}

void RunIndex::observe(const kube::InformerEvent& event) {
  if (event.type == kube::InformerEvent::Type::Delete || !event.object) {
    std::unique_lock lock(mu_);
    runs_.erase(event.key);
    return;
  }
  std::string phase;
  RunSummary s = summarizeRun(*event.object, &phase);
  std::unique_lock lock(mu_);
  s.phase = intern(phase);
  auto& slot = runs_[event.key];
  if (slot.uid == s.uid && slot.started) s.started = true;
  slot = std::move(s);
}

void RunIndex::markStarted(const std::string& key, const std::string& uid) {
  std::unique_lock lock(mu_);
  auto it = runs_.find(key);
  if (it != runs_.end() && it->second.uid == uid) it->second.started = true;
}

std::vector<AgentRun> RunIndex::withIdempotencyKey(const std::string& ns, const std::string& key) const {
  std::vector<AgentRun> out;
  const std::string prefix = ns + "/";
  std::shared_lock lock(mu_);
  for (auto it = runs_.lower_bound(prefix); it != runs_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const RunSummary& s = it->second;
    if (s.idempotency_key != key) continue;
    AgentRun r;
    r.ns = ns, r.name = it->first.substr(prefix.size()), r.uid = s.uid, r.idempotency_key = s.idempotency_key;
    // Whole seconds, as the API server writes them: the same order as the summary's.
    char stamp[32];
    std::time_t t = static_cast<std::time_t>(s.created);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    r.creation_timestamp = stamp;
    r.cancel = s.cancel, r.started = s.started, r.phase = s.phase ? *s.phase : "";
    out.push_back(std::move(r));
  }
  return out;
}

Slot RunIndex::slot(const AgentRun& run, int max_running, const std::function<bool(const std::string&)>& member) const {
  int active = 0, ahead = 0;
  const int64_t created = epochSeconds(run.creation_timestamp);
  std::string last_ns;
  bool last_member = false;
  std::shared_lock lock(mu_);
  for (const auto& [key, r] : runs_) {
    if (r.uid == run.uid) continue;
    auto [ns, name] = splitKey(key);
    if (ns != last_ns) last_ns = ns, last_member = member(last_ns);
    if (!last_member) continue;
    if (holds(r)) ++active;
    else if (waits(r) && std::tuple(r.created, ns, name) < std::tuple(created, std::string_view(run.ns), std::string_view(run.name))) ++ahead;
  }
  return decideSlot(active, ahead, max_running);
}

std::vector<std::string> RunIndex::waitingForSlot() const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [key, r] : runs_) {
    if (r.waiting_for_slot) out.push_back(key);
  }
  return out;
}

std::vector<std::string> RunIndex::keys(const std::string& ns) const {
  std::vector<std::string> out;
  const std::string prefix = ns + "/";
  std::shared_lock lock(mu_);
  auto it = ns.empty() ? runs_.begin() : runs_.lower_bound(prefix);
  for (; it != runs_.end() && (ns.empty() || it->first.compare(0, prefix.size(), prefix) == 0); ++it) out.push_back(it->first);
  return out;
}

std::map<std::pair<std::string, std::string>, int> RunIndex::phaseCounts() const {
  std::shared_lock lock(mu_);
  std::map<std::pair<std::string, std::string>, int> out;
  for (const auto& [key, r] : runs_) ++out[{std::string(splitKey(key).first), r.phase ? *r.phase : ""}];
  return out;
}

size_t RunIndex::size() const {
  std::shared_lock lock(mu_);
  return runs_.size();
}

}  // namespace paddock::controllers
