#include "operator/audit/segment.h"

#include <gtest/gtest.h>

#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

TEST(SegmentName, IsZeroPaddedSoNamesSortBySeq) {
  EXPECT_EQ(segmentName(1), "segment-00000000000000000001.jsonl");
  EXPECT_EQ(segmentName(18446744073709551615ull), "segment-18446744073709551615.jsonl");
  EXPECT_EQ(parseSegmentName("segment-00000000000000001234.jsonl"), 1234u);
  EXPECT_EQ(parseSegmentName("segment-1234.jsonl"), std::nullopt);
  EXPECT_EQ(parseSegmentName("segment-0000000000000000123x.jsonl"), std::nullopt);
  EXPECT_EQ(parseSegmentName("lock"), std::nullopt);
}

TEST(SegmentHeader, CarriesThePreviousSegmentsHead) {
  std::string line = segmentHeaderLine(Head{41, "sha256:abc"});
  EXPECT_EQ(line.back(), '\n');
  auto h = parseSegmentHeader(nlohmann::json::parse(line));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->first_seq, 42u);
  EXPECT_EQ(h->prev, (Head{41, "sha256:abc"}));
  EXPECT_EQ(parseSegmentHeader(nlohmann::json{{"seq", 1}}), std::nullopt);
}

// A segment's bytes: its header and `n` records; sets `head` to the last.
std::string segment(int n, Head& head) {
  std::string out = segmentHeaderLine(head);
  for (int i = 1; i <= n; ++i) {
    Record r = seal(testing::sampleEntry(i), head, "t");
    head = Head{r.seq, r.hash};
    out += encodeLine(r);
  }
  return out;
}

TEST(ScanTail, AWholeSegmentHasNothingTorn) {
  Head head;
  std::string s = segment(3, head);
  Tail t = scanTail(s);
  EXPECT_EQ(t.valid_bytes, s.size());
  EXPECT_EQ(t.torn_bytes, 0u);
  EXPECT_EQ(t.torn_reason, "");
  EXPECT_EQ(t.head, head);
}

TEST(ScanTail, ALineWithoutItsNewlineIsTorn) {
  Head head;
  std::string whole = segment(3, head);
  Head before = head;
  std::string next = encodeLine(seal(testing::sampleEntry(4), head, "t"));
  for (size_t cut : {size_t{1}, next.size() / 2, next.size() - 1}) {
    Tail t = scanTail(whole + next.substr(0, cut));
    EXPECT_EQ(t.valid_bytes, whole.size());
    EXPECT_EQ(t.torn_bytes, cut);
    EXPECT_NE(t.torn_reason.find("no newline"), std::string::npos);
    EXPECT_EQ(t.head, before);
  }
}

TEST(ScanTail, GarbageOnTheLastLineIsTorn) {
  Head head;
  std::string whole = segment(2, head);
  std::string garbage("\0\0\0\0\n", 5);
  Tail t = scanTail(whole + garbage);
  EXPECT_EQ(t.valid_bytes, whole.size());
  EXPECT_EQ(t.torn_bytes, garbage.size());
  EXPECT_NE(t.torn_reason.find("not a JSON record"), std::string::npos);
  EXPECT_EQ(t.head, head);
}

TEST(ScanTail, ALoneHeaderGivesThePreviousHead) {
  Head prev{9, "sha256:nine"};
  std::string s = segmentHeaderLine(prev);
  Tail t = scanTail(s + "{\"seq\":10,");
  EXPECT_EQ(t.valid_bytes, s.size());
  EXPECT_EQ(t.head, prev);
}

TEST(ScanTail, AnEmptyOrHeaderlessSegmentHasNoHead) {
  Tail empty = scanTail("");
  EXPECT_EQ(empty.valid_bytes, 0u);
  EXPECT_FALSE(empty.head);
  Tail partial_header = scanTail("{\"first_seq\":1,\"hea");
  EXPECT_EQ(partial_header.valid_bytes, 0u);
  EXPECT_EQ(partial_header.torn_bytes, 19u);
  EXPECT_FALSE(partial_header.head);
}

TEST(ScanTail, DamageAboveTheLastLineIsNotATornTail) {
  Head head;
  std::string s = segment(2, head);
  Tail t = scanTail(s + "not json\nnot json either\n");
  EXPECT_FALSE(t.head);
  EXPECT_GT(t.valid_bytes, 0u) << "only one line is cut; the store needs a person";
}

}  // namespace
}  // namespace paddock::audit
