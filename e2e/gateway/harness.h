// What the gateway tests and benchmark share: the gateway as its own process with a configuration
// written for the test, and a small HTTP client on loopback.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace paddock::gateway::testing {

struct HttpReply {
  int status = 0;  // 0: no answer (connection refused or closed early)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;  // chunked bodies decoded
};

// A TCP connection to 127.0.0.1:`port` (TCP_NODELAY), or -1.
int connectLoopback(int port);

// One request on a fresh connection (Connection: close); reads until the server closes.
HttpReply httpRequest(int port, const std::string& method, const std::string& target,
                      const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A connection that sends one request and then reads nothing (a slow client) until destroyed.
class SilentClient {
 public:
  SilentClient(int port, const std::string& raw_request);
  ~SilentClient();
  bool connected() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A process started with posix_spawn; stdout and stderr go to `log`. Ended with SIGTERM (then
// SIGKILL after 5 s) when destroyed.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log);
  ~Process();
  pid_t pid() const { return pid_; }
  // Sends SIGTERM and waits; the exit status (128 + signal when killed).
  int terminate();
  // Waits for it to exit by itself; the exit status.
  int wait();

 private:
  pid_t pid_ = -1;
};

// sha256 hex of a credential, as the gateway configuration holds it.
std::string sha256Hex(const std::string& text);

// A paddock-gateway process on 127.0.0.1 with the configuration `config_yaml` (its listen,
// apiKeyFile and auditDir are filled in here).
class GatewayProcess {
 public:
  // `env`: more of the gateway's environment (e.g. SSL_CERT_FILE).
  GatewayProcess(const std::string& binary, const std::filesystem::path& dir, const std::string& key,
                 const std::string& config_yaml, const std::vector<std::string>& env = {});
  bool ready() const { return port_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path auditDir() const { return dir_ / "audit"; }
  std::filesystem::path keyFile() const { return dir_ / "secrets" / "api-key"; }
  std::string log() const;
  // The sum of the /metrics samples whose line starts with `prefix` (a name and some labels).
  double metric(const std::string& prefix) const;
  int terminate() { return process_->terminate(); }
  // Replaces the configuration file at once (a new file renamed over it, as the kubelet swaps a
  // mounted ConfigMap); the gateway reads it again every 100 ms here.
  void rewriteConfig(const std::string& config_yaml) const;

 private:
  std::string header() const;
  std::filesystem::path dir_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// The reference MCP server (@modelcontextprotocol/server-everything; `install_script`,
// e2e/gateway/mcp-server.sh, installs it once and prints its entry point) in streamable HTTP mode
// at `address` (an address the test holds: loopback, or the node's veth; the preload
// `listen_host_cjs` binds it there) on a free port, with `env` added. Ready once it accepts.
class McpServerProcess {
 public:
  McpServerProcess(const std::string& install_script, const std::string& listen_host_cjs, const std::string& address,
                   const std::filesystem::path& dir, const std::vector<std::string>& env = {});
  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string url() const { return "http://" + address_ + ":" + std::to_string(port_) + "/mcp"; }
  std::string log() const;

 private:
  std::string address_;
  std::filesystem::path log_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  bool ready_ = false;
};

}  // namespace paddock::gateway::testing
