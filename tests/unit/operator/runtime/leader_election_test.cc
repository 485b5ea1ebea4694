// Leader election: the pure decision logic (expiry on the local clock, own lease, released lease,
// the records written), then the elector's loop against an in-process fake of the Lease API with
// optimistic concurrency, driven by a fake clock: create, renew, release, takeover after expiry,
// a lost race, failing and hanging renewals, and a usurper.
#include "operator/runtime/leader_election.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "operator/http/client.h"
#include "operator/kube/rest.h"
#include "tests/unit/operator/common/fake_clock.h"

namespace paddock::runtime {

void PrintTo(const LeaseRecord& r, std::ostream* os) {
  *os << "{holder=\"" << r.holder_identity << "\" duration=" << r.lease_duration_seconds << " acquire=" << r.acquire_time
      << " renew=" << r.renew_time << " transitions=" << r.lease_transitions << "}";
}

namespace {
using nlohmann::json;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// A generous bound on waits for something that should happen at once: a guard against hanging,
// never what a test relies on to pass.
constexpr auto kGuard = seconds(10);

const Clock::TimePoint kT0 = Clock::TimePoint{} + hours(1);

LeaseObservation seenAt(LeaseRecord record, Clock::TimePoint at) { return LeaseObservation{std::move(record), at}; }

LeaseRecord heldBy(const std::string& holder, int duration_seconds = 15) {
  return LeaseRecord{holder, duration_seconds, "2001-01-01T00:00:00.000000Z", "2001-01-01T00:00:00.000000Z", 3};
}

// --- decide and observe -------------------------------------------------------------------

TEST(LeaderElectionDecide, NoLeaseMeansCreate) {
  EXPECT_EQ(decide(std::nullopt, kT0, "me").action, LeaseAction::Create);
}

TEST(LeaderElectionDecide, FreshLeaseOfAnotherHolderMeansWaitUntilItExpires) {
  auto d = decide(seenAt(heldBy("other"), kT0), kT0 + seconds(10), "me");
  EXPECT_EQ(d.action, LeaseAction::Wait);
  EXPECT_EQ(d.expires_in, seconds(5));
}

TEST(LeaderElectionDecide, LeaseExpiresLeaseDurationAfterItWasLastSeenToChange) {
  LeaseObservation o = seenAt(heldBy("other"), kT0);
  EXPECT_EQ(decide(o, kT0 + seconds(15) - milliseconds(1), "me").action, LeaseAction::Wait);
  EXPECT_EQ(decide(o, kT0 + seconds(15), "me").action, LeaseAction::Acquire);
  EXPECT_EQ(decide(o, kT0 + hours(1), "me").action, LeaseAction::Acquire);
}

TEST(LeaderElectionDecide, RemoteTimesAreIgnored) {
  // renewTime is from 2001, yet the lease was seen just now: it is fresh.
  EXPECT_EQ(decide(seenAt(heldBy("other"), kT0), kT0 + seconds(1), "me").action, LeaseAction::Wait);
  // renewTime far in the future does not make a lease unseen for 15 s valid.
  LeaseRecord future = heldBy("other");
  future.renew_time = "2999-01-01T00:00:00.000000Z";
  EXPECT_EQ(decide(seenAt(future, kT0), kT0 + seconds(15), "me").action, LeaseAction::Acquire);
}

TEST(LeaderElectionDecide, OwnLeaseIsRenewedEvenWhenExpired) {
  EXPECT_EQ(decide(seenAt(heldBy("me"), kT0), kT0 + seconds(1), "me").action, LeaseAction::Renew);
  EXPECT_EQ(decide(seenAt(heldBy("me"), kT0), kT0 + hours(1), "me").action, LeaseAction::Renew);
}

TEST(LeaderElectionDecide, EmptyHolderIsFreeAtOnce) {
  EXPECT_EQ(decide(seenAt(heldBy(""), kT0), kT0, "me").action, LeaseAction::Acquire);
}

TEST(LeaderElectionDecide, ReleasedLeaseIsFreeAtOnceAndItsOneSecondDurationCoversOldCandidates) {
  LeaseRecord released = releasedRecord(heldBy("other"), system_clock::now());
  EXPECT_EQ(decide(seenAt(released, kT0), kT0, "me").action, LeaseAction::Acquire);
  // A candidate that kept a holder but wrote duration 1 s is expired a second after it is seen.
  LeaseRecord short_lease = heldBy("other", 1);
  EXPECT_EQ(decide(seenAt(short_lease, kT0), kT0 + milliseconds(999), "me").action, LeaseAction::Wait);
  EXPECT_EQ(decide(seenAt(short_lease, kT0), kT0 + seconds(1), "me").action, LeaseAction::Acquire);
}

TEST(LeaderElectionDecide, MissingDurationMeansExpired) {
  EXPECT_EQ(decide(seenAt(heldBy("other", 0), kT0), kT0, "me").action, LeaseAction::Acquire);
}

TEST(LeaderElectionObserve, ObservationTimeMovesOnlyWhenTheRecordChanges) {
  LeaseObservation first = observe(std::nullopt, heldBy("other"), kT0);
  EXPECT_EQ(first.observed_at, kT0);
  LeaseObservation same = observe(first, heldBy("other"), kT0 + seconds(10));
  EXPECT_EQ(same.observed_at, kT0) << "an unchanged record keeps its observation time";
  LeaseRecord renewed = heldBy("other");
  renewed.renew_time = "2001-01-01T00:00:02.000000Z";
  LeaseObservation changed = observe(same, renewed, kT0 + seconds(12));
  EXPECT_EQ(changed.observed_at, kT0 + seconds(12));
  EXPECT_EQ(changed.record, renewed);
  // So a holder that keeps renewing is never taken over, however old its first observation.
  EXPECT_EQ(decide(changed, kT0 + seconds(20), "me").action, LeaseAction::Wait);
}

// --- the records written -------------------------------------------------------------------

const system_clock::time_point kWall = system_clock::from_time_t(1'700'000'000) + std::chrono::microseconds(123'456);
const char* kWallText = "2023-11-14T22:13:20.123456Z";

TEST(LeaderElectionRecords, FormatsMicroTime) {
  EXPECT_EQ(formatMicroTime(kWall), kWallText);
  EXPECT_EQ(formatMicroTime(system_clock::from_time_t(0)), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(formatMicroTime(kWall + std::chrono::nanoseconds(999)), kWallText) << "truncated to microseconds";
}

TEST(LeaderElectionRecords, CreateStartsAtZeroTransitions) {
  LeaseRecord r = nextRecord(LeaseAction::Create, {}, "me", seconds(15), kWall);
  EXPECT_EQ(r, (LeaseRecord{"me", 15, kWallText, kWallText, 0}));
}

TEST(LeaderElectionRecords, TakeoverCountsATransition) {
  LeaseRecord r = nextRecord(LeaseAction::Acquire, heldBy("other"), "me", seconds(3), kWall);
  EXPECT_EQ(r, (LeaseRecord{"me", 3, kWallText, kWallText, 4}));
}

TEST(LeaderElectionRecords, RenewKeepsAcquireTimeAndTransitions) {
  LeaseRecord r = nextRecord(LeaseAction::Renew, heldBy("me"), "me", seconds(15), kWall);
  EXPECT_EQ(r, (LeaseRecord{"me", 15, "2001-01-01T00:00:00.000000Z", kWallText, 3}));
}

TEST(LeaderElectionRecords, ReleaseClearsTheHolderWithAOneSecondDuration) {
  EXPECT_EQ(releasedRecord(heldBy("me"), kWall), (LeaseRecord{"", 1, kWallText, kWallText, 3}));
}

TEST(LeaderElectionRecords, LeaseJsonRoundTripKeepsEverythingElse) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", "l"}, {"namespace", "ns"}, {"resourceVersion", "42"}}},
                {"spec", {{"holderIdentity", "other"}, {"leaseDurationSeconds", 15}, {"leaseTransitions", 3},
                          {"acquireTime", "2001-01-01T00:00:00.000000Z"}, {"renewTime", "2001-01-01T00:00:00.000000Z"},
                          {"strategy", "OldestEmulationVersion"}}}};
  EXPECT_EQ(leaseRecordFrom(lease), heldBy("other"));
  json written = withLeaseRecord(lease, releasedRecord(heldBy("other"), kWall));
  EXPECT_EQ(written["metadata"]["resourceVersion"], "42");
  EXPECT_EQ(written["spec"]["strategy"], "OldestEmulationVersion");
  EXPECT_EQ(written["spec"]["holderIdentity"], "") << "released: an empty holder, not a missing one";
  EXPECT_EQ(written["spec"]["leaseDurationSeconds"], 1);
  EXPECT_EQ(leaseRecordFrom(written), releasedRecord(heldBy("other"), kWall));

