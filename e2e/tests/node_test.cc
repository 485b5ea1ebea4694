// Paddock's agent pod on a real node (cluster.sh up --node: containerd, runc, kubelet, kube-proxy,
// kube-router's firewall): every hardening promise checked by what a process inside the running
// container observes. The pods are planned by the operator's own functions (planAgentPod,
// planNetworkPolicy) with the agent simulator's image; the workspace init container (a git clone
// over https, proven by the stage tests) is left out, as no test forge is reachable here.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "controllers/admission.h"
#include "controllers/plan.h"
#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using namespace controllers;
const kube::Resource secrets{"", "v1", "secrets", true};

// The node's addresses, as cluster.sh wrote them (<cluster dir>/node/addresses, key=value lines;
// the cluster's directory holds its kubeconfig).
std::map<std::string, std::string> nodeAddresses() {
  std::map<std::string, std::string> out;
  std::string kubeconfig = env("PADDOCK_E2E_KUBECONFIG");
  std::ifstream in(kubeconfig.substr(0, kubeconfig.rfind('/')) + "/node/addresses");
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// A TCP server of the test on `ip` (the machine's end of the node's veth): accepts connections,
// counts them and closes them.
class TcpServer {
 public:
  explicit TcpServer(const std::string& ip) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0) {
      ADD_FAILURE() << "cannot listen on " << ip;
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // shutdown() ends the loop
        ++accepted_;
        ::close(c);
      }
    });
  }
  ~TcpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

struct Exec {
  int status;
  std::string output;
};

class NodeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    addresses = nodeAddresses();
    ASSERT_FALSE(addresses["host_ip"].empty()) << "no node addresses: is the cluster up with --node?";
    ns = std::make_unique<TempNamespace>(*rest, "node", json{{"pod-security.kubernetes.io/enforce", "restricted"}});
    for (auto [name, key, value] : {std::tuple{"agent-key", "api-key", kAgentSecret}, std::tuple{"pr-token", "token", kPrSecret}}) {
      auto s = client.create(secrets, ns->name(),
                             {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", name}}},
                              {"stringData", {{key, value}}}});
      ASSERT_TRUE(s.ok()) << s.error().describe();
    }
  }

  // The team's policy: the simulator's image, the two secrets (one for the agent, one for the pr
  // stage) and `egress`.
  AgentPolicy policy(const json& egress) {
    json p = {{"metadata", {{"name", "team"}}},
              {"spec", {{"namespaceSelector", json::object()},
                        {"images", {{"default", kAgentImage}, {"allowed", {"paddock.local/*"}}}},
                        {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "256Mi"}}}}},
                        {"egress", egress},
                        {"secrets", {{{"secretName", "agent-key"}, {"key", "api-key"}, {"stages", {"agent"}}},
                                     {{"secretName", "pr-token"}, {"key", "token"}, {"stages", {"pr"}}}}},
                        {"budgets", {{"default", {{"tokens", 10}, {"costUSD", "1"}, {"wallClock", "10m"}}}}}}}};
    auto parsed = parseAgentPolicy(p);
    EXPECT_TRUE(parsed.ok()) << parsed.error().describe();
    return *parsed;
  }

  // Creates run `name`, its team's NetworkPolicy and its planned agent pod (without the workspace
  // init container); with `deadline` set, the pod's activeDeadlineSeconds is that many seconds.
  json startAgent(const std::string& name, const AgentPolicy& team, std::optional<std::chrono::seconds> deadline = {}) {
    auto created = client.create(kube::resources::agentruns, ns->name(),
                                 {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"}, {"metadata", {{"name", name}}},
                                  {"spec", {{"task", "t"}, {"repository", {{"url", "https://example.com/r.git"}}}}}});
    EXPECT_TRUE(created.ok()) << created.error().describe();
    auto run = parseAgentRun(*created);
    auto admission = admit(*run, team);
    EXPECT_TRUE(admission.admitted) << admission.message;
    PlanOptions options;
    options.stage_image = kStageImage;
    if (deadline) {
      admission.effective.wall_clock = *deadline;
      options.deadline_grace = std::chrono::seconds(0);
    }
    auto np = client.create(kube::resources::networkpolicies, ns->name(), planNetworkPolicy(ns->name(), team));
    EXPECT_TRUE(np.ok() || np.error().code == 409) << np.error().describe();
    json pod = planAgentPod(*run, team, admission.effective, options);
    pod["spec"].erase("initContainers");
    auto p = client.create(kube::resources::pods, ns->name(), pod);
    EXPECT_TRUE(p.ok()) << p.error().describe();
    return p.ok() ? *p : json();
  }

  json waitPod(const json& pod, const std::function<bool(const json&)>& done, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    return watchUntil(*rest, kube::resources::pods.path(ns->name()) + "?fieldSelector=metadata.name%3D" +
                                 pod["metadata"]["name"].get<std::string>(),
                      pod["metadata"]["resourceVersion"], [&](const std::string&, const json& o) { return done(o); }, timeout);
  }
  static bool running(const json& p) { return p.value(json::json_pointer("/status/phase"), std::string()) == "Running"; }

  // Runs `script` with bash in the pod's agent container (kubectl exec: a new process under the
  // container's own user, seccomp filter, capabilities and mounts).
  Exec exec(const std::string& pod, const std::string& script) {
    Process p({env("PADDOCK_KUBECTL"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "exec", "-n", ns->name(), pod,
               "-c", "agent", "--", "bash", "-c", script});
    int status = p.wait(std::chrono::seconds(60));
    std::string out;
    for (const auto& l : p.lines()) out += l + "\n";
    return {status, out};
  }
  // Whether a TCP connection from the pod to ip:port opens within 3 s.
  bool connects(const std::string& pod, const std::string& ip, int port) {
    auto r = exec(pod, "timeout 3 bash -c 'exec 3<>/dev/tcp/" + ip + "/" + std::to_string(port) + "'");
    return r.status == 0;
  }

  static constexpr const char* kAgentImage = "paddock.local/paddock-agent-sim:dev";
  static constexpr const char* kStageImage = "paddock.local/paddock-stage:dev";
  static constexpr const char* kAgentSecret = "agent-secret-value-7f3a";
  static constexpr const char* kPrSecret = "pr-secret-value-91c2";

  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, {.qps = 0}};
  std::map<std::string, std::string> addresses;
  std::unique_ptr<TempNamespace> ns;
};

