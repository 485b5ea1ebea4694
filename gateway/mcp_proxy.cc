// The MCP proxy: /mcp/<server> on the gateway, in front of the policy's remote MCP servers
// (streamable HTTP). Each POST carries one JSON-RPC message: checked (mcp.h), then answered by the
// gateway or sent to the server with the server's credential; the server's answer (JSON or a
// short SSE stream) is read whole, filtered, and sent on. GET (a server-initiated stream) is not
// offered; DELETE (the end of a session) is passed on.
#include <fstream>
#include <sstream>

#include "gateway/io.h"
#include "gateway/sse.h"
#include "operator/audit/blob.h"
#include "operator/common/log.h"

namespace paddock::gateway {
namespace {

using nlohmann::json;

struct Answer {
  int status = 0;  // 0: the server could not be reached
  std::string content_type, session_id, body;
  std::string failure;
};

// Sends `out` to the server and reads its whole answer (at most `limit` bytes).
template <class Stream>
awaitable<void> exchangeOn(Stream& stream, const Request& out, int timeout, int64_t limit, Answer& a) {
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(timeout));
  co_await http::async_write(stream, out, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> p;
  p.body_limit(static_cast<uint64_t>(limit));
  co_await http::async_read(stream, buffer, p, asio::use_awaitable);
  a.status = p.get().result_int();
  a.content_type = std::string(p.get()[http::field::content_type]);
  a.session_id = std::string(p.get()["mcp-session-id"]);
  a.body = std::move(p.get().body());
}

awaitable<Answer> exchange(asio::ssl::context& tls, HttpUrl u, Request out, int timeout, int64_t limit) {
  Answer a;
  try {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(u.host, std::to_string(u.port), asio::use_awaitable);
    beast::tcp_stream tcp_up(ex);
    tcp_up.expires_after(std::chrono::seconds(30));
    co_await tcp_up.async_connect(endpoints, asio::use_awaitable);
    if (!u.tls) {
      co_await exchangeOn(tcp_up, out, timeout, limit, a);
    } else {
      beast::ssl_stream<beast::tcp_stream> up(std::move(tcp_up), tls);
      if (!SSL_set_tlsext_host_name(up.native_handle(), u.host.c_str())) throw std::runtime_error("cannot set SNI");
      up.set_verify_mode(asio::ssl::verify_peer);
      up.set_verify_callback(asio::ssl::host_name_verification(u.host));
      co_await up.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
      co_await exchangeOn(up, out, timeout, limit, a);
    }
  } catch (const std::exception& e) {
    a.status = 0;
    a.failure = e.what();
  }
  co_return a;
}

std::string readCredential(const std::string& file) {
  std::ifstream in(file);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  // A byte that could end the header line (or any control byte) makes it no credential.
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return "";
  }
  return s;
}

// The request to the server: the transport's headers of the agent's request, the server's
// credential, never the agent's.
Request serverRequest(http::verb method, const Request& in, const HttpUrl& u, const McpServer& server,
                      const std::string& credential, std::string body) {
  Request out{method, u.target, 11};
  for (const char* name : {"accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id"}) {
    if (auto it = in.find(name); it != in.end()) out.set(name, it->value());
  }
  if (method == http::verb::post) {
    out.set(http::field::content_type, "application/json");
    if (in.find(http::field::accept) == in.end()) out.set(http::field::accept, "application/json, text/event-stream");
  }
  bool default_port = u.port == (u.tls ? 443 : 80);
  out.set(http::field::host, default_port ? u.host : u.host + ":" + std::to_string(u.port));
  if (!server.credential_file.empty()) {
    bool bearer = beast::iequals(server.credential_header, "authorization");
    out.set(server.credential_header, bearer ? "Bearer " + credential : credential);
  }
  out.set(http::field::accept_encoding, "identity");
  out.keep_alive(false);
  out.body() = std::move(body);
  out.prepare_payload();
  return out;
}

// The JSON-RPC messages of an answer (one JSON body, or an SSE stream's data).
std::vector<json> messagesOf(const Answer& a) {
  std::vector<json> out;
  if (a.content_type.starts_with("text/event-stream")) {
    SseParser parser;
    for (const auto& e : parser.feed(a.body + "\n\n")) {
      json m = json::parse(e.data, nullptr, false);
      if (!m.is_discarded()) out.push_back(std::move(m));
    }
  } else {
    json m = json::parse(a.body, nullptr, false);
    if (!m.is_discarded()) out.push_back(std::move(m));
  }
  return out;
}

awaitable<void> respond(beast::tcp_stream& client, int status, std::string content_type, std::string session_id,
                        std::string body, bool keep) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!session_id.empty()) headers.emplace_back("mcp-session-id", session_id);
  co_await writeResponse(client, status, std::move(content_type), std::move(body), keep, std::move(headers));
}

