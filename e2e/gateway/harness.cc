#include "e2e/gateway/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "operator/audit/blob.h"

namespace paddock::gateway::testing {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string dechunk(const std::string& body) {
  std::string out;
  size_t at = 0;
  while (at < body.size()) {
    size_t eol = body.find("\r\n", at);
    if (eol == std::string::npos) break;
    size_t n = std::stoul(body.substr(at, eol - at), nullptr, 16);
    if (n == 0) break;
    out += body.substr(eol + 2, n);
    at = eol + 2 + n + 2;
  }
  return out;
}

HttpReply parseReply(const std::string& raw) {
  HttpReply r;
  size_t head_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || head_end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    r.headers[lower(line.substr(0, colon))] = v;
  }
  r.body = raw.substr(head_end + 4);
  if (lower(r.headers["transfer-encoding"]) == "chunked") r.body = dechunk(r.body);
  return r;
}

}  // namespace

int connectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

HttpReply httpRequest(int port, const std::string& method, const std::string& target,
                      const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                      std::chrono::milliseconds timeout) {
  int fd = connectLoopback(port);
  if (fd < 0) return {};
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t at = 0; at < req.size();) {
    ssize_t n = ::send(fd, req.data() + at, req.size() - at, MSG_NOSIGNAL);
    if (n <= 0) break;
    at += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return parseReply(raw);
}

SilentClient::SilentClient(int port, const std::string& raw) {
  fd_ = connectLoopback(port);
  if (fd_ >= 0 && ::send(fd_, raw.data(), raw.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(raw.size())) {
    ::close(fd_);
    fd_ = -1;
  }
}

SilentClient::~SilentClient() {
  if (fd_ >= 0) ::close(fd_);
}

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> a, e;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (const auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
  e.push_back(nullptr);
  if (posix_spawn(&pid_, a[0], &fa, nullptr, a.data(), e.data()) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&fa);
}

Process::~Process() { terminate(); }

int Process::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return 128 + SIGKILL;
}

int Process::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string sha256Hex(const std::string& text) { return audit::blobHash(text).substr(7); }

GatewayProcess::GatewayProcess(const std::string& binary, const fs::path& dir, const std::string& key,
                               const std::string& config_yaml, const std::vector<std::string>& env)
    : dir_(dir) {
  fs::create_directories(dir / "secrets");
  std::ofstream(keyFile()) << key << "\n";
  fs::path config = dir / "gateway.yaml";
  std::ofstream(config) << header() << config_yaml;
  fs::path ready = dir / "ready";
  fs::remove(ready);
  process_ = std::make_unique<Process>(
      std::vector<std::string>{binary, "--config", config.string(), "--ready-file", ready.string(), "--shutdown-grace",
                               "5s", "--reload-interval", "100ms"},
      [&] {
        std::vector<std::string> all = {"PATH=/usr/bin:/bin"};
        all.insert(all.end(), env.begin(), env.end());
        return all;
      }(),
      (dir / "gateway.log").string());
  // Waits for the gateway to say it listens (it writes the file after binding).
  for (int i = 0; i < 500 && port_ == 0; ++i) {
    std::ifstream in(ready);
    if (!(in >> port_)) {
      port_ = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

std::string GatewayProcess::header() const {
  return "listen: 127.0.0.1:0\napiKeyFile: " + keyFile().string() + "\nauditDir: " + auditDir().string() + "\n";
}

void GatewayProcess::rewriteConfig(const std::string& config_yaml) const {
  fs::path next = dir_ / "gateway.yaml.next";
  std::ofstream(next) << header() << config_yaml;
  fs::rename(next, dir_ / "gateway.yaml");
}

std::string GatewayProcess::log() const {
  std::ifstream in(dir_ / "gateway.log");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double GatewayProcess::metric(const std::string& prefix) const {
  HttpReply r = httpRequest(port_, "GET", "/metrics", {}, "");
  std::istringstream in(r.body);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.starts_with(prefix)) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

namespace {

// A TCP connection to `address`:`port`, or -1.
int connectTo(const std::string& address, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

McpServerProcess::McpServerProcess(const std::string& install_script, const std::string& listen_host_cjs,
                                   const std::string& address, const std::filesystem::path& dir,
                                   const std::vector<std::string>& env)
    : address_(address), log_(dir / "mcp-server.log") {
  std::filesystem::create_directories(dir);
  Process install({"/bin/sh", "-c", "\"$0\" > \"$1\"", install_script, (dir / "mcp-server.entry").string()},
                  {"PATH=/usr/bin:/bin", "HOME=" + std::string(getenv("HOME") ? getenv("HOME") : "/root")},
                  (dir / "mcp-server-install.log").string());
  if (install.wait() != 0) return;
  std::ifstream in(dir / "mcp-server.entry");
  std::string entry;
  std::getline(in, entry);
  if (entry.empty()) return;
  const std::filesystem::path port_file = dir / "mcp-server.port";
  std::filesystem::remove(port_file);
  std::vector<std::string> e = {"PATH=/usr/bin:/bin", "HOME=" + dir.string(), "PORT=0", "PADDOCK_LISTEN_HOST=" + address,
                                "PADDOCK_PORT_FILE=" + port_file.string()};
  e.insert(e.end(), env.begin(), env.end());
  process_ = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/node", "--require", listen_host_cjs, entry, "streamableHttp"},
                                       e, log_.string());
  // Ready once it wrote the port the kernel gave it and accepts there; a process that exited
  // never will.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ready_ && std::chrono::steady_clock::now() < deadline && ::kill(process_->pid(), 0) == 0) {
    std::ifstream p(port_file);
    if (!(p >> port_)) port_ = 0;
    int fd = port_ > 0 ? connectTo(address, port_) : -1;
    ready_ = fd >= 0;
    if (fd >= 0) ::close(fd);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string McpServerProcess::log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace paddock::gateway::testing
