// Shared helpers for end-to-end tests: the cluster's kubeconfig, JSON requests, watches, and
// child processes. Tests talk to the real API server started by e2e/cluster.sh.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/kube/rest.h"

namespace paddock::e2e {

using nlohmann::json;

// A setting of the e2e tests: the environment variable when set, else the value CMake built in
// (PADDOCK_E2E_KUBECONFIG, PADDOCK_E2E_KUBE_VERSION, PADDOCK_OPERATOR_BIN, PADDOCK_E2E_CLUSTER_NAME,
// PADDOCK_E2E_CLUSTER_DIR, PADDOCK_E2E_CLUSTER_SCRIPT, PADDOCK_AGENT_SIM_BIN, PADDOCK_E2E_PROMETHEUS_URL,
// PADDOCK_E2E_PROMETHEUS_TARGETS, PADDOCK_HELM).
std::string env(const char* name);

// A client for the test cluster as its admin, or as the user of another kubeconfig.
std::unique_ptr<kube::RestClient> adminClient();
std::unique_ptr<kube::RestClient> clientFor(const std::string& kubeconfig);

// A client authenticated as service account `sa` of namespace `ns` (created if missing) with a
// TokenRequest token, as a controller running in the cluster would be.
std::unique_ptr<kube::RestClient> serviceAccountClient(kube::RestClient& admin, const std::string& ns, const std::string& sa);

// Sends JSON and returns the response as is (tests assert on status codes).
http::Response request(kube::RestClient& c, http::Method m, const std::string& path, const json& body = nullptr);

// A fresh namespace named prefix-<random>, deleted when the guard is destroyed.
class TempNamespace {
 public:
  TempNamespace(kube::RestClient& c, const std::string& prefix, const json& labels = json::object());
  ~TempNamespace();
  const std::string& name() const { return name_; }

 private:
  kube::RestClient& c_;
  std::string name_;
};

// Watches `path` (a collection, with an optional fieldSelector/labelSelector query) from
// `resource_version` until `done` returns true for an event's object, or `timeout` passes.
// Returns the object that satisfied `done`, or null (also when `cancel` fires).
json watchUntil(kube::RestClient& c, const std::string& path, const std::string& resource_version,
                const std::function<bool(const std::string& type, const json& object)>& done,
                std::chrono::seconds timeout, const CancelToken& cancel = {});

// A child process with its stdout and stderr captured together, line by line. A thread reads
// the pipe all the time, so a chatty child never blocks on a full pipe.
class Process {
 public:
  explicit Process(std::vector<std::string> argv);
  ~Process();
  // Waits for a line, after those already examined by earlier calls, for which `match` is true;
  // returns it, or "" at timeout or exit.
  std::string waitForLine(const std::function<bool(const std::string&)>& match, std::chrono::seconds timeout);
  void signal(int sig) { ::kill(pid_, sig); }
  // Waits for exit; returns the exit status (128+signal when killed), or -1 at timeout.
  int wait(std::chrono::seconds timeout);
  // True once the process has exited (without waiting; wait() then returns its status).
  bool exited();
  // Every line read so far.
  std::vector<std::string> lines() const;
  pid_t pid() const { return pid_; }

 private:
  void readAll();
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int status_ = -1;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;  // guarded by mu_
  bool closed_ = false;             // guarded by mu_: the pipe reached end of file
  size_t examined_ = 0;             // lines waitForLine has looked at
  std::thread reader_;
};

// Waits until paddock-operator `op` logs that it leads and reconciles AgentRuns (at most 60 s).
bool reconciling(Process& op);
// Stops a paddock-operator with SIGTERM and expects a clean exit within 20 s.
void stopOperator(Process& op);

std::string randomSuffix();
// The bytes of a base64 text (a Secret's data value).
std::string base64Decode(const std::string& in);
// The file's whole text, or "" when it cannot be read.
std::string readFile(const std::string& path);

// A YAML file (one document) as JSON, with YAML's types: quoted scalars stay strings, plain ones
// become numbers, booleans or null where they read as such. For the samples in crds/samples.
json loadYaml(const std::string& path);
// Every document of a YAML stream (helm's output), the same way; empty documents are left out.
std::vector<json> loadYamlDocuments(const std::string& text);
// A file of the repository, by its path from the repository's root.
std::string repoPath(const std::string& relative);

// Runs e2e/cluster.sh with `args` against the test cluster; returns its exit status.
int clusterCommand(const std::vector<std::string>& args);
// The PID of a control-plane component of the test cluster ("kube-apiserver", "etcd", ...).
pid_t componentPid(const std::string& component);

// A run's status.phase ("" before the first status write).
std::string phaseOf(const json& run);
// The status condition of that type, or null.
json condition(const json& object, const std::string& type);

// Polls `condition` until it holds or `timeout` passes; true when it held.
template <typename F>
bool eventually(F condition, std::chrono::milliseconds timeout, std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    CancelToken().waitFor(every);
  }
  return true;
}

}  // namespace paddock::e2e
