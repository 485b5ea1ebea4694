// The chaos suite (docs/reliability.md): runs created while two operator replicas are killed
// with SIGKILL at random moments, hand over cleanly, the API server restarts, etcd is compacted
// (watches get 410 Gone) and the audit store cannot be written for a while; then the invariants
// are checked and the figures printed, ending with "N passed, M failed".
//
// CTest runs a short variant (label e2e, on the shared "test" cluster, under the e2e lock);
// `scripts/paddock chaos` runs the full one on a cluster of its own ("chaos") by setting
// PADDOCK_CHAOS_* (see Settings).
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "e2e/tests/support.h"
#include "operator/audit/store.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int envInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
std::string envText(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// What one chaos run does; the defaults are CTest's short variant.
struct Settings {
  int runs = envInt("PADDOCK_CHAOS_RUNS", 60);
  int kills = envInt("PADDOCK_CHAOS_KILLS", 3);          // SIGKILL of the leader
  int handovers = envInt("PADDOCK_CHAOS_HANDOVERS", 1);  // SIGTERM of the leader: a clean handover
  int max_running = envInt("PADDOCK_CHAOS_MAX_RUNNING", 8);
  int create_seconds = envInt("PADDOCK_CHAOS_CREATE_SECONDS", 40);  // runs are created over this time
  int settle_seconds = envInt("PADDOCK_CHAOS_SETTLE_SECONDS", 180);  // after the faults, for every run to end
  int lease_seconds = envInt("PADDOCK_CHAOS_LEASE_SECONDS", 4);  // the renew deadline is two thirds of it
  int retry_ms = envInt("PADDOCK_CHAOS_RETRY_MS", 500);
  int audit_fault_seconds = envInt("PADDOCK_CHAOS_AUDIT_FAULT_SECONDS", 5);
  unsigned seed = static_cast<unsigned>(envInt("PADDOCK_CHAOS_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  // A mongodb:// URI (with a database of the run's own): the audit store is MongoDB, and its
  // fault is the server stopped and started again by e2e/ferretdb.sh (PADDOCK_CHAOS_FERRETDB names it).
  std::string mongo = envText("PADDOCK_CHAOS_MONGO_URI");
  std::string ferretdb = envText("PADDOCK_CHAOS_FERRETDB");
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Peak resident memory of a process (VmHWM), in KiB; 0 when it is gone.
long peakKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// Lists `path`, then watches it from the list's resourceVersion, calling `handle` with every
// object; relists after a watch ends for any reason (an API server restart, 410 Gone after a
// compaction), until `stop`.
void follow(kube::RestClient& c, const std::string& path, const std::function<void(const std::string&, const json&)>& handle,
            const CancelToken& stop) {
  while (!stop.cancelled()) {
    auto list = c.send({http::Method::Get, path});
    json body = list && list->status == 200 ? json::parse(list->body, nullptr, false) : json();
    if (!body.is_object()) {
      stop.waitFor(500ms);
      continue;
    }
    for (const auto& item : body.value("items", json::array())) handle("ADDED", item);
    std::string rv = body["metadata"].value("resourceVersion", "");
    std::string sep = path.find('?') == std::string::npos ? "?" : "&";
    http::Request req{http::Method::Get, path + sep + "watch=1&allowWatchBookmarks=true&timeoutSeconds=30&resourceVersion=" + rv};
    req.timeout = 40s;
    c.stream(req, [&](std::string_view line) {
      auto ev = json::parse(line, nullptr, false);
      if (!ev.is_object()) return true;
      std::string type = ev.value("type", "");
      if (type == "ERROR") return false;  // 410 Gone: relist
      if (type != "BOOKMARK") handle(type, ev["object"]);
      return !stop.cancelled();
    }, stop).ok();
  }
}

// One operator replica; restarted under the same slot when killed.
struct Replica {
  std::unique_ptr<Process> process;
  long peak_kib = 0;
  size_t leads() const {
    size_t n = 0;
    for (const auto& l : process->lines()) n += l.find("reconciling AgentRuns") != std::string::npos;
    return n;
  }
  void note() { peak_kib = std::max(peak_kib, peakKiB(process->pid())); }
};

// What the watches saw, per run.
struct Observed {
  std::mutex mu;
  std::map<std::string, std::set<std::string>> pod_uids;        // run -> agent pod UIDs ever seen
  std::map<std::string, std::set<std::string>> terminal_phases;  // run -> terminal phases ever seen
  std::map<std::string, std::string> phase;                      // run -> last phase seen
  std::set<std::string> live_pods;                               // agent pods not yet finished or deleted
  size_t peak_live_pods = 0;
  std::set<std::string> told;  // pods told to exit
};

bool terminalPhase(const std::string& p) {
  return p == "Succeeded" || p == "Failed" || p == "Cancelled" || p == "BudgetExceeded" || p == "TimedOut";
}

int runIndex(const std::string& name) { return std::atoi(name.c_str() + name.find('-') + 1); }

class ChaosE2E : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::unique_ptr<Process> startReplica();
  int leader();  // the replica that leads now, or -1 (under replicas_mu)
  void supervise();
  double failover(int sig);
  void fault(const std::string& what);
  void auditFault();
  void playAgents();
  void watchRuns();
  void createRuns();
  void check(bool ok, const std::string& what);
  void checkAudit(const std::map<std::string, std::string>& uids);
  std::string tails();

  Settings set;
  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, {.qps = 0}};
  std::string team;
  std::unique_ptr<TempNamespace> ns;
  std::string store, tmpfs;
  std::mutex replicas_mu;  // replicas: replaced by failover and supervise
  Replica replicas[2];
  int exits = 0;  // replicas that exited on their own (a lost Lease) and were started again
  Observed seen;
  CancelToken stop;
  std::vector<double> crash_recovery, handover_recovery;
  std::vector<std::string> log_lines;
  int passed = 0, failed = 0;
};

void ChaosE2E::SetUp() {
  team = "chaos-" + randomSuffix();
  ns = std::make_unique<TempNamespace>(*rest, "chaos", json{{"paddock.dev/team", team}});
  json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
  policy["metadata"] = {{"name", team}};
  policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
  policy["spec"]["concurrency"] = {{"maxRunning", set.max_running}};
  ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", policy).ok());
  if (!set.mongo.empty()) {
    store = set.mongo;
  } else {
    store = "/tmp/paddock-chaos-" + team;
    std::filesystem::create_directories(store);
    // A small filesystem of its own, so the disk can be filled: the store's writes then fail.
    if (geteuid() == 0 && ::mount("tmpfs", store.c_str(), "tmpfs", 0, "size=64m") == 0) tmpfs = store;
  }
  std::cout << "chaos: seed " << set.seed << ", " << set.runs << " runs, " << set.kills << " kills, " << set.handovers
            << " handovers, audit store " << (set.mongo.empty() ? store : "mongodb") << "\n";
  std::cout << std::unitbuf;
  for (auto& r : replicas) r.process = startReplica();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(replicas_mu);
    return leader() >= 0;
  }, 60s)) << "no replica leads:\n" << tails();
}

