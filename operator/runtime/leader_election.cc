#include "operator/runtime/leader_election.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "operator/common/log.h"

namespace paddock::runtime {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

// client-go's JitterFactor: the renew deadline must leave room for more than one retry period.
constexpr double kJitterFactor = 1.2;

std::string stringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

int intField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : 0;
}

json newLease(const std::string& ns, const std::string& name) {
  return {{"apiVersion", kube::resources::leases.apiVersion()},
          {"kind", "Lease"},
          {"metadata", {{"name", name}, {"namespace", ns}}}};
}

double toSeconds(Clock::Duration d) { return std::chrono::duration<double>(d).count(); }

// Sleeps on `clock` until `deadline` or until one of `tokens` fires.
void sleepUntilAny(const Clock& clock, Clock::TimePoint deadline, std::initializer_list<const CancelToken*> tokens) {
  CancelToken wake;
  std::vector<CancelToken::Registration> registrations;
  // By value: a callback may still be running on another thread after its registration is gone.
  for (const CancelToken* token : tokens) registrations.push_back(token->onCancel([wake] { wake.cancel(); }));
  clock.sleepUntil(deadline, wake);
}

}  // namespace

LeaseObservation observe(const std::optional<LeaseObservation>& previous, const LeaseRecord& seen,
                         Clock::TimePoint now) {
  if (previous && previous->record == seen) return *previous;
  return LeaseObservation{seen, now};
}

LeaseDecision decide(const std::optional<LeaseObservation>& observed, Clock::TimePoint now,
                     std::string_view identity) {
  if (!observed) return {LeaseAction::Create};
  const LeaseRecord& record = observed->record;
  if (record.holder_identity == identity) return {LeaseAction::Renew};
  if (record.holder_identity.empty()) return {LeaseAction::Acquire};
  Clock::TimePoint expiry = observed->observed_at + std::chrono::seconds(record.lease_duration_seconds);
  if (now >= expiry) return {LeaseAction::Acquire};
  return {LeaseAction::Wait, expiry - now};
}

LeaseRecord nextRecord(LeaseAction action, const LeaseRecord& current, const std::string& identity,
                       Clock::Duration lease_duration, system_clock::time_point now) {
  std::string stamp = formatMicroTime(now);
  LeaseRecord next{identity, static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(lease_duration).count()),
                   stamp, stamp, 0};
  switch (action) {
    case LeaseAction::Create:
      break;
    case LeaseAction::Acquire:
      next.lease_transitions = current.lease_transitions + 1;
      break;
    case LeaseAction::Renew:
      if (!current.acquire_time.empty()) next.acquire_time = current.acquire_time;
      next.lease_transitions = current.lease_transitions;
      break;
    case LeaseAction::Wait:
      return current;
  }
  return next;
}

LeaseRecord releasedRecord(const LeaseRecord& current, system_clock::time_point now) {
  std::string stamp = formatMicroTime(now);
  return LeaseRecord{"", 1, stamp, stamp, current.lease_transitions};
}

LeaseRecord leaseRecordFrom(const json& lease) {
  LeaseRecord record;
  if (!lease.is_object()) return record;
  auto spec = lease.find("spec");
  if (spec == lease.end() || !spec->is_object()) return record;
  record.holder_identity = stringField(*spec, "holderIdentity");
  record.lease_duration_seconds = intField(*spec, "leaseDurationSeconds");
  record.acquire_time = stringField(*spec, "acquireTime");
  record.renew_time = stringField(*spec, "renewTime");
  record.lease_transitions = intField(*spec, "leaseTransitions");
  return record;
}

json withLeaseRecord(json lease, const LeaseRecord& record) {
  if (!lease.is_object()) lease = json::object();
  json& spec = lease["spec"];
  if (!spec.is_object()) spec = json::object();
  spec["holderIdentity"] = record.holder_identity;
  spec["leaseDurationSeconds"] = record.lease_duration_seconds;
  spec["leaseTransitions"] = record.lease_transitions;
  // The API server cannot parse "" as a MicroTime; absent means unset.
  for (auto [key, value] : {std::pair{"acquireTime", &record.acquire_time}, std::pair{"renewTime", &record.renew_time}}) {
    if (value->empty()) {
      spec.erase(key);
    } else {
      spec[key] = *value;
    }
  }
  return lease;
}

std::string defaultIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "unknown");
  return std::string(host) + "_" + std::to_string(getpid());
}

