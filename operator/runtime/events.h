// Kubernetes Events (events.k8s.io/v1) about the objects Paddock manages, the way client-go's
// events broadcaster records them: a reconcile calls EventRecorder::record and returns at once; a
// background thread writes the Events; repeats of an Event are folded into the `series` of the
// first one instead of becoming new Events.
//
// The aggregation policy (new Event, series update, or nothing to write yet) is EventAggregator,
// which does no I/O and reads no clock, so it is tested with made-up times. EventRecorder adds the
// Event bodies, the bounded queue, the thread and the API calls.
//
// Events are best-effort: they are dropped (with a log line) rather than slow a reconcile down,
// and a failed write is logged, not retried beyond what kube::Client already retries.
// Notes are stored in the cluster and shown to anyone who can list Events: never put secret
// values (tokens, keys, credentials) in them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/cancel.h"
#include "operator/common/clock.h"
#include "operator/common/result.h"
#include "operator/kube/client.h"

namespace paddock::runtime {

// Wall-clock time, for the timestamps written into Events. Decisions (windows, throttling) use
// the injected steady Clock instead.
using WallTime = std::chrono::system_clock::time_point;

// The API server's limits on Event fields, in bytes.
inline constexpr std::size_t kEventNoteMaxBytes = 1024;
inline constexpr std::size_t kEventReasonMaxBytes = 128;
inline constexpr std::size_t kEventActionMaxBytes = 128;
inline constexpr std::size_t kEventReportingInstanceMaxBytes = 128;

// The object an Event is about: the Event's `regarding`.
struct ObjectReference {
  std::string api_version;  // "v1", "paddock.dev/v1alpha1"
  std::string kind;         // "ConfigMap"
  std::string ns;           // empty for cluster-scoped objects
  std::string name;
  std::string uid;
  std::string resource_version;  // optional: the version the Event is about

  // The reference to `object` (its apiVersion, kind and metadata). Missing fields stay empty.
  static ObjectReference from(const nlohmann::json& object);
  // The ObjectReference JSON of the API; empty fields are left out.
  nlohmann::json toJson() const;
};

enum class EventType { Normal, Warning };

// "Normal" or "Warning".
const char* toString(EventType type);

// `text` cut to at most `max_bytes` bytes without splitting a UTF-8 character. When it had to be
// cut, it ends with `marker` (within the limit) so readers can tell. Invalid UTF-8 in `text` is
// replaced with U+FFFD first, since the API server only accepts valid UTF-8.
std::string truncateUtf8(std::string_view text, std::size_t max_bytes, std::string_view marker = "");

// The name of a new Event about an object named `regarding_name`: "<regarding name>.<suffix as
// hex>", made a valid DNS subdomain of at most 253 characters (lowercased, other characters
// replaced, the object's name shortened if need be).
std::string eventName(std::string_view regarding_name, std::uint64_t suffix);

// The aggregation policy, client-go's (tools/events) with a throttle on series updates. An Event
// is identified by a key (EventRecorder uses the regarding object, type, reason, action and
// note). Each key has a series: the Event created for its first occurrence and the number of
// occurrences since.
//
// Guarantees
// - The first occurrence of a key, and any occurrence more than `window` after the previous one
//   of that key, creates a new Event (a new series).
// - Other occurrences are counted in the series. The first repeat is written at once; after that
//   a series is written at most once per `series_interval`: repeats in between are suppressed,
//   and takeDue() hands out the count once the interval has passed (takePending() at once).
// - Counts are absolute ("this Event happened N times"), so a later update supersedes a lost one.
//
// Caveats
// - Not thread-safe: EventRecorder guards it with its lock.
// - At most `max_series` keys are tracked; beyond that the key observed least recently is
//   forgotten, and its next occurrence creates a new Event.
// - expire() forgets series not observed for `window`. Call takeDue() first: a count not yet
//   handed out is forgotten with its series.
class EventAggregator {
 public:
  using TimePoint = Clock::TimePoint;
  using Duration = Clock::Duration;

  struct Options {
    // Occurrences further apart than this start a new Event.
    Duration window = std::chrono::minutes(6);
    // The least time between two series updates of one key. At most `window`.
    Duration series_interval = std::chrono::seconds(30);
    // How many keys are tracked at most.
    std::size_t max_series = 4096;
  };

  enum class Decision {
    Create,        // write `event` as a new Event
    UpdateSeries,  // write the series (count, last observed) of the key's Event
    Suppress,      // nothing to write now: counted, and written later by takeDue/takePending
  };

