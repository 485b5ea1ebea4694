#include "operator/runtime/events.h"

#include "operator/common/json.h"
#include "operator/common/timestamp.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <exception>

#include "operator/common/log.h"

namespace paddock::runtime {
namespace {

using nlohmann::json;

// The longest the background thread waits on its condition variable before looking at the clock
// again. Only a bound: it is woken by writes, flushes, shutdown, fake clock jumps and due series.
constexpr Clock::Duration kMaxWait = std::chrono::hours(1);
// The least time between two "queue full" log lines.
constexpr Clock::Duration kDropReportInterval = std::chrono::seconds(10);
// A Kubernetes object name that is a DNS subdomain is at most this long.
constexpr std::size_t kMaxNameLength = 253;
constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

class ClientSink final : public EventSink {
 public:
  explicit ClientSink(kube::Client& client) : client_(client) {}

  Result<json> create(const std::string& ns, const json& event, const CancelToken& cancel) override {
    return client_.create(kube::resources::events, ns, event, cancel);
  }
  Result<json> patch(const std::string& ns, const std::string& name, const json& patch,
                     const CancelToken& cancel) override {
    return client_.mergePatch(kube::resources::events, ns, name, patch, "", cancel);
  }

 private:
  kube::Client& client_;
};

// The length of the valid UTF-8 sequence at the start of `s`, or 0 when it is not one.
std::size_t utf8SequenceLength(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto continuation = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  unsigned char b = byte(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return continuation(1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    unsigned char lo = b == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    unsigned char hi = b == 0xED ? 0x9F : 0xBF;  // no surrogates
    return continuation(1, lo, hi) && continuation(2) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    unsigned char lo = b == 0xF0 ? 0x90 : 0x80;  // no overlong forms
    unsigned char hi = b == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
    return continuation(1, lo, hi) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

std::string validUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    std::size_t n = utf8SequenceLength(text);
    if (n == 0) {
      out += kReplacementCharacter;
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return out;
}

void appendKeyPart(std::string& key, std::string_view part) {
  key += std::to_string(part.size());
  key += ':';
  key += part;
}

// Identifies an Event for aggregation. Length-prefixed parts, so no two different Events share one.
std::string eventKey(const ObjectReference& r, EventType type, std::string_view reason, std::string_view action,
                     std::string_view note) {
  std::string key;
  for (std::string_view part : {std::string_view(r.api_version), std::string_view(r.kind), std::string_view(r.ns),
                                std::string_view(r.name), std::string_view(r.uid), std::string_view(toString(type)),
                                reason, action, note}) {
    appendKeyPart(key, part);
  }
  return key;
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

// "ConfigMap ns/name", for log lines.
std::string describeRegarding(const json& event) {
  const json& r = event.value("regarding", json::object());
  std::string ns = stringAt(r, "/namespace");
  return stringAt(r, "/kind") + " " + (ns.empty() ? "" : ns + "/") + stringAt(r, "/name");
}

// Failures nobody can act on are not worth a warning: a name clash, shutdown, a namespace gone
// or being deleted along with the object the Event was about.
bool expectedFailure(const Error& e) {
  return e.reason == "AlreadyExists" || e.reason == "Cancelled" || e.code == 404 ||
         (e.code == 403 && e.message.find("being terminated") != std::string::npos);
}

}  // namespace

ObjectReference ObjectReference::from(const json& object) {
  ObjectReference r;
  if (!object.is_object()) return r;
  r.api_version = stringAt(object, "/apiVersion");
  r.kind = stringAt(object, "/kind");
  auto metadata = object.find("metadata");
  if (metadata != object.end() && metadata->is_object()) {
    r.ns = stringAt(*metadata, "/namespace");
    r.name = stringAt(*metadata, "/name");
    r.uid = stringAt(*metadata, "/uid");
    r.resource_version = stringAt(*metadata, "/resourceVersion");
  }
  return r;
}

json ObjectReference::toJson() const {
  json out = json::object();
  auto put = [&](const char* field, const std::string& value) {
    if (!value.empty()) out[field] = validUtf8(value);
  };
  put("apiVersion", api_version);
  put("kind", kind);
  put("namespace", ns);
  put("name", name);
  put("uid", uid);
  put("resourceVersion", resource_version);
  return out;
}

const char* toString(EventType type) { return type == EventType::Warning ? "Warning" : "Normal"; }

std::string truncateUtf8(std::string_view text, std::size_t max_bytes, std::string_view marker) {
  std::string s = validUtf8(text);
  if (s.size() <= max_bytes) return s;
  if (marker.size() > max_bytes) marker = {};
  std::size_t cut = max_bytes - marker.size();
  // Back up to the start of a character: continuation bytes are 10xxxxxx.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  s += marker;
  return s;
}

std::string eventName(std::string_view regarding_name, std::uint64_t suffix) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%" PRIx64, suffix);
  std::string suffix_text = hex;

  // Lowercase; anything but [a-z0-9.-] becomes '-'.
  std::string cleaned;
  cleaned.reserve(regarding_name.size());
  for (char c : regarding_name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    cleaned += ok ? c : '-';
  }
  // Every dot-separated label must start and end with [a-z0-9] and not be empty.
  std::string prefix;
  std::size_t start = 0;
  while (start <= cleaned.size()) {
    std::size_t end = cleaned.find('.', start);
    if (end == std::string::npos) end = cleaned.size();
    std::string_view label(cleaned.data() + start, end - start);
    while (!label.empty() && label.front() == '-') label.remove_prefix(1);
    while (!label.empty() && label.back() == '-') label.remove_suffix(1);
    if (!label.empty()) {
      if (!prefix.empty()) prefix += '.';
      prefix += label;
    }
    start = end + 1;
  }
  std::size_t max_prefix = kMaxNameLength - 1 - suffix_text.size();
  if (prefix.size() > max_prefix) {
    prefix.resize(max_prefix);
    while (!prefix.empty() && (prefix.back() == '-' || prefix.back() == '.')) prefix.pop_back();
  }
  if (prefix.empty()) prefix = "event";
  return prefix + "." + suffix_text;
}

// EventAggregator

EventAggregator::EventAggregator(Options options) : options_(options) {
  options_.window = std::max(options_.window, Duration::zero());
  options_.series_interval = std::clamp(options_.series_interval, Duration::zero(), options_.window);
  options_.max_series = std::max<std::size_t>(options_.max_series, 1);
}

EventAggregator::Observation EventAggregator::observe(const std::string& key, json event, TimePoint now,
                                                      WallTime wall) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    Entry& e = it->second;
    if (now - e.last_observed <= options_.window) {
      ++e.count;
      e.last_observed = now;
      e.last_observed_wall = wall;
      lru_.splice(lru_.end(), lru_, e.lru);
      if (!e.last_update || now - *e.last_update >= options_.series_interval) {
        SeriesUpdate update = take(e, &it->first, now);
        return {Decision::UpdateSeries, update.count, std::move(update.event)};
      }
      if (!e.due) {
        e.due = *e.last_update + options_.series_interval;
        pending_.emplace(*e.due, &it->first);
      }
      return {Decision::Suppress, e.count, nullptr};
    }
    erase(it);  // too long ago: this occurrence starts a new series
  }
  while (entries_.size() >= options_.max_series) erase(entries_.find(*lru_.front()));
  auto [it, inserted] = entries_.emplace(key, Entry{});
  Entry& e = it->second;
  e.event = std::move(event);
  e.last_observed = now;
  e.last_observed_wall = wall;
  e.lru = lru_.insert(lru_.end(), &it->first);
  return {Decision::Create, 1, e.event};
}

EventAggregator::SeriesUpdate EventAggregator::take(Entry& entry, const std::string* key, TimePoint now) {
  if (entry.due) {
    pending_.erase({*entry.due, key});
    entry.due.reset();
  }
  entry.last_update = now;
  return {entry.event, entry.count, entry.last_observed_wall};
}

std::vector<EventAggregator::SeriesUpdate> EventAggregator::takeDue(TimePoint now) {
  std::vector<SeriesUpdate> out;
  while (!pending_.empty() && pending_.begin()->first <= now) {
    const std::string* key = pending_.begin()->second;
    out.push_back(take(entries_.at(*key), key, now));
  }
  return out;
}

std::vector<EventAggregator::SeriesUpdate> EventAggregator::takePending(TimePoint now) {
  std::vector<SeriesUpdate> out;
  while (!pending_.empty()) {
    const std::string* key = pending_.begin()->second;
    out.push_back(take(entries_.at(*key), key, now));
  }
  return out;
}

std::optional<EventAggregator::TimePoint> EventAggregator::nextDue() const {
  if (pending_.empty()) return std::nullopt;
  return pending_.begin()->first;
}

void EventAggregator::expire(TimePoint now) {
  while (!lru_.empty()) {
    auto it = entries_.find(*lru_.front());
    if (now - it->second.last_observed <= options_.window) return;
    erase(it);
  }
}

void EventAggregator::erase(Entries::iterator it) {
  Entry& e = it->second;
  if (e.due) pending_.erase({*e.due, &it->first});
  lru_.erase(e.lru);
  entries_.erase(it);
}

// EventRecorder

std::unique_ptr<EventSink> clientEventSink(kube::Client& client) { return std::make_unique<ClientSink>(client); }

EventRecorder::EventRecorder(kube::Client& client, EventRecorderOptions options)
    : EventRecorder(clientEventSink(client), std::move(options)) {}

EventRecorder::EventRecorder(std::unique_ptr<EventSink> sink, EventRecorderOptions options)
    : sink_(std::move(sink)),
      clock_(options.clock ? *options.clock : systemClock()),
      wall_clock_(std::move(options.wall_clock)),
      reporting_controller_(std::move(options.reporting_controller)),
      reporting_instance_(truncateUtf8(options.reporting_instance.empty() ? hostName() : options.reporting_instance,
                                       kEventReportingInstanceMaxBytes)),
      queue_size_(std::max<std::size_t>(options.queue_size, 1)),
      drain_timeout_(options.drain_timeout),
      aggregator_({options.window, options.series_interval, options.max_series}) {
  if (!wall_clock_) wall_clock_ = [] { return std::chrono::system_clock::now(); };
  advance_subscription_ = clock_.onAdvance([this] {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  });
  worker_ = std::thread([this] { run(); });
}

EventRecorder::~EventRecorder() {
  bool drained = false;
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    pushSeriesLocked(aggregator_.takePending(clock_.now()));
    std::uint64_t target = last_seq_;
    cv_.notify_all();
    drained = cv_.wait_for(lock, drain_timeout_, [&] { return drainedLocked(target); });
    if (!drained) {
      log::warn("events not written before shutdown were dropped",
                {{"count", queue_.size() + (in_flight_ ? 1 : 0)}, {"drain_timeout_ms", drain_timeout_.count()}});
      stats_.dropped += queue_.size();
      queue_.clear();
    }
    reportDropsLocked(clock_.now(), true);
  }
  // Outside mu_: cancelling runs the callbacks of the write in flight on this thread.
  if (!drained) cancel_.cancel();
  worker_.join();
  advance_subscription_ = {};
}

void EventRecorder::record(const ObjectReference& regarding, EventType type, std::string_view reason_text,
                           std::string_view action_text, std::string_view note_text) {
  std::string reason = truncateUtf8(reason_text, kEventReasonMaxBytes);
  std::string action = truncateUtf8(action_text, kEventActionMaxBytes);
  if (reason.empty() || action.empty() || regarding.kind.empty() || regarding.name.empty()) {
    log::warn("event dropped: it needs a reason, an action and the kind and name of its object",
              {{"reason", reason}, {"action", action}, {"regarding", regarding.toJson()}});
    return;
  }
  std::string note = truncateUtf8(note_text, kEventNoteMaxBytes, "...");
  std::string key = eventKey(regarding, type, reason, action, note);
  json event = {
      {"apiVersion", "events.k8s.io/v1"},
      {"kind", "Event"},
      // Cluster-scoped objects' Events must go to "default" (or "kube-system").
      {"metadata", {{"namespace", regarding.ns.empty() ? std::string("default") : regarding.ns}}},
      {"regarding", regarding.toJson()},
      {"type", toString(type)},
      {"reason", std::move(reason)},
      {"action", std::move(action)},
      {"note", std::move(note)},
      {"reportingController", reporting_controller_},
      {"reportingInstance", reporting_instance_},
  };

  std::lock_guard lock(mu_);
  if (stopping_) return;
  Clock::TimePoint now = clock_.now();
  WallTime wall = wall_clock_();
  event["eventTime"] = formatMicroTime(wall);
  event["metadata"]["name"] = eventName(regarding.name, nextSuffixLocked(wall));
  auto observation = aggregator_.observe(key, std::move(event), now, wall);
  ++stats_.recorded;
  switch (observation.decision) {
    case EventAggregator::Decision::Create:
      pushLocked({Write::Kind::Create, std::move(observation.event), 1, wall});
      break;
    case EventAggregator::Decision::UpdateSeries:
      pushLocked({Write::Kind::PatchSeries, std::move(observation.event), observation.count, wall});
      break;
    case EventAggregator::Decision::Suppress:
      ++stats_.suppressed;
      break;
  }
}

bool EventRecorder::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  pushSeriesLocked(aggregator_.takePending(clock_.now()));
  std::uint64_t target = last_seq_;
  cv_.notify_all();
  return cv_.wait_for(lock, timeout, [&] { return drainedLocked(target); });
}

