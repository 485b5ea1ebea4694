// Events: the aggregation policy on a fake clock (new Event, series update or suppressed; window,
// throttle, expiry, capacity), the field helpers, and the recorder's queue and thread against a
// fake sink.
#include "operator/runtime/events.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/operator/common/fake_clock.h"

namespace paddock::runtime {
namespace {
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using Decision = EventAggregator::Decision;

// A generous bound on waits for something that should happen at once: a guard against hanging,
// never what a test relies on to pass.
constexpr auto kGuard = seconds(10);

// 2024-05-06T07:08:09.123456Z
const WallTime kWall = WallTime{} + std::chrono::seconds(1714979289) + std::chrono::microseconds(123456);

EventAggregator::Options defaultOptions() { return {}; }

// --- EventAggregator -----------------------------------------------------------------------

TEST(EventAggregator, FirstCreatesFirstRepeatUpdatesAtOnceLaterRepeatsAreThrottled) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  auto first = agg.observe("k", json{{"n", 1}}, clock.now(), kWall);
  EXPECT_EQ(first.decision, Decision::Create);
  EXPECT_EQ(first.count, 1);
  EXPECT_EQ(first.event, (json{{"n", 1}}));

  clock.advance(seconds(1));
  auto second = agg.observe("k", json{{"n", 2}}, clock.now(), kWall);
  EXPECT_EQ(second.decision, Decision::UpdateSeries) << "the first repeat is written at once";
  EXPECT_EQ(second.count, 2);
  EXPECT_EQ(second.event, (json{{"n", 1}})) << "a series update is about the Event first created";

  for (int i = 3; i <= 10; ++i) {
    clock.advance(seconds(1));
    auto more = agg.observe("k", json{{"n", i}}, clock.now(), kWall);
    EXPECT_EQ(more.decision, Decision::Suppress) << "repeat " << i;
    EXPECT_EQ(more.count, i);
  }
  EXPECT_EQ(agg.size(), 1u);
}

TEST(EventAggregator, SuppressedRepeatsFallDueOneIntervalAfterTheLastUpdate) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  agg.observe("k", json{{"n", 1}}, clock.now(), kWall);
  Clock::TimePoint updated = clock.now();
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  EXPECT_EQ(agg.nextDue(), std::nullopt) << "nothing is pending right after an update";

  clock.advance(seconds(5));
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::Suppress);
  clock.advance(seconds(5));
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall + seconds(10)).decision, Decision::Suppress);
  EXPECT_EQ(agg.nextDue(), updated + seconds(30));

  EXPECT_TRUE(agg.takeDue(updated + seconds(29)).empty());
  auto due = agg.takeDue(updated + seconds(30));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].count, 4);
  EXPECT_EQ(due[0].last_observed, kWall + seconds(10)) << "the wall time of the last occurrence";
  EXPECT_EQ(due[0].event, (json{{"n", 1}}));
  EXPECT_EQ(agg.nextDue(), std::nullopt);
  EXPECT_TRUE(agg.takeDue(updated + minutes(5)).empty()) << "handed out once";

  // The takeDue at +30 s was an update: the next repeat waits for +60 s.
  clock.advance(seconds(25));  // +35 s
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::Suppress);
  EXPECT_EQ(agg.nextDue(), updated + seconds(60));
}

TEST(EventAggregator, RepeatAfterAQuietIntervalIsWrittenAtOnce) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  agg.observe("k", nullptr, clock.now(), kWall);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  clock.advance(seconds(30));
  auto third = agg.observe("k", nullptr, clock.now(), kWall);
  EXPECT_EQ(third.decision, Decision::UpdateSeries);
  EXPECT_EQ(third.count, 3);
}

TEST(EventAggregator, RepeatThatFindsItsSeriesDueIsWrittenAtOnceWithTheCount) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  agg.observe("k", nullptr, clock.now(), kWall);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::Suppress);
  clock.advance(seconds(31));  // due, but nobody has taken it yet
  auto fourth = agg.observe("k", nullptr, clock.now(), kWall);
  EXPECT_EQ(fourth.decision, Decision::UpdateSeries);
  EXPECT_EQ(fourth.count, 4);
  EXPECT_TRUE(agg.takeDue(clock.now()).empty()) << "the pending count went out with the update";
}

