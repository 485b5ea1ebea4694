// MCP through the gateway, as its pure functions see it (gateway/mcp.h): what passes to a server,
// what the gateway answers itself, what the agent is shown, and what the audit trail keeps.
#include "gateway/mcp.h"

#include <gtest/gtest.h>

#include "gateway/config.h"

namespace paddock::gateway {
namespace {

using nlohmann::json;

McpServer everything() {
  McpServer s;
  s.name = "everything";
  s.url = "http://198.18.0.7:3001/mcp";
  s.tools = {"echo", "add"};
  return s;
}

McpMessage message(const json& body) {
  auto m = parseMcpMessage(body.dump());
  EXPECT_TRUE(std::holds_alternative<McpMessage>(m)) << body.dump();
  return std::get<McpMessage>(m);
}

json call(const std::string& tool, json arguments) {
  return {{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"}, {"params", {{"name", tool}, {"arguments", arguments}}}};
}

const json kEchoSchema = json::parse(R"({"type":"object","properties":{"message":{"type":"string","description":"Message to echo"}},
  "required":["message"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"})");
const json kAddSchema = json::parse(R"({"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]})");

// The server's tools as a tools/list answer taught them (echo, add, and printEnv off the list).
void learnEverything(McpCatalog& c) {
  c.learn(everything(), json::array({{{"name", "echo"}, {"inputSchema", kEchoSchema}}, {{"name", "add"}, {"inputSchema", kAddSchema}},
                                     {{"name", "printEnv"}, {"inputSchema", {{"type", "object"}}}}}));
}

TEST(McpMessages, OneJsonRpcMessagePerPostOrWhatIsWrong) {
  struct Case {
    std::string body, why;
  };
  for (const auto& c : std::vector<Case>{
           {"{", "not JSON"},
           {R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", "batch"},
           {R"({"id":1,"method":"ping"})", "JSON-RPC 2.0"},
           {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})", "\"id\""},
           {R"({"jsonrpc":"2.0","id":1,"method":3})", "\"method\""},
           {R"({"jsonrpc":"2.0","id":1})", "needs \"method\""},
           {R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]})", "\"params\""},
       }) {
    auto m = parseMcpMessage(c.body);
    ASSERT_TRUE(std::holds_alternative<std::string>(m)) << c.body;
    EXPECT_NE(std::get<std::string>(m).find(c.why), std::string::npos) << std::get<std::string>(m);
  }
  EXPECT_TRUE(message({{"jsonrpc", "2.0"}, {"id", "a"}, {"method", "ping"}}).request());
  // Hostile sizes and shapes are refused before anything else looks at them.
  std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":)" +
                     std::string(300, '[') + std::string(300, ']') + "}}}";
  auto refused = parseMcpMessage(deep);
  ASSERT_TRUE(std::holds_alternative<std::string>(refused));
  EXPECT_NE(std::get<std::string>(refused).find("deeper than 256"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<std::string>(parseMcpMessage(R"({"jsonrpc":"2.0","id":1,"method":"ping","x":")" +
                                                                  std::string(kMaxMcpMessageBytes, 'x') + "\"}")));
  auto both = parseMcpMessage(R"({"jsonrpc":"2.0","id":0,"method":"ping","result":{}})");
  ASSERT_TRUE(std::holds_alternative<std::string>(both));
  EXPECT_NE(std::get<std::string>(both).find("not both"), std::string::npos);
  // Only the JSON-RPC fields are kept for the server.
  EXPECT_EQ(message({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}, {"extra", {{"x", 1}}}}).body,
            json({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}));
  EXPECT_FALSE(message({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}).request());
}

