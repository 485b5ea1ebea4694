// What every reconcile needs to know about the other runs, kept current from the runs informer:
// who holds a concurrency slot, who waits for one, who has taken an idempotency key. Each run is
// parsed once per change, when its event arrives, so a reconcile asks in time proportional to the
// runs it concerns, never decoding the whole cache (issue 9: that walk made throughput fall as
// runs accumulated).
#pragma once

#include <functional>
#include <map>
#include <shared_mutex>
#include <string>
#include <vector>

#include "controllers/admission.h"
#include "controllers/api.h"
#include "operator/kube/informer.h"

namespace paddock::controllers {

class RunIndex {
 public:
  // Feed it every event of the runs informer (register before anything that reads it).
  void observe(const kube::InformerEvent& event);
  // This process created the run's pod: it holds a slot from now on, though its status may not
  // say so yet. Started stays true for the run's uid whatever later events say.
  void markStarted(const std::string& key, const std::string& uid);

  // The other runs of the namespace with this idempotency key.
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
  struct Entry {
    AgentRun run;  // only the fields slots and idempotency keys need
    bool waiting_for_slot = false;
  };
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry> runs_;  // by "namespace/name", so a namespace is a contiguous range
};

}  // namespace paddock::controllers
