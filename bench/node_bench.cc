// Node benchmark (issue 15): Paddock's agent pod on the real node (e2e/cluster.sh up --node:
// containerd, runc, kubelet, kube-proxy, kube-router's firewall), beside a bare Job's pod with the
// same image on the same node, in one run.
//
// 1. Create to container running, p50 and p99: Paddock's agent pod as planAgentPod plans it (the
//    agent simulator's image, its hardening, volumes and downward-API files, the sandbox's install
//    and the launcher; without the workspace clone, which needs a forge) and a Job whose pod runs
//    the same image, created alternately one at a time. The time runs from the create call to the event on a watch here that shows the
//    container running (creationTimestamp has second precision). Each pod is deleted once it runs.
// 2. The node's memory: VmRSS of containerd, kubelet, kube-proxy and kube-router, of the
//    containerd shims, and the pods' cgroup (kubepods, rss + cache from memory.stat), with no pod
//    and then with N idle agent pods.
//
// Output: a Markdown table on stdout and node.json in --out-dir.
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/figures.h"
#include "controllers/admission.h"
#include "controllers/plan.h"
#include "e2e/tests/support.h"
#include "operator/common/flags.h"
#include "operator/kube/client.h"

using namespace paddock;
using namespace paddock::e2e;
using Steady = std::chrono::steady_clock;

namespace {
using bench::fmt;
using bench::homeCache;
using bench::percentile;

const kube::Resource jobs{"batch", "v1", "jobs", true};

// VmRSS of a process in KiB (0 when it is gone).
long rssKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

int pidFrom(const std::string& file) {
  std::ifstream in(file);
  int pid = 0;
  in >> pid;
  return pid;
}

// The containerd shims serving the node's containerd (their command line names its socket).
std::vector<int> shimsOf(const std::string& socket) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), {});
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("containerd-shim") != std::string::npos && cmd.find(socket) != std::string::npos) out.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  return out;
}

// rss + cache of a memory cgroup (v1), in bytes.
double cgroupBytes(const std::string& dir) {
  std::ifstream in(dir + "/memory.stat");
  double total = 0;
  for (std::string key, value; in >> key >> value;) {
    if (key == "total_rss" || key == "total_cache") total += std::stod(value);
  }
  return total;
}

struct Memory {
  std::map<std::string, double> daemons_mib;
  double shims_mib = 0;
  int shims = 0;
  double pods_mib = 0;
  double total() const {
    double t = shims_mib + pods_mib;
    for (const auto& [k, v] : daemons_mib) t += v;
    return t;
  }
};

Memory measureMemory(const std::string& cluster_dir, const std::string& pods_cgroup) {
  Memory m;
  for (const char* d : {"containerd", "kubelet", "kube-proxy", "kube-router"}) {
    m.daemons_mib[d] = rssKiB(pidFrom(cluster_dir + "/run/" + d + ".pid")) / 1024.0;
  }
  for (int pid : shimsOf(cluster_dir + "/node/containerd.sock")) {
    m.shims_mib += rssKiB(pid) / 1024.0;
    ++m.shims;
  }
  m.pods_mib = cgroupBytes(pods_cgroup) / (1024.0 * 1024.0);
  return m;
}