  LeaseRecord no_times{"me", 15, "", "", 0};
  json bare = withLeaseRecord(lease, no_times);
  EXPECT_FALSE(bare["spec"].contains("acquireTime")) << "\"\" is not a MicroTime the API server accepts";
  EXPECT_FALSE(bare["spec"].contains("renewTime"));
}

TEST(LeaderElectionRecords, MissingOrMistypedFieldsReadAsEmpty) {
  EXPECT_EQ(leaseRecordFrom(json::object()), LeaseRecord{});
  EXPECT_EQ(leaseRecordFrom(nullptr), LeaseRecord{});
  EXPECT_EQ(leaseRecordFrom({{"spec", nullptr}}), LeaseRecord{});
  EXPECT_EQ(leaseRecordFrom({{"spec", {{"holderIdentity", 7}, {"leaseDurationSeconds", "15"}}}}), LeaseRecord{});
}

TEST(LeaderElectionSettings, ValidatesLikeClientGo) {
  LeaderElectionConfig good{.lease_namespace = "ns", .lease_name = "l"};
  EXPECT_TRUE(validate(good).ok());
  auto invalid = [&](auto change) {
    LeaderElectionConfig c = good;
    change(c);
    auto s = validate(c);
    return !s.ok() && s.error().reason == "InvalidConfig";
  };
  EXPECT_TRUE(invalid([](auto& c) { c.lease_namespace = ""; }));
  EXPECT_TRUE(invalid([](auto& c) { c.lease_name = ""; }));
  EXPECT_TRUE(invalid([](auto& c) { c.lease_duration = milliseconds(900); }));
  EXPECT_TRUE(invalid([](auto& c) { c.renew_deadline = c.lease_duration; }));
  EXPECT_TRUE(invalid([](auto& c) { c.retry_period = seconds(0); }));
  EXPECT_TRUE(invalid([](auto& c) { c.renew_deadline = seconds(12), c.retry_period = seconds(10); }));
  EXPECT_TRUE(invalid([](auto& c) { c.retry_jitter = -0.1; }));
  EXPECT_FALSE(invalid([](auto& c) { c.lease_duration = seconds(3), c.renew_deadline = seconds(2), c.retry_period = milliseconds(500); }));
}

TEST(LeaderElectionSettings, DefaultIdentityIsHostnameAndPid) {
  std::string id = defaultIdentity();
  std::string suffix = "_" + std::to_string(getpid());
  ASSERT_GT(id.size(), suffix.size());
  EXPECT_EQ(id.substr(id.size() - suffix.size()), suffix);
}

// --- the elector against a fake Lease API ----------------------------------------------------

// The Lease API for one lease, in process: GET, POST and PUT with resourceVersion checks (409 on a
// stale one), plus failure modes. Requests are recorded after they are handled.
class FakeLeaseApi final : public http::Client {
 public:
  enum class Mode { Normal, Fail, Hang };
  static constexpr const char* kCollection = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
  static constexpr const char* kObject = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/lease";

