// Leader election on a coordination.k8s.io/v1 Lease, so that of several operator replicas only
// one reconciles at a time. Semantics and defaults follow client-go's leaderelection package
// (LeaseLock): lease 15 s, renew deadline 10 s, retry period 2 s.
//
// Guarantees
// - Two candidates never both win the same round: every write is a PUT carrying the
//   resourceVersion that was read, so the slower writer gets 409 Conflict and keeps waiting.
// - Expiry is judged on the local clock only. A candidate takes over a lease held by another when
//   it has seen the lease record unchanged for leaseDurationSeconds (client-go's observedTime);
//   the holder's renewTime is written for people to read and never compared with our clock.
// - A leader whose renewals keep failing stops leading renew_deadline after its last successful
//   renewal began, even when a request hangs (the deadline cancels it), and at once when it sees
//   another holder. With renew_deadline < lease_duration it stops before anyone else may start.
// - On a clean stop the lease is released (holderIdentity "", leaseDurationSeconds 1) only after
//   the leader's work has returned, so the next leader takes over within one retry period but
//   never overlaps with this one.
//
// Caveats
// - The decision logic (observe, decide, nextRecord, releasedRecord) is pure and unit-tested;
//   LeaderElector is only the I/O and the loop around it.
// - Like client-go, a candidate that loses leadership does not campaign again: run() returns and
//   the process is expected to exit (or call run() again on purpose).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "operator/common/cancel.h"
#include "operator/common/clock.h"
#include "operator/common/result.h"
#include "operator/common/timestamp.h"
#include "operator/kube/client.h"

namespace paddock::runtime {

// The leader election fields of a Lease's spec (client-go's LeaderElectionRecord).
struct LeaseRecord {
  std::string holder_identity;     // "" when nobody holds the lease (released)
  int lease_duration_seconds = 0;  // how long others wait, on their own clocks, after a change
  std::string acquire_time;        // RFC 3339 micro time, as written; "" when unset
  std::string renew_time;          // RFC 3339 micro time, as written; "" when unset
  int lease_transitions = 0;       // how many times the lease changed hands

  bool operator==(const LeaseRecord&) const = default;
};

// The lease record as a candidate last saw it, and when (on the local clock) it last saw it change.
struct LeaseObservation {
  LeaseRecord record;
  Clock::TimePoint observed_at;
};

enum class LeaseAction {
  Create,   // there is no Lease: create it, holding it
  Acquire,  // nobody holds it, or its holder let it expire: take it over (one more transition)
  Renew,    // it is ours: renew it, keeping acquireTime and the transition count
  Wait,     // another candidate holds it and it has not expired: try again later
};

struct LeaseDecision {
  LeaseAction action = LeaseAction::Wait;
  // For Wait: how long until the lease expires if its holder stops renewing it.
  Clock::Duration expires_in{};
};

// Folds a freshly read record into what was seen before (nullopt: nothing yet). The observation
// time moves to `now` only when the record differs from the previous one.
LeaseObservation observe(const std::optional<LeaseObservation>& previous, const LeaseRecord& seen,
                         Clock::TimePoint now);

// What a candidate named `identity` should do with the Lease as observed (nullopt: it does not
// exist). A lease held by someone else expires leaseDurationSeconds after `observed_at`; an empty
// holder means it was released and is free at once. The candidate's own lease is always renewed.
LeaseDecision decide(const std::optional<LeaseObservation>& observed, Clock::TimePoint now,
                     std::string_view identity);

// The record to write for `action` (not Wait) over `current` (ignored for Create), stamped with
// the wall-clock time `now`.
LeaseRecord nextRecord(LeaseAction action, const LeaseRecord& current, const std::string& identity,
                       Clock::Duration lease_duration, std::chrono::system_clock::time_point now);

// The record that gives the lease up: no holder, a 1 s duration (so candidates of other versions
// that ignore the empty holder take over within a second), transitions unchanged.
LeaseRecord releasedRecord(const LeaseRecord& current, std::chrono::system_clock::time_point now);

// Reads the record from a Lease object; missing or mistyped fields read as empty or zero.
LeaseRecord leaseRecordFrom(const nlohmann::json& lease);
// Returns `lease` with the record written into its spec; everything else (metadata with its
// resourceVersion, other spec fields) is kept. Empty times are left out rather than sent as "".
nlohmann::json withLeaseRecord(nlohmann::json lease, const LeaseRecord& record);


// "<hostname>_<pid>": unique among the replicas of a Deployment (the hostname is the pod name).
std::string defaultIdentity();

struct LeaderElectionConfig {
  std::string lease_namespace;  // required
  std::string lease_name;       // required
  // This candidate's name in holderIdentity; defaultIdentity() when empty. Must differ between
  // candidates: a candidate treats a lease held under its own identity as its own.
  std::string identity;
  // How long other candidates wait, after last seeing the lease change, before taking it over.
  // Written to the Lease in whole seconds.
  Clock::Duration lease_duration = std::chrono::seconds(15);
  // How long the leader keeps leading while its renewals fail. Less than lease_duration.
  Clock::Duration renew_deadline = std::chrono::seconds(10);
  // How often the leader renews, and (plus jitter) how often the others try to acquire.
  Clock::Duration retry_period = std::chrono::seconds(2);
  // Candidates wait retry_period * (1 + U[0, retry_jitter)) between attempts, so that several
  // started together spread out. Kept small so a released lease is taken within ~1 retry period.
  double retry_jitter = 0.2;
  // Whether a clean end of leadership (stop cancelled, or the leader's work returned) releases the
  // lease. false leaves it to expire, as a crash would.
  bool release_on_cancel = true;
  // While campaigning, watch the Lease so each renewal is seen as it happens and a standby takes
  // over as soon as the lease expires, not up to a retry period later. Polling remains the fallback.
  bool watch_lease = true;
  // Measures time and waits; systemClock() when null. Must outlive the elector.
  const Clock* clock = nullptr;
  // The wall clock for acquireTime and renewTime; std::chrono::system_clock::now when empty.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
};

// InvalidConfig unless: namespace and name are set, lease_duration >= 1 s, and lease_duration >
// renew_deadline > 1.2 * retry_period > 0 (client-go's rules), retry_jitter >= 0.
Status validate(const LeaderElectionConfig& config);

// Campaigns for a Lease and runs work while holding it.
//
// Usage:
//   runtime::LeaderElector elector(client, {.lease_namespace = ns, .lease_name = "paddock-operator"});
//   auto ended = elector.run(shutdown, [&](const CancelToken& leading) { runControllers(leading); },
//                            [&] { if (!shutdown.cancelled()) log::error("lost leadership"); });
class LeaderElector {
 public:
  using Config = LeaderElectionConfig;