TEST(EventAggregator, OccurrenceAfterTheWindowStartsANewEvent) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  agg.observe("k", json{{"n", 1}}, clock.now(), kWall);
  agg.observe("k", nullptr, clock.now(), kWall);
  clock.advance(minutes(6) + seconds(1));
  auto later = agg.observe("k", json{{"n", 2}}, clock.now(), kWall);
  EXPECT_EQ(later.decision, Decision::Create);
  EXPECT_EQ(later.count, 1);
  EXPECT_EQ(later.event, (json{{"n", 2}}));
  EXPECT_EQ(agg.size(), 1u);
}

TEST(EventAggregator, WindowIsMeasuredFromTheLastOccurrence) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  agg.observe("k", nullptr, clock.now(), kWall);
  for (int i = 2; i <= 5; ++i) {
    clock.advance(minutes(5));
    auto o = agg.observe("k", nullptr, clock.now(), kWall);
    EXPECT_EQ(o.decision, Decision::UpdateSeries) << "occurrence " << i << " is 5 min after the previous one";
    EXPECT_EQ(o.count, i);
  }
}

TEST(EventAggregator, WindowAndIntervalAreConfigurable) {
  FakeClock clock;
  EventAggregator agg({.window = seconds(10), .series_interval = seconds(2)});
  agg.observe("k", nullptr, clock.now(), kWall);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::Suppress);
  EXPECT_EQ(agg.nextDue(), clock.now() + seconds(2));
  clock.advance(seconds(11));
  EXPECT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::Create);
}

TEST(EventAggregator, IntervalIsCappedAtTheWindow) {
  FakeClock clock;
  EventAggregator agg({.window = seconds(10), .series_interval = minutes(5)});
  agg.observe("k", nullptr, clock.now(), kWall);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  ASSERT_EQ(agg.observe("k", nullptr, clock.now(), kWall).decision, Decision::Suppress);
  EXPECT_EQ(agg.nextDue(), clock.now() + seconds(10)) << "a count must fall due before its series expires";
}

TEST(EventAggregator, TakePendingHandsOutEverySuppressedCountAtOnce) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  for (const char* key : {"a", "b", "c"}) {
    agg.observe(key, json{{"key", key}}, clock.now(), kWall);
    agg.observe(key, nullptr, clock.now(), kWall);
  }
  agg.observe("a", nullptr, clock.now(), kWall);
  agg.observe("b", nullptr, clock.now(), kWall);
  agg.observe("b", nullptr, clock.now(), kWall);
  auto pending = agg.takePending(clock.now());
  ASSERT_EQ(pending.size(), 2u) << "c has nothing unwritten";
  std::set<std::pair<std::string, int>> got;
  for (auto& u : pending) got.emplace(u.event["key"], u.count);
  EXPECT_EQ(got, (std::set<std::pair<std::string, int>>{{"a", 3}, {"b", 4}}));
  EXPECT_TRUE(agg.takePending(clock.now()).empty());
  EXPECT_EQ(agg.observe("a", nullptr, clock.now(), kWall).decision, Decision::Suppress)
      << "a flush counts as an update for the throttle";
}

