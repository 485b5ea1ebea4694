// paddock-operator: reconciles AgentRuns into hardened, budgeted, audited agent pods.
// This file is wiring only: flags, the API connection, caches, leader election, endpoints.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "controllers/gateway_reconciler.h"
#include "controllers/policy_status.h"
#include "controllers/run_reconciler.h"
#include "controllers/usage.h"
#include "operator/audit/audit.h"
#include "operator/audit/store.h"
#include "operator/common/flags.h"
#include "operator/common/json.h"
#include "operator/common/log.h"
#include "operator/common/signals.h"
#include "operator/http/server.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/informer.h"
#include "operator/kube/rest.h"
#include "operator/prometheus/client.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/events.h"
#include "operator/runtime/leader_election.h"
#include "operator/runtime/metrics.h"

using namespace paddock;

namespace {

struct Options {
  std::string kubeconfig;
  std::string context;
  std::string listen_address = ":8080";
  std::string log_level = "info";
  bool insecure_skip_tls_verify = false;
  double kube_api_qps = 20;
  int kube_api_burst = 30;
  bool leader_elect = true;
  std::string leader_election_namespace;
  std::string leader_election_id = "paddock-operator";
  std::chrono::milliseconds lease_duration{12'000};
  std::chrono::milliseconds renew_deadline{8'000};
  std::chrono::milliseconds retry_period{2'000};
  int workers = 8;
  std::chrono::milliseconds pending_deadline{600'000};
  std::string stage_image = "registry.example.com/platform/paddock-stage:1.0";
  std::string gateway_image = "registry.example.com/platform/paddock-operator:1.0";
  std::string sandbox_image;  // "": the gateway's image, which is the operator's
  std::chrono::milliseconds gateway_credential_wait{600'000};
  std::chrono::milliseconds gateway_resync{30'000};
  std::string audit_store = std::getenv("PADDOCK_AUDIT_STORE") ? std::getenv("PADDOCK_AUDIT_STORE") : "/var/lib/paddock/audit";
  std::string workspace_storage_class;
  std::string prometheus_url;
  std::string prometheus_bearer_token_file;
  std::string prometheus_ca_file;
  std::chrono::milliseconds prometheus_timeout{10'000};
  std::chrono::milliseconds budget_interval{15'000};
  std::chrono::milliseconds usage_write_interval{15'000};
  std::string prometheus_namespace_selector;
  std::string prometheus_pod_selector;
};

http::Reply text(int status, std::string body) { return {status, "text/plain; charset=utf-8", std::move(body), {}}; }

// The flags, parsed (exits with the usage on a bad one, or after --help).
Options parseOptions(int argc, char** argv) {
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
  flags.add("kube-api-qps", &opt.kube_api_qps, "Requests per second to the API server, sustained (client-side limit).");
  flags.add("kube-api-burst", &opt.kube_api_burst, "Requests to the API server allowed in a burst above --kube-api-qps.");
  flags.add("leader-elect", &opt.leader_elect,
            "Elect one leader among replicas through a coordination.k8s.io Lease; only the leader reconciles.");
  flags.add("leader-election-namespace", &opt.leader_election_namespace,
            "Namespace of the Lease. When empty: the pod's namespace, or the kubeconfig context's.");
  flags.add("leader-election-id", &opt.leader_election_id, "Name of the Lease.");
  flags.add("leader-election-lease-duration", &opt.lease_duration,
            "How long standby replicas wait, after the leader's last renewal, before taking over.");
  flags.add("leader-election-renew-deadline", &opt.renew_deadline,
            "How long the leader keeps trying to renew before it gives up leading.");
  flags.add("leader-election-retry-period", &opt.retry_period, "How often candidates try to acquire or renew.");
  flags.add("workers", &opt.workers, "AgentRuns reconciled in parallel.");
  flags.add("pending-deadline", &opt.pending_deadline,
            "How long an agent pod may stay Pending while its image cannot be pulled or no node can run it before "
            "the run fails.");
  flags.add("stage-image", &opt.stage_image,
            "The platform's stage image; its workspace init container clones the run's repository.");
  flags.add("gateway-image", &opt.gateway_image,
            "The image paddock-gateway runs from (the operator's own: it holds /usr/local/bin/paddock-gateway), for "
            "policies with spec.gateway.");
  flags.add("sandbox-image", &opt.sandbox_image,
            "The image every agent pod's sandbox init container copies paddock-sandbox from (docs/sandbox.md); "
            "default: --gateway-image (the operator's own image holds /usr/local/bin/paddock-sandbox).");
  flags.add("gateway-resync", &opt.gateway_resync,
            "How often each namespace's paddock-gateway objects are compared with their plan (an edit is undone then).");
  flags.add("gateway-credential-wait", &opt.gateway_credential_wait,
            "How long an agent pod waits for the namespace's gateway to serve its run's credential before it fails.");
  flags.add("workspace-storage-class", &opt.workspace_storage_class,
            "StorageClass of the workspace claim a run with gated stages shares between its pods; empty: the "
            "cluster's default.");
  flags.add("audit-store", &opt.audit_store,
            "Where the audit log is kept: a directory of segment files, or a mongodb:// URI (the shared store). "
            "Only the leader writes it; reconciles wait while it cannot be written. Default: $PADDOCK_AUDIT_STORE, "
            "else /var/lib/paddock/audit.");
  flags.add("prometheus-url", &opt.prometheus_url,
            "Prometheus to read run usage from (http:// or https://, with any path prefix). Without it token and "
            "cost budgets are not enforced, and runs say so; the wall clock still is.");
  flags.add("prometheus-bearer-token-file", &opt.prometheus_bearer_token_file,
            "File with a bearer token for Prometheus, re-read at each query (https only).");
  flags.add("prometheus-ca-file", &opt.prometheus_ca_file, "PEM CA bundle trusted for an https Prometheus.");
  flags.add("prometheus-timeout", &opt.prometheus_timeout, "Longest wait for one Prometheus query.");
  flags.add("budget-interval", &opt.budget_interval,
            "How often usage is read: one query per distinct policy metric each interval, whatever the number of runs.");
  flags.add("prometheus-namespace-selector", &opt.prometheus_namespace_selector,
            "Labels of the namespace Prometheus scrapes from (key=value,...; e.g. "
            "kubernetes.io/metadata.name=monitoring): each team's NetworkPolicy lets pods there reach the agent's "
            "metrics port, and nothing else in. Empty: no ingress at all, so on an enforcing network Prometheus "
            "cannot read usage and runs end as the policy's whenMetricsUnavailable says.");
  flags.add("prometheus-pod-selector", &opt.prometheus_pod_selector,
            "Labels of Prometheus's pods in that namespace (key=value,...); empty: any pod there.");
  flags.add("usage-write-interval", &opt.usage_write_interval,
            "Usage figures in AgentRun status are refreshed at most this often (limits are acted on at once).");
  flags.setEpilog(
      "Logs are JSON lines on stderr. SIGTERM or SIGINT stops the operator gracefully (the leader releases its\n"
      "Lease so a standby takes over at once); a second signal stops it at once.\n"
      "Example:\n  paddock-operator --kubeconfig ~/.kube/config --listen-address 127.0.0.1:8080");
  flags.parseOrExit(argc, argv);
  return opt;
}

// Asks the server for its version, retrying with backoff until it answers; false when stopped first.
bool connect(kube::RestClient& rest, const std::string& server, const CancelToken& shutdown) {
  auto backoff = std::chrono::milliseconds(500);
  while (!shutdown.cancelled()) {
    auto version = rest.getJson("/version", shutdown);
    if (version) {
      log::info("connected to the API server", {{"server", server},
                                                {"serverVersion", stringAt(*version, "/gitVersion")},
                                                {"platform", stringAt(*version, "/platform")}});
      return true;
    }
    if (shutdown.cancelled()) break;
    log::warn("cannot reach the API server; retrying",
              {{"server", server}, {"error", version.error().describe()}, {"retryIn", backoff.count() / 1000.0}});
    shutdown.waitFor(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
  }
  return false;
}

// The audit chain, opened by the leader and continued from the store's head; retried with
// backoff (reconciles wait for it). Null when leading stopped first.
// The chain itself says that a new writer continues it (WriterStarted, naming this replica).
// Its records feed the ledger of idempotency keys as it opens.
std::unique_ptr<audit::AuditLog> openAudit(const std::string& store, const std::string& identity, runtime::Metrics& metrics,
                                           controllers::KeyLedger& ledger, const CancelToken& leading) {
  audit::AuditLogOptions options;
  options.writer_started = nlohmann::json{{"identity", identity}};
  options.on_record = [&ledger](const nlohmann::json& record) { ledger.observeRecord(record); };
  for (auto backoff = std::chrono::milliseconds(500); !leading.cancelled();) {
    auto opened = audit::openAuditLog(audit::makeBackend(store), options, &metrics.registry());
    if (opened) {
      log::info("audit log open", {{"store", audit::isMongoUri(store) ? "mongodb" : store}, {"seq", opened.value()->head().seq}});
      return std::move(opened.value());
    }
    log::error("cannot open the audit log; reconciles wait for it",
               {{"error", opened.error().describe()}, {"retryIn", backoff.count() / 1000.0}});
    leading.waitFor(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
  }
  return nullptr;
}

// What brings an AgentRun back to its reconciler: itself, its pods, the approvals naming it, a
// freed slot, a policy, namespace or team NetworkPolicy that may change what governs it.
void watchRunInputs(runtime::Controller& controller, kube::Informer& runs, kube::Informer& pods, kube::Informer& approvals,
                    kube::Informer& policies, kube::Informer& namespaces, kube::Informer& network_policies,
                    const controllers::RunIndex& index) {
  controller.watchPrimary(runs);
  controller.watchOwned(pods, "AgentRun");
  // An approval concerns the run it names.
  controller.watchMapped(approvals, [](const kube::InformerEvent& e) {
    std::string run = stringAt(*e.object, "/spec/run");
    return run.empty() ? std::vector<std::string>{} : std::vector<std::string>{stringAt(*e.object, "/metadata/namespace") + "/" + run};
  });
  // A run that frees a concurrency slot wakes the runs waiting for one.
  controller.watchMapped(runs, [&index](const kube::InformerEvent& e) { return controllers::runsWaitingForSlot(e, index); });
  // A policy or a namespace label changes what governs runs: look at the runs it may touch.
  controller.watchMapped(policies, [&index](const kube::InformerEvent& e) {
    // A write of the policy's status alone (the generation unchanged) changes nothing a run reads.
    auto generation = [](const kube::ObjectPtr& o) { return o ? o->value(nlohmann::json::json_pointer("/metadata/generation"), int64_t{-1}) : int64_t{-1}; };
    if (e.type == kube::InformerEvent::Type::Upsert && e.old && generation(e.old) == generation(e.object)) {
      return std::vector<std::string>{};
    }
    return index.keys();
  });
  controller.watchMapped(namespaces, [&index](const kube::InformerEvent& e) { return index.keys(e.key); });
  // A team's NetworkPolicy went or its content changed (an edit, or our own write): the runs of
  // its namespace compare it with their plan and put it back.
  controller.watchMapped(network_policies, [&index](const kube::InformerEvent& e) {
    auto content = [](const kube::ObjectPtr& o) {
      using nlohmann::json;
      return o ? json{o->value("spec", json()), o->value(json::json_pointer("/metadata/labels"), json())} : json();
    };
    bool changed = e.type == kube::InformerEvent::Type::Delete || content(e.old) != content(e.object);
    return changed ? index.keys(stringAt(*e.object, "/metadata/namespace")) : std::vector<std::string>{};
  });
}

// /healthz, /readyz (connected and caches synced) and /metrics.
void handleEndpoints(http::Server& server, const std::atomic<bool>& connected, const std::vector<kube::Informer*>& informers,
                     runtime::Metrics& metrics) {
  server.handle("/healthz", [] { return text(200, "ok\n"); });
  server.handle("/readyz", [&connected, informers] {
    if (!connected) return text(503, "not connected to the API server\n");
    std::string waiting;
    for (auto* i : informers) {
      if (!i->synced()) waiting += " " + i->resource().plural;
    }
    return waiting.empty() ? text(200, "ok\n") : text(503, "caches not synced:" + waiting + "\n");
  });
  server.handle("/metrics", [&metrics] {
    return http::Reply{200, "text/plain; version=0.0.4; charset=utf-8", metrics.scrape(), {}};
  });
}

// Leads while elected through the Lease; the exit code (a lost lease stops the process, so two
// replicas never reconcile together, and the Deployment restarts it as a standby).
int leadWhenElected(const Options& opt, const std::string& default_namespace, const std::string& identity,
                    kube::Client& client, CancelToken& shutdown,
                    const std::function<void(const CancelToken&)>& lead) {
  runtime::LeaderElectionConfig le;
  le.lease_namespace = opt.leader_election_namespace.empty() ? default_namespace : opt.leader_election_namespace;
  le.lease_name = opt.leader_election_id;
  le.identity = identity;
  le.lease_duration = opt.lease_duration;
  le.renew_deadline = opt.renew_deadline;
  le.retry_period = opt.retry_period;
  if (auto v = runtime::validate(le); !v) {
    log::error("invalid leader election settings", {{"error", v.error().describe()}});
    shutdown.cancel();
    return 2;
  }
  int rc = 0;
  runtime::LeaderElector elector(client, le);
  auto lost = elector.run(shutdown, lead, [&] {
    if (!shutdown.cancelled()) {
      log::error("lost leadership: exiting so a fresh start rejoins as a standby");
      rc = 1;
      shutdown.cancel();
    }
  });
  if (!lost && !shutdown.cancelled()) log::error("leader election failed", {{"error", lost.error().describe()}});
  return rc;
}

// The Prometheus client usage is read with, when --prometheus-url names one; false when it cannot be set up.
bool prometheusClient(const Options& opt, std::unique_ptr<promapi::PrometheusClient>& out) {
  if (opt.prometheus_url.empty()) {
    log::warn("no --prometheus-url: token and cost budgets are not enforced (the wall clock is)");
    return true;
  }
  auto p = promapi::PrometheusClient::create({opt.prometheus_url, opt.prometheus_bearer_token_file,
                                              opt.prometheus_ca_file, opt.prometheus_timeout});
  if (!p) {
    log::error("cannot set up the Prometheus client", {{"error", p.error().describe()}});
    return false;
  }
  out = std::move(p.value());
  log::info("reading run usage from Prometheus", {{"url", opt.prometheus_url}, {"interval", opt.budget_interval.count() / 1000.0}});
  return true;
}

controllers::RunReconcilerOptions reconcilerOptions(const Options& opt, const std::map<std::string, std::string>& scrape_namespaces,
                                                    const std::map<std::string, std::string>& scrape_pods,
                                                    const controllers::UsageBoard* usage, runtime::Metrics& metrics) {
  controllers::RunReconcilerOptions o;
  o.plan.scrape_namespace_labels = scrape_namespaces;
  o.plan.scrape_pod_labels = scrape_pods;
  o.plan.stage_image = opt.stage_image;
  o.plan.gateway_image = opt.gateway_image;
  o.plan.sandbox_image = opt.sandbox_image.empty() ? opt.gateway_image : opt.sandbox_image;
  o.plan.credential_wait = std::chrono::duration_cast<std::chrono::seconds>(opt.gateway_credential_wait);
  o.plan.workspace_storage_class = opt.workspace_storage_class;
  o.pending_deadline = std::chrono::duration_cast<std::chrono::seconds>(opt.pending_deadline);
  o.usage = usage;
  o.usage_write_interval = opt.usage_write_interval;
  o.budget_observer = metrics.budgetObserver();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  // Two malloc arenas, not one per thread: the workers, informers and HTTP threads otherwise each
  // hold an arena whose free space counts as resident memory (about 10 MiB at 10k runs cached).
  mallopt(M_ARENA_MAX, 2);
  CancelToken shutdown = shutdownOnSignal();

  Options opt = parseOptions(argc, argv);

  log::setBaseFields({{"component", "paddock-operator"}});
  log::Level level;
  if (!log::parseLevel(opt.log_level, level)) {
    log::error("invalid --log-level: use debug, info, warn or error", {{"value", opt.log_level}});
    return 2;
  }
  log::setLevel(level);

  auto scrape_namespaces = controllers::parseMatchLabels(opt.prometheus_namespace_selector, "prometheus-namespace-selector");
  auto scrape_pods = controllers::parseMatchLabels(opt.prometheus_pod_selector, "prometheus-pod-selector");
  for (const auto* parsed : {&scrape_namespaces, &scrape_pods}) {
    if (!*parsed) {
      log::error("invalid flag", {{"error", parsed->error().message}});
      return 2;
    }
  }

  auto config = kube::resolveConfig(opt.kubeconfig, opt.context);
  if (!config) {
    log::error("cannot load cluster configuration", {{"error", config.error().describe()}});
    return 1;
  }
  if (opt.insecure_skip_tls_verify) config->tls.insecure_skip_verify = true;
  if (config->tls.insecure_skip_verify) {
    log::warn("TLS verification of the API server is off: anyone on the path can impersonate it; use only on throwaway clusters",
              {{"server", config->server}});
  }
  auto rest = kube::RestClient::create(*config, "paddock-operator/0.1.0");
  if (!rest) {
    log::error("cannot set up the API client", {{"error", rest.error().describe()}, {"source", config->source}});
    return 1;
  }
  log::info("configuration loaded", {{"source", config->source}, {"server", config->server}});

  runtime::Metrics metrics;
  kube::Client client(**rest, {.qps = opt.kube_api_qps, .burst = opt.kube_api_burst}, metrics.apiObserver());

  // Caches of what Paddock reads. Every replica keeps them warm, so a new leader starts at once.
  // Only Paddock's own pods are cached, and never a Secret.
  kube::Informer policies(client, kube::resources::agentpolicies);
  kube::Informer runs(client, kube::resources::agentruns);
  kube::Informer namespaces(client, kube::resources::namespaces);
  kube::Informer pods(client, kube::resources::pods, {.label_selector = "app.kubernetes.io/managed-by=paddock"});
  kube::Informer approvals(client, kube::resources::agentapprovals);
  kube::Informer network_policies(client, kube::resources::networkpolicies,
                                  {.label_selector = "app.kubernetes.io/managed-by=paddock"});
  std::vector<kube::Informer*> informers = {&policies, &runs, &namespaces, &pods, &approvals, &network_policies};
  for (auto* i : informers) metrics.addInformer(*i);

  // Usage from Prometheus, when there is one.
  controllers::UsageBoard usage_board;
  std::unique_ptr<promapi::PrometheusClient> prometheus;
  if (!prometheusClient(opt, prometheus)) return 2;

  if (prometheus && scrape_namespaces->empty()) {
    log::warn("no --prometheus-namespace-selector: the teams' NetworkPolicies let nothing reach the agents' metrics "
              "port, so on a network that enforces them Prometheus cannot read usage");
  }

  runtime::EventRecorder events(client, {});
  controllers::KeyLedger ledger;
  runs.addHandler([&ledger](const kube::InformerEvent& e) { ledger.observe(e); });
  auto reconcile_options = reconcilerOptions(opt, *scrape_namespaces, *scrape_pods, prometheus ? &usage_board : nullptr, metrics);
  reconcile_options.ledger = &ledger;
  controllers::RunReconciler reconciler(client, runs, policies, namespaces, pods, approvals, network_policies, &events,
                                       reconcile_options);
  const controllers::RunIndex& index = reconciler.index();
  metrics.addGauges("paddock_agentruns", "AgentRuns in the cache by namespace and phase (\"\" before the first status).",
                    {"namespace", "phase"}, [&index] {
                      runtime::Metrics::GaugeReading out;
                      for (const auto& [where, n] : index.phaseCounts()) out.push_back({{where.first, where.second}, static_cast<double>(n)});
                      return out;
                    });
  runtime::WorkQueue queue(runtime::WorkQueueOptions{nullptr, nullptr, metrics.workQueue("agentruns")});
  runtime::Controller controller("agentrun", reconciler, queue, metrics.reconcileObserver("agentrun"));
  watchRunInputs(controller, runs, pods, approvals, policies, namespaces, network_policies, index);

  // AgentPolicy status: query checks, runs governed, the model pin (the leader writes it).
  controllers::PolicyRunCounter policy_runs;
  controllers::PolicyStatusReconciler policy_status(client, policies, policy_runs, prometheus.get(),
                                                    prometheus ? &usage_board : nullptr, network_policies,
                                                    reconcile_options.plan);
  runtime::WorkQueue policy_queue(runtime::WorkQueueOptions{nullptr, nullptr, metrics.workQueue("agentpolicies")});
  runtime::Controller policy_controller("agentpolicy", policy_status, policy_queue, metrics.reconcileObserver("agentpolicy"));
  policy_controller.watchPrimary(policies);
  policy_controller.watchMapped(runs, [&policy_runs](const kube::InformerEvent& e) { return policy_runs.observe(e); });
  policy_controller.watchMapped(network_policies, [](const kube::InformerEvent& e) {
    // The team NetworkPolicy is labelled with its policy's name (controllers::teamSelector).
    std::string policy = e.object ? stringAt(*e.object, "/metadata/labels/paddock.dev~1team") : "";
    return policy.empty() ? std::vector<std::string>{} : std::vector<std::string>{policy};
  });

  // Each namespace's paddock-gateway (policies with spec.gateway), keyed by namespace.
  controllers::GatewayReconciler gateways(client, policies, namespaces, pods, network_policies, &events,
                                          {reconcile_options.plan, opt.gateway_resync, "paddock-operator"});
  runtime::WorkQueue gateway_queue(runtime::WorkQueueOptions{nullptr, nullptr, metrics.workQueue("gateways")});
  runtime::Controller gateway_controller("gateway", gateways, gateway_queue, metrics.reconcileObserver("gateway"));
  gateway_controller.watchMapped(runs, [&gateways](const kube::InformerEvent& e) { return gateways.observeRun(e); });
  gateway_controller.watchMapped(policies, [&gateways](const kube::InformerEvent& e) { return gateways.namespacesOfPolicy(e); });
  gateway_controller.watchMapped(namespaces, [&gateways](const kube::InformerEvent& e) { return gateways.namespaceOf(e); });

  std::atomic<bool> connected{false};
  http::Server server;
  handleEndpoints(server, connected, informers, metrics);
  if (auto s = server.start(opt.listen_address); !s) {
    log::error("cannot serve health and metrics endpoints", {{"error", s.error().describe()}});
    return 1;
  }
  log::info("serving /healthz, /readyz and /metrics", {{"address", opt.listen_address}, {"port", server.port()}});

  connected = connect(**rest, config->server, shutdown);

  std::vector<std::thread> threads;
  if (connected) {
    for (auto* i : informers) threads.emplace_back([i, &shutdown] { i->run(shutdown); });
  }

  // Only the leader reconciles; without --leader-elect this process always leads.
  const std::string identity = runtime::defaultIdentity();
  auto lead = [&](const CancelToken& leading) {
    metrics.setLeader(true);
    for (auto* i : informers) {
      while (!i->synced() && !leading.cancelled()) i->waitForSync(std::chrono::seconds(1));
    }
    // Every run is looked at once on taking over; watches then keep the queue fed.
    for (const auto& r : runs.list()) queue.add(kube::objectKey(*r));
    // The audit chain: opened by the leader, continued from the store's head; reconciles wait
    // until it can be written.
    auto audit_log = openAudit(opt.audit_store, identity, metrics, ledger, leading);
    if (!audit_log) {
      metrics.setLeader(false);
      return;
    }
    reconciler.setAuditLog(audit_log.get());
    log::info("reconciling AgentRuns", {{"workers", opt.workers}});
    std::thread poller;
    if (prometheus) {
      poller = std::thread([&] {
        controllers::UsagePoller(*prometheus, policies, runs, pods, usage_board, opt.budget_interval, metrics.budgetObserver())
            .run(leading, [&queue](const std::string& key) { queue.add(key); });
      });
    }
    for (const auto& p : policies.list()) policy_queue.add(kube::objectKey(*p));
    std::thread policy_worker([&] { policy_controller.run(1, leading); });
    for (const auto& ns : gateways.namespacesToLookAt()) gateway_queue.add(ns);
    std::thread gateway_worker([&] { gateway_controller.run(1, leading); });
    controller.run(opt.workers, leading);
    policy_worker.join();
    gateway_worker.join();
    if (poller.joinable()) poller.join();
    reconciler.setAuditLog(nullptr);
    metrics.setLeader(false);
  };
  int rc = 0;
  if (connected && opt.leader_elect) {
    rc = leadWhenElected(opt, config->default_namespace, identity, client, shutdown, lead);
  } else if (connected) {
    lead(shutdown);
  }

  shutdown.cancel();
  for (auto& t : threads) t.join();
  server.stop();
  log::info("stopped", {{"exitCode", rc}});
  return rc;
}