  Result<http::Response> send(const http::Request& request, const CancelToken& cancel) override {
    auto wake = cancel.onCancel([this] {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
    std::unique_lock lock(mu_);
    auto done = [&](http::Response response) -> Result<http::Response> {
      json body = json::parse(request.body, nullptr, false);
      requests_.push_back({http::methodName(request.method), response.status,
                           body.is_object() ? leaseRecordFrom(body).holder_identity : ""});
      cv_.notify_all();
      return response;
    };
    if (mode_ == Mode::Hang) {
      hanging_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return cancel.cancelled() || mode_ != Mode::Hang; });
      hanging_ = false;
      if (cancel.cancelled()) {
        (void)done({0, {}, ""});
        return Error::local("Cancelled", "request cancelled");
      }
    }
    if (mode_ == Mode::Fail) return done(status(500, "InternalError"));
    if (request.method == http::Method::Get && request.target == kObject) {
      return done(lease_ ? http::Response{200, {}, lease_->dump()} : status(404, "NotFound"));
    }
    if (request.method == http::Method::Post && request.target == kCollection) {
      if (lease_) return done(status(409, "AlreadyExists"));
      lease_ = json::parse(request.body);
      (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
      return done({201, {}, lease_->dump()});
    }
    if (request.method == http::Method::Put && request.target == kObject) {
      if (rival_) {  // another candidate writes between our read and our write
        *lease_ = withLeaseRecord(*lease_, *rival_);
        (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
        rival_.reset();
      }
      json body = json::parse(request.body);
      if (!lease_) return done(status(404, "NotFound"));
      if (body["metadata"].value("resourceVersion", "") != (*lease_)["metadata"]["resourceVersion"]) {
        return done(status(409, "Conflict"));
      }
      lease_ = body;
      (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
      return done({200, {}, lease_->dump()});
    }
    return done(status(400, "BadRequest"));
  }

  Result<http::Response> stream(const http::Request&, const http::LineHandler&, const CancelToken&) override {
    return Error::local("Unsupported", "no streams here");
  }

  // Writes the lease as another candidate would (a new resourceVersion).
  void put(const LeaseRecord& record) {
    std::lock_guard lock(mu_);
    json base = lease_ ? *lease_ : json{{"metadata", {{"name", "lease"}, {"namespace", "ns"}}}};
    lease_ = withLeaseRecord(base, record);
    (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
  }
  // The next PUT finds that `record` was written just before it.
  void rivalBeforeNextPut(const LeaseRecord& record) {
    std::lock_guard lock(mu_);
    rival_ = record;
  }
  std::optional<LeaseRecord> record() const {
    std::lock_guard lock(mu_);
    return lease_ ? std::optional(leaseRecordFrom(*lease_)) : std::nullopt;
  }
  void setMode(Mode mode) {
    std::lock_guard lock(mu_);
    mode_ = mode;
    cv_.notify_all();
  }
  // Waits until `n` requests have been handled.
  bool awaitRequests(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [&] { return requests_.size() >= n; });
  }
  bool awaitHanging() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [&] { return hanging_; });
  }
  std::size_t requests() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  // "PUT 200 me" and the like: method, status, holderIdentity sent.
  std::vector<std::string> log() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& r : requests_) out.push_back(r.method + " " + std::to_string(r.status) + (r.method == "GET" ? "" : " " + r.holder));
    return out;
  }

