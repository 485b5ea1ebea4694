// The Boost.Asio/Beast vocabulary of paddock-gateway's I/O edges (listener.cc, relay.cc,
// proxy.cc): every connection is one C++20 coroutine on the io_context; timeouts come from
// beast::tcp_stream's expiry, so a silent peer ends its connection instead of holding it.
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "gateway/gateway.h"
#include "gateway/messages.h"

namespace paddock::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Request = http::request<http::string_body>;

// Writes a whole response with a body (and `headers`; no Content-Type when `content_type` is "");
// Connection: close unless `keep_alive`.
// (GCC 12 destroys temporaries in a co_await expression twice: coroutine arguments are passed
// by value from named variables throughout.)
awaitable<void> writeResponse(beast::tcp_stream& client, int status, std::string content_type, std::string body,
                              bool keep_alive, std::vector<std::pair<std::string, std::string>> headers = {});
// An Anthropic-style error response.
awaitable<void> writeError(beast::tcp_stream& client, ApiError error, bool keep_alive);

// The model relay (relay.cc): POST /v1/messages and /v1/messages/count_tokens. Returns whether
// the client connection may serve another request.
awaitable<bool> relayMessages(Gateway& gateway, asio::ssl::context& tls, beast::tcp_stream& client, Request req);
awaitable<bool> relayCountTokens(Gateway& gateway, asio::ssl::context& tls, beast::tcp_stream& client, Request req);

// The MCP proxy (mcp_proxy.cc): POST, GET and DELETE of /mcp/<server>. Returns whether the client
// connection may serve another request.
awaitable<bool> relayMcp(Gateway& gateway, asio::ssl::context& tls, beast::tcp_stream& client, Request req, std::string server);

// The egress proxy (proxy.cc): CONNECT host:port, and a plain-HTTP request in absolute form. Both
// end the client connection.
// `credential`: what the request's Proxy-Authorization presents (proxyCredential), so a refusal is
// counted as that run's.
awaitable<void> proxyConnect(Gateway& gateway, beast::tcp_stream& client, beast::flat_buffer& buffer,
                             std::string target, std::string credential);
awaitable<void> proxyHttp(Gateway& gateway, beast::tcp_stream& client, Request req);

// The credential a request presents: x-api-key, else a Bearer authorization; "" when none.
std::string presentedCredential(const Request& req);

// Accepts on `acceptor` until it is closed, serving each connection as its own coroutine.
awaitable<void> acceptLoop(Gateway& gateway, asio::ssl::context& tls, tcp::acceptor& acceptor);

// Connections being served now (the graceful stop waits for them).
int activeConnections();

}  // namespace paddock::gateway
