// The model relay: authenticate the run, check the request, reserve its worst case, forward it
// with the real key and relay the answer unbuffered while watching its usage, then settle and
// record the call.
#include <array>
#include <variant>

#include "gateway/io.h"
#include "gateway/sse.h"
#include "operator/common/log.h"

namespace paddock::gateway {
namespace {

constexpr int64_t kMaxNonStreamingBody = 64 << 20;

// The configured upstream (parseConfig checked it is an http(s) URL).
HttpUrl parseUpstream(const std::string& url) { return parseHttpUrl(url).value_or(HttpUrl{}); }

}  // namespace

std::string presentedCredential(const Request& req) {
  if (auto it = req.find("x-api-key"); it != req.end()) return std::string(it->value());
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    std::string_view v = it->value();
    if (v.starts_with("Bearer ")) return std::string(v.substr(7));
  }
  return "";
}

namespace {

// The request sent upstream: the client's headers minus its credential and hop-by-hop ones, the
// real key, and no compression (the gateway reads the stream).
Request upstreamRequest(const Request& in, const HttpUrl& u, const std::string& key, std::string body) {
  Request out{in.method(), in.target(), 11};
  for (const auto& h : in) {
    std::string name = std::string(h.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "host" || name == "x-api-key" || name == "authorization" || name == "content-length" ||
        name == "connection" || name == "keep-alive" || name.starts_with("proxy-") || name == "te" ||
        name == "transfer-encoding" || name == "upgrade" || name == "accept-encoding") {
      continue;
    }
    out.set(h.name_string(), h.value());
  }
  out.set(http::field::host, u.host);
  out.set("x-api-key", key);
  out.set(http::field::accept_encoding, "identity");
  out.keep_alive(false);
  out.body() = std::move(body);
  out.prepare_payload();
  return out;
}

// Response headers passed on to the agent: what the API and its clients use, nothing else.
bool passHeader(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return n == "content-type" || n == "request-id" || n == "retry-after" || n == "x-should-retry" ||
         n.starts_with("anthropic-ratelimit-") || n == "anthropic-organization-id";
}

ApiError unauthenticated() {
  return {401, "authentication_error",
          "x-api-key: not the credential of a run this gateway serves (Paddock's apiKeyHelper prints it)"};
}

struct Exchange {
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();  // the agent's request read
  std::chrono::steady_clock::duration first_byte{};  // until the answer's head went to the agent
  int status = 0;                // upstream's
  bool upstream_cut = false;     // the answer ended before its end
  bool client_gone = false;      // the agent stopped reading
  std::string failure;           // why, in words
  ResponseAccumulator response;
};

// Writes bytes to the client within the write timeout; false when it is gone.
awaitable<bool> send(beast::tcp_stream& client, std::vector<asio::const_buffer> buffers, int timeout) {
  client.expires_after(std::chrono::seconds(timeout));
  beast::error_code ec;
  co_await asio::async_write(client, buffers, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

// (Braced buffer lists are built outside the coroutines: GCC 12 miscompiles them inside.)
std::vector<asio::const_buffer> chunkBuffers(const std::string& size, std::string_view data) {
  static const char crlf[] = "\r\n";
  return {asio::buffer(size), asio::buffer(data.data(), data.size()), asio::buffer(crlf, 2)};
}
std::vector<asio::const_buffer> one(std::string_view data) { return {asio::buffer(data.data(), data.size())}; }

std::string hexSize(size_t n) {
  char out[24];
  int len = std::snprintf(out, sizeof out, "%zx\r\n", n);
  return std::string(out, static_cast<size_t>(len));
}

awaitable<bool> sendChunk(beast::tcp_stream& client, std::string_view data, int timeout) {
  std::string size = hexSize(data.size());
  std::vector<asio::const_buffer> buffers = chunkBuffers(size, data);
  bool sent = co_await send(client, std::move(buffers), timeout);
  co_return sent;
}

// Relays the upstream answer to the client as it arrives (chunked), feeding it to the accumulator.
template <class Stream>
awaitable<void> relayAnswer(Gateway& g, Stream& up, beast::tcp_stream& client, bool streaming, Exchange& x) {
  const auto config = g.config();
  const int up_timeout = config->upstream_timeout_seconds, down_timeout = config->client_write_timeout_seconds;
  beast::flat_buffer ub;
  http::response_parser<http::buffer_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::get_lowest_layer(up).expires_after(std::chrono::seconds(up_timeout));
  co_await http::async_read_header(up, ub, p, asio::use_awaitable);
  x.status = p.get().result_int();
  std::string head = "HTTP/1.1 " + std::to_string(x.status) + " " + std::string(p.get().reason()) + "\r\n";
  for (const auto& h : p.get()) {
    if (passHeader(h.name_string())) head += std::string(h.name_string()) + ": " + std::string(h.value()) + "\r\n";
  }
  head += "Transfer-Encoding: chunked\r\nServer: paddock-gateway\r\n\r\n";
  std::vector<asio::const_buffer> head_buffers = one(head);
  bool sent = co_await send(client, std::move(head_buffers), down_timeout);
  x.first_byte = std::chrono::steady_clock::now() - x.received;
  if (!sent) {
    x.client_gone = true;
    co_return;
  }
  const bool sse = streaming && x.status == 200;
  SseParser parser;
  std::string whole;
  std::vector<char> buf(16384);
  while (!p.is_done()) {
    p.get().body().data = buf.data();
    p.get().body().size = buf.size();
    beast::get_lowest_layer(up).expires_after(std::chrono::seconds(up_timeout));
    beast::error_code ec;
    // read_some: relay what one read brought, not a full buffer.
    co_await http::async_read_some(up, ub, p, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    size_t n = buf.size() - p.get().body().size;
    std::string_view data(buf.data(), n);
    if (n > 0) {
      if (sse) {
        for (const auto& e : parser.feed(data)) x.response.onEvent(e);
      } else if (static_cast<int64_t>(whole.size() + n) <= kMaxNonStreamingBody) {
        whole.append(data);
      }
      bool relayed = co_await sendChunk(client, data, down_timeout);
      if (!relayed) {
        x.client_gone = true;
        x.failure = "the agent stopped reading the answer";
        co_return;
      }
    }
    if (ec) {
      x.upstream_cut = true;
      x.failure = "the model API's answer was cut: " + ec.message();
      break;
    }
  }
  if (!sse && x.status == 200) x.response.onMessage(nlohmann::json::parse(whole, nullptr, false));
  if (sse && !x.response.complete() && !x.upstream_cut) {
    x.upstream_cut = true;
    x.failure = "the model API's stream ended without message_stop";
  }
  if (x.upstream_cut && sse) {
    std::string error = errorEvent({500, "api_error", x.failure + "; the call may be retried"});
    co_await sendChunk(client, error, down_timeout);
  }
  std::vector<asio::const_buffer> last = one("0\r\n\r\n");
  bool ended = co_await send(client, std::move(last), down_timeout);
  if (!ended) x.client_gone = true;
}

// Connects to upstream (TLS when configured), sends `out` and relays the answer.
awaitable<void> callUpstream(Gateway& g, asio::ssl::context& tls, beast::tcp_stream& client, const Request& out,
                             bool streaming, Exchange& x) {
  const auto config = g.config();
  const HttpUrl u = parseUpstream(config->upstream);
  const int up_timeout = config->upstream_timeout_seconds;
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(u.host, std::to_string(u.port), asio::use_awaitable);
  beast::tcp_stream tcp_up(ex);
  tcp_up.expires_after(std::chrono::seconds(30));
  co_await tcp_up.async_connect(endpoints, asio::use_awaitable);
  tcp_up.socket().set_option(tcp::no_delay(true));
  if (!u.tls) {
    tcp_up.expires_after(std::chrono::seconds(up_timeout));
    co_await http::async_write(tcp_up, out, asio::use_awaitable);
    co_await relayAnswer(g, tcp_up, client, streaming, x);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> up(std::move(tcp_up), tls);
  if (!SSL_set_tlsext_host_name(up.native_handle(), u.host.c_str())) throw std::runtime_error("cannot set SNI");
  up.set_verify_mode(asio::ssl::verify_peer);
  up.set_verify_callback(asio::ssl::host_name_verification(u.host));
  co_await up.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  beast::get_lowest_layer(up).expires_after(std::chrono::seconds(up_timeout));
  co_await http::async_write(up, out, asio::use_awaitable);
  co_await relayAnswer(g, up, client, streaming, x);
}

// Forwards `out`; a failure before anything reached the client becomes a 502 api_error.
awaitable<void> forward(Gateway& g, asio::ssl::context& tls, beast::tcp_stream& client, const Request& out,
                        bool streaming, Exchange& x) {
  std::string error;
  try {
    co_await callUpstream(g, tls, client, out, streaming, x);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (error.empty()) co_return;
  x.failure = "the gateway could not reach the model API: " + error;
  if (x.status == 0) {
    x.status = 502;
    ApiError e{502, "api_error", x.failure};
    co_await writeError(client, std::move(e), false);
  } else {
    x.upstream_cut = true;
  }
}

// Settles the call in the ledger and counts it; returns what its transcript record says.
CallFacts settle(Gateway& g, const RunConfig& run, const MessagesRequest& r, const Grant& grant, const Price& price,
                 const Exchange& x, nlohmann::json new_messages, bool checkpoint) {
  // Only an answered call is billed, with the usage its answer reported (also when it was cut).
  Usage usage = x.status == 200 ? x.response.usage() : Usage{};
  Settlement s = g.ledger().settle(run.key(), grant, price, usage);
  Account a = g.ledger().account(run.key());
  g.metrics().tokens(run, usage);
  g.metrics().cost(run, s.nano);
  g.metrics().request(run, x.status);
  g.metrics().reserved(run, a.reserved_nano);
  if (s.over_tokens > 0) g.metrics().overshoot(run, s.over_tokens);
  CallFacts f;
  f.ns = run.ns;
  f.name = run.name;
  f.model = r.model;
  f.stream = r.stream;
  f.status = x.status;
  f.error = x.failure;
  f.new_messages = std::move(new_messages);
  f.response_content = x.response.content();
  f.stop_reason = x.response.stopReason();
  f.usage = usage;
  f.requested_max_tokens = r.max_tokens;
  f.granted_max_tokens = grant.max_tokens;
  f.checkpoint_sent = checkpoint;
  f.charged_nano = s.nano;
  f.spent_tokens = a.spent_tokens;
  f.spent_nano = a.spent_nano;
  log::info("model call", {{"run", run.key()}, {"status", x.status}, {"tokens", s.tokens},
                           {"costUSD", formatUsd(s.nano)}, {"maxTokens", grant.max_tokens},
                           {"clamped", grant.clamped}, {"checkpoint", checkpoint}, {"failure", x.failure}});
  return f;
}

}  // namespace

awaitable<bool> relayMessages(Gateway& g, asio::ssl::context& tls, beast::tcp_stream& client, Request req) {
  Exchange x;
  const bool keep = req.keep_alive();
  // The run and the configuration this call started with, to its end (a reload swaps in another).
  const std::shared_ptr<const RunConfig> run = g.authenticate(presentedCredential(req));
  const std::shared_ptr<const Config> config = g.config();
  if (!run) {
    g.metrics().unauthenticated();
    ApiError e = unauthenticated();
    co_await writeError(client, std::move(e), keep);
    co_return keep;
  }
  auto parsed = parseMessagesRequest(req.body(), *config);
  if (auto* e = std::get_if<ApiError>(&parsed)) {
    g.metrics().refusal(*run, e->type == "permission_error" ? "model" : "invalid");
    g.metrics().request(*run, e->status);
    ApiError copy = *e;
    co_await writeError(client, std::move(copy), keep);
    co_return keep;
  }
  MessagesRequest& r = std::get<MessagesRequest>(parsed);
  auto priced = config->prices.find(r.model);
  if (priced == config->prices.end()) {  // cannot be: parseMessagesRequest refuses a model without a price
    ApiError e{403, "permission_error", "the model " + r.model + " has no price in the gateway's configuration"};
    co_await writeError(client, std::move(e), keep);
    co_return keep;
  }
  const Price price = priced->second;
  int percent = percentUsed(g.ledger().account(run->key()));
  auto decision = g.ledger().reserve(run->key(), price, inputBound(req.body(), *config), r.max_tokens);
  if (auto* refusal = std::get_if<Refusal>(&decision)) {
    g.metrics().refusal(*run, "budget");
    g.metrics().request(*run, 402);
    log::info("model call refused: budget spent", {{"run", run->key()}});
    ApiError e{402, "billing_error", refusal->message};
    co_await writeError(client, std::move(e), keep);
    co_return keep;
  }
  Grant grant = std::get<Grant>(decision);
  bool checkpoint = percent >= config->checkpoint_percent;
  std::string body = rewriteForUpstream(r.body, grant.max_tokens,
                                        checkpoint ? checkpointInstruction(percent, config->checkpoint_percent) : "");
  size_t first_new = g.conversations().advance(run->key(), r.body["messages"]);
  // What the agent added since its previous call: counted here for its refused tool calls, then
  // recorded in the transcript.
  const auto& msgs = r.body["messages"];
  nlohmann::json new_messages(msgs.begin() + static_cast<std::ptrdiff_t>(first_new), msgs.end());
  for (const auto& reason : toolRefusals(new_messages)) {
    g.metrics().refusal(*run, reason);
  }
  Request out = upstreamRequest(req, parseUpstream(config->upstream), g.apiKey(), std::move(body));
  g.metrics().overhead(*run, std::chrono::steady_clock::now() - x.received);
  co_await forward(g, tls, client, out, r.stream, x);
  if (x.first_byte.count() > 0) g.metrics().firstByte(*run, x.first_byte);
  // The ledger is settled before the next request of this connection; the transcript is queued
  // for the writer thread (its fsync stays off the I/O threads).
  g.record(settle(g, *run, r, grant, price, x, std::move(new_messages), checkpoint));
  co_return keep && !x.client_gone && !x.upstream_cut && x.status != 502;
}

awaitable<bool> relayCountTokens(Gateway& g, asio::ssl::context& tls, beast::tcp_stream& client, Request req) {
  const bool keep = req.keep_alive();
  if (!g.authenticate(presentedCredential(req))) {
    g.metrics().unauthenticated();
    ApiError e = unauthenticated();
    co_await writeError(client, std::move(e), keep);
    co_return keep;
  }
  const auto config = g.config();
  if (auto e = checkCountTokensRequest(req.body(), *config)) {
    ApiError copy = *e;
    co_await writeError(client, std::move(copy), keep);
    co_return keep;
  }
  Exchange x;
  std::string body = req.body();
  Request out = upstreamRequest(req, parseUpstream(config->upstream), g.apiKey(), std::move(body));
  co_await forward(g, tls, client, out, false, x);
  co_return keep && !x.client_gone && !x.upstream_cut && x.status != 502;
}

}  // namespace paddock::gateway
