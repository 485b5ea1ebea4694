// Leader election against the real API server: two candidates in one process, each with its own
// client, race for one Lease. Exactly one leads at any time; a leader that stops without releasing
// (a crash) is replaced once its lease has expired on the survivor's clock, and not before; a
// released lease is taken over at the survivor's next attempt. The Lease names the leader.
#include "operator/runtime/leader_election.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using namespace std::chrono_literals;
using Time = std::chrono::steady_clock::time_point;
using runtime::LeaderElectionConfig;
using runtime::LeaseRecord;

// Bounds waits for something that must happen: a guard against hanging, not a timing assertion.
constexpr auto kGuard = 30s;
const std::string kLease = "paddock-test-leader";

long long ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// Parses a MicroTime written by formatMicroTime ("2006-01-02T15:04:05.000000Z").
std::chrono::system_clock::time_point parseMicroTime(const std::string& text) {
  std::tm utc{};
  int micros = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                  &utc.tm_min, &utc.tm_sec, &micros) != 7) {
    ADD_FAILURE() << "not a MicroTime: " << text;
    return {};
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&utc)) + std::chrono::microseconds(micros);
}

// What the candidates of one test did, and when; every field is guarded by mu.
struct Board {
  std::mutex mu;
  std::condition_variable cv;
  int leading_now = 0;
  int most_leading = 0;  // the most candidates whose work ran at the same time

  template <typename Pred>
  bool await(Pred pred, std::chrono::steady_clock::duration timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
};

// One candidate: its own API client and elector, run on a thread of its own. Its work runs until
// `leading` fires.
class Candidate {
 public:
  Candidate(Board& board, LeaderElectionConfig config)
      : board_(board), rest_(adminClient()), client_(*rest_, kube::ClientOptions{}), elector_(client_, std::move(config)) {}
  ~Candidate() {
    stop_.cancel();
    if (thread_.joinable()) thread_.join();
  }

  void start() {
    thread_ = std::thread([this] {
      Status ran = elector_.run(
          stop_,
          [this](const CancelToken& leading) {
            note([&] {
              started = std::chrono::steady_clock::now();
              board_.most_leading = std::max(board_.most_leading, ++board_.leading_now);
            });
            leading.waitFor(std::chrono::hours(1));
            note([&] {
              work_ended = std::chrono::steady_clock::now();
              --board_.leading_now;
            });
          },
          [this] { note([&] { stopped = std::chrono::steady_clock::now(); }); });
      note([&] {
        ok = ran.ok();
        done = true;
      });
    });
  }
  void stop() { stop_.cancel(); }
  runtime::LeaderElector& elector() { return elector_; }

  // Guarded by board.mu.
  std::optional<Time> started;     // its work started
  std::optional<Time> work_ended;  // its work returned
  std::optional<Time> stopped;     // on_stopped_leading ran
  bool done = false;               // run() returned
  bool ok = false;                 // ... with Ok

 private:
  template <typename F>
  void note(F change) {
    {
      std::lock_guard lock(board_.mu);
      change();
    }
    board_.cv.notify_all();
  }