EventRecorderStats EventRecorder::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void EventRecorder::run() {
  std::unique_lock lock(mu_);
  while (true) {
    Clock::TimePoint now = clock_.now();
    pushSeriesLocked(aggregator_.takeDue(now));
    aggregator_.expire(now);
    if (!queue_.empty()) {
      Write write = std::move(queue_.front());
      queue_.pop_front();
      in_flight_ = true;
      in_flight_seq_ = write.seq;
      lock.unlock();
      Outcome outcome = send(write);
      lock.lock();
      in_flight_ = false;
      switch (outcome) {
        case Outcome::Created: ++stats_.created; break;
        case Outcome::Patched: ++stats_.patched; break;
        case Outcome::Failed: ++stats_.failed; break;
      }
      cv_.notify_all();
      continue;
    }
    // Caught up: whatever was dropped meanwhile is reported now.
    reportDropsLocked(now, true);
    if (stopping_) return;
    if (auto next = aggregator_.nextDue()) {
      // Measured in real time; with a fake clock, advance() wakes us through the subscription.
      cv_.wait_for(lock, std::min(*next - now, kMaxWait));
    } else {
      cv_.wait(lock);
    }
  }
}

EventRecorder::Outcome EventRecorder::send(const Write& write) {
  const json& metadata = write.event.contains("metadata") ? write.event["metadata"] : json::object();
  std::string ns = metadata.value("namespace", "");
  std::string name = metadata.value("name", "");
  auto failed = [&](const Error& e) {
    json fields = {{"error", e.describe()}, {"namespace", ns}, {"name", name},
                   {"reason", write.event.value("reason", "")}, {"regarding", describeRegarding(write.event)}};
    if (expectedFailure(e)) {
      log::debug("cannot write event", fields);
    } else {
      log::warn("cannot write event", fields);
    }
    return Outcome::Failed;
  };
  try {
    if (write.kind == Write::Kind::Create) {
      auto created = sink_->create(ns, write.event, cancel_);
      return created ? Outcome::Created : failed(created.error());
    }
    json series = {{"count", write.count}, {"lastObservedTime", formatMicroTime(write.last_observed)}};
    auto patched = sink_->patch(ns, name, {{"series", series}}, cancel_);
    if (patched) return Outcome::Patched;
    if (patched.error().code != 404) return failed(patched.error());
    // The Event is gone (its create was dropped or failed, or it was deleted): create it again,
    // with its series.
    json event = write.event;
    event["series"] = std::move(series);
    auto created = sink_->create(ns, event, cancel_);
    return created ? Outcome::Created : failed(created.error());
  } catch (const std::exception& e) {
    // A sink must not throw; this keeps a bad one from taking the process down with it.
    return failed(Error::local("Internal", e.what()));
  }
}

