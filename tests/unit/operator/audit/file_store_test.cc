#include "operator/audit/file_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "operator/audit/segment.h"
#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

using testing::appendSamples;
using testing::sampleEntry;
using testing::TempDir;

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void writeLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : lines) out << l << '\n';
}

void appendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << bytes;
}

std::vector<std::string> segments(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (parseSegmentName(e.path().filename().string())) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

VerifyReport verified(const std::string& dir) {
  auto report = verifyStore(dir);
  if (!report) throw std::runtime_error(report.error().describe());
  return *report;
}

std::string first(const std::string& dir) { return dir + "/" + segmentName(1); }

TEST(FileStore, WritesAChainThatVerifies) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 1 << 20), 5);
  auto lines = readLines(first(tmp.path()));
  ASSERT_EQ(lines.size(), 6u) << "a header and five records";
  EXPECT_TRUE(parseSegmentHeader(nlohmann::json::parse(lines[0])));
  auto report = verified(tmp.path());
  EXPECT_EQ(report.failure, std::nullopt);
  EXPECT_EQ(report.records, 5u);
  EXPECT_EQ(report.head.seq, 5u);
}

TEST(FileStore, ANewWriterContinuesTheChainFromTheHead) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 1 << 20), 3);
  auto log = openAuditLog(std::make_unique<FileStore>(tmp.path(), 1 << 20));
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->head().seq, 3u);
  auto r = (*log)->append({sampleEntry(4), sampleEntry(5)}, CancelToken());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_seq, 4u);
  EXPECT_EQ(r->last_seq, 5u);
  log->reset();
  EXPECT_EQ(verified(tmp.path()).records, 5u);
}

TEST(FileStore, OneWriterPerDirectory) {
  TempDir tmp;
  FileStore a(tmp.path(), 1 << 20), b(tmp.path(), 1 << 20);
  ASSERT_TRUE(a.open().ok());
  auto second = b.open();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().reason, "Conflict");
}

TEST(FileStore, RotatesBySizeAndEachSegmentOpensWithThePreviousHead) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 1000), 20);
  auto files = segments(tmp.path());
  ASSERT_GE(files.size(), 3u);
  Head prev;
  for (const auto& f : files) {
    auto lines = readLines(f);
    auto header = parseSegmentHeader(nlohmann::json::parse(lines.at(0)));
    ASSERT_TRUE(header) << f;
    EXPECT_EQ(header->prev, prev) << f;
    EXPECT_EQ(std::filesystem::path(f).filename(), segmentName(header->first_seq));
    auto last = nlohmann::json::parse(lines.back());
    prev = Head{last["seq"].get<uint64_t>(), last["hash"].get<std::string>()};
  }
  EXPECT_EQ(verified(tmp.path()).records, 20u);

  // A whole segment gone: the next one's header no longer follows the chain.
  auto gone = parseSegmentHeader(nlohmann::json::parse(readLines(files[1]).at(0)));
  std::filesystem::remove(files[1]);
  auto report = verified(tmp.path());
  ASSERT_TRUE(report.failure);
  EXPECT_EQ(report.failure->seq, gone->first_seq);
}

// Tampering with the segment file directly; verify must fail at exactly seq k.
class FileTamper : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    appendSamples(std::make_unique<FileStore>(tmp_.path(), 1 << 20), 6);
    lines_ = readLines(first(tmp_.path()));  // lines_[k] is seq k
  }
  uint64_t failsAt() {
    writeLines(first(tmp_.path()), lines_);
    auto report = verifyStore(tmp_.path(), {}, /*expect_seq=*/6).value();
    if (!report.failure) return 0;
    return report.failure->seq;
  }
  TempDir tmp_;
  std::vector<std::string> lines_;
};

