// The EventRecorder against the real API server: repeats become one events.k8s.io/v1 Event whose
// series holds the final count after a flush, with few writes; long notes are cut to what the
// server accepts; Events about cluster-scoped objects land in "default".
#include "operator/runtime/events.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "e2e/tests/support.h"

namespace paddock::e2e {
namespace {
using kube::resources::configmaps;
using kube::resources::events;
using runtime::EventRecorder;
using runtime::EventRecorderOptions;
using runtime::ObjectReference;

constexpr auto kFlushTimeout = std::chrono::seconds(60);

class EventsE2E : public ::testing::Test {
 protected:
  std::unique_ptr<kube::RestClient> rest = adminClient();
  std::map<std::string, int> verbs;  // API requests by verb
  kube::Client client{*rest, kube::ClientOptions{.qps = 0},
                      [this](const std::string& verb, const std::string& resource, int, auto) {
                        if (resource == "events") ++verbs[verb];
                      }};

  json createConfigMap(const std::string& ns, const std::string& name) {
    auto cm = client.create(configmaps, ns,
                            {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}},
                             {"data", {{"k", "v"}}}});
    EXPECT_TRUE(cm.ok()) << cm.error().describe();
    return cm.ok() ? *cm : json();
  }

  std::vector<json> listEvents(const std::string& ns) {
    auto list = client.list(events, ns);
    EXPECT_TRUE(list.ok()) << list.error().describe();
    return list.ok() ? list->items : std::vector<json>{};
  }
};

TEST_F(EventsE2E, RepeatsBecomeOneEventWhoseSeriesHoldsTheFinalCount) {
  TempNamespace ns(*rest, "events");
  json cm = createConfigMap(ns.name(), "settings");
  ASSERT_FALSE(cm.is_null());
  ObjectReference regarding = ObjectReference::from(cm);
  {
    EventRecorder recorder(client, EventRecorderOptions{.reporting_instance = "paddock-e2e"});
    for (int i = 0; i < 10; ++i) recorder.warning(regarding, "ConfigInvalid", "Validate", "key \"x\" is missing");
    recorder.normal(regarding, "ConfigAccepted", "Validate", "the configuration is valid");
    ASSERT_TRUE(recorder.flush(kFlushTimeout));
    auto stats = recorder.stats();
    EXPECT_EQ(stats.failed, 0u);
    EXPECT_EQ(stats.dropped, 0u);
    EXPECT_EQ(stats.created, 2u);
  }
  // The first repeat is written at once; the 8 after it wait for the flush.
  EXPECT_EQ(verbs, (std::map<std::string, int>{{"create", 2}, {"patch", 2}}));

  auto items = listEvents(ns.name());
  ASSERT_EQ(items.size(), 2u);
  std::map<std::string, json> by_reason;
  for (const auto& e : items) by_reason[e["reason"]] = e;
  ASSERT_TRUE(by_reason.contains("ConfigInvalid"));
  ASSERT_TRUE(by_reason.contains("ConfigAccepted"));

  const json& repeated = by_reason["ConfigInvalid"];
  EXPECT_EQ(repeated["type"], "Warning");
  EXPECT_EQ(repeated["action"], "Validate");
  EXPECT_EQ(repeated["note"], "key \"x\" is missing");
  EXPECT_EQ(repeated["reportingController"], "paddock.dev/operator");
  EXPECT_EQ(repeated["reportingInstance"], "paddock-e2e");
  ASSERT_TRUE(repeated.contains("series")) << repeated.dump();
  EXPECT_EQ(repeated["series"]["count"], 10);
  EXPECT_TRUE(repeated["series"].contains("lastObservedTime"));
  const std::regex micro_time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  EXPECT_TRUE(std::regex_match(repeated["eventTime"].get<std::string>(), micro_time)) << repeated["eventTime"];
  const json& r = repeated["regarding"];
  EXPECT_EQ(r["apiVersion"], "v1");
  EXPECT_EQ(r["kind"], "ConfigMap");
  EXPECT_EQ(r["namespace"], ns.name());
  EXPECT_EQ(r["name"], "settings");
  EXPECT_EQ(r["uid"], cm["metadata"]["uid"]);
  std::string name = repeated["metadata"]["name"];
  EXPECT_EQ(name.rfind("settings.", 0), 0u) << name;

  const json& single = by_reason["ConfigAccepted"];
  EXPECT_EQ(single["type"], "Normal");
  EXPECT_EQ(single["note"], "the configuration is valid");
  EXPECT_FALSE(single.contains("series")) << "an Event seen once has no series";
  EXPECT_EQ(single["regarding"]["uid"], cm["metadata"]["uid"]);
}

TEST_F(EventsE2E, LongNoteIsTruncatedAndAccepted) {
  TempNamespace ns(*rest, "events-long");
  json cm = createConfigMap(ns.name(), "big");
  ASSERT_FALSE(cm.is_null());
  std::string note;
  while (note.size() < 3000) note += "d\xC3\xA9j\xC3\xA0 vu ";  // "déjà vu ": multi-byte characters
  {
    EventRecorder recorder(client, EventRecorderOptions{.reporting_instance = "paddock-e2e"});
    recorder.normal(ObjectReference::from(cm), "Verbose", "Sync", note);
    ASSERT_TRUE(recorder.flush(kFlushTimeout));
    EXPECT_EQ(recorder.stats().failed, 0u) << "the server refused the Event";
    EXPECT_EQ(recorder.stats().created, 1u);
  }
  auto items = listEvents(ns.name());
  ASSERT_EQ(items.size(), 1u);
  std::string stored = items[0]["note"];
  EXPECT_LE(stored.size(), runtime::kEventNoteMaxBytes);
  EXPECT_GE(stored.size(), runtime::kEventNoteMaxBytes - 2) << "cut no further than a character boundary needs";
  ASSERT_GE(stored.size(), 3u);
  EXPECT_EQ(stored.substr(stored.size() - 3), "...");
  std::string kept = stored.substr(0, stored.size() - 3);
  EXPECT_EQ(note.substr(0, kept.size()), kept);
}

TEST_F(EventsE2E, EventsAboutClusterScopedObjectsGoToDefault) {
  TempNamespace ns(*rest, "events-cluster");
  auto namespace_object = client.get(kube::resources::namespaces, "", ns.name());
  ASSERT_TRUE(namespace_object.ok()) << namespace_object.error().describe();
  ObjectReference regarding = ObjectReference::from(*namespace_object);
  regarding.api_version = "v1";  // a GET of a single object may leave out apiVersion and kind
  regarding.kind = "Namespace";
  std::string reason = "Observed" + randomSuffix();  // to find it among the Events in "default"
  {
    EventRecorder recorder(client, EventRecorderOptions{.reporting_instance = "paddock-e2e"});
    recorder.normal(regarding, reason, "Observe", "a cluster-scoped object");
    ASSERT_TRUE(recorder.flush(kFlushTimeout));
    EXPECT_EQ(recorder.stats().failed, 0u);
  }
  std::vector<json> mine;
  for (auto& e : listEvents("default")) {
    if (e["reason"] == reason) mine.push_back(e);
  }
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["regarding"]["name"], ns.name());
  EXPECT_FALSE(mine[0]["regarding"].contains("namespace"));
  EXPECT_TRUE(client.remove(events, "default", mine[0]["metadata"]["name"]).ok());
}

}  // namespace
}  // namespace paddock::e2e
