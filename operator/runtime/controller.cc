#include "operator/runtime/controller.h"

#include "operator/common/log.h"

namespace paddock::runtime {

ReconcileError reconcileErrorFrom(const Error& e) {
  if (e.code == 409) return {ReconcileError::Kind::Conflict, e.describe()};
  // 401 happens while a rotated token propagates; 410 when a list's continue token expired.
  if (e.code == 0 || e.code == 401 || e.code == 410 || e.code == 429 || e.code >= 500) {
    return {ReconcileError::Kind::Transient, e.describe()};
  }
  return {ReconcileError::Kind::Terminal, e.describe()};
}

std::optional<std::string> controllerOwnerKey(const nlohmann::json& object, const std::string& owner_kind) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return std::nullopt;
  auto refs = meta->find("ownerReferences");
  if (refs == meta->end() || !refs->is_array()) return std::nullopt;
  for (const auto& ref : *refs) {
    if (ref.value("controller", false) && ref.value("kind", "") == owner_kind) {
      std::string ns = meta->value("namespace", "");
      std::string name = ref.value("name", "");
      return ns.empty() ? name : ns + "/" + name;
    }
  }
  return std::nullopt;
}

void Controller::watchPrimary(kube::Informer& informer) {
  informer.addHandler([this](const kube::InformerEvent& e) { queue_.add(e.key); });
}

void Controller::watchOwned(kube::Informer& informer, const std::string& owner_kind) {
  informer.addHandler([this, owner_kind](const kube::InformerEvent& e) {
    if (auto key = controllerOwnerKey(*e.object, owner_kind)) queue_.add(*key);
  });
}

void Controller::watchMapped(kube::Informer& informer,
                             std::function<std::vector<std::string>(const kube::InformerEvent&)> map) {
  informer.addHandler([this, map = std::move(map)](const kube::InformerEvent& e) {
    for (const auto& key : map(e)) queue_.add(key);
  });
}

bool Controller::processNext(const CancelToken& cancel) {
  auto key = queue_.get(cancel);
  if (!key) return false;
  auto start = std::chrono::steady_clock::now();
  std::string result;
  ReconcileResult r;
  try {
    r = reconciler_.reconcile(*key, cancel);
  } catch (const std::exception& e) {
    r = ReconcileError{ReconcileError::Kind::Transient, std::string("reconcile threw: ") + e.what()};
  }
  if (auto* action = std::get_if<Action>(&r)) {
    queue_.forget(*key);
    if (action->requeue_after) {
      queue_.addAfter(*key, *action->requeue_after);
      result = "requeue";
    } else {
      result = "success";
    }
  } else {
    const auto& err = std::get<ReconcileError>(r);
    switch (err.kind) {
      case ReconcileError::Kind::Terminal:
        queue_.forget(*key);
        result = "terminal";
        log::error("reconcile failed; not retrying until the object changes",
                   {{"controller", name_}, {"key", *key}, {"error", err.message}});
        break;
      case ReconcileError::Kind::Conflict:
      case ReconcileError::Kind::Transient:
        result = err.kind == ReconcileError::Kind::Conflict ? "conflict" : "transient";
        log::log(err.kind == ReconcileError::Kind::Conflict ? log::Level::Debug : log::Level::Warn,
                 "reconcile failed; retrying with backoff",
                 {{"controller", name_}, {"key", *key}, {"error", err.message}, {"retries", queue_.numRequeues(*key) + 1}});
        if (!cancel.cancelled()) queue_.addRateLimited(*key);
        break;
    }
  }
  queue_.done(*key);
  if (observer_) observer_(result, std::chrono::steady_clock::now() - start);
  return true;
}

void Controller::run(int workers, const CancelToken& stop) {
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, workers); ++i) {
    threads.emplace_back([this, &stop] {
      while (processNext(stop)) {
      }
    });
  }
  auto reg = stop.onCancel([this] { queue_.shutDown(); });
  for (auto& t : threads) t.join();
}

}  // namespace paddock::runtime
