#include "gateway/messages.h"

#include <gtest/gtest.h>

namespace paddock::gateway {
namespace {

using nlohmann::json;

Config config() {
  Config c;
  c.pinned_model = "claude-pinned";
  c.prices["claude-pinned"] = Price{3000, 15000, 300, 3750};
  c.prices["claude-other"] = Price{1, 1, 1, 1};
  c.max_request_bytes = 2000;
  return c;
}

TEST(Messages, RequestTable) {
  struct Case {
    const char* name;
    std::string body;
    int status;  // 0: accepted
    const char* says;
  };
  const std::vector<Case> cases = {
      {"valid", R"({"model":"claude-pinned","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})", 0, ""},
      {"not json", "{", 400, "not a JSON object"},
      {"not an object", "[1]", 400, "not a JSON object"},
      {"too large", std::string(2001, ' '), 413, "at most 2000"},
      {"no model", R"({"max_tokens":1,"messages":[{"role":"user","content":"x"}]})", 400, "model: field required"},
      {"other model", R"({"model":"claude-other","max_tokens":1,"messages":[{"role":"user","content":"x"}]})", 403,
       "may use only claude-pinned"},
      {"no max_tokens", R"({"model":"claude-pinned","messages":[{"role":"user","content":"x"}]})", 400, "max_tokens"},
      {"zero max_tokens", R"({"model":"claude-pinned","max_tokens":0,"messages":[{"role":"user","content":"x"}]})",
       400, "max_tokens"},
      {"no messages", R"({"model":"claude-pinned","max_tokens":5,"messages":[]})", 400, "messages"},
      {"message without role", R"({"model":"claude-pinned","max_tokens":5,"messages":[{"content":"x"}]})", 400,
       "messages.0.role"},
      {"stream not boolean",
       R"({"model":"claude-pinned","max_tokens":5,"stream":"yes","messages":[{"role":"user","content":"x"}]})", 400,
       "stream"},
  };
  for (const auto& c : cases) {
    auto r = parseMessagesRequest(c.body, config());
    if (c.status == 0) {
      EXPECT_TRUE(std::holds_alternative<MessagesRequest>(r)) << c.name;
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << c.name;
    const ApiError& e = std::get<ApiError>(r);
    EXPECT_EQ(e.status, c.status) << c.name;
    EXPECT_NE(e.message.find(c.says), std::string::npos) << c.name << ": " << e.message;
    json body = json::parse(errorBody(e));
    EXPECT_EQ(body["type"], "error");
    EXPECT_EQ(body["error"]["message"], e.message);
  }
}

TEST(Messages, UnpricedModelIsRefusedWithoutAPin) {
  Config c = config();
  c.pinned_model.clear();
  auto r = parseMessagesRequest(R"({"model":"claude-x","max_tokens":1,"messages":[{"role":"user","content":"x"}]})", c);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).type, "permission_error");
}

TEST(Messages, RewriteClampsAndAppendsTheInstructionToTheLastUserTurn) {
  json body = {{"model", "m"},
               {"max_tokens", 32000},
               {"thinking", {{"type", "enabled"}, {"budget_tokens", 16000}}},
               {"messages",
                {{{"role", "user"}, {"content", "task"}},
                 {{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "ok"}}})}},
                 {{"role", "user"},
                  {"content", json::array({{{"type", "tool_result"}, {"tool_use_id", "t1"}, {"content", "done"}}})}}}}};
  json out = json::parse(rewriteForUpstream(body, 5000, "CHECKPOINT"));
  EXPECT_EQ(out["max_tokens"], 5000);
  EXPECT_EQ(out["thinking"]["budget_tokens"], 4999);
  const json& last = out["messages"][2]["content"];
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0]["type"], "tool_result");
  EXPECT_EQ(last[1]["text"], "CHECKPOINT");
  EXPECT_EQ(out["messages"][0]["content"], "task");

  json small = json::parse(rewriteForUpstream(body, 800, ""));
  EXPECT_EQ(small["thinking"]["type"], "disabled");
  EXPECT_EQ(small["messages"][2]["content"].size(), 1u);

  json string_turn = {{"max_tokens", 10}, {"messages", {{{"role", "user"}, {"content", "task"}}}}};
  json s = json::parse(rewriteForUpstream(string_turn, 10, "CP"));
  EXPECT_EQ(s["messages"][0]["content"][0]["text"], "task");
  EXPECT_EQ(s["messages"][0]["content"][1]["text"], "CP");
}

TEST(Messages, InputBoundIsBytesPlusOverhead) {
  Config c;
  c.input_overhead_tokens = 100;
  EXPECT_EQ(inputBound("0123456789", c), 110);
}

TEST(Messages, CheckpointInstructionAsksToCommit) {
  std::string s = checkpointInstruction(63, 60);
  EXPECT_NE(s.find("63%"), std::string::npos);
  EXPECT_NE(s.find("git commit"), std::string::npos);
}

}  // namespace
}  // namespace paddock::gateway

namespace paddock::gateway {
namespace {

nlohmann::json toolResult(const std::string& text, bool error, bool blocks = false) {
  nlohmann::json content = blocks ? nlohmann::json::array({{{"type", "text"}, {"text", text}}}) : nlohmann::json(text);
  return {{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", content}, {"is_error", error}};
}

TEST(JsonNestingDepth, CountsBracketsOutsideStrings) {
  EXPECT_EQ(jsonNestingDepth(R"({"a":[1,{"b":[]}],"c":"[[[[{{{"})"), 4u);
  EXPECT_EQ(jsonNestingDepth(R"("\"[[")"), 0u);
  EXPECT_EQ(jsonNestingDepth(std::string(100000, '[')), 100000u);
  EXPECT_EQ(jsonNestingDepth("]]]}}"), 0u);
}

TEST(ToolRefusals, EachRefusedToolCallTheAgentReportsBackIsCountedByWhoRefusedIt) {
  nlohmann::json messages = nlohmann::json::array({
      {{"role", "assistant"}, {"content", {{{"type", "text"}, {"text", "Permission denied is what I expect"}}}}},
      {{"role", "user"},
       {"content",
        {toolResult("Claude requested permissions to use Bash, but you haven't granted it yet.", true),
         toolResult("Permission to use Bash with command curl -s http://x/ has been denied.", true),
         toolResult("EROFS: read-only file system, open '/workspace/.github/workflows/evil.yml'", true, true),
         toolResult("/bin/bash: line 1: /workspace/CODEOWNERS: Read-only file system", true),
         toolResult("bash: connect: Permission denied", true),
         toolResult("Permission denied", false),  // not an error: no refusal
         toolResult("make: *** [test] Error 2", true)}}},  // an error, no refusal
      {{"role", "user"}, {"content", "Permission denied"}},
  });
  EXPECT_EQ(toolRefusals(messages), (std::vector<std::string>{"tool", "tool", "sandbox", "sandbox", "sandbox"}));
  EXPECT_TRUE(toolRefusals(nlohmann::json::object()).empty());
  EXPECT_TRUE(toolRefusals(nlohmann::json::array({1, "x", {{"role", "user"}, {"content", {"x", 2}}}})).empty());
  // Blocks of the wrong types are no refusal, and nothing throws.
  EXPECT_TRUE(toolRefusals(nlohmann::json::array({{{"role", 5}, {"content", nlohmann::json::array()}},
                                                  {{"role", "user"}, {"content", {{{"type", 5}}, {{"type", "tool_result"}, {"is_error", true},
                                                                                                   {"content", {{{"type", 7}}}}}}}}}))
                  .empty());
}

}  // namespace
}  // namespace paddock::gateway