  Board& board_;
  std::unique_ptr<kube::RestClient> rest_;
  kube::Client client_;
  runtime::LeaderElector elector_;
  CancelToken stop_;
  std::thread thread_;
};

class LeaderElectionE2E : public ::testing::Test {
 protected:
  LeaderElectionConfig config(const std::string& identity) {
    return {.lease_namespace = ns.name(), .lease_name = kLease, .identity = identity};
  }
  LeaderElectionConfig shortConfig(const std::string& identity) {
    auto c = config(identity);
    c.lease_duration = 3s;
    c.renew_deadline = 2s;
    c.retry_period = 500ms;
    return c;
  }
  LeaseRecord lease() {
    auto got = client.get(kube::resources::leases, ns.name(), kLease);
    EXPECT_TRUE(got.ok()) << got.error().describe();
    return got.ok() ? runtime::leaseRecordFrom(*got) : LeaseRecord{};
  }
  // Starts both and waits for one to lead; returns {leader, follower}.
  std::pair<Candidate*, Candidate*> elect(Candidate& a, Candidate& b) {
    a.start();
    b.start();
    board.await([&] { return a.started || b.started; }, kGuard);
    std::lock_guard lock(board.mu);
    return a.started ? std::pair{&a, &b} : std::pair{&b, &a};
  }
  // Watches the Lease until its holder renews it once: by then the follower is past its first
  // attempt and waiting, as a standby in a steady state is.
  bool awaitRenewal() {
    auto got = client.get(kube::resources::leases, ns.name(), kLease);
    if (!got.ok()) return false;
    std::string renewed = (*got)["spec"].value("renewTime", "");
    json seen = watchUntil(
        *rest, kube::resources::leases.path(ns.name()) + "?fieldSelector=metadata.name%3D" + kLease,
        (*got)["metadata"].value("resourceVersion", ""),
        [&](const std::string& type, const json& lease) {
          return type == "MODIFIED" && lease["spec"].value("renewTime", "") != renewed;
        },
        30s);
    return !seen.is_null();
  }
  std::optional<Time> startedOf(Candidate& c) {
    std::lock_guard lock(board.mu);
    return c.started;
  }

  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, kube::ClientOptions{}};
  TempNamespace ns{*rest, "leader"};
  Board board;
};

TEST_F(LeaderElectionE2E, ExactlyOneLeadsAndACrashedLeaderIsReplacedOnlyOnceItsLeaseExpired) {
  auto ca = shortConfig("candidate-a"), cb = shortConfig("candidate-b");
  ca.release_on_cancel = cb.release_on_cancel = false;
  Candidate a(board, ca), b(board, cb);
  Candidate *leader, *follower;
  std::tie(leader, follower) = elect(a, b);
  ASSERT_TRUE(startedOf(*leader)) << "nobody leads";

  // Several retry periods later the follower still follows: it sees a lease renewed every 0.5 s.
  EXPECT_FALSE(board.await([&] { return a.started && b.started; }, 2s)) << "both lead";
  EXPECT_TRUE(leader->elector().isLeader());
  EXPECT_FALSE(follower->elector().isLeader());
  LeaseRecord held = lease();
  EXPECT_EQ(held.holder_identity, leader->elector().identity());
  EXPECT_EQ(held.lease_duration_seconds, 3);
  EXPECT_EQ(held.lease_transitions, 0);

  // A crash: the leader stops renewing and does not release.
  Time crashed = std::chrono::steady_clock::now();
  leader->stop();
  ASSERT_TRUE(board.await([&] { return leader->done; }, kGuard));
  LeaseRecord abandoned = lease();
  EXPECT_EQ(abandoned.holder_identity, leader->elector().identity()) << "released, though release_on_cancel is false";

  ASSERT_TRUE(board.await([&] { return follower->started.has_value(); }, kGuard)) << "the follower never took over";
  auto took = *startedOf(*follower) - crashed;
  std::cout << "[ TIMING   ] crashed leader replaced after " << ms(took) << " ms (lease 3000 ms, retry 500 ms)\n";
  // The follower sees the last renewal at its next poll, waits a lease duration from that sighting
  // and notices the expiry at the poll after; polls are retry * [1, 1.2) apart. So the takeover
  // comes at most lease + 2 * 1.2 * retry after the crash (plus request latency)...
  EXPECT_LE(took, 3000ms + 1200ms + 500ms);
  LeaseRecord taken = lease();
  EXPECT_EQ(taken.holder_identity, follower->elector().identity());
  EXPECT_EQ(taken.lease_transitions, 1);
  // ... and never less than a lease duration after the last renewal was stamped: the safety
  // property, independent of load (both stamps come from this machine's wall clock).
  auto gap = parseMicroTime(taken.acquire_time) - parseMicroTime(abandoned.renew_time);
  std::cout << "[ TIMING   ] last renewal to takeover: " << ms(gap) << " ms\n";
  EXPECT_GE(gap, 3000ms - 10ms) << "took over a lease that had not expired";
  EXPECT_TRUE(follower->elector().isLeader());

  follower->stop();
  ASSERT_TRUE(board.await([&] { return a.done && b.done; }, kGuard));
  std::lock_guard lock(board.mu);
  EXPECT_TRUE(a.ok && b.ok);
  EXPECT_EQ(board.most_leading, 1) << "two candidates led at the same time";
  EXPECT_TRUE(leader->stopped.has_value());
}

