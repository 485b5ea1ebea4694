// Throughput benchmark: Paddock side by side with the Kubernetes Job controller on one control
// plane (e2e/cluster.sh, "bench"), in one run (issue 9).
//
// 1. Throughput: N AgentRuns created at once by a parallel loader, timed until every run's pod
//    exists and until every run is Running (kwok runs the pods); then N Jobs, timed until every
//    Job's pod exists (kube-controller-manager's Job controller). Paddock gets the client QPS and
//    burst read from kube-controller-manager's command line, so both sides have the same limit.
// 2. The limit: Paddock's agent pod as it wrote it, created by a parallel loader with no client
//    limit (the one object Paddock creates per run), and the set of ConfigMap (holding
//    what the pod's annotations hold), NetworkPolicy and Pod per run; and Paddock itself with no
//    client limit, against the pods.
// 3. Latency: runs created at a steady rate (20/s for 60 s); create response to the pod's arrival
//    on a watch here (creationTimestamp has second precision), p50 and p99.
// 4. Footprint: the operator's VmRSS and CPU seconds (utime+stime) idle and with 1k and 10k runs
//    cached; API requests per run by verb (paddock_api_requests_total deltas divided by runs).
// 5. Output: JSON, a Markdown table and, when gnuplot is on PATH, a PNG plot, in --out-dir.
//
// Between phases every namespace is deleted and its deletion awaited on a watch.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "bench/figures.h"
#include "e2e/tests/support.h"
#include "operator/common/flags.h"
#include "operator/common/log.h"
#include "operator/http/client.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"

using namespace paddock;
using namespace paddock::e2e;
using kube::resources::agentruns;
using kube::resources::configmaps;
using kube::resources::namespaces;
using kube::resources::networkpolicies;
using kube::resources::pods;
using Steady = std::chrono::steady_clock;

namespace {
using bench::fmt;
using bench::homeCache;
using bench::percentile;

const kube::Resource jobs{"batch", "v1", "jobs", true};

double since(Steady::time_point t0, Steady::time_point t) { return std::chrono::duration<double>(t - t0).count(); }
double secondsSince(Steady::time_point t0) { return since(t0, Steady::now()); }
void sleepFor(double seconds) { CancelToken().waitFor(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000))); }

// kube-controller-manager's --kube-api-qps and --kube-api-burst, from its command line (the
// cluster directory keeps its PID), with client-go's defaults when absent.
std::pair<double, int> controllerManagerLimits(const std::string& cluster_dir, std::string& source) {
  double qps = 20;
  int burst = 30;
  std::ifstream pid_file(cluster_dir + "/run/kube-controller-manager.pid");
  pid_t pid = 0;
  pid_file >> pid;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  for (std::string a; std::getline(cmd, a, '\0');) args.push_back(a);
  if (pid <= 0 || args.empty()) {
    source = "defaults (kube-controller-manager's command line not readable)";
    return {qps, burst};
  }
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](const std::string& flag) -> std::optional<std::string> {
      if (args[i] == flag && i + 1 < args.size()) return args[i + 1];
      if (args[i].rfind(flag + "=", 0) == 0) return args[i].substr(flag.size() + 1);
      return std::nullopt;
    };
    if (auto v = value("--kube-api-qps")) qps = std::stod(*v);
    if (auto v = value("--kube-api-burst")) burst = std::stoi(*v);
  }
  source = "kube-controller-manager's command line (pid " + std::to_string(pid) + ")";
  return {qps, burst};
}

// /proc figures of a process.
struct ProcStat {
  double rss_mib = NAN;
  double cpu_seconds = NAN;
};
ProcStat procStat(pid_t pid) {
  ProcStat s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string key; status >> key;) {
    if (key == "VmRSS:") {
      long kib = 0;
      status >> kib;
      s.rss_mib = static_cast<double>(kib) / 1024;
      break;
    }
    std::getline(status, key);
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = all.rfind(')');  // the command name may hold spaces
  if (close != std::string::npos) {
    std::istringstream rest(all.substr(close + 2));
    std::vector<std::string> f;
    for (std::string x; rest >> x;) f.push_back(x);
    // Fields from 3 (state) on: utime and stime are fields 14 and 15, so f[11] and f[12].
    if (f.size() > 12) s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return s;
}

// paddock_api_requests_total by verb and resource, summed over codes.
using RequestCounts = std::map<std::pair<std::string, std::string>, double>;
std::optional<RequestCounts> scrapeRequests(const std::string& base_url) {
  auto client = http::makeClient(base_url, {});
  if (!client) return std::nullopt;
  http::Request req{http::Method::Get, "/metrics"};
  req.timeout = std::chrono::seconds(10);
  auto resp = (*client)->send(req);
  if (!resp || resp->status != 200) return std::nullopt;
  RequestCounts out;
  std::istringstream in(resp->body);
  const std::string name = "paddock_api_requests_total{";
  auto label = [](const std::string& line, const std::string& key) {
    auto at = line.find(key + "=\"");
    if (at == std::string::npos) return std::string();
    at += key.size() + 2;
    return line.substr(at, line.find('"', at) - at);
  };
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    out[{label(line, "verb"), label(line, "resource")}] += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

bool isWrite(const std::string& verb) {
  return verb == "create" || verb == "apply" || verb == "patch" || verb == "update" || verb == "update-status" ||
         verb == "delete";
}

// Requests per run between two scrapes: by verb, by verb and resource, and writes. Lease renewals
// (leader election) come with time, not runs: listed, but not counted as the runs' writes.
json perRun(const RequestCounts& before, const RequestCounts& after, int runs) {
  std::map<std::string, double> by_verb;
  json by_resource = json::object();
  double writes = 0, total = 0, events = 0;
  for (const auto& [k, v] : after) {
    double d = v - (before.count(k) ? before.at(k) : 0);
    if (d <= 0 || k.first == "watch") continue;  // watches last minutes, not a run
    by_verb[k.first] += d;
    by_resource[k.first + " " + k.second] = d / runs;
    total += d;
    if (isWrite(k.first) && k.second != "leases") writes += d;
    if (isWrite(k.first) && k.second == "events") events += d;
  }
  json verbs = json::object();
  for (const auto& [verb, d] : by_verb) verbs[verb] = d / runs;
  return {{"runs", runs}, {"byVerb", verbs}, {"byVerbAndResource", by_resource}, {"writes", writes / runs}, {"writesBesidesEvents", (writes - events) / runs},
          {"total", total / runs}};
}

// The operator under measurement: a process of its own, its /metrics port read from its log.
class Operator {
 public:
  Operator(const std::string& bin, const std::string& kubeconfig, const std::string& lease_ns,
           const std::string& audit_dir, double qps, int burst, int workers) {
    process_ = std::make_unique<Process>(std::vector<std::string>{
        bin, "--kubeconfig", kubeconfig, "--listen-address", "127.0.0.1:0", "--leader-election-namespace", lease_ns,
        "--audit-store", audit_dir, "--kube-api-qps", fmt("%g", qps), "--kube-api-burst", std::to_string(burst),
        "--workers", std::to_string(workers)});
    std::string serving = process_->waitForLine(
        [](const std::string& l) { return l.find("serving /healthz") != std::string::npos; }, std::chrono::seconds(30));
    auto line = json::parse(serving, nullptr, false);
    if (!line.is_object() || !line.contains("port")) throw std::runtime_error("the operator did not say where it serves /metrics");
    metrics_url_ = "http://127.0.0.1:" + std::to_string(line["port"].get<int>());
    if (!eventually([&] { return ready(); }, std::chrono::seconds(60), std::chrono::milliseconds(100))) {
      throw std::runtime_error("the operator did not become ready (/readyz)");
    }
  }
  ~Operator() {
    process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(20));
  }
  bool ready() const {
    auto client = http::makeClient(metrics_url_, {});
    if (!client) return false;
    auto resp = (*client)->send(http::Request{http::Method::Get, "/readyz"});
    return resp && resp->status == 200;
  }
  const std::string& metricsUrl() const { return metrics_url_; }
  pid_t pid() const { return process_->pid(); }

 private:
  std::unique_ptr<Process> process_;
  std::string metrics_url_;
};

// Runs `work(i)` for i in [from, to) on `threads` threads, each with its own unlimited client,
// connected before any work starts; returns when the work started (the clock of the loaders).
Steady::time_point parallel(int from, int to, int threads, const std::function<void(kube::Client&, int)>& work) {
  std::atomic<int> next{from};
  int n = std::max(0, std::min(threads, to - from));
  std::latch connected(n + 1);
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) {
    pool.emplace_back([&] {
      auto rest = adminClient();
      kube::Client c(*rest, {.qps = 0});
      c.get(namespaces, "", "default").ok();  // TLS handshake and connection, off the clock
      connected.arrive_and_wait();
      for (int i = next++; i < to; i = next++) work(c, i);
    });
  }
  connected.arrive_and_wait();
  auto started = Steady::now();
  for (auto& p : pool) p.join();
  return started;
}