TEST(EventAggregator, DistinctKeysHaveTheirOwnSeries) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  EXPECT_EQ(agg.observe("a", nullptr, clock.now(), kWall).decision, Decision::Create);
  EXPECT_EQ(agg.observe("b", nullptr, clock.now(), kWall).decision, Decision::Create);
  EXPECT_EQ(agg.observe("a", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  EXPECT_EQ(agg.observe("b", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  EXPECT_EQ(agg.size(), 2u);
}

TEST(EventAggregator, ExpireForgetsSeriesQuietForTheWindow) {
  FakeClock clock;
  EventAggregator agg(defaultOptions());
  agg.observe("old", nullptr, clock.now(), kWall);
  clock.advance(minutes(4));
  agg.observe("new", nullptr, clock.now(), kWall);
  clock.advance(minutes(2) + seconds(1));
  agg.expire(clock.now());
  EXPECT_EQ(agg.size(), 1u);
  EXPECT_EQ(agg.observe("new", nullptr, clock.now(), kWall).decision, Decision::UpdateSeries);
  EXPECT_EQ(agg.observe("old", nullptr, clock.now(), kWall).decision, Decision::Create);
}

TEST(EventAggregator, AtCapacityTheLeastRecentlyObservedKeyIsForgotten) {
  FakeClock clock;
  EventAggregator agg({.max_series = 2});
  agg.observe("a", nullptr, clock.now(), kWall);
  agg.observe("b", nullptr, clock.now(), kWall);
  agg.observe("a", nullptr, clock.now(), kWall);  // a is now the most recent
  agg.observe("b", nullptr, clock.now(), kWall);
  agg.observe("b", nullptr, clock.now(), kWall);  // b suppressed: pending
  agg.observe("a", nullptr, clock.now(), kWall);  // a suppressed, most recent again
  EXPECT_EQ(agg.observe("c", nullptr, clock.now(), kWall).decision, Decision::Create);
  EXPECT_EQ(agg.size(), 2u);
  auto pending = agg.takePending(clock.now());
  ASSERT_EQ(pending.size(), 1u) << "b was forgotten with its pending count";
  EXPECT_EQ(agg.observe("b", nullptr, clock.now(), kWall).decision, Decision::Create);
}

// --- Helpers --------------------------------------------------------------------------------

TEST(EventHelpers, TruncateUtf8CutsOnACharacterBoundaryAndMarksTheCut) {
  EXPECT_EQ(truncateUtf8("short", 1024, "..."), "short");
  std::string long_ascii(2000, 'x');
  std::string cut = truncateUtf8(long_ascii, kEventNoteMaxBytes, "...");
  EXPECT_EQ(cut.size(), kEventNoteMaxBytes);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");

  // "é" is 2 bytes: a cut in its middle must back up to before it.
  std::string accents;
  for (int i = 0; i < 600; ++i) accents += "\xC3\xA9";
  std::string cut2 = truncateUtf8(accents, 1024, "...");
  EXPECT_LE(cut2.size(), 1024u);
  EXPECT_EQ(cut2.size(), 1020u + 3) << "510 whole characters and the marker";
  EXPECT_EQ(truncateUtf8(accents, 5), "\xC3\xA9\xC3\xA9");
  EXPECT_EQ(truncateUtf8("abc", 2, "..."), "ab") << "a marker longer than the limit is left out";
}

TEST(EventHelpers, TruncateUtf8ReplacesInvalidUtf8) {
  EXPECT_EQ(truncateUtf8("a\xFF" "b", 100), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(truncateUtf8("\xC3", 100), "\xEF\xBF\xBD") << "a truncated sequence";
  EXPECT_EQ(truncateUtf8("\xED\xA0\x80", 100), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "a surrogate";
  EXPECT_EQ(truncateUtf8("\xF0\x9F\x98\x80", 100), "\xF0\x9F\x98\x80") << "an emoji is valid";
}

TEST(EventHelpers, EventNameIsAValidDnsSubdomain) {
  EXPECT_EQ(eventName("my-config", 0x17c4a3f2b1d0e9a8ULL), "my-config.17c4a3f2b1d0e9a8");
  EXPECT_EQ(eventName("system:controller:Foo", 0xab), "system-controller-foo.ab");
  EXPECT_EQ(eventName("-a..b-.c", 1), "a.b.c.1");
  EXPECT_EQ(eventName("", 1), "event.1");
  EXPECT_EQ(eventName(":::", 1), "event.1");
  // 253 at most: the prefix may keep 236 characters, and the cut leaves "aaa...a-".
  std::string name = eventName(std::string(235, 'a') + "-" + std::string(20, 'b'), 0xffffffffffffffffULL);
  EXPECT_EQ(name, std::string(235, 'a') + ".ffffffffffffffff") << "no label may end in '-'";
  EXPECT_EQ(eventName(std::string(300, 'a'), 0xffffffffffffffffULL).size(), 253u);
}

TEST(EventHelpers, ObjectReferenceFromAnObject) {
  json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
             {"metadata", {{"namespace", "ns"}, {"name", "cm"}, {"uid", "u-1"}, {"resourceVersion", "42"}}}};
  ObjectReference r = ObjectReference::from(cm);
  EXPECT_EQ(r.api_version, "v1");
  EXPECT_EQ(r.kind, "ConfigMap");
  EXPECT_EQ(r.ns, "ns");
  EXPECT_EQ(r.name, "cm");
  EXPECT_EQ(r.uid, "u-1");
  EXPECT_EQ(r.resource_version, "42");
  EXPECT_EQ(r.toJson(), (json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"namespace", "ns"}, {"name", "cm"},
                              {"uid", "u-1"}, {"resourceVersion", "42"}}));
  ObjectReference node{.kind = "Node", .name = "n1"};
  EXPECT_EQ(node.toJson(), (json{{"kind", "Node"}, {"name", "n1"}}));
  EXPECT_EQ(ObjectReference::from(json::array()).toJson(), json::object());
}

// --- EventRecorder --------------------------------------------------------------------------

// Keeps what the recorder wrote, as a tiny API server would: creates add Events, patches merge
// into them (404 when missing). Can be told to fail the next creates, or to block every write
// until released or cancelled.
class FakeSink final : public EventSink {
 public:
  struct Call {
    std::string verb;  // "create" or "patch"
    std::string ns;
    std::string name;
    json body;
  };
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Call> calls;
    std::map<std::string, json> events;  // by "ns/name"
    int fail_creates = 0;
    bool blocked = false;
    int waiting = 0;  // writes blocked right now

    bool awaitCalls(std::size_t n) {
      std::unique_lock lock(mu);
      return cv.wait_for(lock, kGuard, [&] { return calls.size() >= n; });
    }
    bool awaitWaiting(int n) {
      std::unique_lock lock(mu);
      return cv.wait_for(lock, kGuard, [&] { return waiting >= n; });
    }
    void release() {
      std::lock_guard lock(mu);
      blocked = false;
      cv.notify_all();
    }
    std::vector<Call> snapshot() {
      std::lock_guard lock(mu);
      return calls;
    }
  };

  explicit FakeSink(std::shared_ptr<State> state) : s_(std::move(state)) {}

  Result<json> create(const std::string& ns, const json& event, const CancelToken& cancel) override {
    std::unique_lock lock = waitTurn(cancel);
    if (cancel.cancelled()) return Error::local("Cancelled", "cancelled");
    std::string name = event["metadata"]["name"];
    s_->calls.push_back({"create", ns, name, event});
    s_->cv.notify_all();
    if (s_->fail_creates > 0) {
      --s_->fail_creates;
      return Error{500, "InternalError", "injected", std::nullopt};
    }
    if (s_->events.contains(ns + "/" + name)) return Error{409, "AlreadyExists", name, std::nullopt};
    s_->events[ns + "/" + name] = event;
    return event;
  }

  Result<json> patch(const std::string& ns, const std::string& name, const json& patch,
                     const CancelToken& cancel) override {
    std::unique_lock lock = waitTurn(cancel);
    if (cancel.cancelled()) return Error::local("Cancelled", "cancelled");
    s_->calls.push_back({"patch", ns, name, patch});
    s_->cv.notify_all();
    auto it = s_->events.find(ns + "/" + name);
    if (it == s_->events.end()) return Error{404, "NotFound", name, std::nullopt};
    it->second.merge_patch(patch);
    return it->second;
  }

 private:
  std::unique_lock<std::mutex> waitTurn(const CancelToken& cancel) {
    auto registration = cancel.onCancel([s = s_] {
      std::lock_guard lock(s->mu);
      s->cv.notify_all();
    });
    std::unique_lock lock(s_->mu);
    ++s_->waiting;
    s_->cv.notify_all();
    s_->cv.wait(lock, [&] { return !s_->blocked || cancel.cancelled(); });
    --s_->waiting;
    return lock;
  }

  std::shared_ptr<State> s_;
};

class EventRecorderTest : public ::testing::Test {
 protected:
  std::unique_ptr<EventRecorder> make(EventRecorderOptions options = {}) {
    options.clock = &clock;
    options.reporting_instance = "paddock-operator-0";
    options.wall_clock = [] { return kWall; };
    return std::make_unique<EventRecorder>(std::make_unique<FakeSink>(sink), std::move(options));
  }

  FakeClock clock;
  std::shared_ptr<FakeSink::State> sink = std::make_shared<FakeSink::State>();
  ObjectReference cm{.api_version = "v1", .kind = "ConfigMap", .ns = "ns", .name = "cm", .uid = "u-1",
                     .resource_version = "7"};
};

TEST_F(EventRecorderTest, WritesTheEventTheApiExpects) {
  auto recorder = make();
  recorder->warning(cm, "ConfigInvalid", "Validate", "key \"x\" is missing");
  ASSERT_TRUE(recorder->flush(kGuard));
  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].verb, "create");
  EXPECT_EQ(calls[0].ns, "ns");
  const json& e = calls[0].body;
  EXPECT_EQ(e["apiVersion"], "events.k8s.io/v1");
  EXPECT_EQ(e["kind"], "Event");
  EXPECT_EQ(e["metadata"]["namespace"], "ns");
  std::string name = e["metadata"]["name"];
  EXPECT_EQ(name.rfind("cm.", 0), 0u) << name;
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["reason"], "ConfigInvalid");
  EXPECT_EQ(e["action"], "Validate");
  EXPECT_EQ(e["note"], "key \"x\" is missing");
  EXPECT_EQ(e["reportingController"], "paddock.dev/operator");
  EXPECT_EQ(e["reportingInstance"], "paddock-operator-0");
  EXPECT_EQ(e["eventTime"], "2024-05-06T07:08:09.123456Z");
  EXPECT_EQ(e["regarding"], cm.toJson());
  EXPECT_FALSE(e.contains("series"));
  auto stats = recorder->stats();
  EXPECT_EQ(stats.recorded, 1u);
  EXPECT_EQ(stats.created, 1u);
  EXPECT_EQ(stats.failed, 0u);
}

