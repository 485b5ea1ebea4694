// paddock-gateway: wiring only. Reads the configuration and the model key, opens the transcript
// store, listens, reloads the configuration when its file changes, and stops gracefully on
// SIGTERM (no new connections; calls in flight finish within --shutdown-grace).
// With --wait-for-credential it is instead the agent pod's init container: it waits until the
// gateway serves the run's credential.
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "gateway/io.h"
#include "operator/audit/store.h"
#include "operator/common/flags.h"
#include "operator/common/log.h"

using namespace paddock;
using namespace paddock::gateway;

namespace {

Result<std::string> readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::local("InvalidConfig", std::string("cannot read ") + what + " " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

[[noreturn]] void fail(const std::string& message, const Error& e) {
  log::error(message, {{"error", e.describe()}});
  std::exit(1);
}

// The model key: the file's first line, without surrounding whitespace.
std::string loadKey(const std::string& path) {
  auto text = readFile(path, "the model key (apiKeyFile)");
  if (!text) fail("cannot start", text.error());
  std::string key = text->substr(0, text->find('\n'));
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) fail("cannot start", Error::local("InvalidConfig", "the model key file " + path + " is empty"));
  return key;
}

std::unique_ptr<audit::AuditLog> openTranscript(const Config& config) {
  if (config.audit_dir.empty()) return nullptr;
  auto log = audit::openAuditLog(audit::makeBackend(config.audit_dir), audit::AuditLogOptions{.actor = "paddock-gateway"});
  if (!log) fail("cannot open the audit store " + config.audit_dir, log.error());
  return std::move(*log);
}

void stopGracefully(asio::io_context& io, tcp::acceptor& acceptor, std::chrono::milliseconds grace) {
  beast::error_code ec;
  acceptor.close(ec);
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto timer = std::make_shared<asio::steady_timer>(io);
  auto check = std::make_shared<std::function<void()>>();
  *check = [&io, timer, check, deadline] {
    if (activeConnections() == 0 || std::chrono::steady_clock::now() >= deadline) {
      log::info("stopping", {{"connections", activeConnections()}});
      io.stop();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(50));
    timer->async_wait([check](beast::error_code) { (*check)(); });
  };
  (*check)();
}

// Polls the configuration file's content every `every`; a new content that parses is swapped in
// (calls in flight keep the one they started with), one that does not is logged and ignored.
awaitable<void> watchConfig(Gateway& g, std::string path, std::chrono::milliseconds every, std::string seen) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string unreadable;
  for (;;) {
    timer.expires_after(every);
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    auto text = readFile(path, "the configuration");
    if (!text) {
      if (unreadable.empty()) log::warn("configuration not reloaded", {{"error", text.error().describe()}});
      unreadable = "1";
      continue;
    }
    unreadable.clear();
    std::string hash = tokenHash(*text);
    if (hash == seen) continue;
    seen = hash;
    auto next = parseConfig(*text);
    if (!next) {
      log::error("configuration not reloaded: the new file is invalid; the gateway keeps serving the last good one",
                 {{"config", path}, {"error", next.error().describe()}});
      continue;
    }
    size_t runs = next->runs.size();
    auto kept = g.reload(std::move(*next));
    log::info("configuration reloaded", {{"config", path}, {"runs", runs}, {"sha256", hash.substr(0, 12)}});
    if (!kept.empty()) log::warn("configuration fields that take effect only at a restart changed", {{"fields", kept}});
  }
}

