// Informer benchmark: memory per cached AgentRun and watch events processed per second, with
// kubectl's own watch (`kubectl get agentruns --watch -o name`) over the same objects as the anchor.
//
// The informer runs in a child process of its own (this program with --child), so its resident
// memory is measured without the loader's. For each size the parent creates AgentRuns up to that
// count, starts the child and kubectl, waits for both to have listed every object, then patches
// every object once and times how long each watcher takes to see all the changes.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "operator/common/flags.h"
#include "operator/common/log.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"

using namespace paddock;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

extern char** environ;

namespace {

long rssKiB(pid_t pid) {
  std::ifstream in(pid == 0 ? "/proc/self/status" : "/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> value;
      return value;
    }
    std::getline(in, key);
  }
  return -1;
}

double secondsSince(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }

std::unique_ptr<kube::RestClient> connect(const std::string& kubeconfig) {
  auto config = kube::loadKubeconfig({kubeconfig});
  if (!config) throw std::runtime_error(config.error().describe());
  auto rest = kube::RestClient::create(*config, "paddock-bench");
  if (!rest) throw std::runtime_error(rest.error().describe());
  return std::move(rest.value());
}

json agentRun(int i) {
  return {{"apiVersion", "paddock.dev/v1alpha1"},
          {"kind", "AgentRun"},
          {"metadata", {{"name", "run-" + std::to_string(i)}, {"labels", {{"paddock.dev/bench", "yes"}}}}},
          {"spec",
           {{"task", "Fix the flaky refund test in services/refunds and make sure the retry logic covers timeouts."},
            {"repository", {{"url", "https://github.com/acme/payments"}, {"baseBranch", "main"}}},
            {"budget", {{"tokens", 1500000}, {"costUSD", "6"}, {"wallClock", "45m"}}},
            {"idempotencyKey", "bench-" + std::to_string(i)}}}};
}

// Runs `work(i)` for i in [from, to) on `threads` threads, each with its own client.
void parallel(const std::string& kubeconfig, int from, int to, int threads,
              const std::function<void(kube::Client&, int)>& work) {
  std::atomic<int> next{from};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      auto rest = connect(kubeconfig);
      kube::Client client(*rest, {.qps = 0});
      for (int i = next++; i < to; i = next++) work(client, i);
    });
  }
  for (auto& p : pool) p.join();
}

// The child: sync an informer, report memory, then report when `expect` more events arrived.
int child(const std::string& kubeconfig, const std::string& ns, int objects) {
  auto rest = connect(kubeconfig);
  kube::Client client(*rest, {.qps = 0});
  kube::Informer informer(client, kube::resources::agentruns, {.namespace_ = ns});
  std::atomic<int> modified{0};
  informer.addHandler([&](const kube::InformerEvent& e) {
    if (e.old) ++modified;
  });
  // Warm up the connection (TLS, thread pool) so the baseline holds everything but the cache.
  if (auto warm = client.get(kube::resources::namespaces, "", ns); !warm) return 1;
  malloc_trim(0);
  long before = rssKiB(0);
  CancelToken stop;
  auto start = Steady::now();
  std::thread t([&] { informer.run(stop); });
  informer.waitForSync(std::chrono::minutes(10));
  double sync = secondsSince(start);
  long after_raw = rssKiB(0);
  malloc_trim(0);
  long after = rssKiB(0);
  std::cout << json{{"phase", "synced"}, {"objects", informer.size()}, {"rssBeforeKiB", before},
                    {"rssAfterKiB", after}, {"rssAfterUntrimmedKiB", after_raw}, {"syncSeconds", sync}}.dump()
            << std::endl;
  // Wait for the parent's go, then count modifications.
  std::string go;
  std::getline(std::cin, go);
  auto patch_start = Steady::now();
  while (modified.load() < objects) CancelToken().waitFor(std::chrono::milliseconds(2));
  std::cout << json{{"phase", "events"}, {"events", modified.load()}, {"seconds", secondsSince(patch_start)},
                    {"rssKiB", rssKiB(0)}}.dump()
            << std::endl;
  stop.cancel();
  t.join();
  return 0;
}

