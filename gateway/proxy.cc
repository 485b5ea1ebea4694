// The egress proxy: CONNECT host:port (TLS, with the ClientHello's SNI equal to the host) and
// plain-HTTP requests in absolute form, each only to an allowed host and port and only to
// addresses the gateway resolved itself and found allowed.
#include <memory>

#include "gateway/egress.h"
#include "gateway/io.h"
#include "operator/common/log.h"

namespace paddock::gateway {
namespace {

constexpr auto kIdle = std::chrono::seconds(300);

// `run`: the run whose credential the request presented (its refusal is counted as its own).
awaitable<void> refuse(Gateway& g, beast::tcp_stream& client, int status, std::string result, std::string why,
                       std::shared_ptr<const RunConfig> run = nullptr) {
  g.metrics().egress(result);
  if (run && result != "failed") g.metrics().refusal(*run, "egress");
  log::info("egress refused", {{"result", result}, {"why", why}, {"run", run ? run->key() : ""}});
  std::string type = "text/plain", body = "paddock-gateway: " + why + "\n";
  co_await writeResponse(client, status, std::move(type), std::move(body), false);
}

// The endpoints of `hp` a connection may go to, or an error saying why there are none.
awaitable<std::variant<std::vector<tcp::endpoint>, std::pair<std::string, std::string>>> allowedEndpoints(
    Gateway& g, const HostPort& hp) {
  const auto config = g.config();  // held across the resolution below
  const auto& rules = config->egress;
  std::vector<tcp::endpoint> out;
  std::string why;
  if (auto literal = parseAddress(hp.host)) {
    // An address literal needs an egress cidr entry: host entries allow names.
    bool by_cidr = false;
    for (const auto& r : rules) {
      by_cidr |= r.cidr && r.cidr->contains(*literal) &&
                 (r.ports.empty() || std::find(r.ports.begin(), r.ports.end(), hp.port) != r.ports.end());
    }
    if (!by_cidr) {
      co_return std::pair{std::string("refused_address"),
                          hp.host + ":" + std::to_string(hp.port) + " is an address no egress cidr entry allows"};
    }
    out.emplace_back(asio::ip::make_address(hp.host), static_cast<unsigned short>(hp.port));
    co_return out;
  }
  if (!hostAllowed(rules, hp.host, hp.port)) {
    co_return std::pair{std::string("refused_host"), hp.host + ":" + std::to_string(hp.port) +
                                            " is not in the egress allow-list (the policy's egress[].host entries)"};
  }
  tcp::resolver resolver(co_await asio::this_coro::executor);
  beast::error_code ec;
  std::string port = std::to_string(hp.port);
  auto results = co_await resolver.async_resolve(hp.host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::pair{std::string("failed"), hp.host + " does not resolve: " + ec.message()};
  for (const auto& r : results) {
    auto a = parseAddress(r.endpoint().address().to_string());
    if (a && addressAllowed(rules, *a, hp.port, &why)) out.push_back(r.endpoint());
  }
  if (out.empty()) co_return std::pair{std::string("refused_address"), hp.host + " resolves only to refused addresses: " + why};
  co_return out;
}

// Copies bytes from `from` to `to` until either side ends or is idle too long.
awaitable<void> pump(beast::tcp_stream& from, beast::tcp_stream& to) {
  std::vector<char> buf(16384);
  beast::error_code ec;
  for (;;) {
    from.expires_after(kIdle);
    size_t n = co_await from.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    to.expires_after(kIdle);
    co_await asio::async_write(to, asio::buffer(buf.data(), n), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  to.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Both directions at once; returns when both have ended.
awaitable<void> tunnel(std::shared_ptr<beast::tcp_stream> a, std::shared_ptr<beast::tcp_stream> b) {
  auto ex = co_await asio::this_coro::executor;
  auto done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  asio::co_spawn(ex, [a, b, done]() -> awaitable<void> { co_await pump(*b, *a); }, [done](std::exception_ptr) {
    done->cancel();
  });
  co_await pump(*a, *b);
  beast::error_code ec;
  co_await done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  a->close();
  b->close();
}

struct Hello {
  std::string bytes;    // the ClientHello, to forward
  std::string refusal;  // why the tunnel ends instead, or ""
};

// Reads the client's first TLS record; its SNI must name `host` (an address literal may have none).
awaitable<Hello> readClientHello(beast::tcp_stream& client, beast::flat_buffer& buffer, const std::string& host) {
  Hello h{std::string(static_cast<const char*>(buffer.data().data()), buffer.size()), ""};
  buffer.consume(buffer.size());
  std::vector<char> buf(4096);
  for (;;) {
    SniResult sni = parseClientHelloSni(h.bytes);
    if (sni.kind == SniResult::Kind::Found && sni.name == host) co_return h;
    if (sni.kind == SniResult::Kind::NoSni && parseAddress(host)) co_return h;
    if (sni.kind == SniResult::Kind::Found) {
      h.refusal = "the TLS server name " + sni.name + " is not the CONNECT host " + host;
    } else if (sni.kind != SniResult::Kind::Incomplete) {
      h.refusal = "a CONNECT tunnel must start with a TLS ClientHello naming " + host;
    } else if (h.bytes.size() > 16384) {
      h.refusal = "the ClientHello is larger than 16 KiB";
    }
    if (!h.refusal.empty()) co_return h;
    client.expires_after(std::chrono::seconds(10));
    beast::error_code ec;
    size_t n = co_await client.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      h.refusal = "the client sent no ClientHello: " + ec.message();
      co_return h;
    }
    h.bytes.append(buf.data(), n);
  }
}

}  // namespace

awaitable<void> proxyConnect(Gateway& g, beast::tcp_stream& client, beast::flat_buffer& buffer, std::string target,
                             std::string credential) {
  const std::shared_ptr<const RunConfig> run = g.authenticate(credential);
  auto hp = parseHostPort(target);
  if (!hp) {
    std::string result = "refused_host", why = "CONNECT needs host:port, not \"" + target + "\"";
    co_await refuse(g, client, 400, std::move(result), std::move(why));
    co_return;
  }
  auto allowed = co_await allowedEndpoints(g, *hp);
  if (auto* no = std::get_if<1>(&allowed)) {
    std::pair<std::string, std::string> copy = *no;
    co_await refuse(g, client, 403, std::move(copy.first), std::move(copy.second), run);
    co_return;
  }
  const std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  client.expires_after(std::chrono::seconds(30));
  co_await asio::async_write(client, asio::buffer(ok), asio::use_awaitable);
  // Nothing reaches the host before the ClientHello names it.
  Hello hello = co_await readClientHello(client, buffer, hp->host);
  if (!hello.refusal.empty()) {
    g.metrics().egress("refused_sni");
    if (run) g.metrics().refusal(*run, "egress");
    log::info("egress refused", {{"result", "refused_sni"}, {"host", hp->host}, {"why", hello.refusal}});
    co_return;
  }
  auto up = std::make_shared<beast::tcp_stream>(co_await asio::this_coro::executor);
  up->expires_after(std::chrono::seconds(30));
  beast::error_code ec;
  co_await up->async_connect(std::get<0>(allowed), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    g.metrics().egress("failed");
    log::info("egress connection failed", {{"host", hp->host}, {"port", hp->port}, {"error", ec.message()}});
    co_return;
  }
  co_await asio::async_write(*up, asio::buffer(hello.bytes), asio::use_awaitable);
  g.metrics().egress("allowed");
  log::info("egress tunnel", {{"host", hp->host}, {"port", hp->port}});
  auto down = std::make_shared<beast::tcp_stream>(std::move(client));
  co_await tunnel(down, up);
}

awaitable<void> proxyHttp(Gateway& g, beast::tcp_stream& client, Request req) {
  const std::shared_ptr<const RunConfig> run = g.authenticate(proxyCredential(req[http::field::proxy_authorization]));
  std::string_view url = req.target();
  url.remove_prefix(7);  // "http://"
  size_t slash = url.find('/');
  auto hp = parseHostPort(url.substr(0, slash), 80);
  if (!hp) {
    std::string result = "refused_host", why = "the request's URL has no valid host";
    co_await refuse(g, client, 400, std::move(result), std::move(why));
    co_return;
  }
  auto allowed = co_await allowedEndpoints(g, *hp);
  if (auto* no = std::get_if<1>(&allowed)) {
    std::pair<std::string, std::string> copy = *no;
    co_await refuse(g, client, 403, std::move(copy.first), std::move(copy.second), run);
    co_return;
  }
  auto up = std::make_shared<beast::tcp_stream>(co_await asio::this_coro::executor);
  up->expires_after(std::chrono::seconds(30));
  beast::error_code ec;
  co_await up->async_connect(std::get<0>(allowed), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::string result = "failed", why = "cannot connect to " + hp->host + ": " + ec.message();
    co_await refuse(g, client, 502, std::move(result), std::move(why));
    co_return;
  }
  req.target(slash == std::string_view::npos ? "/" : std::string(url.substr(slash)));
  req.erase(http::field::proxy_authorization);
  req.erase("proxy-connection");
  req.keep_alive(false);
  co_await http::async_write(*up, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  g.metrics().egress("allowed");
  auto down = std::make_shared<beast::tcp_stream>(std::move(client));
  co_await pump(*up, *down);
  down->close();
  up->close();
}

}  // namespace paddock::gateway
