// The listener: reads each request's header, then hands it to the model relay, the egress proxy
// the MCP proxy, or the health and metrics endpoints.
#include <atomic>

#include "gateway/io.h"
#include "operator/common/log.h"

namespace paddock::gateway {
namespace {

std::atomic<int> active{0};

struct ActiveGuard {
  ActiveGuard() { ++active; }
  ~ActiveGuard() { --active; }
};

ApiError tooLarge(const Gateway& g) {
  return {413, "request_too_large", "request body is larger than the gateway's limit of " +
                                        std::to_string(g.config()->max_request_bytes) + " bytes"};
}

std::string path(std::string_view target) { return std::string(target.substr(0, target.find('?'))); }

// Answers one request that has its body; returns whether the connection stays open.
awaitable<bool> route(Gateway& g, asio::ssl::context& tls, beast::tcp_stream& client, Request req) {
  std::string p = path(req.target());
  bool keep = req.keep_alive();
  if (req.method() == http::verb::post && p == "/v1/messages") {
    bool again = co_await relayMessages(g, tls, client, std::move(req));
    co_return again;
  }
  if (req.method() == http::verb::post && p == "/v1/messages/count_tokens") {
    bool again = co_await relayCountTokens(g, tls, client, std::move(req));
    co_return again;
  }
  if (p.starts_with("/mcp/")) {
    std::string server = p.substr(5);
    bool again = co_await relayMcp(g, tls, client, std::move(req), std::move(server));
    co_return again;
  }
  std::string type = "text/plain", body;
  if (req.method() == http::verb::get && p == "/v1/paddock/credential") {
    // Whether the gateway serves this credential now (the agent pod waits for it before it starts).
    bool known = g.authenticate(presentedCredential(req)) != nullptr;
    body = known ? "" : "paddock-gateway: this credential is not (yet) one of a run this gateway serves\n";
    co_await writeResponse(client, known ? 204 : 401, std::move(type), std::move(body), keep);
  } else if (req.method() == http::verb::get && p == "/healthz") {
    body = "ok\n";
    co_await writeResponse(client, 200, std::move(type), std::move(body), keep);
  } else if (req.method() == http::verb::get && p == "/metrics") {
    type = "text/plain; version=0.0.4";
    body = g.metrics().text();
    co_await writeResponse(client, 200, std::move(type), std::move(body), keep);
  } else {
    ApiError e{404, "not_found_error", std::string(req.method_string()) + " " + p + " is not served by the Paddock gateway"};
    co_await writeError(client, std::move(e), keep);
  }
  co_return keep;
}

awaitable<void> serve(Gateway& g, asio::ssl::context& tls, tcp::socket socket) {
  ActiveGuard guard;
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  for (bool keep = true; keep;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(static_cast<uint64_t>(g.config()->max_request_bytes));
    parser.header_limit(64 * 1024);
    client.expires_after(std::chrono::seconds(300));  // an idle keep-alive connection
    beast::error_code ec;
    co_await http::async_read_header(client, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof) co_return;
    if (ec == http::error::body_limit) {
      ApiError e = tooLarge(g);
      co_await writeError(client, std::move(e), false);
      co_return;
    }
    if (ec) {
      ApiError e{400, "invalid_request_error", "malformed HTTP request: " + ec.message()};
      co_await writeError(client, std::move(e), false);
      co_return;
    }
    if (parser.get().method() == http::verb::connect) {
      std::string target(parser.get().target());
      std::string credential = proxyCredential(parser.get()[http::field::proxy_authorization]);
      co_await proxyConnect(g, client, buffer, std::move(target), std::move(credential));
      co_return;
    }
    client.expires_after(std::chrono::seconds(60));
    co_await http::async_read(client, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::body_limit) {
      ApiError e = tooLarge(g);
      co_await writeError(client, std::move(e), false);
      co_return;
    }
    if (ec) co_return;
    Request req = parser.release();
    if (req.target().starts_with("http://")) {
      co_await proxyHttp(g, client, std::move(req));
      co_return;
    }
    bool again = co_await route(g, tls, client, std::move(req));
    keep = again;
  }
  beast::error_code ignored;
  client.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

int activeConnections() { return active.load(); }

awaitable<void> writeResponse(beast::tcp_stream& client, int status, std::string content_type, std::string body,
                              bool keep_alive, std::vector<std::pair<std::string, std::string>> headers) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  if (!content_type.empty()) res.set(http::field::content_type, content_type);
  for (const auto& [name, value] : headers) res.set(name, value);
  res.set(http::field::server, "paddock-gateway");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  client.expires_after(std::chrono::seconds(30));
  beast::error_code ec;
  co_await http::async_write(client, res, asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<void> writeError(beast::tcp_stream& client, ApiError error, bool keep_alive) {
  std::string type = "application/json", body = errorBody(error);
  co_await writeResponse(client, error.status, std::move(type), std::move(body), keep_alive);
}

awaitable<void> acceptLoop(Gateway& g, asio::ssl::context& tls, tcp::acceptor& acceptor) {
  while (acceptor.is_open()) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      log::warn("accept failed", {{"error", ec.message()}});
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), serve(g, tls, std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::warn("a connection ended with an error", {{"error", ex.what()}});
      }
    });
  }
}

}  // namespace paddock::gateway
