// Budget benchmark: how fast a run past its budget loses its pod, and what enforcement costs
// Prometheus as runs multiply. Against a real control plane (e2e/cluster.sh, "bench"), a real
// Prometheus (e2e/prometheus.sh, "bench") and paddock-operator started here with --budget-interval.
//
// 1. Enforcement latency: runs in waves, each with its own paddock-agent-sim (the e2e AgentHost)
//    spending tokens so it crosses its budget 10 to 20 s after it starts. The crossing is the
//    timestamp of the first scraped sample at or above the limit (the run's raw samples, summed
//    over its series per scrape); the delete request is when a pod watch here sees the agent pod
//    get its deletionTimestamp (or vanish). Goal: p99 at most the interval plus 1 s.
// 2. Queries per interval with 1, 100 and 1000 Running runs (kwok pods, no simulators): deltas of
//    the operator's paddock_prometheus_query_duration_seconds_count. Goal: the same for all three.
//
// Settings go to the e2e helpers through their environment variables (PADDOCK_E2E_KUBECONFIG,
// PADDOCK_E2E_PROMETHEUS_URL, PADDOCK_E2E_PROMETHEUS_TARGETS), set from the flags here, so the
// bench never falls back on the test cluster built into them.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/figures.h"
#include "e2e/tests/agent_host.h"
#include "e2e/tests/support.h"
#include "operator/common/flags.h"
#include "operator/common/log.h"
#include "operator/http/client.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"

using namespace paddock;
using namespace paddock::e2e;
using kube::resources::agentruns;
using kube::resources::pods;
using WallClock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

namespace {
using bench::fmt;
using bench::homeCache;
using bench::percentile;

double epochSeconds(WallClock::time_point t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

// The operator under measurement: its own process, its /metrics port read from its log.
class Operator {
 public:
  Operator(const std::string& lease_ns, double interval_s) {
    std::ostringstream interval;
    interval << static_cast<int>(std::lround(interval_s * 1000)) << "ms";
    process_ = std::make_unique<Process>(std::vector<std::string>{
        env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address", "127.0.0.1:0",
        "--leader-election-namespace", lease_ns, "--prometheus-url", env("PADDOCK_E2E_PROMETHEUS_URL"),
        "--budget-interval", interval.str(), "--prometheus-timeout", "2s", "--kube-api-qps", "200",
        "--kube-api-burst", "400", "--workers", "8"});
    std::string serving = process_->waitForLine(
        [](const std::string& l) { return l.find("serving /healthz") != std::string::npos; }, std::chrono::seconds(30));
    auto line = json::parse(serving, nullptr, false);
    if (!line.is_object() || !line.contains("port")) throw std::runtime_error("the operator did not say where it serves /metrics");
    metrics_url_ = "http://127.0.0.1:" + std::to_string(line["port"].get<int>());
    if (process_->waitForLine([](const std::string& l) { return l.find("reconciling AgentRuns") != std::string::npos; },
                              std::chrono::seconds(60)).empty()) {
      throw std::runtime_error("the operator did not start reconciling");
    }
  }
  ~Operator() {
    process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(20));
  }
  const std::string& metricsUrl() const { return metrics_url_; }

 private:
  std::unique_ptr<Process> process_;
  std::string metrics_url_;
};

// The sum of a metric's series (every label set) on the operator's /metrics.
std::optional<double> scrapeSum(const std::string& base_url, const std::string& name) {
  auto client = http::makeClient(base_url, {});
  if (!client) return std::nullopt;
  http::Request req{http::Method::Get, "/metrics"};
  req.timeout = std::chrono::seconds(5);
  auto resp = (*client)->send(req);
  if (!resp || resp->status != 200) return std::nullopt;
  std::istringstream in(resp->body);
  double sum = 0;
  bool found = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
    found = true;
  }
  return found ? std::optional<double>(sum) : std::nullopt;
}

// Creates a team: namespaces labelled for one AgentPolicy (the sample, with room for 2000 runs).
struct Team {
  std::string name = "bench-budget-" + randomSuffix();
  json policy() const {
    json p = loadYaml(repoPath("crds/samples/policy.yaml"));
    p["metadata"] = {{"name", name}};
    p["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", name}}}};
    p["spec"]["concurrency"]["maxRunning"] = 2000;
    // The idle runs of part 2 have no agent, so no usage series: with Terminate they would end
    // after the grace while the larger sizes are still starting.
    p["spec"]["budgets"]["whenMetricsUnavailable"] = {{"after", "5m"}, {"action", "Continue"}};
    return p;
  }
  json labels() const { return {{"paddock.dev/team", name}, {"pod-security.kubernetes.io/enforce", "restricted"}}; }
};