TEST_F(LeaderElectionE2E, AReleasedLeaseIsTakenOverWithinOneRetryPeriodWithDefaultTimings) {
  Candidate a(board, config("candidate-a")), b(board, config("candidate-b"));  // 15 s, 10 s, 2 s
  Candidate *leader, *follower;
  std::tie(leader, follower) = elect(a, b);
  ASSERT_TRUE(startedOf(*leader)) << "nobody leads";
  EXPECT_EQ(lease().holder_identity, leader->elector().identity());
  ASSERT_TRUE(awaitRenewal()) << "the leader never renewed its lease";

  Time stopped = std::chrono::steady_clock::now();
  leader->stop();
  ASSERT_TRUE(board.await([&] { return follower->started.has_value(); }, kGuard)) << "the follower never took over";
  auto took = *startedOf(*follower) - stopped;
  std::cout << "[ TIMING   ] released lease taken over after " << ms(took) << " ms (lease 15000 ms, retry 2000 ms)\n";
  EXPECT_LT(took, 3s) << "not taken within about one retry period of the release";
  LeaseRecord taken = lease();
  EXPECT_EQ(taken.holder_identity, follower->elector().identity());
  EXPECT_EQ(taken.lease_transitions, 1);
  EXPECT_EQ(taken.lease_duration_seconds, 15);

  follower->stop();
  ASSERT_TRUE(board.await([&] { return a.done && b.done; }, kGuard));
  std::lock_guard lock(board.mu);
  EXPECT_TRUE(a.ok && b.ok);
  EXPECT_EQ(board.most_leading, 1) << "the old leader's work overlapped the new leader's";
  EXPECT_LE(*leader->work_ended, *follower->started);
}

TEST_F(LeaderElectionE2E, AReleasedLeaseIsTakenOverAtTheNextAttemptWithShortTimings) {
  Candidate a(board, shortConfig("candidate-a")), b(board, shortConfig("candidate-b"));
  Candidate *leader, *follower;
  std::tie(leader, follower) = elect(a, b);
  ASSERT_TRUE(startedOf(*leader)) << "nobody leads";
  ASSERT_TRUE(awaitRenewal()) << "the leader never renewed its lease";

  Time stopped = std::chrono::steady_clock::now();
  leader->stop();
  ASSERT_TRUE(board.await([&] { return follower->started.has_value(); }, kGuard)) << "the follower never took over";
  auto took = *startedOf(*follower) - stopped;
  std::cout << "[ TIMING   ] released lease taken over after " << ms(took) << " ms (lease 3000 ms, retry 500 ms)\n";
  // Within about one retry period (0.5-0.6 s); an expiry would take 2.5 s or more.
  EXPECT_LT(took, 1500ms) << "a released lease must not wait for the 3 s lease to expire";
  EXPECT_EQ(lease().holder_identity, follower->elector().identity());

  follower->stop();
  ASSERT_TRUE(board.await([&] { return a.done && b.done; }, kGuard));
  LeaseRecord released = lease();
  EXPECT_EQ(released.holder_identity, "") << "the last leader released the lease";
  EXPECT_EQ(released.lease_duration_seconds, 1);
  EXPECT_EQ(released.lease_transitions, 1);
  std::lock_guard lock(board.mu);
  EXPECT_EQ(board.most_leading, 1);
  EXPECT_LE(*leader->work_ended, *follower->started);
}

}  // namespace
}  // namespace paddock::e2e
