// The MongoDB backend against a real MongoDB-protocol server (FerretDB on SQLite, loopback).
#include "operator/audit/mongo_store.h"

#include <gtest/gtest.h>

#include "e2e/audit/mongo_testing.h"
#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

using testing::appendSamples;
using testing::freshCollection;
using testing::mongoUri;
using testing::RawCollection;
using testing::sampleEntry;

struct MongoStoreTest : ::testing::Test {
  std::string uri = mongoUri();
  std::string collection = freshCollection();
  std::unique_ptr<Backend> store() { return std::make_unique<MongoStore>(uri, collection); }
  VerifyReport verified(uint64_t expect_seq = 0) {
    auto report = verifyStore(uri, StoreOptions{.collection = collection}, expect_seq);
    if (!report) throw std::runtime_error(report.error().describe());
    return *report;
  }
};

TEST_F(MongoStoreTest, WritesAChainThatVerifiesAndANewWriterContinuesIt) {
  appendSamples(store(), 5);
  EXPECT_EQ(verified().records, 5u);
  auto log = openAuditLog(store());
  ASSERT_TRUE(log.ok()) << log.error().describe();
  EXPECT_EQ((*log)->head().seq, 5u);
  auto r = (*log)->append({sampleEntry(6), sampleEntry(7)}, CancelToken());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->first_seq, 6u);
  log->reset();
  auto report = verified();
  EXPECT_EQ(report.failure, std::nullopt);
  EXPECT_EQ(report.records, 7u);
}

TEST_F(MongoStoreTest, RecordsRoundTripThroughBsonUnchanged) {
  auto log = openAuditLog(store());
  ASSERT_TRUE(log.ok());
  Entry e = sampleEntry(1);
  e.details = {{"title", "caf\u00e9 \u2615"}, {"usd", 0.1}, {"whole", 2.0}, {"big", int64_t{1} << 40}, {"neg", -3},
               {"nested", {{"b", {1, "x", nullptr, true}}, {"a", nlohmann::json::object()}}}};
  ASSERT_TRUE((*log)->append({e}, CancelToken()).ok());
  log->reset();
  auto report = verified();
  EXPECT_EQ(report.failure, std::nullopt) << report.failure->reason;
  EXPECT_EQ(report.records, 1u);
}

TEST_F(MongoStoreTest, AnotherWriterOnTheChainIsAConflict) {
  auto leader = openAuditLog(store());
  auto stale = openAuditLog(store());  // opened at the same head: a leader that lost its lease
  ASSERT_TRUE(leader.ok() && stale.ok());
  ASSERT_TRUE((*leader)->append({sampleEntry(1)}, CancelToken()).ok());
  auto r = (*stale)->append({sampleEntry(2)}, CancelToken());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "Conflict") << r.error().describe();
  EXPECT_EQ(verified().records, 1u);
}

TEST_F(MongoStoreTest, WritingABatchAgainAfterALostReplyIsSafe) {
  MongoStore s(uri, collection);
  ASSERT_TRUE(s.open().ok());
  std::vector<Record> batch;
  Head head;
  for (int i = 1; i <= 4; ++i) {
    batch.push_back(seal(sampleEntry(i), head, "2026-01-01T00:00:00.000000Z"));
    head = Head{batch.back().seq, batch.back().hash};
  }
  // The first attempt got two records in before the connection dropped.
  ASSERT_TRUE(s.write({batch[0], batch[1]}).ok());
  Status again = s.write(batch);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  ASSERT_TRUE(s.write(batch).ok()) << "all four already there";
  auto report = verified();
  EXPECT_EQ(report.failure, std::nullopt);
  EXPECT_EQ(report.records, 4u);
}

TEST_F(MongoStoreTest, AnUnreachableServerIsAnErrorNotAHang) {
  MongoStore s("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", collection);
  auto opened = s.open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().reason, "Unavailable");
}

// Tampering with the documents directly; verify must fail at exactly seq k.
class MongoTamper : public MongoStoreTest, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override { appendSamples(store(), 6); }
  uint64_t failsAt() {
    auto report = verified(/*expect_seq=*/6);
    return report.failure ? report.failure->seq : 0;
  }
  std::string seq(int64_t k) { return "{\"seq\": " + std::to_string(k) + "}"; }
};

TEST_P(MongoTamper, ChangingARecord) {
  int k = GetParam();
  RawCollection raw(uri, collection);
  ASSERT_TRUE(raw.update(seq(k), R"({"$set": {"details.name": "forged"}})"));
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

TEST_P(MongoTamper, DeletingARecord) {
  int k = GetParam();
  // The last record's deletion is invisible to a hash chain alone: a seq known from elsewhere finds it.
  RawCollection raw(uri, collection);
  ASSERT_TRUE(raw.remove(seq(k)));
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

TEST_P(MongoTamper, InsertingARecord) {
  // The unique index keeps a second seq k out; a record slipped in before k sorts at k - 0.5.
  int k = GetParam();
  Record forged = seal(Entry{"mallory", {"team-a", "run-1", "uid-1"}, Action::ApprovalCounted, {}},
                       Head{static_cast<uint64_t>(k - 1), "sha256:whatever"}, "2026-01-01T00:00:00.000000Z");
  auto doc = toJson(forged);
  doc["seq"] = k - 0.5;
  RawCollection raw(uri, collection);
  ASSERT_TRUE(raw.insert(doc.dump()));
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

TEST_P(MongoTamper, ReorderingRecords) {
  int k = GetParam();
  if (k == 6) GTEST_SKIP() << "no record after the last to swap with";
  RawCollection raw(uri, collection);
  ASSERT_TRUE(raw.update(seq(k), R"({"$set": {"seq": -1}})"));
  ASSERT_TRUE(raw.update(seq(k + 1), "{\"$set\": " + seq(k) + "}"));
  ASSERT_TRUE(raw.update(seq(-1), "{\"$set\": " + seq(k + 1) + "}"));
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

INSTANTIATE_TEST_SUITE_P(EverySeq, MongoTamper, ::testing::Range(1, 7));

}  // namespace
}  // namespace paddock::audit