json agentRun(const std::string& name, int64_t tokens) {
  json run = loadYaml(repoPath("crds/samples/run.yaml"));
  run["metadata"] = {{"name", name}};
  run["spec"]["idempotencyKey"] = name;
  run["spec"]["budget"]["tokens"] = tokens;
  run["spec"]["budget"]["wallClock"] = "30m";
  return run;
}

// The first scrape of the run's tokens at or above `limit`: the series summed per timestamp.
struct Crossing {
  std::optional<double> at;  // epoch seconds
  double first_sample_at = NAN;
  double first_value = NAN;
};
Crossing crossingOf(const std::string& ns, const std::string& run, double limit) {
  json result = prometheusQuery("claude_code_token_usage_tokens_total{agentrun=\"" + run + "\",namespace=\"" + ns + "\"}[5m]");
  std::map<int64_t, double> by_time;  // milliseconds -> sum over series
  for (const auto& series : result) {
    for (const auto& v : series.value("values", json::array())) {
      by_time[std::llround(v[0].get<double>() * 1000)] += std::stod(v[1].get<std::string>());
    }
  }
  Crossing c;
  if (by_time.empty()) return c;
  c.first_sample_at = static_cast<double>(by_time.begin()->first) / 1000;
  c.first_value = by_time.begin()->second;
  for (const auto& [ms, sum] : by_time) {
    if (sum >= limit) {
      c.at = static_cast<double>(ms) / 1000;
      break;
    }
  }
  return c;
}

struct LatencyResult {
  std::vector<double> seconds;
  json runs = json::array();
  int missed = 0;  // runs whose pod was not deleted in time, or whose crossing was not found
};

// Part 1: `runs` runs in waves of `wave`, each with its simulator.
LatencyResult measureLatency(kube::RestClient& rest, kube::Client& client, const Team& team, int runs, int wave) {
  TempNamespace ns(rest, "bench-budget", team.labels());
  std::mutex mu;
  std::map<std::string, WallClock::time_point> deleted;      // guarded by mu
  std::map<std::string, std::unique_ptr<AgentHost>> hosts;     // guarded by mu
  kube::Informer watch(client, pods, {.namespace_ = ns.name(), .label_selector = "paddock.dev/run"});
  watch.addHandler([&](const kube::InformerEvent& e) {
    auto now = WallClock::now();
    const json& pod = *e.object;
    bool deleting = e.type == kube::InformerEvent::Type::Delete || pod["metadata"].contains("deletionTimestamp");
    std::string run = pod.value(json::json_pointer("/metadata/labels/paddock.dev~1run"), std::string());
    std::lock_guard lock(mu);
    if (!deleting) {
      // Service discovery's part: the pod exists, so Prometheus scrapes its agent.
      if (auto h = hosts.find(run); h != hosts.end()) h->second->registerPod(pod);
      return;
    }
    if (!deleted.emplace(run, now).second) return;
    // The kubelet's part: SIGTERM to the agent.
    if (auto h = hosts.find(run); h != hosts.end()) h->second->terminate();
  });
  CancelToken stop;
  std::thread watcher([&] { watch.run(stop); });
  watch.waitForSync(std::chrono::seconds(30));

  LatencyResult out;
  for (int first = 0; first < runs; first += wave) {
    int last = std::min(runs, first + wave);
    std::map<std::string, int64_t> limits;
    for (int i = first; i < last; ++i) {
      std::string run = "spend-" + std::to_string(i);
      // 500 tokens a second; the limit is reached 10 to 20 s after the simulator starts.
      double rate = 500;
      int64_t limit = static_cast<int64_t>(rate * (10 + (i * 7) % 11));
      auto host = std::make_unique<AgentHost>(AgentHost::Options{.agentrun = run, .ns = ns.name(), .tokens_per_second = rate,
                                                                 .usd_per_second = 0.0001});
      {
        std::lock_guard lock(mu);
        hosts[run] = std::move(host);
      }
      auto created = client.create(agentruns, ns.name(), agentRun(run, limit));
      if (!created) throw std::runtime_error("create " + run + ": " + created.error().describe());
      limits[run] = limit;
    }
    bool all = eventually([&] {
      std::lock_guard lock(mu);
      for (const auto& [run, _] : limits) {
        if (!deleted.count(run)) return false;
      }
      return true;
    }, std::chrono::seconds(60), std::chrono::milliseconds(200));
    if (!all) std::cerr << "budget bench: some pods of the wave from spend-" << first << " were not deleted within 60 s\n";
    // Prometheus has every sample by now; compare.
    for (const auto& [run, limit] : limits) {
      std::optional<WallClock::time_point> gone;
      {
        std::lock_guard lock(mu);
        if (auto d = deleted.find(run); d != deleted.end()) gone = d->second;
      }
      Crossing c = crossingOf(ns.name(), run, static_cast<double>(limit));
      json r = {{"run", run}, {"limit", limit}, {"firstSampleAt", c.first_sample_at}, {"firstValue", c.first_value}};
      if (!gone || !c.at || c.first_value >= static_cast<double>(limit)) {
        // No delete seen, no crossing scraped, or over the limit at the first scrape (no crossing to time).
        ++out.missed;
        r["missed"] = true;
      } else {
        double latency = epochSeconds(*gone) - *c.at;
        r["crossedAt"] = *c.at;
        r["deleteSeenAt"] = epochSeconds(*gone);
        r["latencySeconds"] = latency;
        out.seconds.push_back(latency);
      }
      out.runs.push_back(r);
    }
    std::lock_guard lock(mu);
    for (const auto& [run, _] : limits) hosts.erase(run);  // stops any simulator left, removes its target
    std::cerr << "budget bench: wave " << first / wave + 1 << " done (" << last << "/" << runs << " runs)\n";
  }
  stop.cancel();
  watcher.join();
  std::lock_guard lock(mu);
  hosts.clear();
  return out;
}

