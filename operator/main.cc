// paddock-operator: reconciles AgentRuns into hardened, budgeted, audited agent pods.
#include <unistd.h>

#include <algorithm>
#include <memory>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "operator/common/flags.h"
#include "operator/common/log.h"
#include "operator/common/signals.h"
#include "operator/http/server.h"
#include "operator/kube/config.h"
#include "operator/kube/rest.h"

using namespace paddock;

namespace {

struct Options {
  std::string kubeconfig;
  std::string context;
  std::string listen_address = ":8080";
  std::string log_level = "info";
  bool insecure_skip_tls_verify = false;
};

}  // namespace

int main(int argc, char** argv) {
  CancelToken shutdown = shutdownOnSignal();

  Options opt;
  Flags flags("paddock-operator",
              "runs AI coding agents as hardened, budgeted and audited Kubernetes pods, reconciling "
              "AgentRuns (paddock.dev/v1alpha1) under the AgentPolicies of the cluster.");
  flags.add("kubeconfig", &opt.kubeconfig,
            "Path to a kubeconfig file. When empty: $KUBECONFIG, else the pod's service account, else ~/.kube/config.");
  flags.add("context", &opt.context, "The kubeconfig context to use instead of its current-context.");
  flags.add("listen-address", &opt.listen_address,
            "host:port for /healthz, /readyz and /metrics; \":8080\" listens on every address.");
  flags.add("log-level", &opt.log_level, "Least severe log level written: debug, info, warn or error.");
  flags.add("insecure-skip-tls-verify", &opt.insecure_skip_tls_verify,
            "Do not verify the API server's certificate. For throwaway test clusters only.");
  flags.setEpilog(
      "Logs are JSON lines on stderr. SIGTERM or SIGINT stops the operator gracefully; a second one stops it at once.\n"
      "Example:\n  paddock-operator --kubeconfig ~/.kube/config --listen-address 127.0.0.1:8080");
  flags.parseOrExit(argc, argv);

  log::setBaseFields({{"component", "paddock-operator"}});
  log::Level level;
  if (!log::parseLevel(opt.log_level, level)) {
    log::error("invalid --log-level: use debug, info, warn or error", {{"value", opt.log_level}});
    return 2;
  }
  log::setLevel(level);

  auto config = kube::resolveConfig(opt.kubeconfig, opt.context);
  if (!config) {
    log::error("cannot load cluster configuration", {{"error", config.error().describe()}});
    return 1;
  }
  if (opt.insecure_skip_tls_verify) config->tls.insecure_skip_verify = true;
  auto rest = kube::RestClient::create(*config, "paddock-operator/0.1.0");
  if (!rest) {
    log::error("cannot set up the API client", {{"error", rest.error().describe()}, {"source", config->source}});
    return 1;
  }
  log::info("configuration loaded", {{"source", config->source}, {"server", config->server}});

  auto registry = std::make_shared<prometheus::Registry>();
  std::atomic<bool> connected{false};
  http::Server server;
  server.handle("/healthz", [] { return http::Reply{200, "text/plain; charset=utf-8", "ok\n"}; });
  server.handle("/readyz", [&] {
    return connected ? http::Reply{200, "text/plain; charset=utf-8", "ok\n"}
                     : http::Reply{503, "text/plain; charset=utf-8", "not connected to the API server\n"};
  });
  server.handle("/metrics", [registry] {
    return http::Reply{200, "text/plain; version=0.0.4; charset=utf-8",
                       prometheus::TextSerializer().Serialize(registry->Collect())};
  });
  if (auto s = server.start(opt.listen_address); !s) {
    log::error("cannot serve health and metrics endpoints", {{"error", s.error().describe()}});
    return 1;
  }
  log::info("serving /healthz, /readyz and /metrics", {{"address", opt.listen_address}, {"port", server.port()}});

  // Connect: ask the server for its version, retrying with backoff until it answers.
  auto backoff = std::chrono::milliseconds(500);
  while (!shutdown.cancelled()) {
    auto version = (*rest)->getJson("/version", shutdown);
    if (version) {
      log::info("connected to the API server", {{"server", config->server},
                                                {"serverVersion", version->value("gitVersion", "")},
                                                {"platform", version->value("platform", "")}});
      connected = true;
      break;
    }
    if (shutdown.cancelled()) break;
    log::warn("cannot reach the API server; retrying",
              {{"server", config->server}, {"error", version.error().describe()}, {"retryIn", backoff.count() / 1000.0}});
    shutdown.waitFor(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
  }

  while (!shutdown.waitFor(std::chrono::hours(1))) {
  }
  server.stop();
  log::info("stopped");
  return 0;
}
