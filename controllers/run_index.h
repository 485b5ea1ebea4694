// What every reconcile needs to know about the other runs, kept current from the runs informer:
// who holds a concurrency slot, who waits for one, who has taken an idempotency key. Each run is
// parsed once per change, when its event arrives, so a reconcile asks in time proportional to the
// runs it concerns, never decoding the whole cache (issue 9: that walk made throughput fall as
// runs accumulated).
//
// Each run is kept as a slim summary (RunSummary: its uid, creation second, idempotency key and
// phase, and three flags), never the whole object: at 10,000 runs the index is a few hundred KiB
// beside the informer's cache. Everything in it is rebuilt from the runs informer and the pods
// informer (an agent pod in the cache marks its run started), so a restarted operator decides
// the same from it.
#pragma once

#include <cstdint>
#include <functional>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "controllers/admission.h"
#include "controllers/api.h"
#include "operator/kube/informer.h"

namespace paddock::controllers {

// One run as the index keeps it; the namespace and name are its key ("namespace/name").
struct RunSummary {
  std::string uid;
  std::string idempotency_key;
  int64_t created = 0;             // metadata.creationTimestamp, seconds since the epoch
  const std::string* phase = nullptr;  // interned status.phase ("" before the first status)
  bool cancel = false;             // spec.cancel, or a spec that cannot be read (it never starts)
  bool started = false;            // its agent pod was created
  bool reserved = false;           // a reconcile of this process took its slot (reserve) and may create its pod
  bool waiting_for_slot = false;   // its Running condition says WaitingForSlot
};

class RunIndex {
 public:
  // Feed it every event of the runs informer (register before anything that reads it).
  void observe(const kube::InformerEvent& event);
  // This process created the run's pod: it holds a slot from now on, though its status may not
  // say so yet. Started stays true for the run's uid whatever later events say.
  void markStarted(const std::string& key, const std::string& uid);

  // The other runs of the namespace with this idempotency key (the fields findOriginal reads).
  std::vector<AgentRun> withIdempotencyKey(const std::string& ns, const std::string& key) const;
  // `run`'s concurrency slot among the runs of the namespaces for which `member` holds.
  Slot slot(const AgentRun& run, int max_running, const std::function<bool(const std::string& ns)>& member) const;
  // The same decision, taken atomically with holding the slot: when the run may start, it counts
  // as holding its slot from now on (for every other reconcile's slot and reserve), until
  // markStarted makes that durable-backed (its pod exists) or release gives it back. Two
  // reconciles of the team's runs can never both take its last slot.
  Slot reserve(const AgentRun& run, int max_running, const std::function<bool(const std::string& ns)>& member);
  // The reconcile that reserved the run's slot ended without creating its pod.
  void release(const std::string& key, const std::string& uid);
  // Runs waiting for a slot ("namespace/name").
  std::vector<std::string> waitingForSlot() const;
  // Every run's key, or those of one namespace.
  std::vector<std::string> keys(const std::string& ns = "") const;
  size_t size() const;
  // How many runs each namespace has in each phase ("" before the first status), for
  // paddock_agentruns{namespace,phase}.
  std::map<std::pair<std::string, std::string>, int> phaseCounts() const;

 private:
  const std::string* intern(const std::string& phase);  // under mu_ (unique)
  Slot slotLocked(const AgentRun& run, int max_running, const std::function<bool(const std::string& ns)>& member) const;
  mutable std::shared_mutex mu_;
  std::map<std::string, RunSummary> runs_;  // by "namespace/name", so a namespace is a contiguous range
  std::map<std::string, std::string> phases_;  // the distinct phases seen, for RunSummary::phase
};

// Finished runs' idempotency keys, remembered beyond the runs themselves (a deleted run no longer
// protects its key otherwise): read from the audit log when it opens (RunAdmitted names the key,
// RunFinished the phase; records without a key are passed over) and kept from the runs informer
// as runs finish. A policy's spec.idempotency.retention says for how long an entry counts. About
// 150 bytes a key.
class KeyLedger {
 public:
  // An audit record, in chain order (AuditLogOptions::on_record).
  void observeRecord(const json& record);
  // The runs informer's events.
  void observe(const kube::InformerEvent& event);
  // The first run of namespace `ns` that finished with `key`, if it finished at most `retention`
  // before `now`: as findOriginal reads it (started, its terminal phase).
  std::optional<AgentRun> finished(const std::string& ns, const std::string& key, std::chrono::milliseconds retention,
                                   std::chrono::system_clock::time_point now) const;

 private:
  struct Entry {
    std::string ns, name, uid, key, created;  // created: RFC 3339, for findOriginal's order
    std::string phase;
    int64_t finished = 0;  // seconds since the epoch
  };
  void remember(Entry e);  // under mu_
  mutable std::mutex mu_;
  std::map<std::string, Entry> admitted_;                             // by uid: admitted with a key, not finished yet
  std::map<std::pair<std::string, std::string>, Entry> finished_;  // (namespace, key) -> the first run that finished
};

// The summary of an AgentRun object as the index keeps it (phase left null: the index interns it).
RunSummary summarizeRun(const json& object, std::string* phase);

}  // namespace paddock::controllers
