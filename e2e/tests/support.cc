#include "e2e/tests/support.h"

#include <fcntl.h>
#include <cerrno>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

extern char** environ;

namespace paddock::e2e {

std::string env(const char* name) {
  if (const char* v = std::getenv(name); v && *v) return v;
  static const std::map<std::string, std::string> built_in = {
      {"PADDOCK_E2E_KUBECONFIG", PADDOCK_E2E_KUBECONFIG},
      {"PADDOCK_E2E_KUBE_VERSION", PADDOCK_E2E_KUBE_VERSION},
      {"PADDOCK_OPERATOR_BIN", PADDOCK_OPERATOR_BIN},
      {"PADDOCK_KUBECTL", PADDOCK_KUBECTL},
      {"PADDOCK_E2E_CLUSTER_NAME", PADDOCK_E2E_CLUSTER_NAME},
      {"PADDOCK_E2E_CLUSTER_DIR", PADDOCK_E2E_CLUSTER_DIR},
      {"PADDOCK_E2E_CLUSTER_SCRIPT", PADDOCK_E2E_CLUSTER_SCRIPT},
      {"PADDOCK_AGENT_SIM_BIN", PADDOCK_AGENT_SIM_BIN},
      {"PADDOCK_E2E_PROMETHEUS_URL", PADDOCK_E2E_PROMETHEUS_URL},
      {"PADDOCK_E2E_PROMETHEUS_TARGETS", PADDOCK_E2E_PROMETHEUS_TARGETS},
      {"PADDOCK_HELM", PADDOCK_HELM},
  };
  if (auto it = built_in.find(name); it != built_in.end()) return it->second;
  ADD_FAILURE() << name << " is not set";
  return "";
}

std::unique_ptr<kube::RestClient> clientFor(const std::string& kubeconfig) {
  auto config = kube::loadKubeconfig({kubeconfig});
  if (!config) throw std::runtime_error(config.error().describe());
  auto client = kube::RestClient::create(*config, "paddock-e2e");
  if (!client) throw std::runtime_error(client.error().describe());
  return std::move(client.value());
}

std::unique_ptr<kube::RestClient> adminClient() { return clientFor(env("PADDOCK_E2E_KUBECONFIG")); }

std::unique_ptr<kube::RestClient> serviceAccountClient(kube::RestClient& admin, const std::string& ns, const std::string& sa) {
  request(admin, http::Method::Post, "/api/v1/namespaces/" + ns + "/serviceaccounts",
          {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", sa}}}});
  auto token = request(admin, http::Method::Post, "/api/v1/namespaces/" + ns + "/serviceaccounts/" + sa + "/token",
                       {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"},
                        {"spec", {{"expirationSeconds", 3600}}}});
  if (token.status != 201) throw std::runtime_error("TokenRequest for " + ns + "/" + sa + ": " + token.body);
  auto config = kube::loadKubeconfig({env("PADDOCK_E2E_KUBECONFIG")});
  if (!config) throw std::runtime_error(config.error().describe());
  config->tls.cert_pem.clear();
  config->tls.key_pem.clear();
  config->token = json::parse(token.body)["status"]["token"].get<std::string>();
  auto client = kube::RestClient::create(*config, "paddock-e2e");
  if (!client) throw std::runtime_error(client.error().describe());
  return std::move(client.value());
}

http::Response request(kube::RestClient& c, http::Method m, const std::string& path, const json& body) {
  http::Request req{m, path};
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.emplace_back("Content-Type", "application/json");
  }
  auto resp = c.send(req);
  if (!resp) throw std::runtime_error(std::string(http::methodName(m)) + " " + path + ": " + resp.error().describe());
  return resp.value();
}

int clusterCommand(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {env("PADDOCK_E2E_CLUSTER_SCRIPT")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--name");
  argv.push_back(env("PADDOCK_E2E_CLUSTER_NAME"));
  Process p(argv);
  int rc = p.wait(std::chrono::seconds(180));
  if (rc != 0) {
    std::string out;
    for (const auto& l : p.lines()) out += l + "\n";
    ADD_FAILURE() << "cluster.sh failed (" << rc << "):\n" << out;
  }
  return rc;
}

pid_t componentPid(const std::string& component) {
  std::ifstream in(env("PADDOCK_E2E_CLUSTER_DIR") + "/run/" + component + ".pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

namespace {

json fromYaml(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = fromYaml(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(fromYaml(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted
      if (text == "true" || text == "false") return text == "true";
      if (text == "null" || text == "~") return nullptr;
      char* end = nullptr;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (!text.empty() && *end == '\0') return n;
      double d = std::strtod(text.c_str(), &end);
      if (!text.empty() && *end == '\0' && text.find_first_of(".eE") != std::string::npos) return d;
      return text;
    }
    default:
      return nullptr;
  }
}

}  // namespace

json loadYaml(const std::string& path) { return fromYaml(YAML::LoadFile(path)); }

std::vector<json> loadYamlDocuments(const std::string& text) {
  std::vector<json> out;
  for (const auto& doc : YAML::LoadAll(text)) {
    if (doc.IsMap() || doc.IsSequence()) out.push_back(fromYaml(doc));
  }
  return out;
}

bool reconciling(Process& op) {
  return !op.waitForLine([](const std::string& l) { return l.find("reconciling AgentRuns") != std::string::npos; },
                         std::chrono::seconds(60))
              .empty();
}

void stopOperator(Process& op) {
  op.signal(SIGTERM);
  EXPECT_EQ(op.wait(std::chrono::seconds(20)), 0);
}

std::string phaseOf(const json& run) { return run.value(json::json_pointer("/status/phase"), std::string()); }

json condition(const json& object, const std::string& type) {
  for (const auto& c : object.value(json::json_pointer("/status/conditions"), json::array())) {
    if (c.value("type", "") == type) return c;
  }
  return nullptr;
}

std::string repoPath(const std::string& relative) { return std::string(PADDOCK_SOURCE_DIR) + "/" + relative; }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string base64Decode(const std::string& in) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, value = 0;
  for (char c : in) {
    auto at = alphabet.find(c);
    if (at == std::string::npos) continue;  // padding
    value = (value << 6) | static_cast<int>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xff));
    }
  }
  return out;
}

std::string randomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  static const char* chars = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 6; ++i) s.push_back(chars[rng() % 36]);
  return s;
}

