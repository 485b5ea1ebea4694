// paddock-operator as a process against the real API server: flags, connection over TLS with
// a client certificate, JSON logs, health endpoints and graceful SIGTERM.
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e/tests/support.h"
#include "operator/http/client.h"

namespace paddock::e2e {
namespace {

json parseLine(const std::string& line) { return json::parse(line, nullptr, false); }

bool hasMsg(const std::string& line, const std::string& msg) {
  auto j = parseLine(line);
  return j.is_object() && j.value("msg", "") == msg;
}

TEST(Operator, ConnectsLogsTheServerVersionServesHealthAndStopsOnSigterm) {
  Process op({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"),
              "--listen-address", "127.0.0.1:0"});
  auto serving = op.waitForLine([](const std::string& l) { return hasMsg(l, "serving /healthz, /readyz and /metrics"); },
                                std::chrono::seconds(20));
  ASSERT_FALSE(serving.empty()) << "no 'serving' line; stderr so far: " << testing::PrintToString(op.lines());
  int port = parseLine(serving).value("port", 0);
  ASSERT_GT(port, 0);
  auto connected = op.waitForLine([](const std::string& l) { return hasMsg(l, "connected to the API server"); },
                                  std::chrono::seconds(30));
  ASSERT_FALSE(connected.empty()) << testing::PrintToString(op.lines());
  auto j = parseLine(connected);
  EXPECT_EQ(j.value("serverVersion", ""), env("PADDOCK_E2E_KUBE_VERSION"));
  EXPECT_EQ(j.value("level", ""), "info");
  EXPECT_FALSE(j.value("ts", "").empty());
  // Every line is a JSON object.
  for (const auto& l : op.lines()) EXPECT_TRUE(parseLine(l).is_object()) << l;

  auto http = http::makeClient("http://127.0.0.1:" + std::to_string(port), {});
  ASSERT_TRUE(http.ok());
  // Ready once the caches of AgentPolicies and AgentRuns are synced.
  EXPECT_TRUE(eventually([&] {
    auto r = (*http)->send({http::Method::Get, "/readyz"});
    return r.ok() && r->status == 200;
  }, std::chrono::seconds(30)));
  for (const char* path : {"/healthz", "/metrics"}) {
    auto r = (*http)->send({http::Method::Get, path});
    ASSERT_TRUE(r.ok()) << path << ": " << r.error().describe();
    EXPECT_EQ(r->status, 200) << path;
  }
  auto m = (*http)->send({http::Method::Get, "/metrics"});
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find(R"(paddock_informer_objects{resource="agentruns"})"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find(R"(paddock_api_requests_total{code="200",resource="agentruns",verb="list"})"), std::string::npos);
  EXPECT_NE(m->body.find("paddock_build_info{commit=\""), std::string::npos) << m->body;

  op.signal(SIGTERM);
  EXPECT_EQ(op.wait(std::chrono::seconds(15)), 0) << testing::PrintToString(op.lines());
  EXPECT_TRUE(hasMsg(op.lines().back(), "stopped")) << op.lines().back();
}

TEST(Operator, HelpExplainsEveryFlag) {
  Process op({env("PADDOCK_OPERATOR_BIN"), "--help"});
  EXPECT_EQ(op.wait(std::chrono::seconds(10)), 0);
  std::string text;
  for (const auto& l : op.lines()) text += l + "\n";
  for (const char* flag : {"--kubeconfig", "--context", "--listen-address", "--log-level", "--insecure-skip-tls-verify", "--help"}) {
    EXPECT_NE(text.find(std::string(flag)), std::string::npos) << flag << " missing from:\n" << text;
  }
  EXPECT_NE(text.find("SIGTERM"), std::string::npos);
}

TEST(Operator, EveryBinaryNamesItsVersionAndCommit) {
  const auto dir = std::filesystem::path(env("PADDOCK_OPERATOR_BIN")).parent_path();
  const auto build = dir.parent_path();
  for (const auto& [bin, name] : std::vector<std::pair<std::filesystem::path, std::string>>{
           {dir / "paddock-operator", "paddock-operator"}, {dir / "paddock-audit", "paddock-audit"},
           {dir / "kubectl-paddock", "kubectl-paddock"}, {build / "stage" / "paddock-stage", "paddock-stage"},
           {env("PADDOCK_AGENT_SIM_BIN"), "paddock-agent-sim"}}) {
    Process p({bin.string(), "--version"});
    EXPECT_EQ(p.wait(std::chrono::seconds(10)), 0) << bin;
    ASSERT_FALSE(p.lines().empty()) << bin;
    const std::string line = p.lines().front();
    EXPECT_EQ(line.rfind(name + " " + PADDOCK_VERSION_FOR_TESTS + " (commit ", 0), 0u) << line;
    EXPECT_EQ(line.find("(commit unknown)"), std::string::npos) << "built in a git checkout: " << line;
  }
}

TEST(Operator, BadInputIsNamed) {
  Process badflag({env("PADDOCK_OPERATOR_BIN"), "--listen-adress", ":1"});
  EXPECT_EQ(badflag.wait(std::chrono::seconds(10)), 2);
  ASSERT_FALSE(badflag.lines().empty());
  EXPECT_NE(badflag.lines().front().find("unknown flag --listen-adress"), std::string::npos) << badflag.lines().front();

  Process missing({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", "/nonexistent/kubeconfig"});
  EXPECT_EQ(missing.wait(std::chrono::seconds(10)), 1);
  ASSERT_FALSE(missing.lines().empty());
  auto j = parseLine(missing.lines().back());
  EXPECT_EQ(j.value("level", ""), "error");
  EXPECT_NE(j.value("error", "").find("/nonexistent/kubeconfig does not exist"), std::string::npos) << j.dump();
}

TEST(Operator, KeepsRetryingUntilTheServerAnswersAndStopsCleanlyMeanwhile) {
  // A kubeconfig pointing at a port nothing listens on: the operator must not crash or exit.
  std::string path = testing::TempDir() + "/unreachable-kubeconfig";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("current-context: x\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
             "contexts: [{name: x, context: {cluster: c}}]\n", f);
  std::fclose(f);
  Process op({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", path, "--listen-address", "127.0.0.1:0"});
  auto retry = op.waitForLine([](const std::string& l) { return hasMsg(l, "cannot reach the API server; retrying"); },
                              std::chrono::seconds(20));
  ASSERT_FALSE(retry.empty()) << testing::PrintToString(op.lines());
  op.signal(SIGTERM);
  EXPECT_EQ(op.wait(std::chrono::seconds(15)), 0);
}

}  // namespace
}  // namespace paddock::e2e

namespace paddock::e2e {
namespace {

// A paddock-operator process with leader election on a Lease in `ns`.
struct Replica {
  explicit Replica(const std::string& ns)
      : process({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address",
                 "127.0.0.1:0", "--leader-elect", "--leader-election-namespace", ns}) {
    auto serving = process.waitForLine([](const std::string& l) { return hasMsg(l, "serving /healthz, /readyz and /metrics"); },
                                       std::chrono::seconds(20));
    port = parseLine(serving).value("port", 0);
    auto c = http::makeClient("http://127.0.0.1:" + std::to_string(port), {});
    if (c) http = std::move(c.value());
  }
  // paddock_leader from /metrics: 1 leading, 0 not, -1 unreachable.
  int leading() {
    if (!http) return -1;
    auto r = http->send({http::Method::Get, "/metrics"});
    if (!r || r->status != 200) return -1;
    auto at = r->body.find("\npaddock_leader ");
    if (at == std::string::npos) return -1;
    return r->body[at + 16] == '1' ? 1 : 0;
  }
  Process process;
  int port = 0;
  std::unique_ptr<http::Client> http;
};

// Seconds since the epoch of a Kubernetes MicroTime ("2006-01-02T15:04:05.000000Z").
double microTimeSeconds(const std::string& t) {
  std::tm tm{};
  int micros = 0;
  std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
              &tm.tm_sec, &micros);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + micros / 1e6;
}

json lease(kube::RestClient& c, const std::string& ns) {
  auto l = c.getJson("/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases/paddock-operator");
  return l ? (*l)["spec"] : json::object();
}

std::string holder(kube::RestClient& c, const std::string& ns) {
  auto lease = c.getJson("/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases/paddock-operator");
  return lease ? (*lease)["spec"].value("holderIdentity", "") : "";
}

TEST(LeaderElection, ExactlyOneLeadsAndAStandbyTakesOver) {
  auto admin = adminClient();
  TempNamespace ns(*admin, "leader");
  auto a = std::make_unique<Replica>(ns.name());
  auto b = std::make_unique<Replica>(ns.name());
  ASSERT_GT(a->port, 0);
  ASSERT_GT(b->port, 0);
  ASSERT_TRUE(eventually([&] { return a->leading() + b->leading() == 1; }, std::chrono::seconds(30)))
      << "a=" << a->leading() << " b=" << b->leading();
  // Exactly one leads, and keeps leading.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(a->leading() + b->leading(), 1);
    CancelToken().waitFor(std::chrono::milliseconds(200));
  }
  if (b->leading() == 1) std::swap(a, b);  // a leads
  EXPECT_NE(holder(*admin, ns.name()).find(std::to_string(a->process.pid())), std::string::npos) << holder(*admin, ns.name());

  // kill -9: the standby takes over when the lease expires, the lease duration (12 s by default)
  // after the dead leader's last renewal (which came at most one retry period before the kill),
  // not earlier and not later.
  const double duration = lease(*admin, ns.name()).value("leaseDurationSeconds", 0);
  EXPECT_EQ(duration, 12) << "the default lease duration";
  auto killed = std::chrono::steady_clock::now();
  a->process.signal(SIGKILL);
  a->process.wait(std::chrono::seconds(5));
  double last_renewal = microTimeSeconds(lease(*admin, ns.name()).value("renewTime", ""));
  ASSERT_TRUE(eventually([&] { return b->leading() == 1; }, std::chrono::seconds(25)));
  double after_kill = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  double taken = microTimeSeconds(lease(*admin, ns.name()).value("acquireTime", ""));
  std::cout << "takeover after kill -9 of the leader: " << after_kill << " s from the kill, " << taken - last_renewal
            << " s from its last renewal (lease duration " << duration << " s)\n";
  EXPECT_GE(taken - last_renewal, duration) << "took over before the lease expired";
  EXPECT_LE(taken - last_renewal, duration + 0.5) << "a standby takes over as the lease expires";
  EXPECT_LE(after_kill, duration + 0.5);
  EXPECT_LE(after_kill, 15.0) << "the crash-recovery goal (docs/reliability.md)";

  // SIGTERM: the leader releases its lease and a standby leads within 3 s.
  auto c = std::make_unique<Replica>(ns.name());
  ASSERT_TRUE(eventually([&] { return c->leading() == 0; }, std::chrono::seconds(20)));
  auto termed = std::chrono::steady_clock::now();
  b->process.signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return c->leading() == 1; }, std::chrono::seconds(10)));
  double after_term = std::chrono::duration<double>(std::chrono::steady_clock::now() - termed).count();
  std::cout << "takeover after SIGTERM of the leader: " << after_term << " s\n";
  EXPECT_LT(after_term, 3.0);
  EXPECT_EQ(b->process.wait(std::chrono::seconds(10)), 0);
  EXPECT_NE(holder(*admin, ns.name()).find(std::to_string(c->process.pid())), std::string::npos);
}

}  // namespace
}  // namespace paddock::e2e
