#include "e2e/gateway/model_standin.h"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace paddock::gateway::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

std::string Received::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return "";
}

namespace {

std::string event(const std::string& name, const json& data) { return "event: " + name + "\ndata: " + data.dump() + "\n\n"; }

int64_t outputTokens(const Turn& t, const json& req) {
  int64_t max = req.value("max_tokens", int64_t{4096});
  return t.spend_all ? max : std::min(t.output_tokens, max);
}

int64_t inputTokens(const Turn& t, size_t bytes) { return t.input_tokens >= 0 ? t.input_tokens : static_cast<int64_t>(bytes / 4); }

std::string chunk(const std::string& data) {
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

json wholeMessage(const Turn& t, const json& req, size_t bytes, const std::string& id) {
  json content = json::array();
  if (!t.text.empty()) content.push_back({{"type", "text"}, {"text", t.text}});
  if (t.kind == Turn::Kind::ToolUse) {
    content.push_back({{"type", "tool_use"}, {"id", "toolu_" + id}, {"name", t.tool}, {"input", t.input}});
  }
  return {{"id", "msg_" + id},     {"type", "message"}, {"role", "assistant"}, {"model", req.value("model", "")},
          {"content", content},    {"stop_reason", t.kind == Turn::Kind::ToolUse ? "tool_use" : "end_turn"},
          {"stop_sequence", nullptr},
          {"usage", {{"input_tokens", inputTokens(t, bytes)}, {"cache_creation_input_tokens", 0},
                     {"cache_read_input_tokens", 0}, {"output_tokens", outputTokens(t, req)}}}};
}

std::string stamp(std::string event) {
  for (size_t at = event.find("@T@"); at != std::string::npos; at = event.find("@T@", at)) {
    char now[32];
    std::snprintf(now, sizeof now, "T%019lld;", static_cast<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                    std::chrono::steady_clock::now().time_since_epoch()).count()));
    event.replace(at, 3, now);
  }
  return event;
}

json errorJson(int status) {
  std::string type = status == 429 ? "rate_limit_error" : status == 529 ? "overloaded_error" : "api_error";
  std::string message = status == 429 ? "Number of request tokens has exceeded your per-minute rate limit"
                        : status == 529 ? "Overloaded" : "Internal server error";
  return {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
}

}  // namespace

std::vector<std::string> sseEvents(const Turn& t, const json& req, size_t bytes) {
  static std::atomic<int> ids{0};
  std::string id = "standin" + std::to_string(++ids);
  json msg = wholeMessage(t, req, bytes, id);
  json start = msg;
  start["content"] = json::array();
  start["stop_reason"] = nullptr;
  start["usage"]["output_tokens"] = 1;
  std::vector<std::string> out = {event("message_start", {{"type", "message_start"}, {"message", start}}),
                                  "event: ping\ndata: {\"type\": \"ping\"}\n\n"};
  int index = 0;
  if (!t.text.empty()) {
    out.push_back(event("content_block_start", {{"type", "content_block_start"}, {"index", index},
                                                {"content_block", {{"type", "text"}, {"text", ""}}}}));
    int n = std::max(1, t.delta_events);
    size_t per = (t.text.size() + n - 1) / n;
    for (size_t at = 0; at < t.text.size(); at += per) {
      out.push_back(event("content_block_delta", {{"type", "content_block_delta"}, {"index", index},
                                                  {"delta", {{"type", "text_delta"}, {"text", t.text.substr(at, per)}}}}));
    }
    out.push_back(event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}));
    ++index;
  }
  if (t.kind == Turn::Kind::ToolUse) {
    out.push_back(event("content_block_start",
                        {{"type", "content_block_start"}, {"index", index},
                         {"content_block", {{"type", "tool_use"}, {"id", "toolu_" + id}, {"name", t.tool}, {"input", json::object()}}}}));
    std::string input = t.input.dump();
    size_t half = input.size() / 2;
    for (const std::string& part : {input.substr(0, half), input.substr(half)}) {
      out.push_back(event("content_block_delta", {{"type", "content_block_delta"}, {"index", index},
                                                  {"delta", {{"type", "input_json_delta"}, {"partial_json", part}}}}));
    }
    out.push_back(event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}));
  }
  out.push_back(event("message_delta", {{"type", "message_delta"},
                                        {"delta", {{"stop_reason", msg["stop_reason"]}, {"stop_sequence", nullptr}}},
                                        {"usage", {{"output_tokens", msg["usage"]["output_tokens"]}}}}));
  out.push_back(event("message_stop", {{"type", "message_stop"}}));
  return out;
}

