// The informer against the real API server: it follows changes, survives an API server restart
// and an etcd compaction that forces 410 Gone (relisting so its cache equals a fresh list), and
// notices a connection that went silent.
#include "operator/kube/informer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <thread>

#include "e2e/tests/support.h"

namespace paddock::e2e {
namespace {
using kube::resources::configmaps;

json configMap(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", {{"n", name}}}};
}

// name -> resourceVersion, from the informer's cache or from a fresh list.
std::map<std::string, std::string> cached(const kube::Informer& inf) {
  std::map<std::string, std::string> out;
  for (const auto& o : inf.list()) out[(*o)["metadata"]["name"]] = (*o)["metadata"]["resourceVersion"];
  return out;
}
std::map<std::string, std::string> listed(kube::Client& c, const std::string& ns) {
  std::map<std::string, std::string> out;
  auto l = c.list(configmaps, ns);
  EXPECT_TRUE(l.ok());
  for (const auto& o : l->items) out[o["metadata"]["name"]] = o["metadata"]["resourceVersion"];
  return out;
}

class InformerE2E : public ::testing::Test {
 protected:
  void start(kube::InformerOptions opt) {
    opt.namespace_ = ns.name();
    informer = std::make_unique<kube::Informer>(client, configmaps, opt);
    informer->addHandler([this](const kube::InformerEvent& e) { onEvent(e); });
    thread = std::thread([this] { informer->run(stop); });
    ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(30)));
  }
  void TearDown() override {
    stop.cancel();
    if (thread.joinable()) thread.join();
  }
  virtual void onEvent(const kube::InformerEvent&) {}

  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, kube::ClientOptions{.qps = 0}};
  TempNamespace ns{*rest, "informer"};
  CancelToken stop;
  std::unique_ptr<kube::Informer> informer;
  std::thread thread;
};

TEST_F(InformerE2E, CacheFollowsCreatesUpdatesAndDeletes) {
  ASSERT_TRUE(client.create(configmaps, ns.name(), configMap("before")).ok());
  start({});
  EXPECT_TRUE(informer->get(ns.name() + "/before"));
  for (auto n : {"a", "b", "c"}) ASSERT_TRUE(client.create(configmaps, ns.name(), configMap(n)).ok());
  ASSERT_TRUE(client.mergePatch(configmaps, ns.name(), "b", {{"data", {{"n", "changed"}}}}).ok());
  ASSERT_TRUE(client.remove(configmaps, ns.name(), "c").ok());
  auto fresh = listed(client, ns.name());
  EXPECT_TRUE(eventually([&] { return cached(*informer) == fresh; }, std::chrono::seconds(20)));
  auto b = informer->get(ns.name() + "/b");
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)["data"]["n"], "changed");
  EXPECT_FALSE((*b)["metadata"].contains("managedFields")) << "the default transform drops managedFields";
  EXPECT_EQ(informer->stats().lists.load(), 1u);
}

// Holds the informer's thread inside its handler when it sees the ConfigMap "gate", so the test
// decides exactly when the informer reads on.
class GatedInformerE2E : public InformerE2E {
 protected:
  void onEvent(const kube::InformerEvent& e) override {
    if (e.type != kube::InformerEvent::Type::Upsert || e.key != ns.name() + "/gate" || e.old) return;
    std::unique_lock lock(mu);
    at_gate = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  void TearDown() override {
    release();
    InformerE2E::TearDown();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool at_gate = false, released = false;
};

TEST_F(GatedInformerE2E, RelistsAfterApiServerRestartAndCompaction) {
  for (auto n : {"keep", "drop"}) ASSERT_TRUE(client.create(configmaps, ns.name(), configMap(n)).ok());
  start({.backoff_initial = std::chrono::milliseconds(200), .backoff_max = std::chrono::seconds(2)});
  ASSERT_TRUE(client.create(configmaps, ns.name(), configMap("gate")).ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return at_gate; }));
  }
  // The informer is parked at resourceVersion "gate". Restart the API server, change things,
  // and compact etcd past that version.
  ASSERT_EQ(clusterCommand({"restart", "kube-apiserver"}), 0);
  for (int i = 0; i < 5; ++i) {
    auto c = client.create(configmaps, ns.name(), configMap("after-" + std::to_string(i)));
    ASSERT_TRUE(c.ok()) << c.error().describe();
  }
  ASSERT_TRUE(client.remove(configmaps, ns.name(), "drop").ok());
  ASSERT_TRUE(client.mergePatch(configmaps, ns.name(), "keep", {{"data", {{"n", "changed"}}}}).ok());
  ASSERT_EQ(clusterCommand({"compact"}), 0);
  release();

  EXPECT_TRUE(eventually([&] { return informer->stats().relists_gone.load() >= 1; }, std::chrono::seconds(60)))
      << "no 410 relist; watch restarts: " << informer->stats().watch_restarts.load();
  auto fresh = listed(client, ns.name());
  EXPECT_TRUE(eventually([&] { return cached(*informer) == fresh; }, std::chrono::seconds(20)));
  EXPECT_EQ(cached(*informer), fresh);
  EXPECT_FALSE(informer->get(ns.name() + "/drop"));
  EXPECT_GE(informer->stats().lists.load(), 2u);
}

// Resumes a stopped process when the test ends, however it ends.
struct Resume {
  pid_t pid;
  ~Resume() { ::kill(pid, SIGCONT); }
};

TEST_F(InformerE2E, DetectsASilentConnectionAndReconnects) {
  start({.timeout_seconds = std::chrono::seconds(3), .idle_margin = std::chrono::seconds(2),
         .backoff_initial = std::chrono::milliseconds(200), .backoff_max = std::chrono::seconds(1)});
  pid_t apiserver = componentPid("kube-apiserver");
  ASSERT_GT(apiserver, 0);
  {
    Resume resume{apiserver};
    ASSERT_EQ(::kill(apiserver, SIGSTOP), 0);
    EXPECT_TRUE(eventually([&] { return informer->stats().silent_restarts.load() >= 1; }, std::chrono::seconds(30)))
        << "the silent watch was not noticed";
  }
  ASSERT_TRUE(eventually([&] { return client.get(configmaps, ns.name(), "none").error().code == 404; },
                         std::chrono::seconds(30)));
  ASSERT_TRUE(client.create(configmaps, ns.name(), configMap("after-silence")).ok());
  EXPECT_TRUE(eventually([&] { return informer->get(ns.name() + "/after-silence") != nullptr; }, std::chrono::seconds(30)))
      << "the informer did not reconnect";
}

}  // namespace
}  // namespace paddock::e2e