// The last lines of each replica's log, for a failure's message.
std::string ChaosE2E::tails() {
  std::string out;
  for (int i = 0; i < 2; ++i) {
    if (!replicas[i].process) continue;
    auto lines = replicas[i].process->lines();
    out += "replica " + std::to_string(i) + ":\n";
    for (size_t k = lines.size() > 20 ? lines.size() - 20 : 0; k < lines.size(); ++k) out += "  " + lines[k] + "\n";
  }
  return out;
}

void ChaosE2E::TearDown() {
  stop.cancel();
  for (auto& r : replicas) {
    if (r.process) {
      r.note();
      r.process->signal(SIGTERM);
      r.process->wait(20s);
    }
  }
  client.remove(kube::resources::agentpolicies, "", team).ok();
  ns.reset();
  if (!tmpfs.empty()) ::umount(tmpfs.c_str());
  if (set.mongo.empty()) std::filesystem::remove_all(store);
}

std::unique_ptr<Process> ChaosE2E::startReplica() {
  const std::string lease = std::to_string(set.lease_seconds) + "s";
  const std::string renew = std::to_string(std::max(1, set.lease_seconds * 2 / 3)) + "s";
  return std::make_unique<Process>(std::vector<std::string>{
      env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address", "127.0.0.1:0",
      "--leader-election-namespace", ns->name(), "--leader-election-lease-duration", lease,
      "--leader-election-renew-deadline", renew, "--leader-election-retry-period", std::to_string(set.retry_ms) + "ms", "--audit-store", store,
      "--kube-api-qps", "100", "--kube-api-burst", "200", "--pending-deadline", "120s"});
}