TEST_F(EventRecorderTest, TimesAreRfc3339MicroTimesInUtc) {
  std::vector<WallTime> times = {WallTime{} + std::chrono::nanoseconds(1'999),
                                 WallTime{} + std::chrono::hours(24 * 366) + std::chrono::seconds(3661)};
  std::size_t next = 0;
  auto recorder = make();
  recorder.reset();
  EventRecorderOptions options;
  options.clock = &clock;
  options.reporting_instance = "i";
  options.wall_clock = [&] { return times[std::min(next++, times.size() - 1)]; };
  recorder = std::make_unique<EventRecorder>(std::make_unique<FakeSink>(sink), std::move(options));
  recorder->normal(cm, "R", "A", "n");
  recorder->normal(cm, "R", "A", "n");
  ASSERT_TRUE(recorder->flush(kGuard));
  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].body["eventTime"], "1970-01-01T00:00:00.000001Z");
  EXPECT_EQ(calls[1].body["series"]["lastObservedTime"], "1971-01-02T01:01:01.000000Z");
}

TEST_F(EventRecorderTest, RepeatsBecomeOneEventWhoseSeriesCountsThemAll) {
  auto recorder = make();
  for (int i = 0; i < 10; ++i) recorder->normal(cm, "Synced", "Sync", "all good");
  recorder->warning(cm, "Synced", "Sync", "all good");  // another type: another Event
  ASSERT_TRUE(recorder->flush(kGuard));

  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].verb, "create");
  EXPECT_EQ(calls[1].verb, "patch");
  EXPECT_EQ(calls[1].name, calls[0].name);
  EXPECT_EQ(calls[1].body, (json{{"series", {{"count", 2}, {"lastObservedTime", "2024-05-06T07:08:09.123456Z"}}}}));
  EXPECT_EQ(calls[2].verb, "create");
  EXPECT_EQ(calls[2].body["type"], "Warning");
  EXPECT_NE(calls[2].name, calls[0].name);
  EXPECT_EQ(calls[3].verb, "patch") << "flush writes the suppressed count";
  EXPECT_EQ(calls[3].name, calls[0].name);
  EXPECT_EQ(calls[3].body["series"]["count"], 10);

  std::lock_guard lock(sink->mu);
  ASSERT_EQ(sink->events.size(), 2u);
  EXPECT_EQ(sink->events["ns/" + calls[0].name]["series"]["count"], 10);
  auto stats = recorder->stats();
  EXPECT_EQ(stats.recorded, 11u);
  EXPECT_EQ(stats.created, 2u);
  EXPECT_EQ(stats.patched, 2u);
  EXPECT_EQ(stats.suppressed, 8u);
}