 private:
  static http::Response status(int code, const std::string& reason) {
    json body = {{"kind", "Status"}, {"status", "Failure"}, {"reason", reason}, {"code", code}};
    return {code, {}, body.dump()};
  }
  struct Seen {
    std::string method;
    int status;
    std::string holder;
  };

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<json> lease_;
  std::optional<LeaseRecord> rival_;
  int version_ = 0;
  Mode mode_ = Mode::Normal;
  bool hanging_ = false;
  std::vector<Seen> requests_;
};

// One candidate, "me", on a fake clock against the fake API. The wall clock follows the fake clock.
class LeaderElectorLoop : public ::testing::Test {
 protected:
  LeaderElectorLoop() {
    auto api = std::make_unique<FakeLeaseApi>();
    api_ = api.get();
    rest_ = std::make_unique<kube::RestClient>(std::move(api), kube::ClusterConfig{}, "test");
    client_ = std::make_unique<kube::Client>(*rest_, kube::ClientOptions{.qps = 0, .max_retries = 0});
  }
  ~LeaderElectorLoop() override {
    stop_.cancel();
    let_go_.cancel();
    api_->setMode(FakeLeaseApi::Mode::Normal);
    if (ran_.valid()) ran_.wait_for(kGuard);
  }

  system_clock::time_point wall() const { return kWall + (clock_.now() - start_); }

  LeaderElectionConfig config() {
    // The Lease watch is off here: these tests drive the polling state machine request by
    // request on a fake clock (the e2e tests cover the watch).
    return {.lease_namespace = "ns", .lease_name = "lease", .identity = "me", .retry_jitter = 0,
            .watch_lease = false, .clock = &clock_, .wall_clock = [this] { return wall(); }};
  }