std::string runName(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "r%05d", i);
  return buf;
}

struct Team {
  std::string name = "bench-tp-" + randomSuffix();
  json policy(int max_running) const {
    json p = loadYaml(repoPath("crds/samples/policy.yaml"));
    p["metadata"] = {{"name", name}};
    p["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", name}}}};
    p["spec"]["concurrency"]["maxRunning"] = max_running;
    return p;
  }
  json labels() const { return {{"paddock.dev/team", name}, {"pod-security.kubernetes.io/enforce", "restricted"}}; }
};

json agentRun(const std::string& name) {
  json run = loadYaml(repoPath("crds/samples/run.yaml"));
  run["metadata"] = {{"name", name}};
  run["spec"]["idempotencyKey"] = name;
  return run;
}

json job(const std::string& name) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"backoffLimit", 0},
            {"template",
             {{"spec",
               {{"restartPolicy", "Never"},
                {"containers", json::array({{{"name", "agent"}, {"image", "registry.example.com/sample/agent:1.0"}}})}}}}}}}};
}

// A namespace of the benchmark; deleting it waits for the deletion on a watch.
class Namespace {
 public:
  Namespace(kube::RestClient& rest, kube::Client& client, const std::string& prefix, const json& labels)
      : rest_(rest), client_(client), name_(prefix + "-" + randomSuffix()) {
    auto r = client_.create(namespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                             {"metadata", {{"name", name_}, {"labels", labels}}}});
    if (!r) throw std::runtime_error("cannot create namespace " + name_ + ": " + r.error().describe());
  }
  ~Namespace() { remove(); }
  const std::string& name() const { return name_; }
  // Deletes the namespace and waits on a watch until it is gone; returns the seconds it took.
  double remove() {
    if (removed_) return 0;
    removed_ = true;
    auto start = Steady::now();
    auto current = client_.get(namespaces, "", name_);
    if (!current) return 0;
    std::string rv = current->value(json::json_pointer("/metadata/resourceVersion"), std::string());
    if (auto d = client_.remove(namespaces, "", name_); !d && d.error().code != 404) {
      std::cerr << "throughput bench: delete namespace " << name_ << ": " << d.error().describe() << "\n";
      return NAN;
    }
    json gone = watchUntil(rest_, "/api/v1/namespaces?fieldSelector=metadata.name%3D" + name_, rv,
                           [](const std::string& type, const json&) { return type == "DELETED"; }, std::chrono::seconds(300));
    if (gone.is_null()) {
      std::cerr << "throughput bench: namespace " << name_ << " still there after 300 s\n";
      return NAN;
    }
    return secondsSince(start);
  }

 private:
  kube::RestClient& rest_;
  kube::Client& client_;
  std::string name_;
  bool removed_ = false;
};

// First arrival, on watches here, of each key's pod and of each key reaching a state.
class Tracker {
 public:
  // Pods in `ns` labelled `label`, keyed by the label's value; `reached(obj)` says whether an
  // object of `resource` (keyed by name) has reached the awaited state.
  Tracker(kube::Client& client, const std::string& ns, const std::string& label, const kube::Resource& resource,
          std::function<bool(const json&)> reached)
      : pods_(client, kube::resources::pods, {.namespace_ = ns, .label_selector = label}), objects_(client, resource, {.namespace_ = ns}) {
    pods_.addHandler([this, label](const kube::InformerEvent& e) {
      if (e.type != kube::InformerEvent::Type::Upsert || e.old) return;
      auto now = Steady::now();
      const auto& labels = (*e.object)["metadata"].value("labels", json::object());
      std::string key = labels.value(label, "");
      std::lock_guard lock(mu_);
      pod_seen_.emplace(key, now);
    });
    objects_.addHandler([this, reached = std::move(reached)](const kube::InformerEvent& e) {
      if (e.type != kube::InformerEvent::Type::Upsert || !reached(*e.object)) return;
      auto now = Steady::now();
      std::lock_guard lock(mu_);
      reached_.emplace((*e.object)["metadata"].value("name", ""), now);
    });
    threads_.emplace_back([this] { pods_.run(stop_); });
    threads_.emplace_back([this] { objects_.run(stop_); });
    if (!pods_.waitForSync(std::chrono::seconds(30)) || !objects_.waitForSync(std::chrono::seconds(30))) {
      throw std::runtime_error("the benchmark's watches did not sync");
    }
  }
  ~Tracker() {
    stop_.cancel();
    for (auto& t : threads_) t.join();
  }
  size_t pods() const {
    std::lock_guard lock(mu_);
    return pod_seen_.size();
  }
  size_t reached() const {
    std::lock_guard lock(mu_);
    return reached_.size();
  }
  std::optional<Steady::time_point> podSeen(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = pod_seen_.find(key);
    return it == pod_seen_.end() ? std::nullopt : std::optional(it->second);
  }
  Steady::time_point lastPod() const { return last(pod_seen_); }
  Steady::time_point lastReached() const { return last(reached_); }
  kube::Informer& podInformer() { return pods_; }