  struct Observation {
    Decision decision;
    // Occurrences of the key in its series so far, this one included (1 for Create).
    int count = 1;
    // The series' Event as given to observe() when it was created (null for Suppress).
    nlohmann::json event;
  };

  // A series to write: its Event as created, and the series fields to set on it.
  struct SeriesUpdate {
    nlohmann::json event;
    int count = 0;
    WallTime last_observed;
  };

  explicit EventAggregator(Options options);

  // Records an occurrence of `key` at `now` (`wall` on the wall clock). `event` is kept as the
  // series' Event when this occurrence creates one, and ignored otherwise. `now` must not go back.
  Observation observe(const std::string& key, nlohmann::json event, TimePoint now, WallTime wall);

  // The series with suppressed repeats whose interval has passed at `now`, marked as written at
  // `now`, in the order they fell due.
  std::vector<SeriesUpdate> takeDue(TimePoint now);
  // Every series with suppressed repeats, interval or not, marked as written at `now` (flush).
  std::vector<SeriesUpdate> takePending(TimePoint now);
  // When the next suppressed repeat falls due; nullopt when nothing is pending.
  std::optional<TimePoint> nextDue() const;

  // Forgets the series not observed for more than `window` before `now`.
  void expire(TimePoint now);

  // How many keys are tracked.
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    nlohmann::json event;
    int count = 1;
    TimePoint last_observed;
    WallTime last_observed_wall;
    std::optional<TimePoint> last_update;  // when the series was last handed out
    std::optional<TimePoint> due;          // set while suppressed repeats wait: last_update + interval
    std::list<const std::string*>::iterator lru;
  };
  using Entries = std::unordered_map<std::string, Entry>;

  // Hands out the series of `entry` as written at `now`.
  SeriesUpdate take(Entry& entry, const std::string* key, TimePoint now);
  void erase(Entries::iterator it);

  Options options_;
  Entries entries_;
  // Keys by last observation, least recent first. Points at the keys of entries_, which stay put.
  std::list<const std::string*> lru_;
  // Keys with suppressed repeats, by when they fall due.
  std::set<std::pair<TimePoint, const std::string*>> pending_;
};

// Where EventRecorder writes Events; kube::Client in production, a fake in tests.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // POST an Event into `ns`.
  virtual Result<nlohmann::json> create(const std::string& ns, const nlohmann::json& event, const CancelToken& cancel) = 0;
  // JSON merge patch of the Event `ns`/`name`.
  virtual Result<nlohmann::json> patch(const std::string& ns, const std::string& name, const nlohmann::json& patch,
                                       const CancelToken& cancel) = 0;
};

// An EventSink writing events.k8s.io/v1 Events through `client`, which must outlive it.
std::unique_ptr<EventSink> clientEventSink(kube::Client& client);