awaitable<void> respondJson(beast::tcp_stream& client, int status, json body, bool keep) {
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  co_await respond(client, status, "application/json", "", std::move(text), keep);
}

// Lists the server's tools within the agent's session (every page), for their input schemas.
awaitable<void> learnTools(Gateway& g, asio::ssl::context& tls, const Request& in, const McpServer& server,
                           HttpUrl u, std::string credential) {
  const auto config = g.config();
  json cursor;
  for (int page = 0; page < 20; ++page) {
    json params = json::object();
    if (!cursor.is_null()) params["cursor"] = cursor;
    json list = {{"jsonrpc", "2.0"}, {"id", "paddock-tools-" + std::to_string(page)}, {"method", "tools/list"}, {"params", params}};
    Request out = serverRequest(http::verb::post, in, u, server, credential, list.dump());
    Answer a = co_await exchange(tls, u, std::move(out), config->upstream_timeout_seconds, config->max_request_bytes);
    cursor = nullptr;
    for (const auto& m : messagesOf(a)) {
      if (!m.is_object() || !m.contains("id") || m["id"] != list["id"] || !m.contains("result") || !m["result"].is_object()) continue;
      g.mcpCatalog().learn(server, m["result"].value("tools", json::array()));
      if (m["result"].contains("nextCursor") && m["result"]["nextCursor"].is_string()) cursor = m["result"]["nextCursor"];
    }
    if (cursor.is_null()) co_return;
  }
}

ToolCallFacts toolCallFacts(const RunConfig& run, const McpServer& server, const McpCheck& c) {
  ToolCallFacts f;
  f.ns = run.ns;
  f.name = run.name;
  f.server = server.name;
  f.tool = c.tool;
  f.arguments = c.arguments;
  f.reason = c.reason;
  f.violations = c.violations;
  return f;
}

}  // namespace

