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
#include <map>
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
  mutable std::shared_mutex mu_;
  std::map<std::string, RunSummary> runs_;  // by "namespace/name", so a namespace is a contiguous range
  std::map<std::string, std::string> phases_;  // the distinct phases seen, for RunSummary::phase
};

// The summary of an AgentRun object as the index keeps it (phase left null: the index interns it).
RunSummary summarizeRun(const json& object, std::string* phase);

}  // namespace paddock::controllers
