// The group-commit AuditLog (openAuditLog) over a backend the test controls.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "operator/audit/audit.h"
#include "operator/audit/store.h"
#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

using namespace std::chrono_literals;
using testing::sampleEntry;

// What the fake backend was asked, and how it answers; shared with the test.
struct Backstage {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<Record>> writes;  // the successful ones
  int attempts = 0;
  bool blocked = false;  // write() waits while set
  int failures = 0;      // fail this many writes next
  std::string failure_reason = "IO";
  std::optional<nlohmann::json> repair;

  void block() {
    std::lock_guard l(mu);
    blocked = true;
  }
  void unblock() {
    std::lock_guard l(mu);
    blocked = false;
    cv.notify_all();
  }
  // Waits until write() has been called `n` times.
  void awaitAttempts(int n) {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return attempts >= n; });
  }
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(std::shared_ptr<Backstage> s) : s_(std::move(s)) {}
  Result<Opened> open() override {
    std::lock_guard l(s_->mu);
    Head head;
    if (!s_->writes.empty()) head = Head{s_->writes.back().back().seq, s_->writes.back().back().hash};
    return Opened{head, s_->repair};
  }
  Status read(const ItemSink& sink) override {
    std::lock_guard l(s_->mu);
    for (const auto& w : s_->writes) {
      for (const auto& r : w) {
        if (!sink(StoredItem{StoredItem::Kind::Record, toJson(r), 0, "fake", ""})) return Ok{};
      }
    }
    return Ok{};
  }
  Status write(const std::vector<Record>& records) override {
    std::unique_lock l(s_->mu);
    ++s_->attempts;
    s_->cv.notify_all();
    s_->cv.wait(l, [&] { return !s_->blocked; });
    if (s_->failures > 0) {
      --s_->failures;
      return Error::local(s_->failure_reason, "injected");
    }
    s_->writes.push_back(records);
    return Ok{};
  }
  std::string describe() const override { return "fake"; }

 private:
  std::shared_ptr<Backstage> s_;
};

AuditLogOptions fast() {
  AuditLogOptions o;
  o.backoff_initial = 1ms;
  o.backoff_max = 5ms;
  return o;
}

double metric(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name || family.metric.empty()) continue;
    const auto& m = family.metric[0];
    return m.gauge.value + m.counter.value + static_cast<double>(m.histogram.sample_count);
  }
  return -1;
}

struct Fixture : ::testing::Test {
  std::shared_ptr<Backstage> stage = std::make_shared<Backstage>();
  prometheus::Registry registry;
  std::unique_ptr<AuditLog> open(AuditLogOptions options = fast()) {
    auto log = openAuditLog(std::make_unique<FakeBackend>(stage), options, &registry);
    if (!log) throw std::runtime_error(log.error().describe());
    return std::move(*log);
  }
};

using AuditLogTest = Fixture;

TEST_F(AuditLogTest, AppendsReturnTheirPlaceInTheChainOnceWritten) {
  auto log = open();
  auto a = log->append({sampleEntry(1), sampleEntry(2)}, CancelToken());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first_seq, 1u);
  EXPECT_EQ(a->last_seq, 2u);
  auto b = log->append({sampleEntry(3)}, CancelToken());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first_seq, 3u);
  ASSERT_EQ(stage->writes.size(), 2u);
  EXPECT_EQ(stage->writes[1][0].prev, a->last_hash);
  EXPECT_EQ(log->head(), (Head{3, b->last_hash}));
  EXPECT_EQ(metric(registry, "paddock_audit_records_total"), 3);
  EXPECT_EQ(metric(registry, "paddock_audit_head_seq"), 3);
  EXPECT_EQ(metric(registry, "paddock_audit_write_seconds"), 2);
}

TEST_F(AuditLogTest, ConcurrentAppendsShareOneWrite) {
  auto log = open();
  stage->block();
  auto first = std::async(std::launch::async, [&] { return log->append({sampleEntry(0)}, CancelToken()); });
  stage->awaitAttempts(1);
  std::vector<std::future<Result<AppendResult>>> rest;
  for (int i = 1; i <= 10; ++i) {
    rest.push_back(std::async(std::launch::async, [&, i] { return log->append({sampleEntry(i)}, CancelToken()); }));
  }
  while (metric(registry, "paddock_audit_queued_records") < 10) std::this_thread::sleep_for(1ms);
  stage->unblock();
  ASSERT_TRUE(first.get().ok());
  std::set<uint64_t> seqs;
  for (auto& f : rest) {
    auto r = f.get();
    ASSERT_TRUE(r.ok());
    seqs.insert(r->first_seq);
  }
  EXPECT_EQ(seqs.size(), 10u);
  ASSERT_EQ(stage->writes.size(), 2u) << "the ten queued appends went out in one batch";
  EXPECT_EQ(stage->writes[1].size(), 10u);
}