 private:
  Steady::time_point last(const std::map<std::string, Steady::time_point>& m) const {
    std::lock_guard lock(mu_);
    Steady::time_point t{};
    for (const auto& [_, v] : m) t = std::max(t, v);
    return t;
  }
  kube::Informer pods_, objects_;
  CancelToken stop_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::map<std::string, Steady::time_point> pod_seen_;  // guarded by mu_
  std::map<std::string, Steady::time_point> reached_;   // guarded by mu_
};

bool isRunning(const json& run) { return run.value(json::json_pointer("/status/phase"), std::string()) == "Running"; }
bool isComplete(const json& job) {
  for (const auto& c : job.value(json::json_pointer("/status/conditions"), json::array())) {
    if (c.value("type", "") == "Complete" && c.value("status", "") == "True") return true;
  }
  return false;
}

// Waits for `count() >= n`, at most `timeout` seconds; false at timeout.
bool waitCount(const std::function<size_t()>& count, size_t n, double timeout) {
  return eventually([&] { return count() >= n; }, std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)),
                    std::chrono::milliseconds(20));
}

struct Bench {
  kube::RestClient& rest;
  kube::Client& client;
  Team team;
  std::string operator_bin, kubeconfig, audit_dir, lease_ns;
  int loaders = 16;
  int workers = 4;
  double timeout_per_run = 1.0;  // seconds a size may take per run, on top of 60 s
  json templates;                // the Pod and the team's NetworkPolicy Paddock wrote for the first run

  std::unique_ptr<Operator> startOperator(double qps, int burst) {
    auto op = std::make_unique<Operator>(operator_bin, kubeconfig, lease_ns, audit_dir, qps, burst, workers);
    std::cerr << "throughput bench: operator pid " << op->pid() << " (--kube-api-qps " << qps << " --kube-api-burst "
              << burst << " --workers " << workers << ")\n";
    return op;
  }

  // Creates make(i) for i in [from, to) in `ns` from the loaders; returns when they started.
  Steady::time_point createAll(const kube::Resource& r, const std::string& ns, int from, int to,
                               const std::function<json(int)>& make, std::atomic<int>& failed) {
    return parallel(from, to, loaders, [&](kube::Client& c, int i) {
      if (auto created = c.create(r, ns, make(i)); !created && failed++ < 3) {
        std::cerr << "create " << r.plural << " " << runName(i) << ": " << created.error().describe() << "\n";
      }
    });
  }

  // N AgentRuns at once; until every pod exists and every run is Running.
  json paddock(Operator& op, int n, bool keep_templates) {
    Namespace ns(rest, client, "bench-tp-runs", team.labels());
    Tracker t(client, ns.name(), "paddock.dev/run", agentruns, isRunning);
    auto before = scrapeRequests(op.metricsUrl());
    auto cpu0 = procStat(op.pid()).cpu_seconds;
    std::atomic<int> failed{0};
    auto start = createAll(agentruns, ns.name(), 0, n, [](int i) { return agentRun(runName(i)); }, failed);
    double loaded = secondsSince(start);
    double timeout = 60 + timeout_per_run * n;
    bool pods_ok = waitCount([&] { return t.pods(); }, n, timeout - secondsSince(start));
    bool running_ok = waitCount([&] { return t.reached(); }, n, timeout - secondsSince(start));
    // Let the last status writes land before counting requests.
    sleepFor(2);
    auto after = scrapeRequests(op.metricsUrl());
    auto cpu1 = procStat(op.pid()).cpu_seconds;
    double pod_s = pods_ok ? since(start, t.lastPod()) : timeout, run_s = running_ok ? since(start, t.lastReached()) : timeout;
    json r = {{"runs", n},
              {"loadSeconds", loaded},
              {"createFailures", failed.load()},
              {"podsSeen", t.pods()},
              {"runningSeen", t.reached()},
              {"allPodsSeconds", pod_s},
              {"allRunningSeconds", run_s},
              {"podsPerSecond", static_cast<double>(t.pods()) / pod_s},
              {"runningPerSecond", static_cast<double>(t.reached()) / run_s},
              {"timedOut", !pods_ok || !running_ok},
              {"operatorCpuSeconds", cpu1 - cpu0},
              {"operatorCpuMsPerRun", 1000 * (cpu1 - cpu0) / n}};
    if (before && after) r["requestsPerRun"] = perRun(*before, *after, n);
    if (keep_templates) captureTemplates(ns.name(), t);
    r["namespaceDeleteSeconds"] = ns.remove();
    std::cerr << "throughput bench: paddock " << r.dump() << "\n";
    return r;
  }

  // N Jobs at once; until every Job's pod exists. Jobs Complete by then are counted, not awaited.
  json jobController(int n) {
    Namespace ns(rest, client, "bench-tp-jobs", json::object());
    Tracker t(client, ns.name(), "batch.kubernetes.io/job-name", jobs, isComplete);
    std::atomic<int> failed{0};
    auto start = createAll(jobs, ns.name(), 0, n, [](int i) { return job(runName(i)); }, failed);
    double loaded = secondsSince(start);
    double timeout = 60 + timeout_per_run * n;
    bool pods_ok = waitCount([&] { return t.pods(); }, n, timeout - secondsSince(start));
    double pod_s = pods_ok ? since(start, t.lastPod()) : timeout;
    json r = {{"jobs", n},
              {"loadSeconds", loaded},
              {"createFailures", failed.load()},
              {"podsSeen", t.pods()},
              {"completeWhenAllPods", t.reached()},
              {"allPodsSeconds", pod_s},
              {"podsPerSecond", static_cast<double>(t.pods()) / pod_s},
              {"timedOut", !pods_ok}};
    r["namespaceDeleteSeconds"] = ns.remove();
    std::cerr << "throughput bench: jobs " << r.dump() << "\n";
    return r;
  }