struct ModelStandin::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  mutable std::mutex mu;
  std::vector<Turn> script;
  size_t next = 0;
  bool repeat = false;
  std::vector<Received> received;

  Turn nextTurn() {
    std::lock_guard l(mu);
    if (repeat) return script.front();
    if (next < script.size()) return script[next++];
    Turn done;
    done.text = "Done.";
    return done;
  }

  asio::awaitable<void> answer(beast::tcp_stream& s, const http::request<http::string_body>& req);
  asio::awaitable<void> serve(tcp::socket socket);
  asio::awaitable<void> accept();
};

asio::awaitable<void> ModelStandin::Impl::answer(beast::tcp_stream& s, const http::request<http::string_body>& req) {
  json body = json::parse(req.body(), nullptr, false);
  std::string target(req.target());
  auto reply = [&](int status, const std::string& content_type, const std::string& text) {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type +
           "\r\nrequest-id: req_standin\r\n" + (status == 429 ? "retry-after: 0\r\n" : "") +
           "Content-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
  };
  std::string out;
  if (target.starts_with("/v1/messages/count_tokens")) {
    out = reply(200, "application/json", json{{"input_tokens", req.body().size() / 4}}.dump());
    co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
    co_return;
  }
  Turn t = nextTurn();
  if (t.kind == Turn::Kind::Error) {
    out = reply(t.status, "application/json", errorJson(t.status).dump());
    co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
    co_return;
  }
  if (!body.value("stream", false)) {
    out = reply(200, "application/json", wholeMessage(t, body, req.body().size(), "standin").dump());
    co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
    co_return;
  }
  out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
        "request-id: req_standin\r\nTransfer-Encoding: chunked\r\n\r\n";
  co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
  auto events = sseEvents(t, body, req.body().size());
  asio::steady_timer gap(s.get_executor());
  for (size_t i = 0; i < events.size(); ++i) {
    if (t.cut_after_events >= 0 && static_cast<int>(i) == t.cut_after_events) {
      s.close();
      co_return;
    }
    int pause = i == 1 ? std::max(t.hold_ms, t.event_gap_ms) : i > 1 ? t.event_gap_ms : 0;
    if (pause > 0) {
      gap.expires_after(std::chrono::milliseconds(pause));
      co_await gap.async_wait(asio::use_awaitable);
    }
    std::string c = chunk(t.stamp_events ? stamp(events[i]) : events[i]);
    co_await asio::async_write(s, asio::buffer(c), asio::use_awaitable);
  }
  out = "0\r\n\r\n";
  co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
}

asio::awaitable<void> ModelStandin::Impl::serve(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  beast::tcp_stream s(std::move(socket));
  beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> p;
    p.body_limit(256 << 20);
    beast::error_code ec;
    co_await http::async_read(s, buf, p, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    auto req = p.release();
    Received r{std::string(req.target()), {}, req.body(), json::parse(req.body(), nullptr, false)};
    for (const auto& h : req) r.headers.emplace_back(std::string(h.name_string()), std::string(h.value()));
    {
      std::lock_guard l(mu);
      received.push_back(std::move(r));
    }
    co_await answer(s, req);
    if (!s.socket().is_open() || !req.keep_alive()) co_return;
  }
}

asio::awaitable<void> ModelStandin::Impl::accept() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(io, serve(std::move(socket)), asio::detached);
  }
}

ModelStandin::ModelStandin() : impl_(std::make_unique<Impl>()) {}
ModelStandin::~ModelStandin() { stop(); }

bool ModelStandin::start(int threads, const std::string& address) {
  try {
    tcp::endpoint ep(asio::ip::make_address(address), 0);
    address_ = address;
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen(4096);
  } catch (const std::exception&) {
    return false;
  }
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
  for (int i = 0; i < threads; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
  return true;
}

void ModelStandin::stop() {
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

void ModelStandin::setScript(std::vector<Turn> turns) {
  std::lock_guard l(impl_->mu);
  impl_->script = std::move(turns);
  impl_->next = 0;
  impl_->repeat = false;
}

void ModelStandin::setRepeat(Turn turn) {
  std::lock_guard l(impl_->mu);
  impl_->script = {std::move(turn)};
  impl_->repeat = true;
}

std::vector<Received> ModelStandin::received() const {
  std::lock_guard l(impl_->mu);
  return impl_->received;
}

}  // namespace paddock::gateway::testing