TEST_P(FileTamper, ChangingARecord) {
  int k = GetParam();
  auto r = nlohmann::json::parse(lines_[k]);
  r["details"]["name"] = "forged";
  lines_[k] = canonical(r);
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

TEST_P(FileTamper, DeletingARecord) {
  int k = GetParam();
  // The last record's deletion is invisible to a hash chain alone: a seq known from elsewhere finds it.
  lines_.erase(lines_.begin() + k);
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

TEST_P(FileTamper, InsertingARecord) {
  int k = GetParam();
  auto forged = nlohmann::json::parse(lines_[k]);
  forged["actor"] = "mallory";
  lines_.insert(lines_.begin() + k, canonical(forged));
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

TEST_P(FileTamper, ReorderingRecords) {
  int k = GetParam();
  if (k == 6) GTEST_SKIP() << "no record after the last to swap with";
  std::swap(lines_[k], lines_[k + 1]);
  EXPECT_EQ(failsAt(), static_cast<uint64_t>(k));
}

INSTANTIATE_TEST_SUITE_P(EverySeq, FileTamper, ::testing::Range(1, 7));

TEST(FileStoreRepair, ATornLastLineIsCutAndTheRepairRecorded) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 1 << 20), 4);
  std::string path = first(tmp.path());
  auto size = std::filesystem::file_size(path);
  std::string torn = R"({"action":"ChildCreated","actor":"paddock-op)";
  appendBytes(path, torn);

  auto before = verified(tmp.path());
  ASSERT_TRUE(before.failure) << "verify sees the torn tail before a writer repairs it";
  EXPECT_EQ(before.failure->seq, 5u);
  EXPECT_NE(before.failure->reason.find("torn"), std::string::npos) << before.failure->reason;

  auto log = openAuditLog(std::make_unique<FileStore>(tmp.path(), 1 << 20), AuditLogOptions{.actor = "paddock-test"});
  ASSERT_TRUE(log.ok()) << log.error().describe();
  EXPECT_EQ((*log)->head().seq, 5u) << "the repair is record 5";
  ASSERT_TRUE((*log)->append({sampleEntry(6)}, CancelToken()).ok());
  log->reset();

  auto lines = readLines(path);
  auto repair = nlohmann::json::parse(lines.at(5));
  EXPECT_EQ(repair["action"], "StoreRepaired");
  EXPECT_EQ(repair["actor"], "paddock-test");
  EXPECT_EQ(repair["details"]["bytes"], torn.size());
  EXPECT_EQ(repair["details"]["offset"], size);
  EXPECT_EQ(repair["details"]["segment"], segmentName(1));
  auto after = verified(tmp.path());
  EXPECT_EQ(after.failure, std::nullopt);
  EXPECT_EQ(after.records, 6u);
}

TEST(FileStoreRepair, GarbageAfterACrashIsCut) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 1 << 20), 2);
  appendBytes(first(tmp.path()), std::string("\0\0\0\0\0\0\n", 7));
  auto log = openAuditLog(std::make_unique<FileStore>(tmp.path(), 1 << 20));
  ASSERT_TRUE(log.ok());
  log->reset();
  auto lines = readLines(first(tmp.path()));
  EXPECT_EQ(nlohmann::json::parse(lines.back())["details"]["bytes"], 7);
  EXPECT_EQ(verified(tmp.path()).records, 3u);
}

TEST(FileStoreRepair, ASegmentThatLostItsHeaderGetsItBack) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 600), 6);
  auto files = segments(tmp.path());
  ASSERT_GE(files.size(), 2u);
  auto before = verified(tmp.path()).head;
  // A crash just after a new segment was created: write one so, empty.
  std::string next = tmp.path() + "/" + segmentName(before.seq + 1);
  std::ofstream(next).close();
  auto log = openAuditLog(std::make_unique<FileStore>(tmp.path(), 600));
  ASSERT_TRUE(log.ok()) << log.error().describe();
  EXPECT_EQ((*log)->head(), before);
  ASSERT_TRUE((*log)->append({sampleEntry(7)}, CancelToken()).ok());
  log->reset();
  EXPECT_EQ(verified(tmp.path()).records, 7u);
}

TEST(FileStoreRepair, DamageAboveTheLastLineIsLeftForAPerson) {
  TempDir tmp;
  appendSamples(std::make_unique<FileStore>(tmp.path(), 1 << 20), 3);
  auto lines = readLines(first(tmp.path()));
  lines[2] = "not json";
  lines[3] = "not json either";
  writeLines(first(tmp.path()), lines);
  auto log = openAuditLog(std::make_unique<FileStore>(tmp.path(), 1 << 20));
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.error().reason, "DataLoss");
}

}  // namespace
}  // namespace paddock::audit