  // The children of one run as Paddock wrote them, stripped of what the server sets.
  void captureTemplates(const std::string& ns, Tracker& t) {
    std::string run = runName(0);
    auto strip = [](json o) {
      for (const char* k : {"uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences",
                            "generation"}) {
        o["metadata"].erase(k);
      }
      o["metadata"].erase("namespace");
      o.erase("status");
      if (o.contains("spec")) o["spec"].erase("nodeName");
      return o;
    };
    auto pod = [&]() -> json {
      for (const auto& p : t.podInformer().list()) {
        if ((*p)["metadata"].value("labels", json::object()).value("paddock.dev/run", "") == run) return *p;
      }
      return nullptr;
    }();
    auto np = client.get(networkpolicies, ns, "paddock-" + team.name);
    if (pod.is_null() || !np) {
      std::cerr << "throughput bench: cannot find the pod of " << run << " or the team's NetworkPolicy; the raw limit is skipped\n";
      return;
    }
    json stripped_np = strip(*np);
    stripped_np["metadata"]["name"] = run + "-egress";
    stripped_np["spec"]["podSelector"] = {{"matchLabels", {{"paddock.dev/run", run}}}};
    templates = {{"networkpolicy", stripped_np}, {"pod", strip(pod)}};
  }

  // Creates from the loaders, without a client limit, the objects `make(i)` lists for i in [0, n).
  json rawCreates(const std::string& what, int n, const std::function<std::vector<std::pair<const kube::Resource*, json>>(int)>& make) {
    Namespace ns(rest, client, "bench-tp-raw", team.labels());
    std::atomic<int> failed{0};
    size_t per = make(0).size();
    auto start = parallel(0, n, loaders, [&](kube::Client& c, int i) {
      for (auto& [r, o] : make(i)) {
        if (auto created = c.create(*r, ns.name(), o); !created && failed++ < 3) {
          std::cerr << "raw create " << r->plural << ": " << created.error().describe() << "\n";
        }
      }
    });
    double secs = secondsSince(start);
    json r = {{"what", what}, {"sets", n}, {"loaders", loaders}, {"seconds", secs}, {"setsPerSecond", n / secs},
              {"objectsPerSecond", static_cast<double>(per) * n / secs}, {"createFailures", failed.load()}};
    r["namespaceDeleteSeconds"] = ns.remove();
    std::cerr << "throughput bench: raw " << r.dump() << "\n";
    return r;
  }

  // Paddock's pod for `n` runs, then the ConfigMap + NetworkPolicy + Pod sets.
  json rawLimit(int n) {
    if (templates.is_null()) return {{"skipped", "no templates"}};
    std::string tnp = templates["networkpolicy"].dump(), tpod = templates["pod"].dump();
    auto named = [](const std::string& text, const std::string& name) {
      std::string out = text, from = runName(0);
      for (size_t at = out.find(from); at != std::string::npos; at = out.find(from, at + name.size())) {
        out.replace(at, from.size(), name);
      }
      return json::parse(out);
    };
    json out;
    out["pods"] = rawCreates("Paddock's agent pod", n, [&](int i) {
      return std::vector<std::pair<const kube::Resource*, json>>{{&pods, named(tpod, "p" + runName(i).substr(1))}};
    });
    out["sets"] = rawCreates("ConfigMap + NetworkPolicy + Pod", n, [&](int i) {
      std::string name = "x" + runName(i).substr(1);
      json pod = named(tpod, name);
      json data = json::object();
      const json annotations = pod["metadata"].value("annotations", json::object());
      for (const auto& [k, v] : annotations.items()) {
        if (k.rfind("paddock.dev/", 0) == 0 && v.is_string()) data[k.substr(12)] = v;
      }
      json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
                 {"metadata", {{"name", name + "-agent"}, {"labels", pod["metadata"]["labels"]}}}, {"data", data}};
      return std::vector<std::pair<const kube::Resource*, json>>{
          {&configmaps, cm}, {&networkpolicies, named(tnp, name)}, {&pods, pod}};
    });
    return out;
  }

  // Runs at `rate` per second for `seconds`; create response to the pod's arrival on the watch.
  json latency(Operator& op, double rate, double seconds) {
    Namespace ns(rest, client, "bench-tp-latency", team.labels());
    Tracker t(client, ns.name(), "paddock.dev/run", agentruns, isRunning);
    int n = static_cast<int>(std::lround(rate * seconds));
    std::vector<Steady::time_point> created(n);
    std::vector<double> late(n);
    auto before = scrapeRequests(op.metricsUrl());
    auto start = Steady::now() + std::chrono::milliseconds(200);
    std::atomic<int> failed{0};
    // Enough senders that a slow response never holds back the schedule.
    parallel(0, n, 8, [&](kube::Client& c, int i) {
      auto due = start + std::chrono::microseconds(static_cast<int64_t>(1e6 * i / rate));
      std::this_thread::sleep_until(due);
      late[i] = secondsSince(due);
      if (auto r = c.create(agentruns, ns.name(), agentRun(runName(i))); !r) {
        if (failed++ < 3) std::cerr << "create " << runName(i) << ": " << r.error().describe() << "\n";
      }
      created[i] = Steady::now();
    });
    waitCount([&] { return t.pods(); }, n, 60);
    waitCount([&] { return t.reached(); }, n, 30);
    sleepFor(2);
    auto after = scrapeRequests(op.metricsUrl());
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      if (auto seen = t.podSeen(runName(i))) ms.push_back(1000 * since(created[i], *seen));
    }
    json r = {{"ratePerSecond", rate},
              {"seconds", seconds},
              {"runs", n},
              {"podsSeen", ms.size()},
              {"createFailures", failed.load()},
              {"p50Ms", percentile(ms, 0.5)},
              {"p90Ms", percentile(ms, 0.9)},
              {"p99Ms", percentile(ms, 0.99)},
              {"maxMs", percentile(ms, 1.0)},
              {"senderLateP99Ms", 1000 * percentile(late, 0.99)},
              {"samplesMs", ms}};
    if (before && after) r["requestsPerRun"] = perRun(*before, *after, n);
    r["namespaceDeleteSeconds"] = ns.remove();
    json brief = r;
    brief.erase("samplesMs");
    std::cerr << "throughput bench: latency " << brief.dump() << "\n";
    return r;
  }

  // RSS and CPU idle, then with `sizes` runs cached. The runs are in a namespace no policy
  // selects: Pending, Admitted=False NoPolicy, one status write each, no children.
  json footprint(Operator& op, const std::vector<int>& sizes) {
    auto window = [&](double secs) {
      auto a = procStat(op.pid());
      sleepFor(secs);
      auto b = procStat(op.pid());
      return json{{"rssMiB", b.rss_mib}, {"cpuSeconds", b.cpu_seconds}, {"idleCpuPercent", 100 * (b.cpu_seconds - a.cpu_seconds) / secs}};
    };
    json out = json::array();
    sleepFor(5);
    json idle = window(10);
    idle["runsCached"] = 0;
    idle["state"] = "idle (no AgentRuns)";
    out.push_back(idle);
    std::cerr << "throughput bench: footprint " << idle.dump() << "\n";
    Namespace ns(rest, client, "bench-tp-footprint", json::object());
    kube::Informer runs(client, agentruns, {.namespace_ = ns.name()});
    std::mutex mu;
    std::set<std::string> with_status;  // guarded by mu
    auto pending = [&] {
      std::lock_guard lock(mu);
      return with_status.size();
    };
    runs.addHandler([&](const kube::InformerEvent& e) {
      if (e.type != kube::InformerEvent::Type::Upsert || !e.object->contains("status")) return;
      std::lock_guard lock(mu);
      with_status.insert(e.key);
    });
    CancelToken stop;
    std::thread watcher([&] { runs.run(stop); });
    runs.waitForSync(std::chrono::seconds(30));
    int created = 0, before_size = 0;
    std::atomic<int> failed{0};
    for (int size : sizes) {
      auto cpu0 = procStat(op.pid()).cpu_seconds;
      auto start = Steady::now();
      createAll(agentruns, ns.name(), created, size, [](int i) { return agentRun(runName(i)); }, failed);
      created = size;
      bool all = waitCount(pending, size, 300);
      double ramp = secondsSince(start);
      sleepFor(5);
      json w = window(10);
      w["runsCached"] = size;
      w["state"] = "Pending, Admitted=False NoPolicy (a namespace no AgentPolicy selects)";
      w["statusWritten"] = pending();
      w["complete"] = all;
      w["rampSeconds"] = ramp;
      w["cpuSecondsForTheseRuns"] = w["cpuSeconds"].get<double>() - cpu0;
      w["cpuMsPerRun"] = 1000 * w["cpuSecondsForTheseRuns"].get<double>() / (size - before_size);
      before_size = size;
      out.push_back(w);
      std::cerr << "throughput bench: footprint " << w.dump() << "\n";
    }
    stop.cancel();
    watcher.join();
    ns.remove();
    return out;
  }
};