Status validate(const LeaderElectionConfig& config) {
  auto invalid = [](const std::string& message) -> Status {
    return Error::local("InvalidConfig", "leader election: " + message);
  };
  if (config.lease_namespace.empty()) return invalid("the lease namespace is required");
  if (config.lease_name.empty()) return invalid("the lease name is required");
  if (config.lease_duration < std::chrono::seconds(1)) return invalid("lease_duration must be at least 1s");
  if (config.lease_duration <= config.renew_deadline) return invalid("lease_duration must be greater than renew_deadline");
  if (config.retry_period <= Clock::Duration::zero()) return invalid("retry_period must be positive");
  if (config.renew_deadline <= config.retry_period * kJitterFactor) {
    return invalid("renew_deadline must be greater than 1.2 * retry_period");
  }
  if (!(config.retry_jitter >= 0)) return invalid("retry_jitter must not be negative");
  return Ok{};
}

LeaderElector::LeaderElector(kube::Client& client, Config config)
    : client_(client),
      config_(std::move(config)),
      clock_(config_.clock ? *config_.clock : systemClock()),
      identity_(config_.identity.empty() ? defaultIdentity() : config_.identity),
      lease_key_(config_.lease_namespace + "/" + config_.lease_name),
      rng_(std::random_device{}()) {}

Status LeaderElector::run(const CancelToken& stop, std::function<void(const CancelToken& leading)> on_started_leading,
                          std::function<void()> on_stopped_leading) {
  if (auto valid = validate(config_); !valid) {
    auto fields = logFields();
    fields["error"] = valid.error().describe();
    log::error("cannot run leader election", fields);
    return valid;
  }
  last_holder_.reset();
  log::info("campaigning for leadership", logFields());

  // Wake-ups from the Lease watch: each bumps a generation and cancels the token the campaign
  // loop sleeps on. A change seen while the loop is busy is not lost: the loop compares
  // generations before it sleeps.
  std::mutex wake_mu;
  CancelToken* wake = nullptr;  // guarded by wake_mu
  uint64_t changes = 0;         // guarded by wake_mu
  CancelToken watch_stop;
  auto stop_watch = stop.onCancel([watch_stop] { watch_stop.cancel(); });
  std::thread watcher;
  if (config_.watch_lease) {
    watcher = std::thread([&] {
      watchLease(watch_stop, [&] {
        std::lock_guard lock(wake_mu);
        ++changes;
        if (wake) wake->cancel();
      });
    });
  }
  auto end_watch = [&] {
    watch_stop.cancel();
    if (watcher.joinable()) watcher.join();
  };

  while (!stop.cancelled()) {
    Clock::TimePoint started = clock_.now();
    uint64_t seen;
    {
      std::lock_guard lock(wake_mu);
      seen = changes;
    }
    if (tryAcquireOrRenew(stop, false) == Attempt::Held) {
      end_watch();
      lead(stop, on_started_leading, on_stopped_leading, started);
      return Ok{};
    }
    // Sleep until the next poll, the lease's expiry if sooner, or a change seen by the watch.
    Clock::TimePoint until = clock_.now() + retryWait();
    if (observed_) {
      LeaseDecision d = decide(observed_, clock_.now(), identity_);
      if (d.action == LeaseAction::Wait) until = std::min(until, clock_.now() + d.expires_in + std::chrono::milliseconds(1));
    }
    CancelToken woken;
    auto stop_wakes = stop.onCancel([woken] { woken.cancel(); });
    {
      std::lock_guard lock(wake_mu);
      if (changes != seen) continue;  // the lease changed while we were reading it: look again now
      wake = &woken;
    }
    clock_.sleepUntil(until, woken);
    std::lock_guard lock(wake_mu);
    wake = nullptr;
  }
  end_watch();
  log::info("stopped campaigning", logFields());
  return Ok{};
}

void LeaderElector::watchLease(const CancelToken& stop, const std::function<void()>& changed) {
  const std::string path = kube::resources::leases.path(config_.lease_namespace) +
                           "?watch=1&fieldSelector=" + kube::urlEncode("metadata.name=" + config_.lease_name) +
                           "&timeoutSeconds=60";
  auto backoff = std::chrono::milliseconds(500);
  bool warned = false;
  while (!stop.cancelled()) {
    http::Request req{http::Method::Get, path};
    req.timeout = std::chrono::seconds(75);
    auto r = client_.stream(kube::resources::leases, req, [&](std::string_view line) {
      if (line.find("\"type\":\"ERROR\"") == std::string_view::npos) changed();
      return !stop.cancelled();
    }, stop);
    if (stop.cancelled() || (!r && r.error().reason == "Cancelled")) return;
    bool ok = r && r->status == 200;
    if (ok) {  // the server ended the watch at timeoutSeconds: resume at once
      backoff = std::chrono::milliseconds(500);
      continue;
    }
    // Polling still elects correctly; say once why takeover may be up to a retry period late.
    if (!warned) {
      auto fields = logFields();
      fields["error"] = r ? kube::errorFromResponse(*r).describe() : r.error().describe();
      log::warn("cannot watch the lease; falling back to polling it (allow watch on leases)", fields);
      warned = true;
    }
    if (stop.waitFor(backoff)) return;  // real time: this paces I/O retries, not lease timing
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
  }
}