TEST_F(NodeE2E, AgentProcessRunsConfined) {
  auto pod = startAgent("confined", policy(json::array()));
  ASSERT_FALSE(waitPod(pod, running).is_null()) << "the agent pod did not start on the real node";

  // The read-only root filesystem, for a new process and for the agent itself (PID 1).
  auto write = exec("confined-agent", "echo x > /probe");
  EXPECT_NE(write.status, 0);
  EXPECT_NE(write.output.find("Read-only file system"), std::string::npos) << write.output;
  auto ids = exec("confined-agent", "id -u; id -g; stat -c %u /proc/1");
  EXPECT_EQ(ids.output, "65532\n65532\n65532\n");
  // Seccomp 2 is filter mode; no new privileges; an empty effective capability set.
  for (const char* proc : {"self", "1"}) {
    auto status = exec("confined-agent", std::string("grep -E '^(Seccomp|NoNewPrivs|CapEff|CapPrm|CapBnd):' /proc/") + proc + "/status");
    EXPECT_NE(status.output.find("Seccomp:\t2\n"), std::string::npos) << proc << ": " << status.output;
    EXPECT_NE(status.output.find("NoNewPrivs:\t1\n"), std::string::npos) << proc << ": " << status.output;
    EXPECT_NE(status.output.find("CapEff:\t0000000000000000\n"), std::string::npos) << proc << ": " << status.output;
    EXPECT_NE(status.output.find("CapPrm:\t0000000000000000\n"), std::string::npos) << proc << ": " << status.output;
  }
  // No service-account token anywhere: no such mount, no such file.
  auto token = exec("confined-agent",
                    "grep -c serviceaccount /proc/self/mounts; "
                    "find / \\( -path /proc -o -path /sys \\) -prune -o \\( -path '*serviceaccount*' -o -name token \\) -print 2>/dev/null; true");
  EXPECT_EQ(token.output, "0\n") << "a service-account token or a token file is in the agent's filesystem";
  // Only the agent stage's secret, as a file; the pr stage's nowhere; neither in the environment.
  auto secrets = exec("confined-agent", "ls /var/run/paddock/secrets; cat /var/run/paddock/secrets/agent-key/api-key");
  EXPECT_EQ(secrets.output, std::string("agent-key\n") + kAgentSecret + "\n");
  auto environment = exec("confined-agent", "tr '\\0' '\\n' < /proc/1/environ; env");
  EXPECT_EQ(environment.output.find(kAgentSecret), std::string::npos) << "a secret value is in the agent's environment";
  EXPECT_EQ(environment.output.find(kPrSecret), std::string::npos);
  EXPECT_NE(environment.output.find("PADDOCK_RUN=confined"), std::string::npos) << environment.output;
  auto pr = exec("confined-agent", "grep -rl " + std::string(kPrSecret) + " / -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; true");
  EXPECT_EQ(pr.output, "") << "the pr stage's secret is readable by the agent";
}