TEST_F(AuditLogTest, AFullQueueHoldsAppendersBack) {
  AuditLogOptions options = fast();
  options.max_queued_records = 5;
  auto log = open(options);
  stage->block();
  auto in_flight = std::async(std::launch::async, [&] { return log->append({sampleEntry(0)}, CancelToken()); });
  stage->awaitAttempts(1);
  std::vector<Entry> five(5, sampleEntry(1));
  auto queued = std::async(std::launch::async, [&] { return log->append(five, CancelToken()); });
  while (metric(registry, "paddock_audit_queued_records") < 5) std::this_thread::sleep_for(1ms);

  CancelToken give_up;
  auto held = std::async(std::launch::async, [&] { return log->append({sampleEntry(2)}, give_up); });
  EXPECT_EQ(held.wait_for(100ms), std::future_status::timeout) << "no room: the appender waits";
  give_up.cancel();
  auto r = held.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "Cancelled");

  stage->unblock();
  EXPECT_TRUE(in_flight.get().ok());
  EXPECT_TRUE(queued.get().ok());
  EXPECT_EQ(log->head().seq, 6u) << "the cancelled append wrote nothing";
}

TEST_F(AuditLogTest, ACancelledQueuedAppendIsWithdrawn) {
  auto log = open();
  stage->block();
  auto in_flight = std::async(std::launch::async, [&] { return log->append({sampleEntry(0)}, CancelToken()); });
  stage->awaitAttempts(1);
  CancelToken cancel;
  auto queued = std::async(std::launch::async, [&] { return log->append({sampleEntry(1)}, cancel); });
  while (metric(registry, "paddock_audit_queued_records") < 1) std::this_thread::sleep_for(1ms);
  cancel.cancel();
  auto r = queued.get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("before the records were written"), std::string::npos);
  stage->unblock();
  ASSERT_TRUE(in_flight.get().ok());
  ASSERT_TRUE(log->append({sampleEntry(2)}, CancelToken()).ok());
  ASSERT_EQ(stage->writes.size(), 2u);
  EXPECT_EQ(stage->writes[1].size(), 1u);
  EXPECT_EQ(stage->writes[1][0].entry.details["i"], 2);
}

TEST_F(AuditLogTest, AFailingStoreIsRetriedUntilTheRecordsAreDurable) {
  auto log = open();
  stage->failures = 3;
  auto r = log->append({sampleEntry(1), sampleEntry(2)}, CancelToken());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(stage->attempts, 4);
  ASSERT_EQ(stage->writes.size(), 1u);
  EXPECT_EQ(stage->writes[0].size(), 2u);
  EXPECT_EQ(metric(registry, "paddock_audit_write_errors_total"), 3);
}

TEST_F(AuditLogTest, AnotherWriterStopsTheLogForGood) {
  auto log = open();
  stage->failures = 1;
  stage->failure_reason = "Conflict";
  auto r = log->append({sampleEntry(1)}, CancelToken());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "Conflict");
  auto again = log->append({sampleEntry(2)}, CancelToken());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().reason, "Conflict");
  EXPECT_EQ(stage->attempts, 1);
}

TEST_F(AuditLogTest, RefusesEntriesThatCarryASecretValue) {
  auto log = open();
  Entry secret{"paddock-operator", {"ns", "r", "u"}, Action::SecretMounted,
               {{"secret", "git"}, {"key", "token"}, {"data", "hunter2"}}};
  auto r = log->append({sampleEntry(1), secret}, CancelToken());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "InvalidArgument");
  EXPECT_EQ(stage->attempts, 0);
}

