#include "controllers/run_index.h"

#include <mutex>

#include "operator/common/json.h"

namespace paddock::controllers {

void RunIndex::observe(const kube::InformerEvent& event) {
  if (event.type == kube::InformerEvent::Type::Delete || !event.object) {
    std::unique_lock lock(mu_);
    runs_.erase(event.key);
    return;
  }
  auto parsed = parseAgentRun(*event.object);
  Entry e;
  if (parsed) {
    const AgentRun& r = *parsed;
    e.run.ns = r.ns, e.run.name = r.name, e.run.uid = r.uid, e.run.creation_timestamp = r.creation_timestamp;
    e.run.idempotency_key = r.idempotency_key, e.run.cancel = r.cancel, e.run.phase = r.phase, e.run.started = r.started;
  } else {
    // An unreadable spec never starts; it still counts for nothing.
    e.run.ns = stringAt(*event.object, "/metadata/namespace"), e.run.name = stringAt(*event.object, "/metadata/name");
    e.run.uid = stringAt(*event.object, "/metadata/uid"), e.run.phase = "Pending";
    e.run.cancel = true;
  }
  for (const auto& c : event.object->value(json::json_pointer("/status/conditions"), json::array())) {
    if (c.value("type", "") == "Running" && c.value("reason", "") == "WaitingForSlot") e.waiting_for_slot = true;
  }
  std::unique_lock lock(mu_);
  auto& slot = runs_[event.key];
  if (slot.run.uid == e.run.uid && slot.run.started) e.run.started = true;
  slot = std::move(e);
}

void RunIndex::markStarted(const std::string& key, const std::string& uid) {
  std::unique_lock lock(mu_);
  auto it = runs_.find(key);
  if (it != runs_.end() && it->second.run.uid == uid) it->second.run.started = true;
}

std::vector<AgentRun> RunIndex::withIdempotencyKey(const std::string& ns, const std::string& key) const {
  std::vector<AgentRun> out;
  std::shared_lock lock(mu_);
  for (auto it = runs_.lower_bound(ns + "/"); it != runs_.end() && it->second.run.ns == ns; ++it) {
    if (it->second.run.idempotency_key == key) out.push_back(it->second.run);
  }
  return out;
}

Slot RunIndex::slot(const AgentRun& run, int max_running, const std::function<bool(const std::string&)>& member) const {
  int active = 0, ahead = 0;
  std::string last_ns;
  bool last_member = false;
  std::shared_lock lock(mu_);
  for (const auto& [key, e] : runs_) {
    const AgentRun& r = e.run;
    if (r.uid == run.uid) continue;
    if (r.ns != last_ns) last_ns = r.ns, last_member = member(r.ns);
    if (!last_member) continue;
    if (holdsSlot(r)) ++active;
    else if (waitsForSlot(r) && aheadInLine(r, run)) ++ahead;
  }
  return decideSlot(active, ahead, max_running);
}

std::vector<std::string> RunIndex::waitingForSlot() const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [key, e] : runs_) {
    if (e.waiting_for_slot) out.push_back(key);
  }
  return out;
}

std::vector<std::string> RunIndex::keys(const std::string& ns) const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  auto it = ns.empty() ? runs_.begin() : runs_.lower_bound(ns + "/");
  for (; it != runs_.end() && (ns.empty() || it->second.run.ns == ns); ++it) out.push_back(it->first);
  return out;
}

std::map<std::pair<std::string, std::string>, int> RunIndex::phaseCounts() const {
  std::shared_lock lock(mu_);
  std::map<std::pair<std::string, std::string>, int> out;
  for (const auto& [key, e] : runs_) ++out[{e.run.ns, e.run.phase}];
  return out;
}

size_t RunIndex::size() const {
  std::shared_lock lock(mu_);
  return runs_.size();
}

}  // namespace paddock::controllers