TEST(McpCheck, OnlyATooledClientsMethodsPassAndTheServerIsOfferedNoCapability) {
  McpCatalog known;
  learnEverything(known);
  json init = {{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
               {"params", {{"protocolVersion", "2025-06-18"}, {"capabilities", {{"roots", {{"listChanged", true}}}, {"sampling", json::object()},
                                                                               {"elicitation", json::object()}}},
                           {"clientInfo", {{"name", "claude-code"}, {"version", "2"}}}}}};
  McpCheck c = checkMcpMessage(everything(), message(init), known);
  EXPECT_EQ(c.action, McpCheck::Action::Forward);
  EXPECT_EQ(c.body["params"]["capabilities"], json::object()) << "no sampling, elicitation or roots for the server";
  EXPECT_EQ(c.body["params"]["clientInfo"]["name"], "claude-code");
  for (const char* method : {"ping", "tools/list"}) {
    EXPECT_EQ(checkMcpMessage(everything(), message({{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}}), known).action,
              McpCheck::Action::Forward) << method;
  }
  EXPECT_EQ(checkMcpMessage(everything(), message({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}), known).action,
            McpCheck::Action::Forward);
  for (const char* method : {"resources/list", "resources/read", "prompts/get", "completion/complete", "logging/setLevel"}) {
    McpCheck r = checkMcpMessage(everything(), message({{"jsonrpc", "2.0"}, {"id", 2}, {"method", method}}), known);
    EXPECT_EQ(r.action, McpCheck::Action::Answer) << method;
    EXPECT_EQ(r.reason, "method");
    EXPECT_EQ(r.reply["error"]["code"], -32601);
    EXPECT_EQ(r.reply["id"], 2);
    EXPECT_NE(r.reply["error"]["message"].get<std::string>().find(method), std::string::npos);
  }
  // A newer protocol's probe is answered as an older server answers it, and is no refusal.
  McpCheck discover = checkMcpMessage(everything(), message({{"jsonrpc", "2.0"}, {"id", "p"}, {"method", "server/discover"}}), known);
  EXPECT_EQ(discover.action, McpCheck::Action::Answer);
  EXPECT_EQ(discover.status, 400);
  EXPECT_EQ(discover.reason, "");
  // A response to a server's request: nothing of the kind was offered, so it goes nowhere.
  McpCheck answer = checkMcpMessage(everything(), message({{"jsonrpc", "2.0"}, {"id", 9}, {"result", json::object()}}), known);
  EXPECT_EQ(answer.action, McpCheck::Action::Answer);
  EXPECT_TRUE(answer.reply.is_null());
}

TEST(McpCheck, ACallOfAToolOffTheListIsRefusedAsAToolResultTheModelReads) {
  McpCatalog known;
  learnEverything(known);
  McpCheck c = checkMcpMessage(everything(), message(call("printEnv", json::object())), known);
  EXPECT_EQ(c.action, McpCheck::Action::Answer);
  EXPECT_EQ(c.reason, "tool");
  EXPECT_EQ(c.tool, "printEnv");
  EXPECT_EQ(c.reply["id"], 7);
  EXPECT_EQ(c.reply["result"]["isError"], true);
  std::string text = c.reply["result"]["content"][0]["text"];
  EXPECT_NE(text.find("printEnv"), std::string::npos) << text;
  EXPECT_NE(text.find("allowed: echo, add"), std::string::npos) << text;
  EXPECT_EQ(c.reply["result"]["_meta"]["dev.paddock/refusal"]["reason"], "tool");
}

TEST(McpCheck, ArgumentsAreCheckedAgainstTheToolsSchemaBeforeTheServerSeesThem) {
  McpCatalog known;
  learnEverything(known);
  McpCheck ok = checkMcpMessage(everything(), message(call("echo", {{"message", "hi"}})), known);
  EXPECT_EQ(ok.action, McpCheck::Action::Forward);
  EXPECT_EQ(ok.body["params"]["arguments"]["message"], "hi");
  for (const json& bad : {json{{"message", 42}}, json::object(), json{{"message", "hi"}, {"extra", true}}}) {
    McpCheck c = checkMcpMessage(everything(), message(call("echo", bad)), known);
    EXPECT_EQ(c.action, McpCheck::Action::Answer) << bad.dump();
    EXPECT_EQ(c.reason, "arguments");
    ASSERT_FALSE(c.violations.empty());
    EXPECT_EQ(c.reply["result"]["isError"], true);
    json meta = c.reply["result"]["_meta"]["dev.paddock/refusal"];
    EXPECT_EQ(meta["violations"].size(), c.violations.size());
    std::string text = c.reply["result"]["content"][0]["text"];
    EXPECT_NE(text.find(c.violations[0].message), std::string::npos) << text;
  }
  McpCheck not_object = checkMcpMessage(everything(), message(call("add", json::array({1, 2}))), known);
  EXPECT_EQ(not_object.reason, "arguments");
}

TEST(McpCheck, AnUnknownSchemaIsFetchedOnceAndAToolTheServerDoesNotListIsRefused) {
  McpCatalog empty;
  EXPECT_EQ(checkMcpMessage(everything(), message(call("echo", {{"message", "hi"}})), empty).action, McpCheck::Action::NeedSchema);
  McpCheck c = checkMcpMessage(everything(), message(call("echo", {{"message", "hi"}})), empty, true);
  EXPECT_EQ(c.action, McpCheck::Action::Answer);
  EXPECT_EQ(c.reason, "tool");
  EXPECT_NE(c.reply["result"]["content"][0]["text"].get<std::string>().find("does not list"), std::string::npos);
}

TEST(McpCheck, ASchemaTheGatewayCannotCheckRefusesTheToolRatherThanPassUncheckedArguments) {
  McpCatalog c;
  c.learn(everything(), json::array({{{"name", "echo"}, {"inputSchema", {{"$ref", "https://example.test/remote.json"}}}}}));
  McpCheck r = checkMcpMessage(everything(), message(call("echo", {{"message", "hi"}})), c);
  EXPECT_EQ(r.action, McpCheck::Action::Answer);
  EXPECT_EQ(r.reason, "schema");
}

TEST(McpFilter, TheAgentSeesOnlyTheToolsCapabilityAndTheAllowedTools) {
  McpServer s = everything();
  McpMessage init = message({{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"}, {"params", json::object()}});
  json answer = {{"jsonrpc", "2.0"}, {"id", 0},
                 {"result", {{"protocolVersion", "2025-06-18"},
                             {"capabilities", {{"tools", {{"listChanged", true}}}, {"resources", {{"subscribe", true}}},
                                               {"prompts", json::object()}, {"completions", json::object()}, {"logging", json::object()}}},
                             {"serverInfo", {{"name", "everything"}}}}}};
  auto kept = filterServerMessage(s, init, answer, nullptr);
  ASSERT_TRUE(kept);
  EXPECT_EQ((*kept)["result"]["capabilities"], json({{"tools", {{"listChanged", true}}}}));
  EXPECT_EQ((*kept)["result"]["serverInfo"]["name"], "everything");

  McpMessage list = message({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
  json tools = {{"jsonrpc", "2.0"}, {"id", 1},
                {"result", {{"tools", json::array({{{"name", "echo"}, {"inputSchema", kEchoSchema}},
                                                   {{"name", "printEnv"}, {"inputSchema", json::object()}},
                                                   {{"name", "add"}, {"inputSchema", kAddSchema}},
                                                   "garbage"})}}}};
  json learned;
  kept = filterServerMessage(s, list, tools, &learned);
  ASSERT_TRUE(kept);
  ASSERT_EQ((*kept)["result"]["tools"].size(), 2u);
  EXPECT_EQ((*kept)["result"]["tools"][0]["name"], "echo");
  EXPECT_EQ((*kept)["result"]["tools"][1]["name"], "add");
  EXPECT_EQ(learned, (*kept)["result"]["tools"]);

  // An answer to another request is not passed on (nor learned from).
  json other = tools;
  other["id"] = 99;
  json nothing;
  EXPECT_FALSE(filterServerMessage(s, list, other, &nothing));
  EXPECT_TRUE(nothing.is_null());
  // The server's own requests are dropped; its notifications pass.
  EXPECT_FALSE(filterServerMessage(s, list, {{"jsonrpc", "2.0"}, {"id", 5}, {"method", "sampling/createMessage"}}, nullptr));
  EXPECT_FALSE(filterServerMessage(s, list, {{"jsonrpc", "2.0"}, {"id", 6}, {"method", "roots/list"}}, nullptr));
  json progress = {{"jsonrpc", "2.0"}, {"method", "notifications/progress"}, {"params", {{"progress", 1}}}};
  EXPECT_EQ(filterServerMessage(s, list, progress, nullptr), progress);
}

TEST(McpCatalog, LearnsSchemasByServerAndTool) {
  McpCatalog c;
  learnEverything(c);
  EXPECT_EQ(c.schema(everything(), "echo"), kEchoSchema);
  EXPECT_FALSE(c.schema(everything(), "nope"));
  McpServer moved = everything();
  moved.url = "http://198.18.0.8:3001/mcp";
  EXPECT_FALSE(c.schema(moved, "echo")) << "the same name at another URL is another server";
  c.learn(everything(), "not a list");
  EXPECT_EQ(c.schema(everything(), "add"), kAddSchema);
}

TEST(McpRecord, EachCallIsRecordedWithItsVerdictAndNoSecret) {
  ToolCallFacts f;
  f.ns = "payments";
  f.name = "fix";
  f.server = "everything";
  f.tool = "echo";
  f.arguments = {{"message", "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and the-model-key-value"}};
  f.verdict = "forwarded";
  f.status = 200;
  f.result_sha256 = std::string(64, 'c');
  f.duration_ms = 12;
  TranscriptRecord r = buildToolCallRecord(f, {"the-model-key-value"}, 4096);
  EXPECT_EQ(r.entry.action, audit::Action::ToolCall);
  EXPECT_EQ(r.entry.run.ns, "payments");
  const json& d = r.entry.details;
  EXPECT_EQ(d["server"], "everything");
  EXPECT_EQ(d["tool"], "echo");
  EXPECT_EQ(d["verdict"], "forwarded");
  EXPECT_EQ(d["resultSHA256"], std::string(64, 'c'));
  EXPECT_EQ(d["durationMs"], 12);
  std::string text = d.dump();
  EXPECT_EQ(text.find("ghp_abc"), std::string::npos) << text;
  EXPECT_EQ(text.find("the-model-key-value"), std::string::npos) << text;

  f.verdict = "refused";
  f.reason = "arguments";
  f.violations = {{"/message", "must be a string, got number"}};
  f.arguments = {{"message", std::string(5000, 'x')}};
  r = buildToolCallRecord(f, {}, 4096);
  EXPECT_EQ(r.entry.details["reason"], "arguments");
  EXPECT_EQ(r.entry.details["violations"][0]["path"], "/message");
  EXPECT_FALSE(r.entry.details.contains("resultSHA256"));
  ASSERT_EQ(r.blobs.size(), 1u) << "long arguments go to a blob";
  EXPECT_TRUE(r.entry.details["arguments"].contains("blob")) << r.entry.details["arguments"].dump();
}

TEST(McpConfig, ServersAreParsedAndABadOneNamesTheField) {
  const std::string base = "apiKeyFile: /k\nprices:\n  m: {input: \"1\", output: \"1\", cacheRead: \"1\", cacheWrite: \"1\"}\n";
  auto c = parseConfig(base + "mcpServers:\n  - {name: everything, url: \"https://mcp.example.test/mcp?x=1\", tools: [echo], "
                              "credentialFile: /var/run/paddock/mcp/everything/credential, credentialHeader: X-Api-Key}\n");
  ASSERT_TRUE(c) << c.error().describe();
  ASSERT_EQ(c->mcp_servers.size(), 1u);
  EXPECT_EQ(c->mcp_servers[0].credential_header, "X-Api-Key");
  auto url = parseHttpUrl(c->mcp_servers[0].url);
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "mcp.example.test");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/mcp?x=1");
  struct Case {
    std::string yaml, field;
  };
  for (const auto& k : std::vector<Case>{
           {"mcpServers: {a: b}", "mcpServers:"},
           {"mcpServers: [{name: Bad_Name, url: \"http://h/mcp\", tools: [a]}]", "mcpServers[0].name"},
           {"mcpServers: [{name: a, url: \"ftp://h/mcp\", tools: [a]}]", "mcpServers[0].url"},
           {"mcpServers: [{name: a, url: \"http://user@h/mcp\", tools: [a]}]", "mcpServers[0].url"},
           {"mcpServers: [{name: a, url: \"http://h/mcp\", tools: []}]", "mcpServers[0].tools"},
           {"mcpServers: [{name: a, url: \"http://h/mcp\", tools: [a]}, {name: a, url: \"http://h/mcp\", tools: [a]}]", "mcpServers[1].name"},
           {"mcpServers: [{name: a, url: \"http://h/mcp\", tools: [a], credentialHeader: \"X: y\"}]", "mcpServers[0].credentialHeader"},
       }) {
    auto bad = parseConfig(base + k.yaml + "\n");
    ASSERT_FALSE(bad) << k.yaml;
    EXPECT_NE(bad.error().message.find(k.field), std::string::npos) << bad.error().message;
  }
}

}  // namespace
}  // namespace paddock::gateway
