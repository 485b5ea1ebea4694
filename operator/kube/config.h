// Where the API server is and how to authenticate to it: from a kubeconfig file (the
// --kubeconfig flag, else $KUBECONFIG, else ~/.kube/config) or from inside a pod.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "operator/common/clock.h"
#include "operator/common/result.h"
#include "operator/http/client.h"

namespace paddock::kube {

struct ClusterConfig {
  std::string server;            // "https://127.0.0.1:6443"
  http::TlsOptions tls;
  std::string token;             // a static bearer token
  std::string token_file;        // a bearer token re-read from this file as it rotates
  std::string default_namespace = "default";
  std::string source;            // where this came from, for logs: "kubeconfig /path (context x)"
};

// Reads kubeconfig files, merged as kubectl merges them: for each name the first file that
// defines it wins, and the first current-context set wins. `context` overrides current-context.
// Relative file references are resolved against the file that names them.
Result<ClusterConfig> loadKubeconfig(const std::vector<std::string>& paths, const std::string& context = "");

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and the files under `dir`.
Result<ClusterConfig> loadInCluster(const std::string& dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// --kubeconfig when given, else $KUBECONFIG, else in-cluster when KUBERNETES_SERVICE_HOST is set,
// else ~/.kube/config.
Result<ClusterConfig> resolveConfig(const std::string& kubeconfig_flag, const std::string& context = "");

// A bearer token that follows its file: re-read at most once a minute (projected
// service-account tokens rotate hourly), so a rotated token is picked up without a restart.
class BearerToken {
 public:
  explicit BearerToken(const ClusterConfig& config, const Clock& clock = systemClock())
      : token_(config.token), file_(config.token_file), clock_(clock) {}
  // "" when there is no token.
  std::string current();

 private:
  std::mutex mu_;
  std::string token_;
  std::string file_;
  const Clock& clock_;
  Clock::TimePoint read_at_{};
};

// Decodes standard base64, ignoring white space; false on malformed input.
bool base64Decode(const std::string& in, std::string& out);

}  // namespace paddock::kube