TEST_F(EventRecorderTest, EachPartOfTheKeyMakesADistinctEvent) {
  auto recorder = make();
  ObjectReference other = cm;
  other.name = "other";
  ObjectReference newer = cm;
  newer.resource_version = "8";
  recorder->normal(cm, "R", "A", "n");
  recorder->normal(other, "R", "A", "n");
  recorder->warning(cm, "R", "A", "n");
  recorder->normal(cm, "R2", "A", "n");
  recorder->normal(cm, "R", "A2", "n");
  recorder->normal(cm, "R", "A", "n2");
  recorder->normal(newer, "R", "A", "n");  // the same object, updated since: a repeat
  ASSERT_TRUE(recorder->flush(kGuard));
  auto stats = recorder->stats();
  EXPECT_EQ(stats.created, 6u);
  EXPECT_EQ(stats.patched, 1u);
}

TEST_F(EventRecorderTest, SuppressedCountIsWrittenWhenTheIntervalPassesWithoutAFlush) {
  auto recorder = make();
  for (int i = 0; i < 3; ++i) recorder->normal(cm, "Synced", "Sync", "all good");  // create, patch 2, count 3
  ASSERT_TRUE(sink->awaitCalls(2));
  clock.advance(seconds(29));
  // Once this other Event is written, the thread has looked at the clock since the advance.
  recorder->normal(cm, "Other", "Sync", "n");
  ASSERT_TRUE(sink->awaitCalls(3));
  EXPECT_EQ(sink->snapshot().size(), 3u) << "the count is not due yet";
  clock.advance(seconds(1));
  ASSERT_TRUE(sink->awaitCalls(4)) << "the background thread writes a count once it is due";
  auto calls = sink->snapshot();
  EXPECT_EQ(calls[3].verb, "patch");
  EXPECT_EQ(calls[3].name, calls[0].name);
  EXPECT_EQ(calls[3].body["series"]["count"], 3);
}