  // `client` must outlive the elector; run() uses it from its own thread and a Lease-watch thread.
  LeaderElector(kube::Client& client, Config config);
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns until this candidate holds the lease or `stop` fires. While it holds the lease,
  // runs on_started_leading(leading) on a thread of its own and renews the lease every retry
  // period. Leadership ends when:
  // - `stop` fires: `leading` is cancelled and the lease is still renewed until
  //   on_started_leading returns; then the lease is released (release_on_cancel);
  // - on_started_leading returns by itself: likewise, the lease is released;
  // - the lease is lost (renewals failed for renew_deadline, or another holder was seen):
  //   `leading` is cancelled at once and nothing is released.
  // on_stopped_leading then runs on run()'s thread; after a loss it runs without waiting for
  // on_started_leading to return (so it may exit the process at once). Neither callback runs when
  // leadership was never won. Returns after both callbacks have returned: InvalidConfig for a bad
  // configuration (at once), else Ok; `stop.cancelled()` tells a stop from a loss.
  //
  // Caveats: one run() at a time. on_started_leading must return soon after `leading` fires, and
  // neither callback may throw.
  Status run(const CancelToken& stop, std::function<void(const CancelToken& leading)> on_started_leading,
             std::function<void()> on_stopped_leading);

  // True from winning the lease until leadership ends (before on_stopped_leading runs).
  bool isLeader() const { return leading_.load(); }
  const std::string& identity() const { return identity_; }

 private:
  enum class Attempt { Held, NotHeld, Failed };

  // Streams watch events of the Lease until `stop`, calling `changed` for each.
  void watchLease(const CancelToken& stop, const std::function<void()>& changed);

  // One round of client-go's tryAcquireOrRenew: read (unless renewing what we last wrote),
  // decide, write. Requests are cancelled by `cancel`. While `leading`, any other holder is NotHeld.
  Attempt tryAcquireOrRenew(const CancelToken& cancel, bool leading);
  // Leads from the moment the lease was won (renewal started at `renewed_at`) until it ends.
  void lead(const CancelToken& stop, const std::function<void(const CancelToken&)>& on_started_leading,
            const std::function<void()>& on_stopped_leading, Clock::TimePoint renewed_at);
  // Gives the lease up if we still hold it as last written; false when that failed.
  bool release(const CancelToken& cancel);
  // Keeps what the server returned for our own write (or create) as the current lease.
  void remember(const nlohmann::json& lease);
  // Logs when the holder seen differs from the last one logged.
  void noteHolder(const std::string& holder);
  Clock::Duration retryWait();
  std::chrono::system_clock::time_point wallNow() const;
  nlohmann::json logFields() const;

  kube::Client& client_;
  Config config_;
  const Clock& clock_;
  std::string identity_;
  std::string lease_key_;  // "namespace/name", for logs
  std::atomic<bool> leading_{false};

  // Used by run()'s thread only.
  std::optional<nlohmann::json> lease_;       // the Lease as last read or written
  std::optional<LeaseObservation> observed_;  // its record and when it last changed
  std::optional<std::string> last_holder_;    // the holder last logged
  std::mt19937 rng_;                          // for retryWait's jitter
};

}  // namespace paddock::runtime