awaitable<bool> relayMcp(Gateway& g, asio::ssl::context& tls, beast::tcp_stream& client, Request req, std::string name) {
  const auto started = std::chrono::steady_clock::now();
  const bool keep = req.keep_alive();
  const std::shared_ptr<const RunConfig> run = g.authenticate(presentedCredential(req));
  const std::shared_ptr<const Config> config = g.config();
  if (!run) {
    g.metrics().unauthenticated();
    json e = jsonRpcError(nullptr, -32001, "Authorization: not the credential of a run this gateway serves (Paddock's "
                                           "headersHelper prints it)");
    co_await respondJson(client, 401, std::move(e), keep);
    co_return keep;
  }
  const McpServer* found = nullptr;
  for (const auto& s : config->mcp_servers) {
    if (s.name == name) found = &s;
  }
  if (!found) {
    json e = jsonRpcError(nullptr, -32001, "the gateway serves no MCP server named \"" + name +
                                               "\": the team's AgentPolicy lists the ones it may use (spec.tools.mcpServers)");
    co_await respondJson(client, 404, std::move(e), keep);
    co_return keep;
  }
  const McpServer& server = *found;
  if (req.method() == http::verb::get) {
    // No server-initiated stream through the gateway: the transport lets a server decline it.
    co_await respond(client, 405, "text/plain", "", "paddock-gateway: no server-initiated stream; POST each message\n", keep);
    co_return keep;
  }
  const HttpUrl u = parseHttpUrl(server.url).value_or(HttpUrl{});
  std::string credential;
  if (!server.credential_file.empty()) {
    credential = readCredential(server.credential_file);
    if (credential.empty()) {
      log::error("an MCP server's credential cannot be read", {{"server", server.name}, {"file", server.credential_file}});
      json e = jsonRpcError(nullptr, -32603, "the gateway cannot read the credential of the MCP server " + server.name +
                                                 ": the Secret the AgentPolicy names for it (spec.tools.mcpServers[].credential) "
                                                 "is missing or empty in this namespace, or its value holds control characters");
      co_await respondJson(client, 502, std::move(e), keep);
      co_return keep;
    }
  }
  if (req.method() == http::verb::delete_) {
    Request out = serverRequest(http::verb::delete_, req, u, server, credential, "");
    Answer a = co_await exchange(tls, u, std::move(out), config->upstream_timeout_seconds, config->max_request_bytes);
    co_await respond(client, a.status ? a.status : 502, a.content_type, "", a.body, keep);
    co_return keep;
  }
  if (req.method() != http::verb::post) {
    co_await respond(client, 405, "text/plain", "", "paddock-gateway: POST, GET or DELETE\n", keep);
    co_return keep;
  }

  auto parsed = parseMcpMessage(req.body());
  if (auto* why = std::get_if<std::string>(&parsed)) {
    g.metrics().refusal(*run, "mcp_invalid");
    json e = jsonRpcError(nullptr, -32600, *why);
    co_await respondJson(client, 400, std::move(e), keep);
    co_return keep;
  }
  const McpMessage& message = std::get<McpMessage>(parsed);
  McpCheck check = checkMcpMessage(server, message, g.mcpCatalog());
  if (check.action == McpCheck::Action::NeedSchema) {
    co_await learnTools(g, tls, req, server, u, credential);
    check = checkMcpMessage(server, message, g.mcpCatalog(), true);
  }
  if (check.action == McpCheck::Action::Answer) {
    if (!check.reason.empty()) g.metrics().refusal(*run, "mcp_" + check.reason);
    if (check.toolCall()) {
      // A name off the allow-list is the agent's to choose: it is no label (no series per name).
      g.metrics().toolCall(*run, server.name, check.reason == "tool" ? "(not allowed)" : check.tool, "refused");
      ToolCallFacts f = toolCallFacts(*run, server, check);
      f.verdict = "refused";
      g.record(std::move(f));
      log::info("MCP tool call refused", {{"run", run->key()}, {"server", server.name}, {"tool", check.tool},
                                           {"reason", check.reason}});
    }
    if (check.reply.is_null()) {
      co_await respond(client, 202, "", "", "", keep);
    } else {
      co_await respondJson(client, check.status, std::move(check.reply), keep);
    }
    co_return keep;
  }

  std::string body = check.body.dump(-1, ' ', false, json::error_handler_t::replace);
  Request out = serverRequest(http::verb::post, req, u, server, credential, std::move(body));
  Answer a = co_await exchange(tls, u, std::move(out), config->upstream_timeout_seconds, config->max_request_bytes);
  ToolCallFacts facts = toolCallFacts(*run, server, check);
  facts.verdict = "forwarded";
  facts.status = a.status;
  if (a.status == 0) {
    facts.error = "the gateway could not reach the MCP server: " + a.failure;
    json e = jsonRpcError(message.id, -32603, "the gateway could not reach the MCP server " + server.name + ": " + a.failure);
    co_await respondJson(client, 502, std::move(e), keep);
  } else if (a.status >= 300 || a.body.empty()) {
    // The transport's own answers (202 to a notification, 404 for an ended session, 4xx) pass on.
    if (check.toolCall()) facts.error = "the MCP server answered HTTP " + std::to_string(a.status);
    co_await respond(client, a.status, a.content_type, a.session_id, a.body, keep);
  } else {
    const bool sse = a.content_type.starts_with("text/event-stream");
    std::string sent;
    json learned;
    for (auto& m : messagesOf(a)) {
      if (!m.is_object()) continue;
      bool answer = m.contains("id") && m["id"] == message.id && (m.contains("result") || m.contains("error"));
      auto kept = filterServerMessage(server, message, std::move(m), message.method == "tools/list" ? &learned : nullptr);
      if (!kept) continue;
      if (answer && check.toolCall()) {
        const json& r = kept->contains("result") ? (*kept)["result"] : (*kept)["error"];
        facts.result_sha256 = audit::blobHash(r.dump(-1, ' ', false, json::error_handler_t::replace)).substr(7);
        facts.result_is_error = kept->contains("error") || (r.is_object() && r.contains("isError") && r["isError"] == true);
      }
      if (sse) {
        sent += sseMessage(*kept);
      } else {
        sent = kept->dump(-1, ' ', false, json::error_handler_t::replace);
      }
    }
    if (!learned.is_null()) g.mcpCatalog().learn(server, learned);
    if (check.toolCall() && facts.result_sha256.empty()) facts.error = "the MCP server's answer held no result for the call";
    co_await respond(client, a.status, sse ? "text/event-stream" : "application/json", a.session_id, std::move(sent), keep);
  }
  if (check.toolCall()) {
    facts.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    g.metrics().toolCall(*run, server.name, check.tool, "forwarded");
    log::info("MCP tool call", {{"run", run->key()}, {"server", server.name}, {"tool", check.tool}, {"status", a.status},
                                {"durationMs", facts.duration_ms}, {"failure", facts.error}});
    g.record(std::move(facts));
  }
  co_return keep;
}

}  // namespace paddock::gateway