// The baseline binary beside this one, phase by phase.
std::string beforeAfter(const json& r) {
  std::ostringstream md;
  auto f = [](const json& v, const char* format) { return v.is_number() ? fmt(format, v.get<double>()) : std::string("-"); };
  const json& b = r["baseline"];
  md << "\n### Before and after, same cluster, same run (before: " << b["operator"].get<std::string>()
     << ")\n\n| | before | after |\n|---|---:|---:|\n";
  if (b.contains("unlimited") && r["unlimited"].contains("podsPerSecond")) {
    const json &x = b["unlimited"], &y = r["unlimited"];
    double raw = r["raw"].contains("pods") ? r["raw"]["pods"]["setsPerSecond"].get<double>() : NAN;
    md << "| no client limit, " << y["runs"].get<int>() << " runs: pods/s | " << f(x["podsPerSecond"], "%.1f") << " | "
       << f(y["podsPerSecond"], "%.1f") << " |\n";
    md << "| of the raw pod-create limit (" << fmt("%.1f", raw) << "/s) | " << fmt("%.0f %%", 100 * x["podsPerSecond"].get<double>() / raw)
       << " | " << fmt("%.0f %%", 100 * y["podsPerSecond"].get<double>() / raw) << " |\n";
    md << "| operator CPU per run | " << f(x["operatorCpuMsPerRun"], "%.1f ms") << " | " << f(y["operatorCpuMsPerRun"], "%.1f ms")
       << " |\n";
    if (x.contains("requestsPerRun") && y.contains("requestsPerRun")) {
      md << "| writes per run | " << f(x["requestsPerRun"]["writes"], "%.2f") << " | " << f(y["requestsPerRun"]["writes"], "%.2f")
         << " |\n";
    }
  }
  if (b.contains("footprint")) {
    for (size_t i = 0; i < b["footprint"].size() && i < r["footprint"].size(); ++i) {
      const json &x = b["footprint"][i], &y = r["footprint"][i];
      md << "| RSS with " << y["runsCached"].get<int>() << " runs cached | " << f(x["rssMiB"], "%.1f MiB") << " | "
         << f(y["rssMiB"], "%.1f MiB") << " |\n";
      if (y.contains("cpuMsPerRun")) {
        md << "| CPU per run to take them (NoPolicy) | " << f(x.value("cpuMsPerRun", json()), "%.1f ms") << " | "
           << f(y["cpuMsPerRun"], "%.1f ms") << " |\n";
      }
    }
  }
  return md.str();
}

