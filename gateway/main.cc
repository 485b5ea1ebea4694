// paddock-gateway: wiring only. Reads the configuration and the model key, opens the transcript
// store, listens, and stops gracefully on SIGTERM (no new connections; calls in flight finish
// within --shutdown-grace).
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

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, level = "info", ready_file;
  int threads = 2;
  std::chrono::milliseconds grace{30000};
  Flags flags("paddock-gateway",
              "Relays a team's agents to the model API with their spend capped in-line, proxies their egress by "
              "hostname, and records every model call in the audit store.");
  flags.add("config", &config_path, "the configuration file (YAML or JSON; see docs/gateway.md). Required.");
  flags.add("log-level", &level, "debug, info, warn or error");
  flags.add("threads", &threads, "I/O threads");
  flags.add("shutdown-grace", &grace, "on SIGTERM, how long calls in flight may take to finish");
  flags.add("ready-file", &ready_file, "once listening, write the bound port to this file (for tests)");
  flags.parseOrExit(argc, argv);
  log::setBaseFields({{"component", "paddock-gateway"}});
  log::Level lv;
  if (!log::parseLevel(level, lv)) fail("bad flag", Error::local("InvalidFlag", "--log-level: " + level));
  log::setLevel(lv);
  if (config_path.empty()) fail("bad flag", Error::local("InvalidFlag", "--config is required"));
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
