#include "operator/audit/record.h"

#include <gtest/gtest.h>

#include "operator/audit/segment.h"
#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

using testing::sampleEntry;

TEST(AuditRecord, CanonicalEncodingSortsKeysAndEscapesNonAscii) {
  auto j = nlohmann::json::parse(R"({"b": 1, "a": {"z": "é", "y": [2, 1]}, "c": "x\ny"})");
  EXPECT_EQ(canonical(j), R"({"a":{"y":[2,1],"z":"\u00e9"},"b":1,"c":"x\ny"})");
  EXPECT_EQ(canonical(nlohmann::json::parse(canonical(j))), canonical(j)) << "parsing and encoding again is stable";
}

TEST(AuditRecord, HashIsSha256OfPrevThenCanonicalRecord) {
  // sha256("abc"), split between prev and the record: the hash covers their concatenation.
  EXPECT_EQ(chainHash("a", "bc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(chainHash("ab", "c"), chainHash("a", "bc"));
}

TEST(AuditRecord, SealLinksEachRecordToTheOneBefore) {
  Record first = seal(sampleEntry(1), Head{}, "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(first.seq, 1u);
  EXPECT_EQ(first.prev, kGenesisHash);
  Record second = seal(sampleEntry(2), Head{first.seq, first.hash}, "2026-01-01T00:00:01.000000Z");
  EXPECT_EQ(second.seq, 2u);
  EXPECT_EQ(second.prev, first.hash);

  auto body = toJson(second);
  EXPECT_EQ(body["hash"], second.hash);
  body.erase("hash");
  EXPECT_EQ(chainHash(second.prev, canonical(body)), second.hash);
  EXPECT_EQ(body["run"], (nlohmann::json{{"namespace", "team-a"}, {"name", "run-2"}, {"uid", "uid-2"}}));
  EXPECT_EQ(body["action"], "ChildCreated");
  EXPECT_EQ(encodeLine(second), canonical(toJson(second)) + "\n");
}

TEST(AuditRecord, ActionNamesRoundTrip) {
  for (int a = 0; a <= static_cast<int>(Action::WriterStarted); ++a) {
    auto action = static_cast<Action>(a);
    EXPECT_EQ(parseAction(actionName(action)), action) << actionName(action);
  }
  EXPECT_EQ(parseAction("Deleted"), std::nullopt);
}

TEST(AuditRecord, SecretMountedCarriesNamesNeverValues) {
  Entry ok{"paddock-operator", {"ns", "r", "u"}, Action::SecretMounted, {{"secret", "git"}, {"key", "token"}, {"env", "GIT_TOKEN"}}};
  EXPECT_TRUE(validateEntry(ok).ok());
  Entry value = ok;
  value.details["value"] = "hunter2";
  EXPECT_EQ(validateEntry(value).error().reason, "InvalidArgument");
  Entry nested = ok;
  nested.details["key"] = nlohmann::json{{"token", "hunter2"}};
  EXPECT_EQ(validateEntry(nested).error().reason, "InvalidArgument");
  Entry unnamed = ok;
  unnamed.details.erase("key");
  EXPECT_FALSE(validateEntry(unnamed).ok());
  EXPECT_FALSE(validateEntry(Entry{"a", {}, Action::RunAdmitted, nlohmann::json::array()}).ok());
}

// A chain of `n` sealed records as stored JSON.
std::vector<nlohmann::json> chain(int n) {
  std::vector<nlohmann::json> out;
  Head head;
  for (int i = 1; i <= n; ++i) {
    Record r = seal(sampleEntry(i), head, "2026-01-01T00:00:00.000000Z");
    head = Head{r.seq, r.hash};
    out.push_back(toJson(r));
  }
  return out;
}

std::optional<Failure> verify(const std::vector<nlohmann::json>& records) {
  ChainVerifier v;
  for (size_t i = 0; i < records.size(); ++i) {
    if (auto f = v.record(records[i], "line " + std::to_string(i + 1))) return f;
  }
  return std::nullopt;
}

TEST(ChainVerifier, AcceptsAnIntactChain) {
  ChainVerifier v;
  auto records = chain(5);
  for (const auto& r : records) EXPECT_EQ(v.record(r, "x"), std::nullopt);
  EXPECT_EQ(v.records(), 5u);
  EXPECT_EQ(v.head(), (Head{5, records.back()["hash"].get<std::string>()}));
}

TEST(ChainVerifier, FailsAtExactlyTheSeqThatWasTamperedWith) {
  for (int k = 1; k <= 5; ++k) {
    SCOPED_TRACE("k = " + std::to_string(k));
    auto changed = chain(5);
    changed[k - 1]["details"]["name"] = "forged";
    auto f = verify(changed);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->seq, static_cast<uint64_t>(k));
    EXPECT_NE(f->reason.find("hash does not match"), std::string::npos) << f->reason;

    auto deleted = chain(5);
    deleted.erase(deleted.begin() + (k - 1));
    if (k < 5) {  // the last record's deletion leaves a shorter, valid chain (see verify's caveat)
      f = verify(deleted);
      ASSERT_TRUE(f);
      EXPECT_EQ(f->seq, static_cast<uint64_t>(k));
      EXPECT_NE(f->reason.find("records missing"), std::string::npos) << f->reason;
    }

    auto inserted = chain(5);
    auto forged = inserted[k - 1];
    forged["actor"] = "mallory";
    inserted.insert(inserted.begin() + (k - 1), forged);
    f = verify(inserted);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->seq, static_cast<uint64_t>(k));

    if (k < 5) {
      auto reordered = chain(5);
      std::swap(reordered[k - 1], reordered[k]);
      f = verify(reordered);
      ASSERT_TRUE(f);
      EXPECT_EQ(f->seq, static_cast<uint64_t>(k));
    }
  }
}

TEST(ChainVerifier, ASeqKnownFromElsewhereCatchesRecordsCutFromTheEnd) {
  auto records = chain(5);
  records.pop_back();
  ChainVerifier v;
  for (const auto& r : records) ASSERT_EQ(v.record(r, "x"), std::nullopt);
  EXPECT_EQ(v.reaches(4), std::nullopt);
  auto f = v.reaches(5);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->seq, 5u);
  EXPECT_NE(f->reason.find("missing from the end"), std::string::npos);
}

