#include "gateway/sse.h"

#include <gtest/gtest.h>

namespace paddock::gateway {
namespace {

using nlohmann::json;

// A tool_use turn exactly as the Messages API streams it.
const char* kStream =
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"usage\":{\"input_tokens\":1200,"
    "\"cache_read_input_tokens\":300,\"cache_creation_input_tokens\":40,\"output_tokens\":1}}}\r\n\r\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Writing \"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"it.\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu_1\","
    "\"name\":\"Write\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"file_path\\\": \\\"a.txt\\\",\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\" \\\"content\\\": \\\"x\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":87}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

TEST(Sse, ParsesEventsSplitAnywhere) {
  std::string all = kStream;
  for (size_t chunk : {1u, 7u, 64u, 100000u}) {
    SseParser p;
    std::vector<SseEvent> events;
    for (size_t i = 0; i < all.size(); i += chunk) {
      for (auto& e : p.feed(std::string_view(all).substr(i, chunk))) events.push_back(std::move(e));
    }
    ASSERT_EQ(events.size(), 12u) << chunk;
    EXPECT_EQ(events[0].event, "message_start");
    EXPECT_EQ(events[2].event, "ping");
    EXPECT_EQ(events.back().event, "message_stop");
  }
}

TEST(Sse, MultiLineData) {
  SseParser p;
  auto e = p.feed("data: a\ndata: b\n\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].data, "a\nb");
}

TEST(Sse, AccumulatesTheResponseAndItsUsage) {
  SseParser p;
  ResponseAccumulator acc;
  for (const auto& e : p.feed(kStream)) acc.onEvent(e);
  EXPECT_TRUE(acc.complete());
  EXPECT_EQ(acc.stopReason(), "tool_use");
  EXPECT_EQ(acc.usage(), (Usage{1200, 87, 300, 40}));
  json c = acc.content();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0]["text"], "Writing it.");
  EXPECT_EQ(c[1]["name"], "Write");
  EXPECT_EQ(c[1]["input"]["file_path"], "a.txt");
  EXPECT_EQ(c[1]["input"]["content"], "x");
}

TEST(Sse, CutStreamKeepsWhatWasReported) {
  SseParser p;
  ResponseAccumulator acc;
  std::string all = kStream;
  for (const auto& e : p.feed(all.substr(0, all.find("event: content_block_stop")))) acc.onEvent(e);
  EXPECT_FALSE(acc.complete());
  EXPECT_TRUE(acc.sawUsage());
  EXPECT_EQ(acc.usage().input, 1200);
}

TEST(Sse, LaterMessageDeltaUsageIsCumulative) {
  ResponseAccumulator acc;
  acc.onEvent({"message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}})"});
  acc.onEvent({"message_delta", R"({"type":"message_delta","delta":{},"usage":{"input_tokens":12,"output_tokens":30}})"});
  EXPECT_EQ(acc.usage(), (Usage{12, 30, 0, 0}));
}

TEST(Sse, ErrorEvent) {
  ResponseAccumulator acc;
  acc.onEvent({"error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"});
  EXPECT_EQ(acc.errorType(), "overloaded_error");
  EXPECT_FALSE(acc.complete());
}

TEST(Sse, WholeMessage) {
  ResponseAccumulator acc;
  acc.onMessage(json::parse(R"({"type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
                                "usage":{"input_tokens":5,"output_tokens":2}})"));
  EXPECT_TRUE(acc.complete());
  EXPECT_EQ(acc.usage(), (Usage{5, 2, 0, 0}));
  EXPECT_EQ(acc.content()[0]["text"], "hi");
}

}  // namespace
}  // namespace paddock::gateway