void LeaderElector::lead(const CancelToken& stop, const std::function<void(const CancelToken&)>& on_started_leading,
                         const std::function<void()>& on_stopped_leading, Clock::TimePoint renewed_at) {
  leading_ = true;
  // Won just as we were told to stop: give the lease back without starting anything.
  const bool run_work = !stop.cancelled();
  {
    auto fields = logFields();
    fields["transitions"] = observed_ ? observed_->record.lease_transitions : 0;
    log::info("started leading", fields);
  }

  // The renew deadline is kept by a thread of its own so that it holds while a request hangs:
  // `expired` fires, cancelling any request made with it, once renew_deadline has passed since the
  // last successful renewal began.
  std::mutex mu;
  Clock::TimePoint deadline = renewed_at + config_.renew_deadline;  // guarded by mu
  CancelToken expired;
  CancelToken over;  // tells the watchdog to finish
  std::thread watchdog([&] {
    while (true) {
      Clock::TimePoint until;
      {
        std::lock_guard lock(mu);
        until = deadline;
      }
      if (!clock_.sleepUntil(until, over)) return;
      std::lock_guard lock(mu);
      if (deadline <= clock_.now()) {
        expired.cancel();
        return;
      }
    }
  });

  CancelToken leading;
  CancelToken work_done;
  std::thread worker;
  CancelToken::Registration no_work;
  if (run_work && on_started_leading) {
    worker = std::thread([&] {
      on_started_leading(leading);
      work_done.cancel();
    });
  } else {
    // Nothing to run: the work is "done" when leading ends.
    no_work = leading.onCancel([work_done] { work_done.cancel(); });
  }

  enum class End { Stopped, Returned, Lost };
  End end = End::Lost;
  bool stopping = false;
  Clock::TimePoint next = clock_.now() + config_.retry_period;
  while (true) {
    if (expired.cancelled()) {
      end = End::Lost;
      break;
    }
    if (!stopping && stop.cancelled()) {
      stopping = true;
      leading.cancel();
      if (worker.joinable()) log::info("stopping: waiting for the leader's work to return", logFields());
      continue;
    }
    if (work_done.cancelled()) {
      end = stopping ? End::Stopped : End::Returned;
      break;
    }
    if (clock_.now() < next) {
      if (stopping) {
        sleepUntilAny(clock_, next, {&expired, &work_done});
      } else {
        sleepUntilAny(clock_, next, {&expired, &work_done, &stop});
      }
      continue;
    }
    Clock::TimePoint started = clock_.now();
    Attempt attempt = tryAcquireOrRenew(expired, true);
    if (attempt == Attempt::NotHeld) {
      end = End::Lost;
      break;
    }
    if (attempt == Attempt::Held) {
      std::lock_guard lock(mu);
      if (!expired.cancelled()) deadline = started + config_.renew_deadline;
    }
    next = clock_.now() + config_.retry_period;
  }
  leading.cancel();

  auto fields = logFields();
  if (end == End::Lost) {
    leading_ = false;
    fields["reason"] = expired.cancelled() ? "renewals failed for the renew deadline" : "another holder took the lease";
    if (observed_) fields["holder"] = observed_->record.holder_identity;
    over.cancel();
    watchdog.join();
    log::warn("lost leadership", fields);
    // Before joining the work: whoever is told may need to act (exit) while it is still stopping.
    if (run_work && on_stopped_leading) on_stopped_leading();
    if (worker.joinable()) worker.join();
    return;
  }
  if (worker.joinable()) worker.join();
  leading_ = false;
  // Still bounded by the renew deadline: past it, the lease may no longer be ours to give.
  bool released = config_.release_on_cancel && release(expired);
  over.cancel();
  watchdog.join();
  fields["reason"] = end == End::Stopped ? "stopped" : "the leader's work returned";
  fields["released"] = released;
  log::info("stopped leading", fields);
  if (run_work && on_stopped_leading) on_stopped_leading();
}