// A child process with pipes to its stdin and stdout.
struct Child {
  pid_t pid = -1;
  int in = -1, out = -1;
  std::string buf;
  Child(std::vector<std::string> argv) {
    int to[2], from[2];
    if (pipe(to) || pipe(from)) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from[1], 1);
    posix_spawn_file_actions_addclose(&fa, to[1]);
    posix_spawn_file_actions_addclose(&fa, from[0]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) throw std::runtime_error("spawn " + argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    close(to[0]);
    close(from[1]);
    in = to[1];
    out = from[0];
  }
  // Reads one line; "" on EOF or after `timeout`.
  std::string line(std::chrono::seconds timeout = std::chrono::seconds(600)) {
    auto deadline = Steady::now() + timeout;
    while (true) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        std::string l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()).count());
      pollfd p{out, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) <= 0) return "";
      char b[65536];
      ssize_t n = read(out, b, sizeof b);
      if (n <= 0) return "";
      buf.append(b, static_cast<size_t>(n));
    }
  }
  void say(const std::string& s) { (void)!write(in, s.data(), s.size()); }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    close(in);
    close(out);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string kubeconfig, kubectl, sizes = "1000,10000", out_file;
  bool is_child = false;
  std::string child_ns;
  int child_objects = 0, threads = 8;
  Flags flags("paddock-bench-informer",
              "measures the informer's memory per cached AgentRun and watch events per second against kubectl's watch");
  flags.add("kubeconfig", &kubeconfig, "kubeconfig of the cluster to measure on (AgentRun CRD installed).");
  flags.add("kubectl", &kubectl, "Path to kubectl, the anchor.");
  flags.add("sizes", &sizes, "Comma-separated object counts to measure at, ascending.");
  flags.add("threads", &threads, "Parallel loader threads for creates and patches.");
  flags.add("out", &out_file, "Also write the results as JSON to this file.");
  flags.add("child", &is_child, "Internal: run as the measured informer process.");
  flags.add("child-namespace", &child_ns, "Internal: namespace for --child.");
  flags.add("child-objects", &child_objects, "Internal: objects for --child.");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::Warn);
  if (is_child) return child(kubeconfig, child_ns, child_objects);
  if (kubeconfig.empty() || kubectl.empty()) {
    std::cerr << "paddock-bench-informer: --kubeconfig and --kubectl are required\n";
    return 2;
  }

  auto rest = connect(kubeconfig);
  kube::Client admin(*rest, {.qps = 0});
  std::string ns = "bench-informer-" + std::to_string(getpid());
  if (auto r = admin.create(kube::resources::namespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}}); !r) {
    std::cerr << "cannot create namespace: " << r.error().describe() << "\n";
    return 1;
  }
  std::vector<int> counts;
  std::stringstream ss(sizes);
  for (std::string s; std::getline(ss, s, ',');) counts.push_back(std::stoi(s));

  json results = json::array();
  int created = 0, round = 0;
  for (int count : counts) {
    auto load_start = Steady::now();
    parallel(kubeconfig, created, count, threads, [&](kube::Client& c, int i) {
      auto r = c.create(kube::resources::agentruns, ns, agentRun(i));
      if (!r && r.error().reason != "AlreadyExists") std::cerr << "create run-" << i << ": " << r.error().describe() << "\n";
    });
    double load_secs = secondsSince(load_start);
    created = count;

    Child informer({argv[0], "--child", "--kubeconfig", kubeconfig, "--child-namespace", ns, "--child-objects",
                    std::to_string(count)});
    Child watch({kubectl, "--kubeconfig", kubeconfig, "get", "agentruns", "-n", ns, "--watch", "-o", "name"});
    auto kubectl_start = Steady::now();
    auto synced = json::parse(informer.line(), nullptr, false);
    int listed = 0;
    while (listed < count && !watch.line().empty()) ++listed;
    double kubectl_list_secs = secondsSince(kubectl_start);
    long kubectl_rss = rssKiB(watch.pid);

    // Patch every object once; both watchers see the same stream.
    ++round;
    informer.say("go\n");
    auto patch_start = Steady::now();
    std::thread patcher([&] {
      parallel(kubeconfig, 0, count, threads, [&](kube::Client& c, int i) {
        auto r = c.mergePatch(kube::resources::agentruns, ns, "run-" + std::to_string(i),
                              {{"metadata", {{"labels", {{"round", std::to_string(round)}}}}}});
        if (!r) std::cerr << "patch run-" << i << ": " << r.error().describe() << "\n";
      });
    });
    int seen = 0;
    while (seen < count && !watch.line().empty()) ++seen;
    double kubectl_secs = secondsSince(patch_start);
    auto events = json::parse(informer.line(), nullptr, false);
    patcher.join();
    double patch_secs = secondsSince(patch_start);

    long rss_delta = synced.value("rssAfterKiB", 0L) - synced.value("rssBeforeKiB", 0L);
    json r = {{"objects", count},
              {"createSeconds", load_secs},
              {"informer",
               {{"syncSeconds", synced.value("syncSeconds", 0.0)},
                {"rssKiB", synced.value("rssAfterKiB", 0L)},
                {"cacheKiB", rss_delta},
                {"KiBPerObject", static_cast<double>(rss_delta) / count},
                {"MiBPer1k", rss_delta / 1024.0 * 1000.0 / count},
                {"eventsPerSecond", count / std::max(1e-9, events.value("seconds", 1e9))}}},
              {"kubectl",
               {{"listSeconds", kubectl_list_secs},
                {"rssKiB", kubectl_rss},
                {"eventsPerSecond", count / std::max(1e-9, kubectl_secs)}}},
              {"patchWriteSeconds", patch_secs}};
    r["ratioEventsPerSecond"] = r["informer"]["eventsPerSecond"].get<double>() / r["kubectl"]["eventsPerSecond"].get<double>();
    results.push_back(r);
    std::cerr << r.dump() << "\n";
  }
  admin.remove(kube::resources::namespaces, "", ns).ok();

  std::printf("\n| AgentRuns cached | informer cache RSS | per 1k objects | informer events/s | kubectl watch events/s | ratio | informer sync s | kubectl list s |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results) {
    std::printf("| %d | %.1f MiB | %.2f MiB | %.0f | %.0f | %.2f | %.2f | %.2f |\n", r["objects"].get<int>(),
                r["informer"]["cacheKiB"].get<long>() / 1024.0, r["informer"]["MiBPer1k"].get<double>(),
                r["informer"]["eventsPerSecond"].get<double>(), r["kubectl"]["eventsPerSecond"].get<double>(),
                r["ratioEventsPerSecond"].get<double>(), r["informer"]["syncSeconds"].get<double>(),
                r["kubectl"]["listSeconds"].get<double>());
  }
  std::printf("\nEvents/s is bounded by how fast the API server takes the patches (%d loader threads); a ratio near 1 means\n"
              "the informer keeps up with the stream as kubectl does. kubectl keeps no cache: its RSS is a reference only.\n",
              threads);
  if (!out_file.empty()) std::ofstream(out_file) << results.dump(2) << "\n";
  return 0;
}