TEST(ChainVerifier, ARecordWithARecomputedHashBreaksTheNextLink) {
  auto records = chain(4);
  records[1]["details"]["name"] = "forged";
  records[1].erase("hash");
  records[1]["hash"] = chainHash(records[1]["prev"].get<std::string>(), canonical(records[1]));
  auto f = verify(records);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->seq, 3u);
  EXPECT_NE(f->reason.find("prev"), std::string::npos) << f->reason;
}

TEST(ChainVerifier, NamesMalformedRecords) {
  auto records = chain(3);
  records[1]["seq"] = "2";
  auto f = verify(records);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->seq, 2u);
  EXPECT_EQ(f->where, "line 2");
  EXPECT_NE(f->reason.find("malformed"), std::string::npos);
  records = chain(3);
  records[2]["action"] = "Nothing";
  EXPECT_EQ(verify(records)->seq, 3u);
}

TEST(ChainVerifier, ChecksSegmentHeadersAgainstTheChain) {
  auto records = chain(4);
  ChainVerifier v;
  EXPECT_EQ(v.segmentHeader(nlohmann::json::parse(segmentHeaderLine(Head{})), 1, "s1:1"), std::nullopt);
  EXPECT_EQ(v.record(records[0], "s1:2"), std::nullopt);
  EXPECT_EQ(v.record(records[1], "s1:3"), std::nullopt);
  Head two{2, records[1]["hash"].get<std::string>()};
  EXPECT_EQ(v.segmentHeader(nlohmann::json::parse(segmentHeaderLine(two)), 3, "s3:1"), std::nullopt);

  ChainVerifier skipped;
  skipped.record(records[0], "s1:2");
  auto f = skipped.segmentHeader(nlohmann::json::parse(segmentHeaderLine(two)), 3, "s3:1");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->seq, 2u);
  EXPECT_NE(f->reason.find("records missing"), std::string::npos) << f->reason;

  ChainVerifier misnamed;
  f = misnamed.segmentHeader(nlohmann::json::parse(segmentHeaderLine(Head{})), 7, "s7:1");
  ASSERT_TRUE(f);
  EXPECT_NE(f->reason.find("name"), std::string::npos);

  ChainVerifier headless;
  EXPECT_TRUE(headless.segmentHeader(records[0], 1, "s1:1"));
}

}  // namespace
}  // namespace paddock::audit