TEST_F(AuditLogTest, ARepairIsTheFirstRecordAfterOpening) {
  stage->repair = nlohmann::json{{"segment", "s"}, {"offset", 10}, {"bytes", 3}, {"reason", "torn"}};
  auto log = open();
  ASSERT_EQ(stage->writes.size(), 1u);
  EXPECT_EQ(stage->writes[0][0].entry.action, Action::StoreRepaired);
  EXPECT_EQ(stage->writes[0][0].entry.details["bytes"], 3);
  EXPECT_EQ(log->head().seq, 1u);
}

TEST_F(AuditLogTest, AppendersWaitWhileTheStoreIsDown) {
  auto log = open();
  {
    std::lock_guard l(stage->mu);
    stage->failures = 1000000;
  }
  auto waiting = std::async(std::launch::async, [&] { return log->append({sampleEntry(1)}, CancelToken()); });
  stage->awaitAttempts(3);
  EXPECT_EQ(waiting.wait_for(20ms), std::future_status::timeout) << "nothing is dropped while the store is down";
  {
    std::lock_guard l(stage->mu);
    stage->failures = 0;
  }
  EXPECT_TRUE(waiting.get().ok()) << "once the store is back the append completes";
  EXPECT_EQ(stage->writes.size(), 1u);
}

}  // namespace
}  // namespace paddock::audit

namespace paddock::audit {
namespace {

Entry admitted(const std::string& uid, const std::string& task = "fix the flaky test") {
  return Entry{"paddock-operator", RunRef{"team-a", "run-" + uid, uid}, Action::RunAdmitted, {{"task", task}}};
}

size_t countOf(const Backstage& stage, Action action) {
  size_t n = 0;
  for (const auto& w : stage.writes) {
    for (const auto& r : w) n += r.entry.action == action;
  }
  return n;
}

// A reconcile that crashed (or whose status write failed) after its append appends the same
// records again: a one-time record is in the chain once, in this process and after a reopen.
TEST_F(AuditLogTest, OneTimeRecordsAreAppendedOncePerChainAcrossReopens) {
  {
    auto log = open();
    auto first = log->append({admitted("u1"), sampleEntry(1)}, CancelToken());
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->duplicates, 0u);
    auto again = log->append({admitted("u1")}, CancelToken());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->duplicates, 1u);
    EXPECT_EQ(again->last_seq, 0u) << "nothing was appended";
  }
  auto log = open();  // a new leader over the same store
  auto after = log->append({admitted("u1"), sampleEntry(1), admitted("u2")}, CancelToken());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->duplicates, 2u);
  EXPECT_EQ(after->first_seq, 3u);
  EXPECT_EQ(after->last_seq, 3u) << "only u2's admission is new";
  EXPECT_EQ(countOf(*stage, Action::RunAdmitted), 2u);
  auto changed = log->append({admitted("u1", "another task")}, CancelToken());
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->duplicates, 0u) << "other details are another fact";
}

TEST_F(AuditLogTest, RecordsThatMayRecurAreNotDeduplicated) {
  auto log = open();
  Entry refused{"paddock-operator", RunRef{"team-a", "r", "u1"}, Action::RunRefused, {{"reason", "NoPolicy"}}};
  ASSERT_TRUE(log->append({refused}, CancelToken()).ok());
  auto again = log->append({refused}, CancelToken());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 0u) << "refused, admitted, refused again for the same reason is three facts";
  EXPECT_FALSE(onceKey("", "RunAdmitted", "a", {}).has_value()) << "store-level records have no run";
  EXPECT_FALSE(onceKey("u", "ChildRestored", "a", {}).has_value());
  EXPECT_NE(onceKey("u", "RunAdmitted", "a", {{"x", 1}}), onceKey("u", "RunAdmitted", "b", {{"x", 1}}));
}

TEST_F(AuditLogTest, ANewWriterSaysSoInTheChain) {
  ASSERT_TRUE(open()->append({sampleEntry(1)}, CancelToken()).ok());
  AuditLogOptions o = fast();
  o.writer_started = nlohmann::json{{"identity", "replica-b"}};
  auto log = open(o);
  ASSERT_EQ(stage->writes.size(), 2u);
  const Record& r = stage->writes[1][0];
  EXPECT_EQ(r.entry.action, Action::WriterStarted);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_EQ(r.entry.details, (nlohmann::json{{"identity", "replica-b"}, {"continuesFrom", 1}}));
  EXPECT_EQ(log->head().seq, 2u);
}

}  // namespace
}  // namespace paddock::audit