  // Runs the elector on a thread. The work reports its start, waits for `leading` to fire (or
  // kGuard), reports that, then returns once let_go_ fires.
  void start(LeaderElectionConfig c) {
    elector_ = std::make_unique<LeaderElector>(*client_, std::move(c));
    ran_ = std::async(std::launch::async, [this] {
      return elector_->run(
          stop_,
          [this](const CancelToken& leading) {
            started_.set_value();
            leading_cancelled_.set_value(leading.waitFor(kGuard));
            let_go_.waitFor(kGuard);
          },
          [this] { stopped_.set_value(); });
    });
  }

  static bool ready(std::future<void>& f, std::chrono::milliseconds wait = kGuard) {
    return f.wait_for(wait) == std::future_status::ready;
  }
  bool runReturned() { return ran_.wait_for(kGuard) == std::future_status::ready; }

  FakeClock clock_;
  const Clock::TimePoint start_ = clock_.now();
  FakeLeaseApi* api_;
  std::unique_ptr<kube::RestClient> rest_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<LeaderElector> elector_;
  CancelToken stop_;
  CancelToken let_go_;
  std::promise<void> started_, stopped_;
  std::promise<bool> leading_cancelled_;
  std::future<void> started = started_.get_future(), stopped = stopped_.get_future();
  std::future<bool> leading_cancelled = leading_cancelled_.get_future();
  // Last, so it is destroyed (waiting for run() to return) before what run() uses.
  std::future<Status> ran_;
};

TEST_F(LeaderElectorLoop, CreatesRenewsAndOnStopReleasesOnlyAfterTheWorkReturned) {
  start(config());
  ASSERT_TRUE(ready(started));
  EXPECT_TRUE(elector_->isLeader());
  EXPECT_EQ(elector_->identity(), "me");
  std::string created_at = formatMicroTime(wall());
  EXPECT_EQ(api_->record(), (LeaseRecord{"me", 15, created_at, created_at, 0}));
  EXPECT_EQ(api_->log(), (std::vector<std::string>{"GET 404", "POST 201 me"}));

  // Renewed every retry period, with a PUT of what was last written: no read first.
  ASSERT_TRUE(clock_.awaitSleepers(2));  // the renew loop and the deadline watchdog
  clock_.advance(seconds(2));
  ASSERT_TRUE(api_->awaitRequests(3));
  EXPECT_EQ(api_->log().back(), "PUT 200 me");
  EXPECT_EQ(api_->record(), (LeaseRecord{"me", 15, created_at, formatMicroTime(wall()), 0}));

  // Stop: the work is told, and the lease is still renewed while it winds down.
  stop_.cancel();
  ASSERT_TRUE(leading_cancelled.wait_for(kGuard) == std::future_status::ready);
  EXPECT_TRUE(leading_cancelled.get());
  EXPECT_TRUE(elector_->isLeader()) << "still the leader until the work returns";
  ASSERT_TRUE(clock_.awaitSleepers(2));
  clock_.advance(seconds(2));
  ASSERT_TRUE(api_->awaitRequests(4));
  EXPECT_EQ(api_->log().back(), "PUT 200 me");
  EXPECT_EQ(api_->record()->holder_identity, "me") << "not released before the work returned";
  EXPECT_FALSE(ready(stopped, milliseconds(50)));

  let_go_.cancel();
  ASSERT_TRUE(ready(stopped));
  ASSERT_TRUE(runReturned());
  EXPECT_TRUE(ran_.get().ok());
  EXPECT_FALSE(elector_->isLeader());
  EXPECT_EQ(api_->log().back(), "PUT 200 ");
  std::string released_at = formatMicroTime(wall());
  EXPECT_EQ(api_->record(), (LeaseRecord{"", 1, released_at, released_at, 0}));
}

TEST_F(LeaderElectorLoop, WithoutReleaseOnCancelTheLeaseIsLeftToExpire) {
  auto c = config();
  c.release_on_cancel = false;
  start(c);
  ASSERT_TRUE(ready(started));
  let_go_.cancel();
  stop_.cancel();
  ASSERT_TRUE(ready(stopped));
  ASSERT_TRUE(runReturned());
  EXPECT_EQ(api_->record()->holder_identity, "me");
  EXPECT_EQ(api_->log(), (std::vector<std::string>{"GET 404", "POST 201 me"}));
}