struct EventRecorderOptions {
  // The Event's reportingController: who wrote it.
  std::string reporting_controller = "paddock.dev/operator";
  // The Event's reportingInstance: which replica of the operator (its pod name). The host name
  // when empty; cut to 128 bytes.
  std::string reporting_instance;
  // Where time comes from for the window and the throttle; systemClock() when null. Must outlive
  // the recorder.
  const Clock* clock = nullptr;
  // The wall clock for eventTime and lastObservedTime; std::chrono::system_clock when empty.
  std::function<WallTime()> wall_clock;
  // See EventAggregator::Options.
  std::chrono::steady_clock::duration window = std::chrono::minutes(6);
  std::chrono::steady_clock::duration series_interval = std::chrono::seconds(30);
  std::size_t max_series = 4096;
  // How many writes may wait for the background thread; when full, the oldest is dropped.
  std::size_t queue_size = 1000;
  // How long the destructor waits for the queue to drain (real time) before dropping the rest
  // and cancelling the write in flight.
  std::chrono::milliseconds drain_timeout{10'000};
};

// What a recorder has done so far (for metrics and tests).
struct EventRecorderStats {
  std::uint64_t recorded = 0;    // record() calls accepted
  std::uint64_t created = 0;     // Events created
  std::uint64_t patched = 0;     // series updates written
  std::uint64_t suppressed = 0;  // repeats counted without a write of their own
  std::uint64_t dropped = 0;     // writes dropped: queue full, or not drained at shutdown
  std::uint64_t failed = 0;      // writes the API server refused or that failed in transit
};

// Records Events about objects, asynchronously and aggregated (see EventAggregator).
//
// Guarantees
// - record() never blocks on the API server: it takes a lock held only for in-memory work.
// - Writes happen in order on one background thread. At most `queue_size` wait; when full the
//   oldest is dropped and logged (at most one line every 10 s while it stays full, with the
//   count; the rest once the thread catches up).
// - A series update for an Event that is gone (dropped, failed, deleted) creates it again, with
//   its series.
// - flush() and the destructor write the counts of suppressed repeats, then wait for the queue.
//
// Caveats
// - Events of cluster-scoped objects go to the "default" namespace, as the API requires.
// - The key leaves out the regarding object's resourceVersion, so repeats across updates of the
//   object aggregate; the series' Event keeps the resourceVersion of its first occurrence.
// - A write is not retried beyond kube::Client's own retries: a lost series update is made good
//   by the next one (counts are absolute), a lost Event is not.
class EventRecorder {
 public:
  EventRecorder(kube::Client& client, EventRecorderOptions options);
  EventRecorder(std::unique_ptr<EventSink> sink, EventRecorderOptions options);
  // Drains the queue (see flush), at most `drain_timeout`, then stops the thread.
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Records that `reason` (CamelCase, "PodCreated") happened to `regarding` while doing `action`
  // ("CreatePod"), with a human-readable `note` (cut to 1024 bytes). Reason and action are
  // required (cut to 128 bytes); an Event without them, or without a regarding kind and name, is
  // logged and dropped. Thread-safe.
  void record(const ObjectReference& regarding, EventType type, std::string_view reason, std::string_view action,
              std::string_view note);
  void normal(const ObjectReference& regarding, std::string_view reason, std::string_view action,
              std::string_view note) {
    record(regarding, EventType::Normal, reason, action, note);
  }
  void warning(const ObjectReference& regarding, std::string_view reason, std::string_view action,
               std::string_view note) {
    record(regarding, EventType::Warning, reason, action, note);
  }

  // Queues the counts of suppressed repeats, then waits until everything recorded before the
  // call is written (or has failed or been dropped). False when `timeout` (real time) passed first.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  EventRecorderStats stats() const;

 private:
  struct Write {
    enum class Kind { Create, PatchSeries };
    Kind kind = Kind::Create;
    nlohmann::json event;  // the full Event; for PatchSeries, as created
    int count = 0;         // PatchSeries: the series to write
    WallTime last_observed;
    std::uint64_t seq = 0;
  };

  enum class Outcome { Created, Patched, Failed };

  void run();
  // Writes `write` through the sink. Called without mu_.
  Outcome send(const Write& write);
  // Queues a write, dropping the oldest when full. Requires mu_.
  void pushLocked(Write write);
  void pushSeriesLocked(std::vector<EventAggregator::SeriesUpdate> updates);
  // True when every write queued up to `seq` is done. Requires mu_.
  bool drainedLocked(std::uint64_t seq) const;
  // Logs the drops not logged yet: at once when `force`, else at most every 10 s. Requires mu_.
  void reportDropsLocked(Clock::TimePoint now, bool force);
  // A suffix for a new Event name: the wall time in nanoseconds, unique in this recorder. Requires mu_.
  std::uint64_t nextSuffixLocked(WallTime wall);

  std::unique_ptr<EventSink> sink_;
  const Clock& clock_;
  std::function<WallTime()> wall_clock_;
  std::string reporting_controller_;
  std::string reporting_instance_;
  std::size_t queue_size_;
  std::chrono::milliseconds drain_timeout_;
  CancelToken cancel_;  // cancels the write in flight when the drain times out

  mutable std::mutex mu_;
  std::condition_variable cv_;
  EventAggregator aggregator_;       // guarded by mu_
  std::deque<Write> queue_;          // guarded by mu_
  std::uint64_t last_seq_ = 0;       // guarded by mu_
  bool in_flight_ = false;           // guarded by mu_
  std::uint64_t in_flight_seq_ = 0;  // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::uint64_t last_suffix_ = 0;    // guarded by mu_: the last Event name suffix handed out
  std::uint64_t drops_unreported_ = 0;              // guarded by mu_
  nlohmann::json last_dropped_;                      // guarded by mu_: what the last drop was about
  std::optional<Clock::TimePoint> last_drop_report_;  // guarded by mu_
  EventRecorderStats stats_;         // guarded by mu_

  std::thread worker_;
  // Last, so it is dropped first: a fake clock's advance() must not reach a half-destroyed recorder.
  Clock::Subscription advance_subscription_;
};

}  // namespace paddock::runtime