LeaderElector::Attempt LeaderElector::tryAcquireOrRenew(const CancelToken& cancel, bool leading) {
  const kube::Resource& leases = kube::resources::leases;
  const std::string& ns = config_.lease_namespace;
  const std::string& name = config_.lease_name;

  // Fast path while leading: renew the lease as we last wrote it, without reading it first. Its
  // resourceVersion makes the write fail if anyone else wrote since; then read it and decide.
  if (leading && lease_ && observed_ && observed_->record.holder_identity == identity_) {
    LeaseRecord next = nextRecord(LeaseAction::Renew, observed_->record, identity_, config_.lease_duration, wallNow());
    auto written = client_.replace(leases, ns, name, withLeaseRecord(*lease_, next), "", cancel);
    if (written) {
      remember(*written);
      return Attempt::Held;
    }
    if (cancel.cancelled()) return Attempt::Failed;
    auto fields = logFields();
    fields["error"] = written.error().describe();
    log::debug("renewing the lease failed; reading it", fields);
  }

  auto got = client_.get(leases, ns, name, cancel);
  if (!got) {
    auto fields = logFields();
    fields["error"] = got.error().describe();
    if (got.error().code != 404) {
      if (!cancel.cancelled()) log::warn("cannot read the lease", fields);
      return Attempt::Failed;
    }
    observed_.reset();
    lease_.reset();
    LeaseRecord record = nextRecord(LeaseAction::Create, {}, identity_, config_.lease_duration, wallNow());
    auto created = client_.create(leases, ns, withLeaseRecord(newLease(ns, name), record), cancel);
    if (!created) {
      fields["error"] = created.error().describe();
      if (created.error().code == 409) {
        log::debug("another candidate created the lease first", fields);
        return Attempt::NotHeld;
      }
      if (!cancel.cancelled()) log::warn("cannot create the lease", fields);
      return Attempt::Failed;
    }
    remember(*created);
    log::info("created the lease", logFields());
    return Attempt::Held;
  }

  LeaseRecord seen = leaseRecordFrom(*got);
  observed_ = observe(observed_, seen, clock_.now());
  lease_ = std::move(got.value());
  noteHolder(seen.holder_identity);
  // A leader that finds the lease held by anyone else, or released, has lost it.
  if (leading && seen.holder_identity != identity_) return Attempt::NotHeld;

  LeaseDecision decision = decide(observed_, clock_.now(), identity_);
  if (decision.action == LeaseAction::Wait) {
    auto fields = logFields();
    fields["holder"] = seen.holder_identity;
    fields["expires_in_seconds"] = toSeconds(decision.expires_in);
    log::debug("the lease is held by another candidate", fields);
    return Attempt::NotHeld;
  }
  LeaseRecord next = nextRecord(decision.action, seen, identity_, config_.lease_duration, wallNow());
  auto written = client_.replace(leases, ns, name, withLeaseRecord(*lease_, next), "", cancel);
  if (!written) {
    auto fields = logFields();
    fields["error"] = written.error().describe();
    // Someone wrote between our read and our write: for a takeover, they won the race.
    if (written.error().code == 409 && decision.action == LeaseAction::Acquire) {
      log::info("lost the race for the lease", fields);
      return Attempt::NotHeld;
    }
    if (!cancel.cancelled()) log::warn("cannot write the lease", fields);
    return Attempt::Failed;
  }
  if (decision.action == LeaseAction::Acquire) {
    auto fields = logFields();
    fields["previous_holder"] = seen.holder_identity;
    fields["reason"] = seen.holder_identity.empty() ? "released" : "expired";
    log::info("took over the lease", fields);
  }
  remember(*written);
  return Attempt::Held;
}

bool LeaderElector::release(const CancelToken& cancel) {
  if (!lease_ || !observed_ || observed_->record.holder_identity != identity_) return false;
  LeaseRecord released = releasedRecord(observed_->record, wallNow());
  auto written = client_.replace(kube::resources::leases, config_.lease_namespace, config_.lease_name,
                                 withLeaseRecord(*lease_, released), "", cancel);
  if (!written) {
    auto fields = logFields();
    fields["error"] = written.error().describe();
    log::warn("cannot release the lease; it will expire", fields);
    return false;
  }
  remember(*written);
  return true;
}

void LeaderElector::remember(const json& lease) {
  lease_ = lease;
  observed_ = LeaseObservation{leaseRecordFrom(lease), clock_.now()};
  last_holder_ = observed_->record.holder_identity;
}

void LeaderElector::noteHolder(const std::string& holder) {
  if (last_holder_ == holder) return;
  last_holder_ = holder;
  if (holder == identity_) return;
  auto fields = logFields();
  fields["holder"] = holder;
  log::info(holder.empty() ? "the lease is free" : "another candidate leads", fields);
}

Clock::Duration LeaderElector::retryWait() {
  if (config_.retry_jitter <= 0) return config_.retry_period;
  std::uniform_real_distribution<double> jitter(0.0, config_.retry_jitter);
  return config_.retry_period +
         std::chrono::duration_cast<Clock::Duration>(config_.retry_period * jitter(rng_));
}

system_clock::time_point LeaderElector::wallNow() const {
  return config_.wall_clock ? config_.wall_clock() : system_clock::now();
}

json LeaderElector::logFields() const { return {{"identity", identity_}, {"lease", lease_key_}}; }

}  // namespace paddock::runtime