TEST_F(LeaderElectorLoop, WorkThatReturnsByItselfEndsLeadershipAndReleases) {
  let_go_.cancel();
  elector_ = std::make_unique<LeaderElector>(*client_, config());
  std::promise<void> stopped_leading;
  Status s = elector_->run(stop_, [](const CancelToken&) {}, [&] { stopped_leading.set_value(); });
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(stop_.cancelled());
  auto f = stopped_leading.get_future();
  EXPECT_TRUE(ready(f, milliseconds(0)));
  EXPECT_EQ(api_->record()->holder_identity, "");
}

TEST_F(LeaderElectorLoop, WaitsForAnotherHoldersLeaseToExpireOnItsOwnClock) {
  api_->put(heldBy("other"));  // renewTime in 2001: ignored
  start(config());
  ASSERT_TRUE(api_->awaitRequests(1));
  ASSERT_TRUE(clock_.awaitSleepers(1));
  EXPECT_FALSE(elector_->isLeader());

  auto pollAfter = [&](Clock::Duration d) {
    std::size_t n = api_->requests();
    clock_.advance(d);
    ASSERT_TRUE(api_->awaitRequests(n + 1));
    ASSERT_TRUE(clock_.awaitSleepers(1));
  };
  pollAfter(seconds(10));  // unchanged for 10 s of 15
  EXPECT_FALSE(elector_->isLeader());
  LeaseRecord renewed = heldBy("other");
  renewed.renew_time = "2001-01-01T00:00:02.000000Z";
  api_->put(renewed);
  pollAfter(seconds(10));  // 20 s after the first sighting, but it just changed
  EXPECT_FALSE(elector_->isLeader());
  pollAfter(seconds(14));  // 14 s unchanged
  EXPECT_FALSE(elector_->isLeader());
  EXPECT_FALSE(ready(started, milliseconds(0)));

  clock_.advance(seconds(2));  // 16 s unchanged: expired
  ASSERT_TRUE(ready(started));
  std::string now = formatMicroTime(wall());
  EXPECT_EQ(api_->record(), (LeaseRecord{"me", 15, now, now, 4})) << "one more transition";
  EXPECT_EQ(api_->log().back(), "PUT 200 me");
}

TEST_F(LeaderElectorLoop, TakesOverAReleasedLeaseAtOnce) {
  api_->put(releasedRecord(heldBy("other"), kWall - hours(1)));
  start(config());
  ASSERT_TRUE(ready(started));
  EXPECT_EQ(api_->record()->holder_identity, "me");
  EXPECT_EQ(api_->record()->lease_transitions, 4);
  EXPECT_EQ(api_->log(), (std::vector<std::string>{"GET 200", "PUT 200 me"}));
}

TEST_F(LeaderElectorLoop, LosingTheRaceForAnExpiredLeaseMeansWaitingForTheWinner) {
  api_->put(heldBy("other"));
  start(config());
  ASSERT_TRUE(api_->awaitRequests(1));
  ASSERT_TRUE(clock_.awaitSleepers(1));

  api_->rivalBeforeNextPut(nextRecord(LeaseAction::Acquire, heldBy("other"), "rival", seconds(15), wall()));
  clock_.advance(seconds(16));
  ASSERT_TRUE(api_->awaitRequests(3));
  ASSERT_TRUE(clock_.awaitSleepers(1));
  EXPECT_EQ(api_->log(), (std::vector<std::string>{"GET 200", "GET 200", "PUT 409 me"}));
  EXPECT_FALSE(elector_->isLeader());
  EXPECT_EQ(api_->record()->holder_identity, "rival");

  clock_.advance(seconds(2));  // sees the rival's fresh lease: waits
  ASSERT_TRUE(api_->awaitRequests(4));
  ASSERT_TRUE(clock_.awaitSleepers(1));
  EXPECT_EQ(api_->log().back(), "GET 200");
  EXPECT_FALSE(elector_->isLeader());
  EXPECT_FALSE(ready(started, milliseconds(0)));
}