// Records, per pod name, when a watch here first saw its first container running.
class RunningWatch {
 public:
  RunningWatch(kube::RestClient& rest, const std::string& ns) {
    thread_ = std::thread([this, &rest, ns] {
      (void)watchUntil(rest, kube::resources::pods.path(ns), "0",
                       [this](const std::string&, const json& pod) {
                         if (pod.contains(json::json_pointer("/status/containerStatuses/0/state/running"))) {
                           std::lock_guard lock(mu_);
                           seen_.try_emplace(pod["metadata"]["name"].get<std::string>(), Steady::now());
                           cv_.notify_all();
                         }
                         return false;
                       },
                       std::chrono::hours(2), stop_);
    });
  }
  ~RunningWatch() {
    stop_.cancel();
    thread_.join();
  }
  // When pod `name` was seen running (nullopt when not within `timeout`).
  std::optional<Steady::time_point> wait(const std::string& name, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return seen_.count(name) > 0; })) return std::nullopt;
    return seen_[name];
  }
  // The first pod whose name starts with `prefix` seen running.
  std::optional<Steady::time_point> waitPrefix(const std::string& prefix, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    std::optional<Steady::time_point> at;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& [n, t] : seen_) {
        if (n.rfind(prefix, 0) == 0) at = t;
      }
      return at.has_value();
    });
    return at;
  }

 private:
  CancelToken stop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Steady::time_point> seen_;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string cache = std::getenv("PADDOCK_CACHE") ? std::getenv("PADDOCK_CACHE") : std::string(std::getenv("HOME")) + "/.cache/paddock";
  std::string cluster_dir = cache + "/clusters/bench-node", out_dir = ".";
  std::string image = "paddock.local/paddock-agent-sim:dev";
  std::string operator_image = "paddock.local/paddock-operator:dev";
  int runs = 20, idle = 10;
  Flags flags("paddock-bench-node",
              "Paddock's agent pod on the real node beside a bare Job's pod: create to container running (p50, p99) and "
              "the node's memory idle and with idle agent pods");
  flags.add("cluster-dir", &cluster_dir, "The node cluster's directory (e2e/cluster.sh up --node): kubeconfig, run/*.pid, node/.");
  flags.add("image", &image, "The image both pods run (imported into the node's containerd).");
  flags.add("operator-image", &operator_image,
            "The operator's image, which Paddock's pod copies paddock-sandbox from (its sandbox init container).");
  flags.add("runs", &runs, "Pods of each kind created, one at a time, for the latency figures.");
  flags.add("idle", &idle, "Idle agent pods for the memory figure.");
  flags.add("out-dir", &out_dir, "Where node.json is written.");
  flags.parseOrExit(argc, argv);
  const std::string kubeconfig = cluster_dir + "/kubeconfig";
  ::setenv("PADDOCK_E2E_KUBECONFIG", kubeconfig.c_str(), 1);
  auto rest = adminClient();
  kube::Client client(*rest, {.qps = 0});

  std::string cgroup_root;
  {
    std::ifstream in(cluster_dir + "/node/kubelet.yaml");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("cgroupRoot:", 0) == 0) cgroup_root = line.substr(line.find_first_not_of(' ', 11));
    }
  }
  const std::string pods_cgroup = "/sys/fs/cgroup/memory" + cgroup_root + "/kubepods";

  auto policy = controllers::parseAgentPolicy(
      {{"metadata", {{"name", "bench"}}},
       {"spec", {{"namespaceSelector", json::object()},
                 {"images", {{"default", image}, {"allowed", {"paddock.local/*"}}}},
                 {"resources", {{"limits", {{"cpu", "100m"}, {"memory", "64Mi"}}}}},  // 10 fit on 2 cores
                 {"budgets", {{"default", {{"tokens", 1000}, {"costUSD", "1"}, {"wallClock", "1h"}}}}},
                 // The simulator image's entrypoint, which paddock-sandbox starts.
                 {"sandbox", {{"command", {"/usr/local/bin/paddock-agent-sim", "--listen", "0.0.0.0:9464", "--control-dir",
                                           "/etc/paddock/control"}}}}}}});
  if (!policy.ok()) {
    std::cerr << policy.error().describe() << "\n";
    return 1;
  }
  TempNamespace ns(*rest, "bench-node");
  RunningWatch watch(*rest, ns.name());
  controllers::PlanOptions options;
  options.sandbox_image = operator_image;

  // Paddock's agent pod for run `name` (the run object exists: the garbage collector would take a
  // pod whose owner does not).
  auto agentPod = [&](const std::string& name) -> std::optional<json> {
    auto created = client.create(kube::resources::agentruns, ns.name(),
                                 {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"}, {"metadata", {{"name", name}}},
                                  {"spec", {{"task", "t"}, {"repository", {{"url", "https://example.com/r.git"}}}}}});
    if (!created.ok()) return std::nullopt;
    auto run = controllers::parseAgentRun(*created);
    auto admission = controllers::admit(*run, *policy);
    json pod = controllers::planAgentPod(*run, *policy, admission.effective, options);
    pod["metadata"].erase("finalizers");  // no operator here to take it off
    // The workspace clone needs a forge: left out; the sandbox's install, every agent pod's, stays.
    json inits = json::array();
    for (const auto& c : pod["spec"]["initContainers"]) {
      if (c.value("name", "") == "sandbox") inits.push_back(c);
    }
    pod["spec"]["initContainers"] = inits;
    return pod;
  };
  auto jobOf = [&](const std::string& name) {
    json container = {{"name", "agent"}, {"image", image}, {"imagePullPolicy", "IfNotPresent"}};
    return json{{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", {{"name", name}}},
                {"spec", {{"backoffLimit", 0},
                          {"template", {{"spec", {{"restartPolicy", "Never"}, {"containers", json::array({container})}}}}}}}};
  };
  kube::DeleteOptions now;
  now.grace_period_seconds = 0;
  now.propagation = "Background";

  std::vector<double> paddock_ms, job_ms;
  int failures = 0;
  for (int i = 0; i < runs; ++i) {
    const std::string run = "r" + std::to_string(i), job = "j" + std::to_string(i);
    auto pod = agentPod(run);
    auto t0 = Steady::now();
    if (!pod || !client.create(kube::resources::pods, ns.name(), *pod).ok()) return std::cerr << "cannot create " << run << "\n", 1;
    auto at = watch.wait(run + "-agent", std::chrono::seconds(120));
    if (at) paddock_ms.push_back(std::chrono::duration<double, std::milli>(*at - t0).count());
    else ++failures;
    (void)client.remove(kube::resources::pods, ns.name(), run + "-agent", now);
    t0 = Steady::now();
    if (!client.create(jobs, ns.name(), jobOf(job)).ok()) return std::cerr << "cannot create " << job << "\n", 1;
    at = watch.waitPrefix(job + "-", std::chrono::seconds(120));
    if (at) job_ms.push_back(std::chrono::duration<double, std::milli>(*at - t0).count());
    else ++failures;
    (void)client.remove(jobs, ns.name(), job, now);
    std::fprintf(stderr, "\r%d/%d", i + 1, runs);
  }
  std::fprintf(stderr, "\n");
  // Let the deleted pods go before the memory figures.
  eventually([&] {
    auto list = client.list(kube::resources::pods, ns.name());
    return list.ok() && list->items.empty();
  }, std::chrono::seconds(120));
  Memory before = measureMemory(cluster_dir, pods_cgroup);
  for (int i = 0; i < idle; ++i) {
    const std::string run = "idle" + std::to_string(i);
    auto pod = agentPod(run);
    if (!pod || !client.create(kube::resources::pods, ns.name(), *pod).ok()) return std::cerr << "cannot create " << run << "\n", 1;
  }
  for (int i = 0; i < idle; ++i) {
    if (!watch.wait("idle" + std::to_string(i) + "-agent", std::chrono::seconds(180))) ++failures;
  }
  std::this_thread::sleep_for(std::chrono::seconds(5));  // the agents settle into their idle loop
  Memory with = measureMemory(cluster_dir, pods_cgroup);

  json out = {{"runs", runs}, {"idle", idle}, {"failures", failures},
              {"paddock", {{"p50Ms", percentile(paddock_ms, 0.5)}, {"p99Ms", percentile(paddock_ms, 0.99)}}},
              {"job", {{"p50Ms", percentile(job_ms, 0.5)}, {"p99Ms", percentile(job_ms, 0.99)}}}};
  for (const auto& [label, m] : {std::pair{"memoryNoPods", &before}, std::pair{"memoryIdlePods", &with}}) {
    out[label] = {{"daemonsMiB", m->daemons_mib}, {"shimsMiB", m->shims_mib}, {"shims", m->shims}, {"podsMiB", m->pods_mib},
                  {"totalMiB", m->total()}};
  }
  std::ofstream(out_dir + "/node.json") << out.dump(2) << "\n";

  std::cout << "| create to container running (" << runs << " each, one at a time) | p50 | p99 |\n| --- | --- | --- |\n";
  std::cout << "| bare Job's pod (anchor) | " << fmt("%.0f ms", percentile(job_ms, 0.5)) << " | " << fmt("%.0f ms", percentile(job_ms, 0.99)) << " |\n";
  std::cout << "| Paddock's agent pod | " << fmt("%.0f ms", percentile(paddock_ms, 0.5)) << " | " << fmt("%.0f ms", percentile(paddock_ms, 0.99)) << " |\n";
  std::cout << "| ratio Paddock / Job | " << fmt("%.2f", percentile(paddock_ms, 0.5) / percentile(job_ms, 0.5)) << " | "
            << fmt("%.2f", percentile(paddock_ms, 0.99) / percentile(job_ms, 0.99)) << " |\n\n";
  std::cout << "| node memory (MiB) | no pods | " << idle << " idle agent pods | per pod |\n| --- | --- | --- | --- |\n";
  for (const auto& [d, v] : before.daemons_mib) {
    std::cout << "| " << d << " | " << fmt("%.1f", v) << " | " << fmt("%.1f", with.daemons_mib[d]) << " | |\n";
  }
  std::cout << "| containerd shims | " << fmt("%.1f", before.shims_mib) << " (" << before.shims << ") | " << fmt("%.1f", with.shims_mib) << " ("
            << with.shims << ") | " << fmt("%.1f", (with.shims_mib - before.shims_mib) / std::max(1, idle)) << " |\n";
  std::cout << "| pods' cgroup (rss + cache) | " << fmt("%.1f", before.pods_mib) << " | " << fmt("%.1f", with.pods_mib) << " | "
            << fmt("%.1f", (with.pods_mib - before.pods_mib) / std::max(1, idle)) << " |\n";
  std::cout << "| total | " << fmt("%.1f", before.total()) << " | " << fmt("%.1f", with.total()) << " | "
            << fmt("%.1f", (with.total() - before.total()) / std::max(1, idle)) << " |\n";
  if (failures) std::cout << "\n" << failures << " pods did not reach running in time\n";
  return failures ? 1 : 0;
}