TEST_F(EventRecorderTest, EventsOfClusterScopedObjectsGoToDefault) {
  auto recorder = make();
  recorder->normal({.api_version = "paddock.dev/v1alpha1", .kind = "AgentPolicy", .name = "strict"}, "Accepted",
                   "Validate", "policy accepted");
  ASSERT_TRUE(recorder->flush(kGuard));
  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].ns, "default");
  EXPECT_EQ(calls[0].body["metadata"]["namespace"], "default");
  EXPECT_FALSE(calls[0].body["regarding"].contains("namespace"));
}

TEST_F(EventRecorderTest, LongNotesAreTruncatedAndLongNotesAlikeAggregate) {
  auto recorder = make();
  recorder->normal(cm, "Big", "Sync", std::string(3000, 'a'));
  recorder->normal(cm, "Big", "Sync", std::string(4000, 'a'));  // the same once cut
  ASSERT_TRUE(recorder->flush(kGuard));
  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 2u);
  std::string note = calls[0].body["note"];
  EXPECT_EQ(note.size(), kEventNoteMaxBytes);
  EXPECT_EQ(calls[1].verb, "patch");
}

TEST_F(EventRecorderTest, EventsWithoutReasonActionOrObjectAreDropped) {
  auto recorder = make();
  recorder->normal(cm, "", "Sync", "n");
  recorder->normal(cm, "Reason", "", "n");
  recorder->normal({.kind = "ConfigMap"}, "Reason", "Sync", "n");
  ASSERT_TRUE(recorder->flush(kGuard));
  EXPECT_TRUE(sink->snapshot().empty());
  EXPECT_EQ(recorder->stats().recorded, 0u);
}