// The agent pod's init container: asks the gateway at `url` (http://host:port) whether it
// serves the credential in `file` (GET /v1/paddock/credential) every second until it does (0)
// or `timeout` has passed (1, saying why on stderr, which the pod's status shows).
int waitForCredential(const std::string& file, const std::string& url, std::chrono::milliseconds timeout) {
  if (!url.starts_with("http://")) {
    std::fprintf(stderr, "--gateway-url must be http://host:port, not \"%s\"\n", url.c_str());
    return 2;
  }
  auto hp = parseHostPort(url.substr(7), 80);
  if (!hp) {
    std::fprintf(stderr, "--gateway-url: \"%s\" has no host:port\n", url.c_str());
    return 2;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    auto text = readFile(file, "the run's credential");
    std::string token = text ? text->substr(0, text->find('\n')) : "";
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (!text) {
      last = text.error().message;
    } else if (token.empty()) {
      last = "the credential file " + file + " is empty";
    } else {
      try {
        asio::io_context io;
        tcp::resolver resolver(io);
        beast::tcp_stream stream(io);
        stream.expires_after(std::chrono::seconds(5));
        stream.connect(resolver.resolve(hp->host, std::to_string(hp->port)));
        http::request<http::empty_body> req{http::verb::get, "/v1/paddock/credential", 11};
        req.set(http::field::host, hp->host);
        req.set("x-api-key", token);
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(stream, buffer, res);
        if (res.result_int() == 204) {
          log::info("the gateway serves the run's credential", {{"gateway", url}});
          return 0;
        }
        last = "the gateway answers " + std::to_string(res.result_int()) + " (it has not loaded the run yet)";
      } catch (const std::exception& e) {
        last = std::string("the gateway cannot be reached: ") + e.what();
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "the gateway did not serve the run's credential within %llds: %s\n",
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()), last.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, level = "info", ready_file;
  int threads = 2;
  std::chrono::milliseconds grace{30000}, reload_every{2000}, wait_timeout{600000};
  std::string wait_file, gateway_url;
  Flags flags("paddock-gateway",
              "Relays a team's agents to the model API with their spend capped in-line, proxies their egress by "
              "hostname, and records every model call in the audit store.");
  flags.add("config", &config_path, "the configuration file (YAML or JSON; see docs/gateway.md). Required.");
  flags.add("log-level", &level, "debug, info, warn or error");
  flags.add("threads", &threads, "I/O threads");
  flags.add("shutdown-grace", &grace, "on SIGTERM, how long calls in flight may take to finish");
  flags.add("ready-file", &ready_file, "once listening, write the bound port to this file (for tests)");
  flags.add("reload-interval", &reload_every,
            "how often the configuration file is read again; a changed, valid file is swapped in without a restart");
  flags.add("wait-for-credential", &wait_file,
            "instead of serving: wait until the gateway at --gateway-url serves the credential in this file, then exit 0 "
            "(the agent pod's init container)");
  flags.add("gateway-url", &gateway_url, "with --wait-for-credential: the gateway, http://host:port");
  flags.add("wait-timeout", &wait_timeout, "with --wait-for-credential: how long to wait before exiting 1");
  flags.parseOrExit(argc, argv);
  log::setBaseFields({{"component", "paddock-gateway"}});
  log::Level lv;
  if (!log::parseLevel(level, lv)) fail("bad flag", Error::local("InvalidFlag", "--log-level: " + level));
  log::setLevel(lv);
  if (!wait_file.empty()) return waitForCredential(wait_file, gateway_url, wait_timeout);
  if (config_path.empty()) fail("bad flag", Error::local("InvalidFlag", "--config is required"));
  if (reload_every.count() <= 0) fail("bad flag", Error::local("InvalidFlag", "--reload-interval must be positive, e.g. 2s"));
  auto text = readFile(config_path, "the configuration");
  if (!text) fail("cannot start", text.error());
  auto config = parseConfig(*text);
  if (!config) fail("cannot start: bad configuration in " + config_path, config.error());
  std::signal(SIGPIPE, SIG_IGN);

  std::string key = loadKey(config->api_key_file);
  Gateway gateway(*config, key, openTranscript(*config));
  if (!config->audit_dir.empty()) gateway.restoreSpend(config->audit_dir);
  Gateway* g = &gateway;

  asio::io_context io(threads);
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_default_verify_paths();
  // Port 0 (any free port) is allowed here, unlike in an egress target.
  std::string listen_text = config->listen;
  if (listen_text.ends_with(":0")) listen_text.replace(listen_text.size() - 1, 1, "65535");
  auto listen = parseHostPort(listen_text);
  if (listen && config->listen.ends_with(":0")) listen->port = 0;
  if (!listen) fail("cannot start", Error::local("InvalidConfig", "listen: \"" + config->listen + "\" is not host:port"));
  tcp::acceptor acceptor(io);
  try {
    tcp::endpoint ep(asio::ip::make_address(listen->host), static_cast<unsigned short>(listen->port));
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(1024);
  } catch (const std::exception& e) {
    fail("cannot listen", Error::local("Listen", config->listen + ": " + e.what()));
  }
  int port = acceptor.local_endpoint().port();
  log::info("listening", {{"address", listen->host}, {"port", port}, {"upstream", config->upstream},
                          {"runs", config->runs.size()}, {"pinnedModel", config->pinned_model}});
  if (!ready_file.empty()) std::ofstream(ready_file) << port << "\n";
  asio::co_spawn(io, acceptLoop(*g, tls, acceptor), asio::detached);
  asio::co_spawn(io, watchConfig(*g, config_path, reload_every, tokenHash(*text)), asio::detached);

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](beast::error_code ec, int sig) {
    if (ec) return;
    log::info("signal received: finishing calls in flight", {{"signal", sig}, {"connections", activeConnections()}});
    signals.async_wait([](beast::error_code e, int) {
      if (!e) std::_Exit(1);
    });
    stopGracefully(io, acceptor, grace);
  });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
