// The controller loop on the real API server: a status write from a stale cache conflicts, is
// retried with backoff, succeeds once the cache catches up, and the conflict shows in the metrics.
#include "operator/runtime/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "e2e/tests/support.h"
#include "operator/runtime/metrics.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentruns;

// Writes status.phase from the cached object. On its first pass it changes the run itself just
// before writing, as a concurrent writer would, so that write carries a stale resourceVersion.
class StatusWriter : public runtime::Reconciler {
 public:
  StatusWriter(kube::Client& c, kube::Informer& i) : client_(c), informer_(i) {}
  runtime::ReconcileResult reconcile(const std::string& key, const CancelToken& cancel) override {
    auto cached = informer_.get(key);
    if (!cached) return runtime::Action::awaitChange();
    if (cached->value(json::json_pointer("/status/phase"), std::string()) == "Pending") return runtime::Action::awaitChange();
    std::string ns = (*cached)["metadata"]["namespace"], name = (*cached)["metadata"]["name"];
    if (passes_++ == 0) {
      auto touched = client_.mergePatch(agentruns, ns, name, {{"metadata", {{"labels", {{"touched", "yes"}}}}}}, "", cancel);
      if (!touched) return runtime::reconcileErrorFrom(touched.error());
    }
    json obj = *cached;
    obj["status"]["phase"] = "Pending";
    obj["status"]["observedGeneration"] = obj["metadata"]["generation"];
    auto written = client_.replace(agentruns, ns, name, obj, "status", cancel);
    if (!written) return runtime::reconcileErrorFrom(written.error());
    return runtime::Action::awaitChange();
  }
  std::atomic<int> passes_{0};

 private:
  kube::Client& client_;
  kube::Informer& informer_;
};

TEST(ControllerE2E, StatusConflictsAreRetriedAndCounted) {
  auto rest = adminClient();
  runtime::Metrics metrics;
  kube::Client client(*rest, kube::ClientOptions{}, metrics.apiObserver());
  TempNamespace ns(*rest, "controller");
  kube::Informer informer(client, agentruns, {.namespace_ = ns.name()});
  metrics.addInformer(informer);
  runtime::WorkQueue queue(runtime::WorkQueueOptions{nullptr, nullptr, metrics.workQueue("agentruns")});
  StatusWriter writer(client, informer);
  runtime::Controller controller("status-writer", writer, queue, metrics.reconcileObserver("status-writer"));
  controller.watchPrimary(informer);

  CancelToken stop;
  std::thread watch([&] { informer.run(stop); });
  std::thread work([&] { controller.run(2, stop); });
  struct Joiner {
    CancelToken& stop;
    std::thread &a, &b;
    ~Joiner() {
      stop.cancel();
      a.join();
      b.join();
    }
  } joiner{stop, watch, work};

  json run = {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"},
              {"metadata", {{"name", "conflicted"}}},
              {"spec", {{"task", "t"}, {"repository", {{"url", "https://example.com/r.git"}}}}}};
  auto created = client.create(agentruns, ns.name(), run);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto done = watchUntil(*rest, agentruns.path(ns.name()) + "?fieldSelector=metadata.name%3Dconflicted",
                         (*created)["metadata"]["resourceVersion"],
                         [](const std::string&, const json& o) { return o.value(json::json_pointer("/status/phase"), std::string()) == "Pending"; },
                         std::chrono::seconds(30));
  std::string text = metrics.scrape();
  ASSERT_FALSE(done.is_null()) << "status never written";
  EXPECT_EQ(done["metadata"]["labels"]["touched"], "yes");
  EXPECT_GE(writer.passes_.load(), 2);
  EXPECT_NE(text.find(R"(paddock_reconcile_total{controller="status-writer",result="conflict"})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(paddock_api_requests_total{code="409",resource="agentruns",verb="update-status"})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(paddock_workqueue_retries_total{name="agentruns"})"), std::string::npos);
  EXPECT_NE(text.find(R"(paddock_informer_objects{resource="agentruns"} 1)"), std::string::npos) << text;
}

}  // namespace
}  // namespace paddock::e2e