TempNamespace::TempNamespace(kube::RestClient& c, const std::string& prefix, const json& labels)
    : c_(c), name_(prefix + "-" + randomSuffix()) {
  auto r = request(c_, http::Method::Post, "/api/v1/namespaces",
                   {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name_}, {"labels", labels}}}});
  if (r.status != 201) throw std::runtime_error("cannot create namespace " + name_ + ": " + r.body);
}

TempNamespace::~TempNamespace() {
  try {
    request(c_, http::Method::Delete, "/api/v1/namespaces/" + name_);
  } catch (...) {
  }
}

json watchUntil(kube::RestClient& c, const std::string& path, const std::string& resource_version,
                const std::function<bool(const std::string&, const json&)>& done, std::chrono::seconds timeout,
                const CancelToken& cancel) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string rv = resource_version;
  json found;
  while (found.is_null() && std::chrono::steady_clock::now() < deadline && !cancel.cancelled()) {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
    std::string sep = path.find('?') == std::string::npos ? "?" : "&";
    http::Request req{http::Method::Get, path + sep + "watch=1&allowWatchBookmarks=true&resourceVersion=" + rv +
                                             "&timeoutSeconds=" + std::to_string(std::max<long>(1, left.count()))};
    req.timeout = left + std::chrono::seconds(5);
    auto r = c.stream(req, [&](std::string_view line) {
      auto ev = json::parse(line, nullptr, false);
      if (!ev.is_object()) return true;
      auto& obj = ev["object"];
      if (obj.contains("metadata")) rv = obj["metadata"].value("resourceVersion", rv);
      std::string type = ev.value("type", "");
      if (type == "BOOKMARK" || type == "ERROR") return type != "ERROR";
      if (done(type, obj)) {
        found = obj;
        return false;
      }
      return true;
    }, cancel);
    if (!r && cancel.cancelled()) break;
    if (!r) throw std::runtime_error("watch " + path + ": " + r.error().describe());
    if (r->status != 200) throw std::runtime_error("watch " + path + ": HTTP " + std::to_string(r->status) + " " + r->body);
  }
  return found;
}

Process::Process(std::vector<std::string> argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  // Children start with no signals blocked, whatever the test runner's mask is.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  int rc = posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  out_fd_ = fds[0];
  if (rc != 0) {
    ::close(out_fd_);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  reader_ = std::thread([this] { readAll(); });
}

Process::~Process() {
  if (status_ < 0 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (reader_.joinable()) reader_.join();  // the pipe closes with the process
  if (out_fd_ >= 0) ::close(out_fd_);
}

void Process::readAll() {
  std::string buffer;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(mu_);
    if (n <= 0) {
      if (!buffer.empty()) lines_.push_back(buffer);
      closed_ = true;
      changed_.notify_all();
      return;
    }
    buffer.append(buf, static_cast<size_t>(n));
    for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
      lines_.push_back(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
    changed_.notify_all();
  }
}

std::vector<std::string> Process::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::string Process::waitForLine(const std::function<bool(const std::string&)>& match, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (true) {
    for (; examined_ < lines_.size(); ++examined_) {
      if (match(lines_[examined_])) return lines_[examined_++];
    }
    if (closed_) return "";
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && examined_ == lines_.size()) return "";
  }
}

bool Process::exited() {
  if (status_ >= 0) return true;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return true;
}

int Process::wait(std::chrono::seconds timeout) {
  if (status_ >= 0) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    // Output ends when the process exits (or hands its pipe to no one).
    std::unique_lock lock(mu_);
    changed_.wait_until(lock, deadline, [&] { return closed_; });
  }
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    CancelToken().waitFor(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace paddock::e2e