// The replica whose latest "reconciling" is not followed by its exit: the one with the Lease.
int ChaosE2E::leader() {
  auto lease = client.get(kube::resources::leases, ns->name(), "paddock-operator");
  if (!lease) return -1;
  std::string holder = lease->value(json::json_pointer("/spec/holderIdentity"), std::string());
  for (int i = 0; i < 2; ++i) {
    auto pid = std::to_string(replicas[i].process->pid());
    if (holder.size() > pid.size() && holder.compare(holder.size() - pid.size() - 1, std::string::npos, "_" + pid) == 0 &&
        replicas[i].leads() > 0) {
      return i;
    }
  }
  return -1;
}

// As the Deployment's kubelet does: a replica that exits on its own (a leader that lost its Lease
// while the API server was away stops, by design) is started again as a standby. Notes peak
// memory as it goes.
void ChaosE2E::supervise() {
  while (!stop.cancelled()) {
    {
      std::lock_guard lock(replicas_mu);
      for (int i = 0; i < 2; ++i) {
        if (!replicas[i].process->exited()) {
          replicas[i].note();
          continue;
        }
        std::cout << "chaos: replica " << i << " exited (" << replicas[i].process->wait(0s) << ") and was started again\n";
        ++exits;
        replicas[i].process = startReplica();
      }
    }
    stop.waitFor(200ms);
  }
}

// Kills (SIGKILL) or stops (SIGTERM) the leader, starts it again as a standby, and returns the
// seconds from the signal until a replica logs that it leads (a "reconciling AgentRuns" line
// beyond those its process had), or -1 after 60 s.
double ChaosE2E::failover(int sig) {
  std::unique_lock lock(replicas_mu, std::defer_lock);
  int i = -1;
  if (!eventually([&] {
        lock.lock();
        if ((i = leader()) >= 0) return true;
        lock.unlock();
        return false;
      }, 60s)) {
    return -1;
  }
  replicas[i].note();
  std::map<pid_t, size_t> before;
  for (int k = 0; k < 2; ++k) before[replicas[k].process->pid()] = replicas[k].leads();
  auto t0 = Clock::now();
  replicas[i].process->signal(sig);
  replicas[i].process->wait(30s);
  replicas[i].process = startReplica();
  lock.unlock();
  bool led = eventually([&] {
    std::lock_guard l(replicas_mu);
    for (int k = 0; k < 2; ++k) {
      auto b = before.find(replicas[k].process->pid());
      if (replicas[k].leads() > (b == before.end() ? 0 : b->second)) return true;
    }
    return false;
  }, 60s, 20ms);
  return led ? seconds(Clock::now() - t0) : -1;
}

