// The controller loop: informers feed keys into a work queue; N workers take keys and call the
// reconciler, which reads the world and makes it right. Level-triggered: a key carries no
// event, only "look at this object again".
//
// Guarantees
// - A key is never reconciled by two workers at once (the work queue's promise).
// - What the reconciler returns decides what happens next: an Action (done, or look again
//   after a delay), a transient or conflict error (retried with per-key exponential backoff),
//   or a terminal error (recorded, not retried until the object changes).
// - Events on owned objects (pods, config maps, ...) enqueue the owner named by their
//   controller owner reference.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "operator/common/cancel.h"
#include "operator/kube/informer.h"
#include "operator/runtime/workqueue.h"

namespace paddock::runtime {

// A successful reconcile's request for what comes next.
struct Action {
  std::optional<std::chrono::milliseconds> requeue_after;  // nullopt: wait for a change

  static Action awaitChange() { return {}; }
  static Action requeueAfter(std::chrono::milliseconds d) { return {d}; }
};

struct ReconcileError {
  enum class Kind { Transient, Conflict, Terminal };
  Kind kind = Kind::Transient;
  std::string message;
};

using ReconcileResult = std::variant<Action, ReconcileError>;

// Maps an API error to a reconcile error: 409 Conflict is a conflict, throttling, server and
// transport errors are transient, anything else (400, 403, 422, ...) is terminal.
ReconcileError reconcileErrorFrom(const Error& e);

class Reconciler {
 public:
  virtual ~Reconciler() = default;
  // Makes the object behind `key` right. A key whose object no longer exists is success.
  virtual ReconcileResult reconcile(const std::string& key, const CancelToken& cancel) = 0;
};

// Counts reconciles by result ("success", "requeue", "transient", "conflict", "terminal") and
// their durations. Null means nothing is counted.
using ReconcileObserver = std::function<void(const std::string& result, std::chrono::duration<double> took)>;

class Controller {
 public:
  Controller(std::string name, Reconciler& reconciler, WorkQueue& queue, ReconcileObserver observer = nullptr)
      : name_(std::move(name)), reconciler_(reconciler), queue_(queue), observer_(std::move(observer)) {}

  // Enqueues the key of every object the informer reports (the controller's own kind).
  void watchPrimary(kube::Informer& informer);
  // Enqueues the owner (of `owner_kind`, by its controller owner reference) of every object
  // the informer reports.
  void watchOwned(kube::Informer& informer, const std::string& owner_kind);
  // Enqueues whatever `map` returns for each event.
  void watchMapped(kube::Informer& informer, std::function<std::vector<std::string>(const kube::InformerEvent&)> map);

  // Runs `workers` workers until `stop` is cancelled, then shuts the queue down and waits for
  // reconciles in progress to finish.
  void run(int workers, const CancelToken& stop);

  // Processes one key (exposed for tests): takes it from the queue, reconciles, applies the result.
  bool processNext(const CancelToken& cancel);

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Reconciler& reconciler_;
  WorkQueue& queue_;
  ReconcileObserver observer_;
};

// The controller owner's key of an object ("namespace/name"), if its controller owner
// reference has that kind.
std::optional<std::string> controllerOwnerKey(const nlohmann::json& object, const std::string& owner_kind);

}  // namespace paddock::runtime