TEST_F(NodeE2E, NetworkPolicyAllowsOnlyTheTeamsEgress) {
  const std::string host = addresses["host_ip"];
  TcpServer allowed(host), denied(host);
  // An unconfined pod of the test (no NetworkPolicy selects it) is the control: every target
  // below is reachable on this node, so a refused connection is the policy's doing.
  json peer = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "peer"}, {"labels", {{"app", "peer"}}}}},
               {"spec", {{"containers", {{{"name", "agent"}, {"image", kAgentImage},
                                          {"securityContext", {{"allowPrivilegeEscalation", false},
                                                               {"runAsNonRoot", true}, {"runAsUser", 65532},
                                                               {"capabilities", {{"drop", {"ALL"}}}},
                                                               {"seccompProfile", {{"type", "RuntimeDefault"}}}}}}}}}}};
  auto created_peer = client.create(kube::resources::pods, ns->name(), peer);
  ASSERT_TRUE(created_peer.ok()) << created_peer.error().describe();
  auto peer_running = waitPod(*created_peer, running);
  ASSERT_FALSE(peer_running.is_null());
  const std::string peer_ip = peer_running["status"]["podIP"];

  auto team = policy(json::array({{{"cidr", host + "/32"}, {"ports", {allowed.port()}}}}));
  auto pod = startAgent("net", team);
  ASSERT_FALSE(waitPod(pod, running).is_null());
  const int api_port = std::stoi(addresses["api_port"]);

  for (auto [ip, port] : {std::pair{host, denied.port()}, std::pair{peer_ip, 9464}, std::pair{host, api_port}}) {
    EXPECT_TRUE(connects("peer", ip, port)) << "control: the unconfined pod cannot reach " << ip << ":" << port;
  }
  // kube-router programs the pod's chain after it starts: wait until the denied target is refused.
  ASSERT_TRUE(eventually([&] { return !connects("net-agent", host, denied.port()); }, std::chrono::seconds(60),
                         std::chrono::seconds(1)))
      << "the agent reaches a port its policy does not allow";
  int allowed_before = allowed.accepted(), denied_before = denied.accepted();
  EXPECT_TRUE(connects("net-agent", host, allowed.port())) << "the agent cannot reach what its policy allows";
  EXPECT_EQ(allowed.accepted(), allowed_before + 1);
  EXPECT_FALSE(connects("net-agent", host, denied.port()));
  EXPECT_EQ(denied.accepted(), denied_before) << "a connection to the denied server got through";
  EXPECT_FALSE(connects("net-agent", peer_ip, 9464)) << "the agent reaches another pod";
  EXPECT_FALSE(connects("net-agent", host, api_port)) << "the agent reaches the API server";
  EXPECT_FALSE(connects("net-agent", addresses["node_ip"], 10250)) << "the agent reaches the kubelet";
  // Ingress: nothing reaches the agent, not even a pod on the same node.
  auto agent_ip = client.get(kube::resources::pods, ns->name(), "net-agent")->value(json::json_pointer("/status/podIP"), std::string());
  EXPECT_FALSE(connects("peer", agent_ip, 9464)) << "another pod reaches the agent";
}

TEST_F(NodeE2E, ActiveDeadlineEndsARunawayAgentWithNoOperator) {
  // The simulator runs until told to stop; only the kubelet's activeDeadlineSeconds ends it.
  auto pod = startAgent("runaway", policy(json::array()), std::chrono::seconds(15));
  ASSERT_EQ(pod["spec"]["activeDeadlineSeconds"], 15);
  ASSERT_FALSE(waitPod(pod, running).is_null());
  auto ended = waitPod(pod, [](const json& p) { return p.value(json::json_pointer("/status/phase"), std::string()) == "Failed"; },
                       std::chrono::seconds(90));
  ASSERT_FALSE(ended.is_null()) << "the runaway agent outlived its deadline";
  EXPECT_EQ(ended["status"]["reason"], "DeadlineExceeded");
  EXPECT_TRUE(eventually([&] {
    auto p = client.get(kube::resources::pods, ns->name(), "runaway-agent");
    return p.ok() && p->contains(json::json_pointer("/status/containerStatuses/0/state/terminated"));
  }, std::chrono::seconds(60))) << "the agent container was not stopped";
}

}  // namespace
}  // namespace paddock::e2e