void EventRecorder::pushLocked(Write write) {
  if (queue_.size() >= queue_size_) {
    last_dropped_ = {{"reason", queue_.front().event.value("reason", "")},
                     {"regarding", describeRegarding(queue_.front().event)}};
    queue_.pop_front();
    ++stats_.dropped;
    ++drops_unreported_;
    reportDropsLocked(clock_.now(), false);
  }
  write.seq = ++last_seq_;
  queue_.push_back(std::move(write));
  cv_.notify_all();
}

void EventRecorder::pushSeriesLocked(std::vector<EventAggregator::SeriesUpdate> updates) {
  for (auto& u : updates) pushLocked({Write::Kind::PatchSeries, std::move(u.event), u.count, u.last_observed});
}

bool EventRecorder::drainedLocked(std::uint64_t seq) const {
  bool queued = !queue_.empty() && queue_.front().seq <= seq;
  bool writing = in_flight_ && in_flight_seq_ <= seq;
  return !queued && !writing;
}

void EventRecorder::reportDropsLocked(Clock::TimePoint now, bool force) {
  if (drops_unreported_ == 0) return;
  if (!force && last_drop_report_ && now - *last_drop_report_ < kDropReportInterval) return;
  log::warn("event queue full: dropped the oldest events",
            {{"dropped", drops_unreported_}, {"queue_size", queue_size_}, {"last_dropped", last_dropped_}});
  drops_unreported_ = 0;
  last_drop_report_ = now;
}

std::uint64_t EventRecorder::nextSuffixLocked(WallTime wall) {
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count();
  std::uint64_t suffix = nanos > 0 ? static_cast<std::uint64_t>(nanos) : 0;
  if (suffix <= last_suffix_) suffix = last_suffix_ + 1;
  last_suffix_ = suffix;
  return suffix;
}

}  // namespace paddock::runtime
