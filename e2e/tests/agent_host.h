// Plays the kubelet for one agent pod of an e2e test (kwok runs no containers): runs a
// paddock-agent-sim process for the run, lists it as a target of the e2e Prometheus
// (e2e/prometheus.sh) once its pod exists, projects the pod's annotations into its downward-API
// directory as the kubelet does, and stops it with SIGTERM as the kubelet does when the pod is
// deleted.
//
// The target carries the __meta_kubernetes_pod_* labels Prometheus's Kubernetes service
// discovery would give the pod (namespace, name, UID, labels, the metrics port's name), taken
// from the pod object by the harness, never from the agent: the e2e Prometheus relabels them
// exactly as the shipped scrape job does (charts/paddock/files/agent-scrape-job.yaml).
//
// Generic on purpose: a test, or a pod watch in a test, decides when to project and terminate.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/tests/support.h"

namespace paddock::e2e {

class AgentHost {
 public:
  struct Options {
    std::string agentrun;  // the run
    std::string ns;        // its namespace
    std::string claims_run;  // the agentrun label the agent writes; empty: its own run (a spoofer names another)
    double tokens_per_second = 100;
    double usd_per_second = 0.001;
    std::string model;         // empty: the simulator's default
    double reset_after = 0;    // seconds; 0: the counters never reset
    double duration = 0;       // seconds after which it exits with exit_code; 0: until terminate()
    int exit_code = 0;
    std::vector<std::string> extra_args;  // more paddock-agent-sim flags
    std::string targets_dir;  // empty: the e2e Prometheus' (PADDOCK_E2E_PROMETHEUS_TARGETS)
  };

  // Starts the simulator in a fresh directory and waits until it serves metrics. Throws
  // std::runtime_error when it cannot. It is scraped once registerPod() names its pod.
  explicit AgentHost(Options options);
  // Kills the simulator if it still runs, removes its target file and its directory.
  ~AgentHost();
  AgentHost(const AgentHost&) = delete;
  AgentHost& operator=(const AgentHost&) = delete;

  // "127.0.0.1:PORT", where it serves /metrics.
  const std::string& address() const { return address_; }
  // The downward-API volume (the simulator's --control-dir) and the workspace (--workspace).
  std::string controlDir() const { return dir_ + "/control"; }
  std::string workspace() const { return dir_ + "/workspace"; }

  // Projects the pod's metadata.annotations (a JSON object; non-string values are written as
  // their JSON text) into controlDir()/annotations, atomically as the kubelet does. Throws on failure.
  void projectAnnotations(const nlohmann::json& annotations);
  // Sends SIGTERM, as the kubelet does when the pod is deleted: once, however many times the
  // deletion is seen (a second SIGTERM means "exit at once" to the simulator).
  void terminate();
  // Waits for the simulator to exit; its exit status (128+signal when killed), or -1 at timeout.
  int wait(std::chrono::seconds timeout);
  // Writes the target file <targets_dir>/<ns>_<agentrun>.json with the service-discovery labels
  // of `pod` (a Pod object, or standInPod's), as Prometheus discovers a pod. Idempotent; throws
  // std::runtime_error when it cannot write.
  void registerPod(const nlohmann::json& pod);
  // Removes the target file, so Prometheus stops scraping it (the pod is gone). Idempotent.
  void unregister();
  // A JSON file of the workspace ("checkpoint.json", "wip.json"), or null when it is missing.
  nlohmann::json workspaceFile(const std::string& name) const;
  // The simulator's JSON log lines.
  Process& process() { return *process_; }

 private:
  Options options_;
  std::string dir_;
  std::string target_file_;
  std::string address_;
  std::unique_ptr<Process> process_;
  std::once_flag terminated_;
};

// A Pod object as the operator would make it for the run (name, namespace, a fresh UID, its
// labels), for tests without a cluster.
nlohmann::json standInPod(const std::string& ns, const std::string& run);

// An instant query against the e2e Prometheus (PADDOCK_E2E_PROMETHEUS_URL): the `data.result`
// of /api/v1/query. Throws std::runtime_error when Prometheus cannot be reached or refuses the query.
nlohmann::json prometheusQuery(const std::string& promql);
// The value of the query's first sample, or nullopt when the result is empty.
std::optional<double> prometheusValue(const std::string& promql);

}  // namespace paddock::e2e