TEST_F(LeaderElectorLoop, FailedRenewalsEndLeadershipAtTheRenewDeadlineWithoutRelease) {
  start(config());
  ASSERT_TRUE(ready(started));
  auto attemptAfter = [&](Clock::Duration d, std::size_t requests) {
    std::size_t n = api_->requests();
    ASSERT_TRUE(clock_.awaitSleepers(2));
    clock_.advance(d);
    ASSERT_TRUE(api_->awaitRequests(n + requests));
  };
  api_->setMode(FakeLeaseApi::Mode::Fail);
  attemptAfter(seconds(2), 2);  // t=2: PUT fails, then the GET fails
  api_->setMode(FakeLeaseApi::Mode::Normal);
  attemptAfter(seconds(2), 1);  // t=4: renewed; the deadline moves to t=14
  EXPECT_EQ(api_->log().back(), "PUT 200 me");
  api_->setMode(FakeLeaseApi::Mode::Fail);
  for (int t = 6; t <= 12; t += 2) {
    attemptAfter(seconds(2), 2);
    EXPECT_TRUE(elector_->isLeader()) << "t=" << t << "s: within the renew deadline";
    EXPECT_FALSE(ready(stopped, milliseconds(0)));
  }
  ASSERT_TRUE(clock_.awaitSleepers(2));
  clock_.advance(seconds(2));  // t=14: 10 s since the last successful renewal began
  ASSERT_TRUE(ready(stopped));
  EXPECT_FALSE(elector_->isLeader());
  ASSERT_TRUE(leading_cancelled.wait_for(kGuard) == std::future_status::ready);
  EXPECT_TRUE(leading_cancelled.get());
  let_go_.cancel();
  ASSERT_TRUE(runReturned());
  EXPECT_FALSE(stop_.cancelled());
  for (const auto& line : api_->log()) EXPECT_FALSE(line.starts_with("PUT") && line.ends_with(" ")) << "released: " << line;
  EXPECT_EQ(api_->record()->holder_identity, "me");
}

TEST_F(LeaderElectorLoop, AHangingRenewalIsCancelledAtTheRenewDeadline) {
  start(config());
  ASSERT_TRUE(ready(started));
  ASSERT_TRUE(clock_.awaitSleepers(2));
  api_->setMode(FakeLeaseApi::Mode::Hang);
  clock_.advance(seconds(2));
  ASSERT_TRUE(api_->awaitHanging());
  ASSERT_TRUE(clock_.awaitSleepers(1));  // only the watchdog sleeps now
  clock_.advance(milliseconds(7999));
  EXPECT_FALSE(ready(stopped, milliseconds(50))) << "lost before the renew deadline";
  clock_.advance(milliseconds(1));  // t=10
  ASSERT_TRUE(ready(stopped));
  EXPECT_FALSE(elector_->isLeader());
  let_go_.cancel();
  ASSERT_TRUE(runReturned());
  EXPECT_EQ(api_->log().back(), "PUT 0 me") << "the hanging renewal was cancelled";
}

TEST_F(LeaderElectorLoop, ALeaderThatSeesAnotherHolderStepsDownAtOnceAndWritesNothing) {
  start(config());
  ASSERT_TRUE(ready(started));
  ASSERT_TRUE(clock_.awaitSleepers(2));
  api_->put(heldBy("usurper"));
  clock_.advance(seconds(2));
  ASSERT_TRUE(ready(stopped));
  EXPECT_FALSE(elector_->isLeader());
  let_go_.cancel();
  ASSERT_TRUE(runReturned());
  EXPECT_EQ(api_->log(), (std::vector<std::string>{"GET 404", "POST 201 me", "PUT 409 me", "GET 200"}));
  EXPECT_EQ(api_->record(), heldBy("usurper"));
}

TEST_F(LeaderElectorLoop, StopWhileCampaigningRunsNoCallbacks) {
  api_->put(heldBy("other"));
  start(config());
  ASSERT_TRUE(api_->awaitRequests(1));
  ASSERT_TRUE(clock_.awaitSleepers(1));
  stop_.cancel();
  ASSERT_TRUE(runReturned());
  EXPECT_TRUE(ran_.get().ok());
  EXPECT_FALSE(ready(started, milliseconds(0)));
  EXPECT_FALSE(ready(stopped, milliseconds(0)));
  EXPECT_EQ(api_->record(), heldBy("other"));
}

TEST_F(LeaderElectorLoop, InvalidConfigIsRefusedAtOnce) {
  auto c = config();
  c.renew_deadline = c.lease_duration;
  LeaderElector elector(*client_, c);
  Status s = elector.run(stop_, [](const CancelToken&) { ADD_FAILURE(); }, [] { ADD_FAILURE(); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "InvalidConfig");
  EXPECT_EQ(api_->requests(), 0u);
}

}  // namespace
}  // namespace paddock::runtime
