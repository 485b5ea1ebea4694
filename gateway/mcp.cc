#include "gateway/mcp.h"

#include <algorithm>

#include "operator/audit/blob.h"

namespace paddock::gateway {
namespace {

using nlohmann::json;

bool allowed(const McpServer& server, const std::string& tool) {
  return std::find(server.tools.begin(), server.tools.end(), tool) != server.tools.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A refused tools/call, answered as the tool's result: the model reads it and may try again.
json refusedCall(const json& id, const std::string& reason, const std::string& text, const std::vector<SchemaViolation>& violations) {
  json refusal = {{"reason", reason}};
  if (!violations.empty()) {
    refusal["violations"] = json::array();
    for (const auto& v : violations) refusal["violations"].push_back({{"path", v.path}, {"message", v.message}});
  }
  return {{"jsonrpc", "2.0"},
          {"id", id},
          {"result",
           {{"content", json::array({{{"type", "text"}, {"text", "Paddock gateway: " + text}}})},
            {"isError", true},
            {"_meta", {{"dev.paddock/refusal", refusal}}}}}};
}

}  // namespace

json jsonRpcError(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::variant<McpMessage, std::string> parseMcpMessage(std::string_view body) {
  if (body.size() > kMaxMcpMessageBytes) {
    return "the message is larger than the gateway takes (" + std::to_string(kMaxMcpMessageBytes) + " bytes)";
  }
  if (jsonNestingDepth(body) > kMaxJsonDepth) {
    return "the message nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return std::string("the body is not JSON");
  if (j.is_array()) return std::string("a batch of JSON-RPC messages is not taken: send one message per POST");
  if (!j.is_object() || j.value("jsonrpc", json()) != "2.0") return std::string("not a JSON-RPC 2.0 message (\"jsonrpc\": \"2.0\")");
  McpMessage m;
  if (j.contains("method")) {
    if (!j["method"].is_string() || j["method"].get<std::string>().empty()) return std::string("\"method\" must be a string");
    m.method = j["method"].get<std::string>();
  } else if (!j.contains("result") && !j.contains("error")) {
    return std::string("a message needs \"method\" (a request or notification) or \"result\"/\"error\" (a response)");
  }
  if (j.contains("id")) {
    const json& id = j["id"];
    if (!id.is_string() && !id.is_number_integer()) return std::string("\"id\" must be a string or an integer");
    m.id = id;
  }
  if (j.contains("params") && !j["params"].is_object()) return std::string("\"params\" must be an object");
  if (!m.method.empty() && (j.contains("result") || j.contains("error"))) {
    return std::string("a message is a request or notification (\"method\") or a response (\"result\"/\"error\"), not both");
  }
  // Only the JSON-RPC fields go on: nothing else a lax server might read.
  m.body = {{"jsonrpc", "2.0"}};
  for (const char* k : {"id", "method", "params", "result", "error"}) {
    if (j.contains(k)) m.body[k] = std::move(j[k]);
  }
  return m;
}

void McpCatalog::learn(const McpServer& server, const json& tools) {
  if (!tools.is_array()) return;
  std::lock_guard l(mu_);
  auto& known = schemas_[server.name + " " + server.url];
  for (const auto& t : tools) {
    if (t.is_object() && t.contains("name") && t["name"].is_string()) {
      known[t["name"].get<std::string>()] = t.value("inputSchema", json::object());
    }
  }
}

std::optional<json> McpCatalog::schema(const McpServer& server, const std::string& tool) const {
  std::lock_guard l(mu_);
  auto s = schemas_.find(server.name + " " + server.url);
  if (s == schemas_.end()) return std::nullopt;
  auto t = s->second.find(tool);
  if (t == s->second.end()) return std::nullopt;
  return t->second;
}

McpCheck checkMcpMessage(const McpServer& server, const McpMessage& m, const McpCatalog& catalog, bool listed) {
  McpCheck c;
  c.body = m.body;
  const std::string& method = m.method;
  if (method.empty()) {
    // A response to a server's request: the gateway offers no capability a server could ask of.
    c.action = McpCheck::Action::Answer;
    c.reason = "method";
    return c;
  }
  if (method.starts_with("notifications/") || method == "ping" || method == "tools/list") {
    if (!m.request() && !method.starts_with("notifications/")) {
      c.action = McpCheck::Action::Answer;
      c.reason = "invalid";
    }
    return c;
  }
  if (!m.request()) {
    c.action = McpCheck::Action::Answer;
    c.reason = "invalid";
    return c;
  }
  if (method == "initialize") {
    // Offer the server nothing it could call back into: no sampling, elicitation or roots.
    c.body["params"]["capabilities"] = json::object();
    return c;
  }
  if (method == "server/discover") {
    // A newer protocol's probe: answered as a server of the versions the gateway speaks answers
    // it, so the client falls back to initialize.
    c.action = McpCheck::Action::Answer;
    c.status = 400;
    c.reply = jsonRpcError(m.id, -32601, "server/discover is not served: the Paddock gateway speaks MCP up to 2025-11-25; "
                                         "start with initialize");
    return c;
  }
  if (method != "tools/call") {
    c.action = McpCheck::Action::Answer;
    c.reason = "method";
    c.reply = jsonRpcError(m.id, -32601, method + " is not allowed through the Paddock gateway: only tools are");
    return c;
  }
  const json params = m.body.value("params", json::object());
  if (!params.contains("name") || !params["name"].is_string()) {
    c.action = McpCheck::Action::Answer;
    c.reason = "invalid";
    c.reply = jsonRpcError(m.id, -32602, "tools/call needs params.name, the tool's name");
    return c;
  }
  c.tool = params["name"].get<std::string>().substr(0, 256);
  c.arguments = params.value("arguments", json::object());
  c.action = McpCheck::Action::Answer;
  const std::optional<json> schema = catalog.schema(server, c.tool);
  if (!allowed(server, c.tool)) {
    c.reason = "tool";
    c.reply = refusedCall(m.id, c.reason,
                          "the tool " + c.tool + " of the MCP server " + server.name +
                              " is not allowed by the team's AgentPolicy (allowed: " + joined(server.tools) +
                              "). Nothing was sent to the server.",
                          {});
    return c;
  }
  if (!schema && !listed) {
    c.action = McpCheck::Action::NeedSchema;
    return c;
  }
  if (!schema) {
    c.reason = "tool";
    c.reply = refusedCall(m.id, c.reason, "the MCP server " + server.name + " does not list a tool " + c.tool + ".", {});
    return c;
  }
  if (std::string unsupported = unsupportedSchemaFeature(*schema); !unsupported.empty()) {
    c.reason = "schema";
    c.reply = refusedCall(m.id, c.reason,
                          "the input schema of " + c.tool + " uses " + unsupported +
                              ", which the gateway cannot check, so the tool cannot be called. Nothing was sent to "
                              "the server; the platform team can remove the tool from the policy's allow-list.",
                          {});
    return c;
  }
  if (!c.arguments.is_object()) {
    c.reason = "arguments";
    c.violations = {{"", "the arguments must be an object"}};
  } else {
    c.violations = validateJson(*schema, c.arguments);
    if (!c.violations.empty()) c.reason = "arguments";
  }
  if (!c.violations.empty()) {
    std::string text = "the arguments of " + c.tool + " do not match its input schema, so nothing was sent to the server:";
    for (const auto& v : c.violations) text += "\n- " + formatViolation(v);
    text += "\nCall it again with arguments that match the schema.";
    c.reply = refusedCall(m.id, c.reason, text, c.violations);
    return c;
  }
  c.action = McpCheck::Action::Forward;
  return c;
}

std::optional<json> filterServerMessage(const McpServer& server, const McpMessage& request, json message, json* learned) {
  if (!message.is_object()) return std::nullopt;
  if (message.contains("method")) {
    // A server's notification passes (progress, logging); a request of its own is dropped.
    if (message.contains("id")) return std::nullopt;
    return message;
  }
  if (!message.contains("id") || message["id"] != request.id) return std::nullopt;  // not the answer asked for
  if (!message.contains("result") || !message["result"].is_object()) return message;
  json& result = message["result"];
  if (request.method == "initialize") {
    json caps = result.value("capabilities", json::object());
    json kept = json::object();
    if (caps.is_object() && caps.contains("tools")) kept["tools"] = caps["tools"];
    result["capabilities"] = kept;
  } else if (request.method == "tools/list") {
    json tools = json::array();
    for (const auto& t : result.value("tools", json::array())) {
      if (t.is_object() && t.contains("name") && t["name"].is_string() && allowed(server, t["name"].get<std::string>())) {
        tools.push_back(t);
      }
    }
    if (learned) *learned = tools;
    result["tools"] = std::move(tools);
  }
  return message;
}

TranscriptRecord buildToolCallRecord(const ToolCallFacts& f, const std::vector<std::string>& known, int64_t threshold) {
  TranscriptRecord out;
  std::string arguments = maskCredentials(f.arguments.dump(-1, ' ', false, json::error_handler_t::replace), known);
  json details = {{"via", "mcp"}, {"server", f.server}, {"tool", f.tool}, {"verdict", f.verdict}};
  if (static_cast<int64_t>(arguments.size()) > threshold) {
    details["arguments"] = audit::blobRef(arguments);
    out.blobs.push_back(std::move(arguments));
  } else {
    details["arguments"] = json::parse(arguments, nullptr, false);
    if (details["arguments"].is_discarded()) details["arguments"] = arguments;
  }
  if (f.verdict == "refused") {
    details["reason"] = f.reason;
    if (!f.violations.empty()) {
      details["violations"] = json::array();
      for (const auto& v : f.violations) details["violations"].push_back({{"path", v.path}, {"message", maskCredentials(v.message, known)}});
    }
  } else {
    details["status"] = f.status;
    details["durationMs"] = f.duration_ms;
    if (!f.result_sha256.empty()) {
      details["resultSHA256"] = f.result_sha256;
      details["resultIsError"] = f.result_is_error;
    }
  }
  if (!f.error.empty()) details["error"] = maskCredentials(f.error, known);
  out.entry = audit::Entry{"paddock-gateway", audit::RunRef{f.ns, f.name, ""}, audit::Action::ToolCall, details};
  return out;
}

std::string sseMessage(const json& message) {
  return "event: message\ndata: " + message.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace paddock::gateway