// The Markdown report.
std::string markdown(const json& r) {
  std::ostringstream md;
  auto f = [](double v, int digits) { return fmt(digits == 0 ? "%.0f" : digits == 1 ? "%.1f" : "%.2f", v); };
  md << "### Throughput: N at once, client limit --kube-api-qps " << r["qps"].get<double>() << " --kube-api-burst "
     << r["burst"].get<int>() << " for both (" << r["limitSource"].get<std::string>() << ")\n\n";
  md << "| N | Paddock pods/s | Paddock Running/s | Job controller pods/s | ratio (pods/s) | Paddock all pods | Job all pods | "
        "Jobs Complete by then |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : r["sizes"]) {
    if (s.contains("skipped")) {
      md << "| " << s["n"].get<int>() << " | skipped: " << s["skipped"].get<std::string>() << " | | | | | | |\n";
      continue;
    }
    const auto& p = s["paddock"];
    const auto& j = s["jobs"];
    md << "| " << s["n"].get<int>() << " | " << f(p["podsPerSecond"], 1) << " | " << f(p["runningPerSecond"], 1) << " | "
       << f(j["podsPerSecond"], 1) << " | " << f(s["ratio"], 2) << " | " << f(p["allPodsSeconds"], 1) << " s | "
       << f(j["allPodsSeconds"], 1) << " s | " << j["completeWhenAllPods"].get<int>() << " |\n";
  }
  const auto& raw = r["raw"];
  const auto& un = r["unlimited"];
  if (raw.contains("pods") && un.contains("podsPerSecond")) {
    md << "\n### The limit: no client limit\n\n| | runs (sets)/s | objects/s |\n|---|---:|---:|\n";
    for (const char* k : {"pods", "sets"}) {
      const auto& x = raw[k];
      md << "| raw creates of " << x["what"].get<std::string>() << ", " << x["loaders"].get<int>() << " loaders, "
         << x["sets"].get<int>() << " sets | " << f(x["setsPerSecond"], 1) << " | " << f(x["objectsPerSecond"], 0) << " |\n";
    }
    md << "| Paddock, --kube-api-qps 0 (unlimited), " << un["runs"].get<int>() << " runs at once, pods | "
       << f(un["podsPerSecond"], 1) << " | |\n";
    md << "| Paddock / raw pods | " << f(100 * r["rawRatio"].get<double>(), 0) << " % | |\n";
    md << "| Paddock's CPU per run | " << f(un["operatorCpuMsPerRun"], 1) << " ms | |\n";
  }
  const auto& l = r["latency"];
  if (l.contains("p99Ms")) {
    md << "\n### Latency: " << l["ratePerSecond"].get<double>() << " runs/s for " << l["seconds"].get<double>()
       << " s (operator --kube-api-qps " << r["latencyQps"].get<double>() << ")\n\n";
    md << "| create to pod (watch) | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|\n";
    md << "| " << l["podsSeen"].get<int>() << " of " << l["runs"].get<int>() << " runs | " << f(l["p50Ms"], 0) << " ms | "
       << f(l["p90Ms"], 0) << " ms | " << f(l["p99Ms"], 0) << " ms | " << f(l["maxMs"], 0) << " ms |\n";
  }
  md << "\n### Footprint (operator process)\n\n| runs cached | state | RSS | CPU s (total) | CPU s for these runs | CPU per run | idle CPU |\n"
        "|---:|---|---:|---:|---:|---:|---:|\n";
  for (const auto& w : r["footprint"]) {
    md << "| " << w["runsCached"].get<int>() << " | " << w["state"].get<std::string>() << " | " << f(w["rssMiB"], 1)
       << " MiB | " << f(w["cpuSeconds"], 1) << " | "
       << (w.contains("cpuSecondsForTheseRuns") ? f(w["cpuSecondsForTheseRuns"], 1) : std::string("")) << " | "
       << (w.contains("cpuMsPerRun") ? f(w["cpuMsPerRun"], 1) + " ms" : std::string("")) << " | "
       << f(w["idleCpuPercent"], 1) << " % |\n";
  }
  if (r.contains("baseline")) md << beforeAfter(r);
  if (r.contains("requestsPerRun") && !r["requestsPerRun"].empty()) {
    const auto& all = r["requestsPerRun"];
    md << "\n### API requests per run (common path: admitted, children and pod created, Running)\n\n| verb | resource |";
    std::set<std::string> keys;
    for (const auto& q : all) {
      md << " " << q["from"].get<std::string>() << " |";
      for (const auto& [k, _] : q["byVerbAndResource"].items()) keys.insert(k);
    }
    md << "\n|---|---|";
    for (size_t i = 0; i < all.size(); ++i) md << "---:|";
    md << "\n";
    for (const auto& k : keys) {
      auto sp = k.find(' ');
      md << "| " << k.substr(0, sp) << " | " << k.substr(sp + 1) << " |";
      for (const auto& q : all) md << " " << f(q["byVerbAndResource"].value(k, 0.0), 2) << " |";
      md << "\n";
    }
    md << "| **writes** (leases aside) | |";
    for (const auto& q : all) md << " **" << f(q["writes"], 2) << "** |";
    md << "\n| writes besides Events | |";
    for (const auto& q : all) md << " " << f(q["writesBesidesEvents"], 2) << " |";
    md << "\n| all requests | |";
    for (const auto& q : all) md << " " << f(q["total"], 2) << " |";
    md << "\n";
  }
  md << "\n### Goals\n\n| goal | measured | |\n|---|---|---|\n";
  for (const auto& g : r["goals"]) {
    md << "| " << g["goal"].get<std::string>() << " | " << g["measured"].get<std::string>() << " | "
       << (g["met"].get<bool>() ? "met" : "**not met**") << " |\n";
  }
  return md.str();
}

// A PNG with gnuplot: throughput per size, and the latency distribution.
void plot(const json& r, const std::string& dir) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::cerr << "throughput bench: gnuplot not found, no plot\n";
    return;
  }
  {
    std::ofstream tp(dir + "/throughput-sizes.dat");
    tp << "# N paddock_pods_per_s paddock_running_per_s job_pods_per_s\n";
    for (const auto& s : r["sizes"]) {
      if (s.contains("skipped")) continue;
      tp << s["n"].get<int>() << " " << s["paddock"]["podsPerSecond"].get<double>() << " "
         << s["paddock"]["runningPerSecond"].get<double>() << " " << s["jobs"]["podsPerSecond"].get<double>() << "\n";
    }
    std::ofstream lat(dir + "/throughput-latency.dat");
    std::vector<double> ms = r["latency"].value("samplesMs", std::vector<double>{});
    std::sort(ms.begin(), ms.end());
    for (size_t i = 0; i < ms.size(); ++i) lat << ms[i] << " " << 100.0 * static_cast<double>(i + 1) / static_cast<double>(ms.size()) << "\n";
  }
  double raw = r["raw"].value("pods", json::object()).value("setsPerSecond", 0.0), unlimited = r["unlimited"].value("podsPerSecond", 0.0);
  std::ofstream gp(dir + "/throughput.gp");
  gp << "set terminal pngcairo size 1200,480 font ',10' noenhanced\n"
     << "set output '" << dir << "/throughput.png'\n"
     << "set multiplot layout 1,2 title 'Paddock vs the Job controller (" << r["machine"].get<std::string>() << ")'\n"
     << "set title 'Throughput, N at once, qps " << r["qps"].get<double>() << " burst " << r["burst"].get<int>() << "'\n"
     << "set logscale x\nset xlabel 'N (runs or Jobs created at once)'\nset ylabel 'per second'\nset key top left\n"
     << "set grid\nset yrange [0:" << 1.25 * std::max({raw, unlimited, 10.0}) << "]\nset xrange [50:10000]\n"
     << "plot '" << dir << "/throughput-sizes.dat' using 1:2 with linespoints lw 2 title 'Paddock pods/s', "
     << "'' using 1:3 with linespoints lw 2 title 'Paddock Running/s', "
     << "'' using 1:4 with linespoints lw 2 title 'Job controller pods/s'";
  if (raw > 0) gp << ", " << raw << " with lines dt 2 lw 2 lc 'black' title 'raw create limit (CM+NP+Pod sets/s)'";
  if (unlimited > 0) gp << ", " << unlimited << " with lines dt 3 lw 2 lc 'red' title 'Paddock, no client limit, pods/s'";
  gp << "\nunset logscale x\nset xrange [*:*]\n"
     << "set xlabel 'milliseconds'\nset ylabel 'percent of runs (CDF)'\nset yrange [0:100]\nset key bottom right\n"
     << "set title 'Create to pod seen, " << r["latency"].value("ratePerSecond", 0.0) << " runs/s for "
     << r["latency"].value("seconds", 0.0) << " s (goal: p99 <= 100 ms)'\n"
     << "plot '" << dir << "/throughput-latency.dat' using 1:2 with lines lw 2 title 'create to pod', "
     << "100 with lines dt 2 notitle\n"
     << "unset multiplot\n";
  gp.close();
  if (std::system(("gnuplot '" + dir + "/throughput.gp'").c_str()) != 0) std::cerr << "throughput bench: gnuplot failed\n";
}