// The audit store cannot be written for a while: a full disk (file store), or its server
// stopped and started again (MongoDB).
void ChaosE2E::auditFault() {
  if (!set.mongo.empty()) {
    if (set.ferretdb.empty()) return;
    Process down({repoPath("e2e/ferretdb.sh"), "down", "--name", set.ferretdb});
    down.wait(60s);
    stop.waitFor(std::chrono::seconds(set.audit_fault_seconds));
    Process up({repoPath("e2e/ferretdb.sh"), "up", "--name", set.ferretdb});
    EXPECT_EQ(up.wait(120s), 0) << testing::PrintToString(up.lines());
    return;
  }
  if (tmpfs.empty()) return;  // not root: no filesystem of its own to fill
  {
    std::ofstream filler(tmpfs + "/filler", std::ios::binary);
    std::string block(1 << 20, '\0');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  stop.waitFor(std::chrono::seconds(set.audit_fault_seconds));
  std::filesystem::remove(tmpfs + "/filler");
}

void ChaosE2E::fault(const std::string& what) {
  auto t0 = Clock::now();
  if (what == "kill") {
    double r = failover(SIGKILL);
    crash_recovery.push_back(r);
    std::cout << "chaos: SIGKILL of the leader, a replica leads again after " << r << " s\n";
  } else if (what == "handover") {
    double r = failover(SIGTERM);
    handover_recovery.push_back(r);
    std::cout << "chaos: SIGTERM of the leader, handed over in " << r << " s\n";
  } else if (what == "apiserver") {
    clusterCommand({"restart", "kube-apiserver"});
    std::cout << "chaos: kube-apiserver restarted (" << seconds(Clock::now() - t0) << " s)\n";
  } else if (what == "compact") {
    clusterCommand({"compact"});
    std::cout << "chaos: etcd compacted: watches older than now get 410 Gone\n";
  } else if (what == "audit") {
    auditFault();
    std::cout << "chaos: the audit store could not be written for " << seconds(Clock::now() - t0) << " s ("
              << (set.mongo.empty() ? (tmpfs.empty() ? "skipped: no tmpfs of its own, mounting one needs root" : "disk full") : "MongoDB server stopped") << ")\n";
  }
}

// Plays the agents: every agent pod that runs is told to exit, run-<i> with code 3 when i % 10
// == 0, else 0. Records every pod each run ever had, and how many agent pods lived at once.
void ChaosE2E::playAgents() {
  auto c = adminClient();
  kube::Client k{*c, {.qps = 0}};
  follow(*c, kube::resources::pods.path(ns->name()) + "?labelSelector=paddock.dev%2Fstage%3Dagent",
         [&](const std::string& type, const json& pod) {
           std::string run = pod.value(json::json_pointer("/metadata/labels/paddock.dev~1run"), std::string());
           std::string name = pod["metadata"].value("name", ""), uid = pod["metadata"].value("uid", "");
           std::string phase = pod.value(json::json_pointer("/status/phase"), std::string());
           bool tell = false;
           {
             std::lock_guard lock(seen.mu);
             seen.pod_uids[run].insert(uid);
             if (type == "DELETED" || phase == "Succeeded" || phase == "Failed") seen.live_pods.erase(uid);
             else seen.live_pods.insert(uid);
             seen.peak_live_pods = std::max(seen.peak_live_pods, seen.live_pods.size());
             tell = phase == "Running" && seen.told.insert(uid).second;
           }
           if (tell) {
             json exit = {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", runIndex(run) % 10 == 0 ? "3" : "0"}}}}}};
             if (!k.mergePatch(kube::resources::pods, ns->name(), name, exit).ok()) {
               std::lock_guard lock(seen.mu);
               seen.told.erase(uid);  // told again at its next event
             }
           }
         },
         stop);
}

void ChaosE2E::watchRuns() {
  auto c = adminClient();
  follow(*c, kube::resources::agentruns.path(ns->name()), [&](const std::string& type, const json& run) {
    if (type == "DELETED") return;
    std::string name = run["metadata"].value("name", ""), phase = phaseOf(run);
    std::lock_guard lock(seen.mu);
    seen.phase[name] = phase;
    if (terminalPhase(phase)) seen.terminal_phases[name].insert(phase);
  }, stop);
}

// Creates run-0 ... run-<runs-1>, spread over create_seconds; retries while the API server is away.
void ChaosE2E::createRuns() {
  json sample = loadYaml(repoPath("crds/samples/run.yaml"));
  auto c = adminClient();
  kube::Client k{*c, {.qps = 0}};
  auto t0 = Clock::now();
  for (int i = 0; i < set.runs && !stop.cancelled(); ++i) {
    auto due = t0 + std::chrono::milliseconds(1000LL * set.create_seconds * i / std::max(1, set.runs));
    stop.waitFor(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(due - Clock::now(), Clock::duration::zero())));
    json run = sample;
    run["metadata"] = {{"name", "run-" + std::to_string(i)}};
    run["spec"]["idempotencyKey"] = "run-" + std::to_string(i);
    while (!stop.cancelled()) {
      auto r = k.create(kube::resources::agentruns, ns->name(), run);
      if (r || r.error().reason == "AlreadyExists") break;
      stop.waitFor(250ms);
    }
  }
}

void ChaosE2E::check(bool ok, const std::string& what) {
  (ok ? passed : failed)++;
  std::cout << (ok ? "PASS  " : "FAIL  ") << what << "\n";
  EXPECT_TRUE(ok) << what;
}

// The audit chain verifies, each run has one record of each one-time action, and each leader
// said in the chain that it started writing.
void ChaosE2E::checkAudit(const std::map<std::string, std::string>& uids) {
  auto report = audit::verifyStore(store);
  check(report.ok() && !report->failure, "the audit chain verifies (" + std::to_string(report.ok() ? report->records : 0) +
                                             " records, no gap, no broken link)" +
                                             (report.ok() && report->failure ? ": " + report->failure->reason : ""));
  std::map<std::string, std::map<std::string, int>> per_uid;
  int writers = 0;
  audit::readStore(store, [&](const audit::StoredItem& item) {
    if (item.kind != audit::StoredItem::Kind::Record) return true;
    const json& r = item.json;
    std::string action = r.value("action", "");
    if (action == "WriterStarted") ++writers;
    if (action == "ChildCreated") action += "/" + r.value(json::json_pointer("/details/kind"), std::string());
    ++per_uid[r.value(json::json_pointer("/run/uid"), std::string())][action];
    return true;
  }).ok();
  int wrong = 0;
  for (const auto& [name, uid] : uids) {
    auto& n = per_uid[uid];
    if (n["RunAdmitted"] != 1 || n["ChildCreated/Pod"] != 1 || n["StageStarted"] != 1 || n["RunFinished"] != 1) {
      if (++wrong <= 5) {
        std::cout << "      " << name << ": RunAdmitted " << n["RunAdmitted"] << ", ChildCreated/Pod " << n["ChildCreated/Pod"]
                  << ", StageStarted " << n["StageStarted"] << ", RunFinished " << n["RunFinished"] << "\n";
      }
    }
  }
  check(wrong == 0, "one RunAdmitted, agent ChildCreated, StageStarted and RunFinished record per run (" +
                        std::to_string(wrong) + " runs differ)");
  int leaderships = 1 + set.kills + set.handovers;
  check(writers >= leaderships, "every new leader recorded WriterStarted (" + std::to_string(writers) + " records, " +
                                    std::to_string(leaderships) + " leaderships at least)");
}

std::string spread(std::vector<double> v) {
  if (v.empty()) return "none";
  std::sort(v.begin(), v.end());
  char out[96];
  std::snprintf(out, sizeof out, "min %.2f s, median %.2f s, max %.2f s (%zu)", v.front(), v[v.size() / 2], v.back(), v.size());
  return out;
}

TEST_F(ChaosE2E, EveryRunEndsOnceWithOnePodAndOneRecordPerActionWhateverFails) {
  auto t0 = Clock::now();
  std::thread agents([&] { playAgents(); });
  std::thread runs([&] { watchRuns(); });
  std::thread creator([&] { createRuns(); });
  std::thread supervisor([&] { supervise(); });
  std::vector<std::string> faults(set.kills, "kill");
  faults.insert(faults.end(), set.handovers, "handover");
  for (const char* f : {"apiserver", "compact", "audit"}) faults.push_back(f);
  std::mt19937 rng(set.seed);
  std::shuffle(faults.begin(), faults.end(), rng);
  // Faults at random moments while runs are created (each within its share of the time).
  const int share_ms = 1000 * set.create_seconds / static_cast<int>(faults.size());
  for (const auto& f : faults) {
    stop.waitFor(std::chrono::milliseconds(std::uniform_int_distribution<int>(share_ms / 4, std::max(share_ms / 4, share_ms))(rng)));
    fault(f);
  }
  creator.join();
  auto ended = [&] {
    std::lock_guard lock(seen.mu);
    return std::count_if(seen.phase.begin(), seen.phase.end(), [](const auto& p) { return terminalPhase(p.second); }) == set.runs;
  };
  bool settled = eventually(ended, std::chrono::seconds(set.settle_seconds), 200ms);
  double took = seconds(Clock::now() - t0);
  stop.cancel();
  agents.join();
  runs.join();
  supervisor.join();

  auto list = client.list(kube::resources::agentruns, ns->name());
  ASSERT_TRUE(list.ok());
  std::map<std::string, std::string> uids;
  int wrong_phase = 0, one_terminal = 0, one_pod = 0, pods = 0;
  std::lock_guard lock(seen.mu);
  for (const auto& run : list->items) {
    std::string name = run["metadata"]["name"];
    uids[name] = run["metadata"]["uid"];
    wrong_phase += phaseOf(run) != (runIndex(name) % 10 == 0 ? "Failed" : "Succeeded");
    one_terminal += seen.terminal_phases[name].size() == 1;
    one_pod += seen.pod_uids[name].size() == 1;
    pods += static_cast<int>(seen.pod_uids[name].size());
  }
  std::cout << "\nchaos figures (seed " << set.seed << "): " << list->items.size() << " runs in " << took << " s; "
            << pods << " agent pods; at most " << seen.peak_live_pods << " agent pods at once (maxRunning "
            << set.max_running << ")\n  recovery after SIGKILL of the leader: " << spread(crash_recovery)
            << "\n  clean handover (SIGTERM): " << spread(handover_recovery)
            << "\n  replicas that stopped on their own (a Lease lost while the API server was away) and were started again: "
            << exits << "\n  peak memory (VmHWM) of the replicas: "
            << std::max(replicas[0].peak_kib, replicas[1].peak_kib) / 1024.0 << " MiB\n";
  check(static_cast<int>(list->items.size()) == set.runs, "runs created (" + std::to_string(set.runs) + ") = runs that exist");
  check(settled, "no run stuck: every run ended within " + std::to_string(set.settle_seconds) + " s of the last fault");
  check(one_terminal == set.runs, "every run reached exactly one terminal phase (" + std::to_string(one_terminal) + ")");
  check(wrong_phase == 0, "every run ended as its agent's exit said (" + std::to_string(wrong_phase) + " did not)");
  check(one_pod == set.runs, "every run had exactly one agent pod (" + std::to_string(one_pod) + " runs; " +
                                 std::to_string(pods) + " pods)");
  check(static_cast<int>(seen.peak_live_pods) <= set.max_running, "concurrency held: at most maxRunning agent pods at once");
  checkAudit(uids);
  bool crash_ok = !crash_recovery.empty() || set.kills == 0;
  for (double r : crash_recovery) crash_ok = crash_ok && r >= 0 && r <= 15;
  check(crash_ok, "a replica leads within 15 s of each SIGKILL: " + spread(crash_recovery));
  bool handover_ok = true;
  for (double r : handover_recovery) handover_ok = handover_ok && r >= 0 && r <= 3;
  check(handover_ok, "a clean handover takes at most 3 s: " + spread(handover_recovery));
  std::cout << passed << " passed, " << failed << " failed\n";
}

}  // namespace
}  // namespace paddock::e2e
