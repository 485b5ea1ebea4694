// MCP through the gateway, as pure functions (docs/gateway.md, "MCP servers"). The policy names
// remote MCP servers (streamable HTTP), each with the tools a run may call and the Secret that
// holds the server's scoped credential. An agent speaks to `/mcp/<server>` on the gateway with its
// run's credential; the gateway
// - passes on only the methods a tool client needs (initialize, ping, tools/list, tools/call and
//   notifications), and answers any other (resources, prompts, completion, logging) with a
//   JSON-RPC error;
// - offers the server no client capability (no sampling, elicitation or roots: a server cannot
//   make model calls through the agent or learn its file system), and shows the agent only the
//   server's tools capability;
// - lists only the allowed tools, and refuses a call of any other tool;
// - checks each call's arguments against the tool's inputSchema (json_schema.h) and refuses a call
//   that fails, with the violations, so nothing invalid reaches the server;
// - adds the server's credential on the way (the agent never holds it);
// - records every tools/call (tool, arguments, verdict, the result's hash, duration) in the run's
//   audit trail beside its model calls.
// A refused call is answered as a tool result with isError, so the model reads why and goes on.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/config.h"
#include "gateway/json_schema.h"
#include "gateway/messages.h"
#include "gateway/transcript.h"

namespace paddock::gateway {

// One JSON-RPC message from the agent.
struct McpMessage {
  nlohmann::json body;
  std::string method;                    // "" for a response (to a server's request)
  nlohmann::json id;                     // null for a notification
  bool request() const { return !method.empty() && !id.is_null(); }
};
inline constexpr size_t kMaxMcpMessageBytes = 1 << 20;
// A POST body: one JSON-RPC 2.0 message, at most kMaxMcpMessageBytes and kMaxJsonDepth deep (a batch is refused: the streamable HTTP transport of
// 2025-06-18 has none), or what is wrong with it.
std::variant<McpMessage, std::string> parseMcpMessage(std::string_view body);

// The input schemas the gateway learned from a server's tools/list answers, by server (its name and
// URL: a reload that points the name elsewhere starts afresh) and tool. Thread-safe.
class McpCatalog {
 public:
  void learn(const McpServer& server, const nlohmann::json& tools);
  std::optional<nlohmann::json> schema(const McpServer& server, const std::string& tool) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, nlohmann::json>> schemas_;  // guarded by mu_
};

// What the gateway does with a message from the agent.
struct McpCheck {
  enum class Action {
    Forward,     // send `body` (maybe rewritten) to the server
    Answer,      // do not send it: answer `reply` (a JSON-RPC message; null for a notification)
    NeedSchema,  // a tools/call of an allowed tool whose schema is not known yet: list the tools first
  } action = Action::Forward;
  nlohmann::json body;   // Forward: what is sent
  nlohmann::json reply;  // Answer
  int status = 200;      // Answer: the HTTP status it goes with
  std::string reason;    // a refusal's reason (metrics, audit): tool, arguments, schema, method, invalid
  // tools/call
  std::string tool;
  nlohmann::json arguments;
  std::vector<SchemaViolation> violations;
  bool toolCall() const { return !tool.empty(); }
};
// Checks one message against the server's allow-list and, for tools/call, the tool's inputSchema
// as `catalog` knows it. `listed`: the server's tools were just listed, so a tool the catalog does
// not know is one the server does not have.
McpCheck checkMcpMessage(const McpServer& server, const McpMessage& message, const McpCatalog& catalog, bool listed = false);

// What the server said, filtered for the agent: the answer to `request` (initialize: only the tools
// capability; tools/list: only allowed tools, whose schemas `learned` receives), notifications as
// they are; a request of the server's own (sampling, elicitation, roots) is dropped (nullopt),
// since the gateway offered no such capability.
std::optional<nlohmann::json> filterServerMessage(const McpServer& server, const McpMessage& request, nlohmann::json message,
                                                  nlohmann::json* learned_tools);

// A JSON-RPC error answer.
nlohmann::json jsonRpcError(const nlohmann::json& id, int code, const std::string& message);

// One tools/call as the run's audit trail keeps it.
struct ToolCallFacts {
  std::string ns, name;
  std::string server, tool;
  nlohmann::json arguments;
  std::string verdict;  // "forwarded" or "refused"
  std::string reason;   // refused: tool, arguments, schema
  std::vector<SchemaViolation> violations;
  int status = 0;            // the server's HTTP status (forwarded)
  std::string result_sha256;  // of the result (or error) the server returned, as sent on
  bool result_is_error = false;
  int64_t duration_ms = 0;
  std::string error;  // the server could not be reached, or answered no result
};
// The ToolCall entry: arguments masked, long strings in blobs.
TranscriptRecord buildToolCallRecord(const ToolCallFacts& facts, const std::vector<std::string>& known_secrets,
                                     int64_t blob_threshold);

// The SSE body of one message, as the transport frames it.
std::string sseMessage(const nlohmann::json& message);

}  // namespace paddock::gateway