TEST_F(EventRecorderTest, SeriesOfAnEventThatIsGoneCreatesItAgainWithTheSeries) {
  sink->fail_creates = 1;
  auto recorder = make();
  recorder->normal(cm, "Synced", "Sync", "all good");
  recorder->normal(cm, "Synced", "Sync", "all good");
  ASSERT_TRUE(recorder->flush(kGuard));
  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].verb, "create");  // fails
  EXPECT_EQ(calls[1].verb, "patch");   // 404
  EXPECT_EQ(calls[2].verb, "create");
  EXPECT_EQ(calls[2].name, calls[0].name);
  EXPECT_EQ(calls[2].body["series"]["count"], 2);
  EXPECT_EQ(calls[2].body["reason"], "Synced");
  auto stats = recorder->stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.created, 1u);
}

TEST_F(EventRecorderTest, RecordNeverBlocksAndAFullQueueDropsTheOldest) {
  sink->blocked = true;
  auto recorder = make({.queue_size = 3});
  recorder->normal(cm, "R0", "A", "n");
  ASSERT_TRUE(sink->awaitWaiting(1)) << "the first write is in flight, blocked in the sink";
  for (int i = 1; i <= 5; ++i) recorder->normal(cm, "R" + std::to_string(i), "A", "n");
  EXPECT_EQ(recorder->stats().dropped, 2u);
  sink->release();
  ASSERT_TRUE(recorder->flush(kGuard));
  std::vector<std::string> reasons;
  for (auto& c : sink->snapshot()) reasons.push_back(c.body["reason"]);
  EXPECT_EQ(reasons, (std::vector<std::string>{"R0", "R3", "R4", "R5"}));
  EXPECT_EQ(recorder->stats().created, 4u);
}

TEST_F(EventRecorderTest, FlushTimesOutWhileTheSinkIsStuck) {
  sink->blocked = true;
  auto recorder = make();
  recorder->normal(cm, "R", "A", "n");
  EXPECT_FALSE(recorder->flush(milliseconds(50)));
  sink->release();
  EXPECT_TRUE(recorder->flush(kGuard));
}

TEST_F(EventRecorderTest, DestructorDrainsTheQueueAndThePendingCounts) {
  {
    auto recorder = make();
    for (int i = 0; i < 5; ++i) recorder->normal(cm, "Synced", "Sync", "all good");
    recorder->normal(cm, "Other", "Sync", "n");
  }
  auto calls = sink->snapshot();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls.back().verb, "patch");
  EXPECT_EQ(calls.back().body["series"]["count"], 5);
}

TEST_F(EventRecorderTest, DestructorGivesUpAfterTheDrainTimeout) {
  sink->blocked = true;
  auto start = std::chrono::steady_clock::now();
  {
    auto recorder = make({.drain_timeout = milliseconds(100)});
    for (int i = 0; i < 3; ++i) recorder->normal(cm, "R" + std::to_string(i), "A", "n");
    ASSERT_TRUE(sink->awaitWaiting(1));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, kGuard);
  EXPECT_TRUE(sink->snapshot().empty()) << "the write in flight was cancelled";
}

}  // namespace
}  // namespace paddock::runtime