std::vector<int> parseSizes(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) {
    if (!x.empty()) out.push_back(std::stoi(x));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cache = homeCache();
  std::string cluster_dir = cache + "/clusters/bench";
  std::string operator_bin = std::string(PADDOCK_BINARY_DIR) + "/operator/paddock-operator";
  std::string out_dir = std::string(PADDOCK_BINARY_DIR) + "/bench-results";
  std::string sizes = "100,1000,5000", footprint_sizes = "1000,10000";
  std::string machine = "2 cores, 24 GiB, API server sharing the CPU";
  double qps = -1, rate = 20, latency_seconds = 60, budget_seconds = 600, unlimited_qps = 0;
  int burst = -1, loaders = 16, workers = 8, raw_sets = 1000, unlimited_runs = 1000;
  Flags flags("paddock-bench-throughput",
              "Paddock against the Job controller: runs/s at equal client QPS, the raw create limit, create-to-pod "
              "latency at a steady rate, and the operator's footprint and API requests per run");
  flags.add("cluster-dir", &cluster_dir, "The cluster's directory (e2e/cluster.sh): its kubeconfig and kube-controller-manager's PID.");
  flags.add("operator", &operator_bin, "The paddock-operator binary.");
  flags.add("out-dir", &out_dir, "Where throughput.json, throughput.md and throughput.png are written.");
  flags.add("sizes", &sizes, "Runs (and Jobs) created at once, comma-separated, ascending.");
  flags.add("qps", &qps, "Client QPS for Paddock; default kube-controller-manager's --kube-api-qps.");
  flags.add("burst", &burst, "Client burst for Paddock; default kube-controller-manager's --kube-api-burst.");
  flags.add("workers", &workers, "The operator's --workers.");
  flags.add("loaders", &loaders, "Parallel loader threads, each with its own connection and no client limit.");
  flags.add("raw-sets", &raw_sets, "ConfigMap+NetworkPolicy+Pod sets for the raw create limit.");
  flags.add("unlimited-runs", &unlimited_runs, "Runs at once for Paddock without a client limit.");
  flags.add("unlimited-qps", &unlimited_qps, "The operator's --kube-api-qps for the limit and latency phases (0: none).");
  flags.add("rate", &rate, "Runs per second for the latency phase.");
  flags.add("latency-seconds", &latency_seconds, "How long runs are created at --rate.");
  flags.add("footprint-sizes", &footprint_sizes, "Runs cached for the footprint figures, comma-separated, ascending.");
  flags.add("budget-seconds", &budget_seconds,
            "Wall time for the throughput sizes: a size whose estimate (from the last size's rates) does not fit is skipped.");
  flags.add("machine", &machine, "The machine, as written in the report.");
  std::string phases = "throughput,limit,latency,footprint", baseline_bin;
  flags.add("phases", &phases, "The phases to run, comma-separated: throughput, limit, latency, footprint.");
  flags.add("baseline-operator", &baseline_bin,
            "Another paddock-operator binary (a build of main, say), measured in the same run on the same cluster "
            "for the limit and footprint phases: before and after figures side by side.");
  flags.parseOrExit(argc, argv);
  auto phase = [&](const char* name) { return ("," + phases + ",").find(std::string(",") + name + ",") != std::string::npos; };
  log::setLevel(log::Level::Warn);
  std::string kubeconfig = cluster_dir + "/kubeconfig";
  ::setenv("PADDOCK_E2E_KUBECONFIG", kubeconfig.c_str(), 1);
  std::system(("mkdir -p '" + out_dir + "'").c_str());

  std::string limit_source = "--qps/--burst";
  auto kcm = controllerManagerLimits(cluster_dir, limit_source);
  if (qps < 0) qps = kcm.first;
  else limit_source = "--qps";
  if (burst < 0) burst = kcm.second;
  std::cerr << "throughput bench: Job controller and Paddock at --kube-api-qps " << qps << " --kube-api-burst " << burst
            << " (kube-controller-manager: " << kcm.first << "/" << kcm.second << ", from " << limit_source << ")\n";

  auto total_start = Steady::now();
  auto rest = adminClient();
  kube::Client client(*rest, {.qps = 0});
  auto size_list = parseSizes(sizes);
  Bench b{*rest, client};
  b.operator_bin = operator_bin;
  b.kubeconfig = kubeconfig;
  b.loaders = loaders;
  b.workers = workers;
  b.audit_dir = out_dir + "/throughput-audit-" + randomSuffix();
  int max_running = std::max({size_list.empty() ? 0 : size_list.back(), unlimited_runs,
                              static_cast<int>(rate * latency_seconds)}) + 100;
  if (auto p = client.create(kube::resources::agentpolicies, "", b.team.policy(max_running)); !p) {
    std::cerr << "cannot create the policy: " << p.error().describe() << "\n";
    return 1;
  }
  json result = {{"benchmark", "throughput"}, {"machine", machine}, {"qps", qps}, {"burst", burst},
                 {"limitSource", limit_source}, {"controllerManager", {{"qps", kcm.first}, {"burst", kcm.second}}},
                 {"operatorWorkers", workers}, {"loaders", loaders}, {"maxRunning", max_running}};
  int rc = 0;
  try {
    Namespace lease(*rest, client, "bench-tp-lease", json::object());
    b.lease_ns = lease.name();

    // 1. Throughput at equal QPS.
    json size_results = json::array();
    json requests_per_run;
    if (!phase("throughput") && phase("limit")) {
      // The raw limit creates Paddock's pod as it wrote it: a few runs give the templates.
      auto op = b.startOperator(qps, burst);
      b.paddock(*op, 20, true);
    }
    if (phase("throughput")) {
      auto op = b.startOperator(qps, burst);
      auto phase_start = Steady::now();
      // The last size's work (Paddock to Running, Jobs to pods), scaled by N, plus its cleanup,
      // which is mostly fixed (the namespace controller's passes).
      double work_per_run = 0, cleanup = 0;
      for (size_t i = 0; i < size_list.size(); ++i) {
        int n = size_list[i];
        double left = budget_seconds - secondsSince(phase_start);
        double estimate = work_per_run * n + cleanup;
        if (work_per_run > 0 && estimate > left) {
          std::string why = "estimated " + fmt("%.0f", estimate) + " s at the last size's rates, " + fmt("%.0f", left) +
                            " s of --budget-seconds left";
          std::cerr << "throughput bench: N=" << n << " skipped: " << why << "\n";
          size_results.push_back({{"n", n}, {"skipped", why}});
          continue;
        }
        json p = b.paddock(*op, n, i == 0);
        json j = b.jobController(n);
        cleanup = p["namespaceDeleteSeconds"].get<double>() + j["namespaceDeleteSeconds"].get<double>();
        work_per_run = (p["allRunningSeconds"].get<double>() + j["allPodsSeconds"].get<double>()) / n;
        json s = {{"n", n}, {"paddock", p}, {"jobs", j},
                  {"ratio", p["podsPerSecond"].get<double>() / j["podsPerSecond"].get<double>()}};
        if (p.contains("requestsPerRun")) {
          requests_per_run = p["requestsPerRun"];
          requests_per_run["from"] = "N=" + std::to_string(n) + ", --kube-api-qps " + fmt("%g", qps);
        }
        size_results.push_back(s);
      }
    }
    result["sizes"] = size_results;
    json per_run = json::array();
    if (!requests_per_run.is_null()) per_run.push_back(requests_per_run);

    // 2. The limit: raw creates, then Paddock without a client limit (and the baseline binary,
    //    when given, on the same cluster right after).
    result["raw"] = json::object();
    result["unlimited"] = json::object();
    result["latency"] = json::object();
    result["footprint"] = json::array();
    auto unlimitedOperator = [&] {
      return b.startOperator(unlimited_qps, unlimited_qps > 0 ? static_cast<int>(2 * unlimited_qps) : 0);
    };
    if (phase("limit")) {
      result["raw"] = b.rawLimit(raw_sets);
      auto op = unlimitedOperator();
      result["unlimited"] = b.paddock(*op, unlimited_runs, false);
      result["unlimited"]["qps"] = unlimited_qps;
      if (result["unlimited"].contains("requestsPerRun")) {
        json q = result["unlimited"]["requestsPerRun"];
        q["from"] = "N=" + std::to_string(unlimited_runs) + ", no client limit";
        per_run.push_back(q);
      }
      // 3. Latency at a steady rate.
      if (phase("latency")) {
        result["latency"] = b.latency(*op, rate, latency_seconds);
        result["latencyQps"] = unlimited_qps;
      }
    }
    result["requestsPerRun"] = per_run;
    // 4. Footprint, on an operator of its own so earlier phases leave nothing in its heap.
    if (phase("footprint")) {
      auto op = unlimitedOperator();
      result["footprint"] = b.footprint(*op, parseSizes(footprint_sizes));
    }
    if (!baseline_bin.empty()) {
      std::string current = b.operator_bin;
      b.operator_bin = baseline_bin;
      json base = {{"operator", baseline_bin}};
      if (phase("limit")) {
        auto op = unlimitedOperator();
        base["unlimited"] = b.paddock(*op, unlimited_runs, false);
      }
      if (phase("footprint")) {
        auto op = unlimitedOperator();
        base["footprint"] = b.footprint(*op, parseSizes(footprint_sizes));
      }
      b.operator_bin = current;
      result["baseline"] = base;
    }
    result["wallSeconds"] = secondsSince(total_start);

    // Goals.
    json goals = json::array();
    auto goal = [&](const std::string& g, const std::string& measured, bool met) {
      goals.push_back({{"goal", g}, {"measured", measured}, {"met", met}});
    };
    if (phase("throughput")) {
      std::string m;
      bool met = false, any = false;
      for (const auto& s : result["sizes"]) {
        if (s.contains("skipped")) continue;
        m += (m.empty() ? "" : ", ") + std::string("N=") + std::to_string(s["n"].get<int>()) + ": " + fmt("%.2f", s["ratio"].get<double>());
        met = any ? met && s["ratio"].get<double>() >= 1 : s["ratio"].get<double>() >= 1;
        any = true;
      }
      goal("Paddock >= Job controller pods/s at equal QPS (ratio)", m, any && met);
    }
    if (result["raw"].contains("pods") && result["unlimited"].contains("podsPerSecond")) {
      double ratio = result["unlimited"]["podsPerSecond"].get<double>() / result["raw"]["pods"]["setsPerSecond"].get<double>();
      result["rawRatio"] = ratio;
      goal(">= 70 % of the raw create limit (no client limit; raw: Paddock's pod alone)",
           fmt("%.0f %%", 100 * ratio) + " (" + fmt("%.1f", result["unlimited"]["podsPerSecond"].get<double>()) + " of " +
               fmt("%.1f", result["raw"]["pods"]["setsPerSecond"].get<double>()) + " runs/s)",
           ratio >= 0.7);
    }
    if (result["latency"].contains("p99Ms")) {
      double p99 = result["latency"]["p99Ms"].get<double>();
      goal("create-to-pod p99 <= 100 ms at " + fmt("%g", rate) + " runs/s", fmt("%.0f ms", p99), p99 <= 100);
    }
    if (!result["footprint"].empty()) {
      const auto& last = result["footprint"].back();
      double rss = last["rssMiB"].get<double>();
      goal("RSS <= 64 MB with " + std::to_string(last["runsCached"].get<int>()) + " runs cached", fmt("%.1f MiB", rss),
           rss * 1024 * 1024 <= 64e6);
    }
    if (!per_run.empty()) {
      double w = 0, w_no_events = 0;
      for (const auto& q : per_run) {
        w = std::max(w, q["writes"].get<double>());
        w_no_events = std::max(w_no_events, q["writesBesidesEvents"].get<double>());
      }
      goal("<= 5 API writes per run (common path, Events included)",
           fmt("%.2f", w) + " (" + fmt("%.2f", w_no_events) + " besides Events)", w <= 5.0 + 1e-9);
    }
    result["goals"] = goals;

    std::string md = markdown(result);
    std::cout << "\n" << md << "\n";
    std::ofstream(out_dir + "/throughput.md") << md;
    std::ofstream(out_dir + "/throughput.json") << result.dump(2) << "\n";
    plot(result, out_dir);
    std::cerr << "throughput bench: wrote " << out_dir << "/throughput.{json,md,png} in " << fmt("%.0f", secondsSince(total_start))
              << " s\n";
  } catch (const std::exception& e) {
    std::cerr << "paddock-bench-throughput: " << e.what() << "\n";
    std::ofstream(out_dir + "/throughput.partial.json") << result.dump(2) << "\n";
    rc = 1;
  }
  client.remove(kube::resources::agentpolicies, "", b.team.name).ok();
  std::system(("rm -rf '" + b.audit_dir + "'").c_str());
  return rc;
}