// Runs `work(i)` for i in [from, to) on `threads` threads, each with its own client.
void parallel(int from, int to, int threads, const std::function<void(kube::Client&, int)>& work) {
  std::atomic<int> next{from};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      auto rest = adminClient();
      kube::Client c(*rest, {.qps = 0});
      for (int i = next++; i < to; i = next++) work(c, i);
    });
  }
  for (auto& p : pool) p.join();
}

int runningRuns(kube::Client& client, const std::string& ns) {
  auto list = client.list(agentruns, ns);
  if (!list) return -1;
  int n = 0;
  for (const auto& r : list->items) n += r.value(json::json_pointer("/status/phase"), std::string()) == "Running";
  return n;
}

// Part 2: queries per interval with each count of Running runs.
json measureQueries(kube::RestClient& rest, kube::Client& client, const Team& team, const std::string& metrics_url,
                    const std::vector<int>& sizes, double interval_s, int intervals) {
  TempNamespace ns(rest, "bench-budget-scale", team.labels());
  json out = json::array();
  int created = 0;
  for (int size : sizes) {
    auto start = Steady::now();
    parallel(created, size, 4, [&](kube::Client& c, int i) {
      auto r = c.create(agentruns, ns.name(), agentRun("idle-" + std::to_string(i), 5000000));
      if (!r && r.error().reason != "AlreadyExists") std::cerr << "create idle-" << i << ": " << r.error().describe() << "\n";
    });
    created = size;
    int running = 0;
    if (!eventually([&] { return (running = runningRuns(client, ns.name())) >= size; }, std::chrono::minutes(5),
                    std::chrono::seconds(2))) {
      throw std::runtime_error("only " + std::to_string(running) + " of " + std::to_string(size) + " runs Running after 5 min");
    }
    double ramp = std::chrono::duration<double>(Steady::now() - start).count();
    // Let a few rounds pass, then count queries over `intervals` intervals.
    CancelToken().waitFor(std::chrono::milliseconds(static_cast<int>(interval_s * 3000)));
    auto c0 = scrapeSum(metrics_url, "paddock_prometheus_query_duration_seconds_count");
    auto t0 = Steady::now();
    CancelToken().waitFor(std::chrono::milliseconds(static_cast<int>(interval_s * 1000 * intervals)));
    auto c1 = scrapeSum(metrics_url, "paddock_prometheus_query_duration_seconds_count");
    double secs = std::chrono::duration<double>(Steady::now() - t0).count();
    if (!c0 || !c1) throw std::runtime_error("cannot read paddock_prometheus_query_duration_seconds_count from " + metrics_url);
    double delta = *c1 - *c0;
    json r = {{"runningRuns", running}, {"rampSeconds", ramp}, {"queries", delta}, {"seconds", secs},
              {"queriesPerInterval", delta / (secs / interval_s)}};
    std::cerr << "budget bench: " << r.dump() << "\n";
    out.push_back(r);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cache = homeCache();
  std::string kubeconfig = cache + "/clusters/bench/kubeconfig";
  std::string prometheus_url = "http://127.0.0.1:31090";
  std::string targets = cache + "/prometheus/bench/targets";
  std::string sizes = "1,100,1000", out_file;
  int runs = 50, wave = 10, intervals = 10;
  double interval = 1;
  Flags flags("paddock-bench-budget",
              "measures the time from a run's usage crossing its budget in Prometheus to its pod's delete request, "
              "and the Prometheus queries per interval with 1, 100 and 1000 running runs");
  flags.add("kubeconfig", &kubeconfig, "kubeconfig of the bench cluster (CRDs installed).");
  flags.add("prometheus-url", &prometheus_url, "The bench Prometheus (e2e/prometheus.sh --name bench).");
  flags.add("prometheus-targets", &targets, "Its file_sd targets directory.");
  flags.add("interval", &interval, "The operator's --budget-interval, in seconds.");
  flags.add("runs", &runs, "Runs for the latency figures.");
  flags.add("wave", &wave, "Runs (and simulators) at a time.");
  flags.add("sizes", &sizes, "Comma-separated counts of Running runs to count queries at, ascending.");
  flags.add("intervals", &intervals, "Intervals over which queries are counted at each size.");
  flags.add("out", &out_file, "Also write the results as JSON to this file.");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::Warn);
  ::setenv("PADDOCK_E2E_KUBECONFIG", kubeconfig.c_str(), 1);
  ::setenv("PADDOCK_E2E_PROMETHEUS_URL", prometheus_url.c_str(), 1);
  ::setenv("PADDOCK_E2E_PROMETHEUS_TARGETS", targets.c_str(), 1);

  std::vector<int> counts;
  std::stringstream ss(sizes);
  for (std::string s; std::getline(ss, s, ',');) counts.push_back(std::stoi(s));

  auto rest = adminClient();
  kube::Client client(*rest, {.qps = 0});
  Team team;
  if (auto p = client.create(kube::resources::agentpolicies, "", team.policy()); !p) {
    std::cerr << "cannot create the policy: " << p.error().describe() << "\n";
    return 1;
  }
  json result;
  int rc = 0;
  try {
    TempNamespace lease(*rest, "bench-budget-lease");
    Operator op(lease.name(), interval);
    std::string metrics_url = op.metricsUrl();
    auto latency = measureLatency(*rest, client, team, runs, wave);
    auto queries = measureQueries(*rest, client, team, metrics_url, counts, interval, intervals);

    double p50 = percentile(latency.seconds, 0.5), p99 = percentile(latency.seconds, 0.99);
    double goal = interval + 1;
    bool latency_met = !latency.seconds.empty() && p99 <= goal;
    std::vector<long> per_interval;
    for (const auto& q : queries) per_interval.push_back(std::lround(q["queriesPerInterval"].get<double>()));
    bool queries_met = !per_interval.empty() && std::all_of(per_interval.begin(), per_interval.end(),
                                                            [&](long n) { return n == per_interval.front(); });

    std::printf("\nBudget enforcement, operator --budget-interval %gs, %d runs in waves of %d (one paddock-agent-sim each)\n",
                interval, runs, wave);
    std::printf("  crossing in Prometheus -> pod delete request: p50 %.2f s, p99 %.2f s, max %.2f s over %zu runs (%d missed)\n",
                p50, p99, percentile(latency.seconds, 1.0), latency.seconds.size(), latency.missed);
    std::printf("  goal: p99 <= interval + 1 s = %.1f s: %s\n", goal, latency_met ? "met" : "not met");
    std::printf("\n| Running runs | Prometheus queries | over s | queries per %gs interval |\n|---:|---:|---:|---:|\n", interval);
    for (const auto& q : queries) {
      std::printf("| %d | %.0f | %.1f | %.2f |\n", q["runningRuns"].get<int>(), q["queries"].get<double>(),
                  q["seconds"].get<double>(), q["queriesPerInterval"].get<double>());
    }
    std::printf("  goal: the same number of queries per interval at every size: %s\n\n", queries_met ? "met" : "not met");
    result = {{"benchmark", "budget"},
              {"intervalSeconds", interval},
              {"latency",
               {{"runs", latency.seconds.size()}, {"missed", latency.missed}, {"p50Seconds", p50}, {"p99Seconds", p99},
                {"maxSeconds", percentile(latency.seconds, 1.0)}, {"goalSeconds", goal}, {"met", latency_met}}},
              {"queries", queries},
              {"queriesGoalMet", queries_met}};
    std::cout << result.dump() << std::endl;
    if (!out_file.empty()) {
      json full = result;
      full["latency"]["perRun"] = latency.runs;
      std::ofstream(out_file) << full.dump(2) << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "paddock-bench-budget: " << e.what() << "\n";
    rc = 1;
  }
  client.remove(kube::resources::agentpolicies, "", team.name).ok();
  return rc;
}
