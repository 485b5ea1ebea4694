// Paddock's agent pod on a real node (cluster.sh up --node: containerd, runc, kubelet, kube-proxy,
// kube-router's firewall): every hardening promise checked by what a process inside the running
// container observes. The pods are planned by the operator's own functions (planAgentPod,
// planNetworkPolicy) with the agent simulator's image; the workspace init container (a git clone
// over https, proven by the stage tests) is left out, as no test forge is reachable here.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "controllers/admission.h"
#include "controllers/gateway.h"
#include "controllers/lifecycle.h"
#include "controllers/plan.h"
#include "controllers/stages.h"
#include "e2e/gateway/harness.h"
#include "e2e/gateway/model_standin.h"
#include "e2e/stage/forge_standin.h"
#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using namespace controllers;
const kube::Resource secrets{"", "v1", "secrets", true};
const kube::Resource persistentvolumes{"", "v1", "persistentvolumes", false};

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
                        {"budgets", {{"default", {{"tokens", 10}, {"costUSD", "1"}, {"wallClock", "10m"}}}}},
                        {"sandbox", {{"command", kAgentSimCommand}}}}}};
    auto parsed = parseAgentPolicy(p);
    EXPECT_TRUE(parsed.ok()) << parsed.error().describe();
    return *parsed;
  }

  // A Secret of one key in the test's namespace.
  void createSecret(const std::string& name, const std::string& key, const std::string& value) {
    auto made = client.create(secrets, ns->name(), {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", name}}},
                                                    {"stringData", {{key, value}}}});
    ASSERT_TRUE(made.ok()) << made.error().describe();
  }

  // spec.gateway with the Secret model-key/api-key, the model's prices and `upstream` ("" for
  // the default).
  static json gatewaySpec(const std::string& upstream = "") {
    json g = {{"modelKey", {{"secretName", "model-key"}, {"key", "api-key"}}},
              {"prices", {{"claude-sonnet-4-5", {{"input", "3"}, {"output", "15"}, {"cacheRead", "0.30"}, {"cacheWrite", "3.75"}}}}}};
    if (!upstream.empty()) g["upstream"] = upstream;
    return g;
  }

  // The plan's options with the node's images (the operator's image holds the gateway and the sandbox).
  static PlanOptions nodeOptions() {
    PlanOptions o;
    o.stage_image = kStageImage;
    o.gateway_image = kOperatorImage;
    o.sandbox_image = kOperatorImage;
    return o;
  }

  // Creates the AgentRun `name` (its spec as `spec`, else a task and an https repository) and
  // parses it as the operator does.
  AgentRun createRun(const std::string& name, json spec = json()) {
    if (spec.is_null()) spec = {{"task", "t"}, {"repository", {{"url", "https://example.com/r.git"}}}};
    auto created = client.create(kube::resources::agentruns, ns->name(),
                                 {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentRun"}, {"metadata", {{"name", name}}},
                                  {"spec", spec}});
    EXPECT_TRUE(created.ok()) << created.error().describe();
    if (!created.ok()) return AgentRun{};
    auto run = parseAgentRun(*created);
    EXPECT_TRUE(run.ok()) << run.error().describe();
    return run.ok() ? *run : AgentRun{};
  }

  // Issues the run's gateway credential `token` as the operator does (its Secret, named on the
  // run); its SHA-256 in hex.
  std::string issueCredential(AgentRun& run, const AgentPolicy& team, const std::string& token) {
    const std::string sha = gateway::testing::sha256Hex(token);
    run.gateway_credential_secret = credentialSecretName(run, sha);
    EXPECT_TRUE(client.create(secrets, ns->name(), planCredentialSecret(run, team, token, sha)).ok());
    return sha;
  }

  // Adds to the agent pod an init container of the test's (the agent's image, outside the
  // sandbox) that runs `script` in the workspace, as a clone would leave it.
  static void seedWorkspace(json& pod, const std::string& script) {
    json seed = pod["spec"]["containers"][0];
    seed["name"] = "seed";
    seed.erase("ports");
    seed["env"] = json::array();
    seed["command"] = {"/bin/sh", "-c", "cd /workspace && " + script};
    seed["volumeMounts"] = {{{"name", "workspace"}, {"mountPath", "/workspace"}}};
    pod["spec"]["initContainers"].push_back(seed);
  }

  // Waits for the pod to end; null at the timeout.
  json waitEnded(const json& pod, std::chrono::seconds timeout) {
    return waitPod(pod, [](const json& p) {
      auto phase = p.value(json::json_pointer("/status/phase"), std::string());
      return phase == "Succeeded" || phase == "Failed";
    }, timeout);
  }

  // The agent container's output.
  std::string agentLogs(const std::string& pod) {
    Process logs({env("PADDOCK_KUBECTL"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "logs", "-n", ns->name(), pod, "-c", "agent"});
    EXPECT_EQ(logs.wait(std::chrono::seconds(30)), 0);
    std::string out;
    for (const auto& l : logs.lines()) out += l + "\n";
    return out;
  }

  // Creates run `name`, its team's NetworkPolicy and its planned agent pod (without the workspace
  // init container); with `deadline` set, the pod's activeDeadlineSeconds is that many seconds.
  json startAgent(const std::string& name, const AgentPolicy& team, std::optional<std::chrono::seconds> deadline = {},
                  PlanOptions options = {}) {
    auto run = std::make_optional(createRun(name));
    // A run with gated stages keeps its workspace on a claim of its own (planWorkspaceClaim).
    for (const auto& stage : team.stages) run->stages.push_back(stage.name);
    if (!run->stages.empty()) {
      auto claim = client.create(kube::resources::persistentvolumeclaims, ns->name(), planWorkspaceClaim(*run, team, options));
      EXPECT_TRUE(claim.ok()) << claim.error().describe();
    }
    last_run = *run;
    auto admission = admit(*run, team);
    EXPECT_TRUE(admission.admitted) << admission.message;
    options.stage_image = kStageImage;
    options.sandbox_image = kOperatorImage;
    if (deadline) {
      admission.effective.wall_clock = *deadline;
      options.deadline_grace = std::chrono::seconds(0);
    }
    auto np = client.create(kube::resources::networkpolicies, ns->name(), planNetworkPolicy(ns->name(), team, options));
    EXPECT_TRUE(np.ok() || np.error().code == 409) << np.error().describe();
    json pod = withoutOperator(planAgentPod(*run, team, admission.effective, options));
    keepInitContainers(pod, {"sandbox"});
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
  Exec exec(const std::string& pod, const std::string& script) { return execIn(ns->name(), pod, "agent", script); }
  Exec execIn(const std::string& namespace_, const std::string& pod, const std::string& container, const std::string& script) {
    Process p({env("PADDOCK_KUBECTL"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "exec", "-n", namespace_, pod,
               "-c", container, "--", "bash", "-c", script});
    int status = p.wait(std::chrono::seconds(60));
    std::string out;
    for (const auto& l : p.lines()) out += l + "\n";
    return {status, out};
  }
  // Whether kube-router has programmed pod `pod`'s firewall with NetworkPolicy `policy`: the jump
  // from the pod's traffic to its own chain, and in that chain the rule that runs through the
  // policy's (kube-router names both in its rules' comments, and writes the whole filter table in
  // one iptables-restore, so the policy's own chain and ipsets are in place with them).
  bool firewallProgrammed(const std::string& pod, const std::string& policy) {
    Process save({"/usr/sbin/ip", "netns", "exec", addresses["netns"], "iptables-save", "-t", "filter"});
    if (save.wait(std::chrono::seconds(30)) != 0) return false;
    auto rules = save.lines();
    const std::string jump = "POD name:" + pod + " namespace: " + ns->name() + " ";
    for (const auto& rule : rules) {
      auto target = rule.find("-j KUBE-POD-FW-");
      if (rule.find(jump) == std::string::npos || target == std::string::npos) continue;
      const std::string chain = "-A " + rule.substr(target + 3) + " ";
      for (const auto& r : rules) {
        if (r.starts_with(chain) && r.find("\"run through nw policy " + policy + "\"") != std::string::npos) return true;
      }
    }
    return false;
  }
  // Whether a TCP connection from the pod to ip:port opens within 3 s.
  bool connects(const std::string& pod, const std::string& ip, int port) { return connectsFrom(ns->name(), pod, "agent", ip, port); }
  bool connectsFrom(const std::string& namespace_, const std::string& pod, const std::string& container, const std::string& ip, int port) {
    auto r = execIn(namespace_, pod, container, "timeout 3 bash -c 'exec 3<>/dev/tcp/" + ip + "/" + std::to_string(port) + "'");
    return r.status == 0;
  }
  // A pod of the simulator's image that runs `command` under the restricted security context.
  static json plainPod(const std::string& name, const json& labels, const json& command = nullptr) {
    json container = {{"name", "agent"}, {"image", kAgentImage},
                      {"securityContext", {{"allowPrivilegeEscalation", false}, {"runAsNonRoot", true}, {"runAsUser", 65532},
                                           {"capabilities", {{"drop", {"ALL"}}}},
                                           {"seccompProfile", {{"type", "RuntimeDefault"}}}}}};
    if (!command.is_null()) container["command"] = command;
    return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", name}, {"labels", labels}}},
            {"spec", {{"containers", {container}}}}};
  }
  // Debian's Prometheus in namespace `monitoring` (which must exist), labelled
  // app.kubernetes.io/name=prometheus, scraping `agent` (a running pod) every 2 s with the scrape
  // job the chart ships; returns its running pod (null when it did not start). Debian builds
  // Prometheus without Kubernetes discovery ("field kubernetes_sd_configs not found"), so the
  // target is static, with the labels that discovery would give it, and the job's own
  // relabel_configs turn them into the series' labels (as e2e/prometheus.sh does).
  json startPrometheus(const json& agent) {
    const auto& meta = agent["metadata"];
    json target = {{"targets", {agent["status"]["podIP"].get<std::string>() + ":9464"}},
                   {"labels", {{"__meta_kubernetes_namespace", meta["namespace"]},
                               {"__meta_kubernetes_pod_name", meta["name"]},
                               {"__meta_kubernetes_pod_uid", meta["uid"]},
                               {"__meta_kubernetes_pod_container_port_name", "metrics"}}}};
    for (const auto& [key, value] : meta["labels"].items()) {
      std::string name = "__meta_kubernetes_pod_label_" + key;
      std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '_'; }, '_');
      target["labels"][name] = value;
    }
    json job = loadYaml(repoPath("charts/paddock/files/agent-scrape-job.yaml")).at(0);
    job.erase("kubernetes_sd_configs");
    job["static_configs"] = {target};
    job["scrape_interval"] = "2s";
    json config = {{"global", {{"scrape_interval", "2s"}}}, {"scrape_configs", {job}}};
    EXPECT_TRUE(client.create(kube::resources::configmaps, "monitoring",
                              {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "prometheus"}}},
                               {"data", {{"prometheus.yml", config.dump(2)}}}}).ok());
    // Debian's Prometheus (the machine's own package, /usr/bin/prometheus, linked against libc
    // alone) run by the node in the simulator's Debian image.
    json prometheus = plainPod("prometheus", {{"app.kubernetes.io/name", "prometheus"}},
                               {"/opt/prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/data",
                                "--web.listen-address=0.0.0.0:9090"});
    prometheus["spec"]["containers"][0]["volumeMounts"] = {{{"name", "bin"}, {"mountPath", "/opt/prometheus"}, {"readOnly", true}},
                                                          {{"name", "config"}, {"mountPath", "/etc/prometheus"}},
                                                          {{"name", "data"}, {"mountPath", "/data"}}};
    prometheus["spec"]["volumes"] = {{{"name", "bin"}, {"hostPath", {{"path", "/usr/bin/prometheus"}, {"type", "File"}}}},
                                     {{"name", "config"}, {"configMap", {{"name", "prometheus"}}}},
                                     {{"name", "data"}, {"emptyDir", json::object()}}};
    return runPod("monitoring", prometheus);
  }
  // Creates `pod` in `namespace_` and waits until it runs; returns it (null when it did not start).
  json runPod(const std::string& namespace_, const json& pod) {
    auto created = client.create(kube::resources::pods, namespace_, pod);
    EXPECT_TRUE(created.ok()) << created.error().describe();
    if (!created.ok()) return nullptr;
    return watchUntil(*rest, kube::resources::pods.path(namespace_) + "?fieldSelector=metadata.name%3D" +
                                 pod["metadata"]["name"].get<std::string>(),
                      (*created)["metadata"]["resourceVersion"], [](const std::string&, const json& o) { return running(o); },
                      std::chrono::seconds(120));
  }

  // The namespace's gateway objects as planGatewayObjects plans them for `runs`, the gateway's pods
  // resolving `names` to the machine's end of the node's veth (no cluster DNS here); returns the
  // gateway Service's address ("" when an object was refused).
  std::string startGateway(const AgentPolicy& team, const std::vector<GatewayRun>& runs, const PlanOptions& o,
                           const std::vector<std::string>& names) {
    static const std::map<std::string, const kube::Resource*> kinds = {
        {"ConfigMap", &kube::resources::configmaps}, {"NetworkPolicy", &kube::resources::networkpolicies},
        {"Service", &kube::resources::services}, {"Deployment", &kube::resources::deployments}};
    std::string service_ip;
    for (json object : planGatewayObjects(ns->name(), team, runs, o)) {
      const std::string kind = object["kind"];
      if (kind == "Deployment") {
        object["spec"]["template"]["spec"]["hostAliases"] = {{{"ip", addresses["host_ip"]}, {"hostnames", names}}};
      }
      auto made = client.create(*kinds.at(kind), ns->name(), object);
      EXPECT_TRUE(made.ok()) << kind << ": " << made.error().describe();
      if (!made.ok()) return "";
      if (kind == "Service") service_ip = (*made)["spec"]["clusterIP"];
    }
    return service_ip;
  }

  // No operator runs here: the agent pod's finalizer (paddock.dev/agent-pod, taken off by the
  // operator once the run's status records the pod) is left out, so a deleted pod goes.
  static json withoutOperator(json pod) {
    pod["metadata"].erase("finalizers");
    return pod;
  }
  static constexpr const char* kAgentImage = "paddock.local/paddock-agent-sim:dev";
  // The simulator image's entrypoint, which paddock-sandbox runs (spec.sandbox.command).
  inline static const json kAgentSimCommand = {"/usr/local/bin/paddock-agent-sim", "--listen", "0.0.0.0:9464",
                                               "--control-dir", "/etc/paddock/control"};
  // Leaves of the pod's init containers only those named (the workspace clone needs a forge the
  // test may not have; the sandbox's install is what every agent pod gets).
  static void keepInitContainers(json& pod, const std::set<std::string>& names) {
    json kept = json::array();
    for (const auto& c : pod["spec"].value("initContainers", json::array())) {
      if (names.count(c.value("name", ""))) kept.push_back(c);
    }
    pod["spec"]["initContainers"] = kept;
  }
  static constexpr const char* kOperatorImage = "paddock.local/paddock-operator:dev";
  static constexpr const char* kStageImage = "paddock.local/paddock-stage:dev";
  static constexpr const char* kAgentSecret = "agent-secret-value-7f3a";
  static constexpr const char* kPrSecret = "pr-secret-value-91c2";

  std::unique_ptr<kube::RestClient> rest = adminClient();
  kube::Client client{*rest, {.qps = 0}};
  std::map<std::string, std::string> addresses;
  AgentRun last_run;  // the run startAgent made last, as planned
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
  auto peer_running = runPod(ns->name(), plainPod("peer", {{"app", "peer"}}));
  ASSERT_FALSE(peer_running.is_null());
  const std::string peer_ip = peer_running["status"]["podIP"];

  auto team = policy(json::array({{{"cidr", host + "/32"}, {"ports", {allowed.port()}}}}));
  auto pod = startAgent("net", team);
  ASSERT_FALSE(waitPod(pod, running).is_null());
  const int api_port = std::stoi(addresses["api_port"]);

  for (auto [ip, port] : {std::pair{host, denied.port()}, std::pair{peer_ip, 9464}, std::pair{host, api_port}}) {
    EXPECT_TRUE(connects("peer", ip, port)) << "control: the unconfined pod cannot reach " << ip << ":" << port;
  }
  // kube-router programs a pod's chain after the pod has its address: wait for that, then probe.
  ASSERT_TRUE(eventually([&] { return firewallProgrammed("net-agent", networkPolicyName(team)); }, std::chrono::seconds(60),
                         std::chrono::seconds(1)))
      << "kube-router did not program the agent pod's firewall with " << networkPolicyName(team);
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

  // A label edit that would move the pod out of the policy's selector is refused (the admission
  // policy paddock-pod-task-immutable), and the agent stays confined.
  http::Request edit{http::Method::Patch, kube::resources::pods.path(ns->name(), "net-agent")};
  edit.body = json{{"metadata", {{"labels", {{"paddock.dev/team", "elsewhere"}}}}}}.dump();
  edit.headers.emplace_back("Content-Type", "application/strategic-merge-patch+json");
  auto refused = rest->send(edit);
  ASSERT_TRUE(refused.ok()) << refused.error().describe();
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_NE(refused->body.find("metadata.labels paddock.dev/team of a Paddock pod cannot change"), std::string::npos) << refused->body;
  EXPECT_FALSE(connects("net-agent", host, denied.port())) << "the agent reaches a denied port after the refused label edit";
  EXPECT_EQ(denied.accepted(), denied_before);
}

// An HTTP GET from the machine (curl), as a JSON object; an empty one when it fails.
json getJson(const std::string& url) {
  Process curl({"/usr/bin/curl", "-sf", "--max-time", "5", url});
  if (curl.wait(std::chrono::seconds(10)) != 0) return json::object();
  std::string body;
  for (const auto& l : curl.lines()) body += l;
  auto doc = json::parse(body, nullptr, false);
  return doc.is_object() ? doc : json::object();
}

TEST_F(NodeE2E, PrometheusScrapesTheAgentThroughItsPolicy) {
  // The selectors the operator is started with (--prometheus-namespace-selector,
  // --prometheus-pod-selector), and a Prometheus that matches them.
  PlanOptions scrape;
  scrape.scrape_namespace_labels = {{"kubernetes.io/metadata.name", "monitoring"}};
  scrape.scrape_pod_labels = {{"app.kubernetes.io/name", "prometheus"}};
  auto created = request(*rest, http::Method::Post, "/api/v1/namespaces",
                         {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "monitoring"}}}});
  ASSERT_EQ(created.status, 201) << created.body;
  struct Gone {
    kube::RestClient& c;
    ~Gone() { request(c, http::Method::Delete, "/api/v1/namespaces/monitoring"); }
  } gone{*rest};

  auto team = policy(json::array());
  auto pod = startAgent("scrape", team, {}, scrape);
  auto agent = waitPod(pod, running);
  ASSERT_FALSE(agent.is_null());
  const std::string agent_ip = agent["status"]["podIP"];
  auto prometheus_running = startPrometheus(agent);
  ASSERT_FALSE(prometheus_running.is_null()) << "Prometheus did not start on the node";
  const std::string prometheus_url = "http://" + prometheus_running["status"]["podIP"].get<std::string>() + ":9090";
  // A pod in the monitoring namespace without Prometheus' label, and one in the team's namespace.
  auto outsider = runPod("monitoring", plainPod("outsider", {{"app", "outsider"}}));
  auto peer = runPod(ns->name(), plainPod("peer", {{"app", "peer"}}));
  ASSERT_FALSE(outsider.is_null());
  ASSERT_FALSE(peer.is_null());
  ASSERT_TRUE(eventually([&] { return firewallProgrammed("scrape-agent", networkPolicyName(team)); }, std::chrono::seconds(60),
                         std::chrono::seconds(1)));

  // What Prometheus reports: the agent's target up, and its usage series, labelled from the pod.
  json target;
  EXPECT_TRUE(eventually([&] {
    auto targets = getJson(prometheus_url + "/api/v1/targets?state=active");
    for (const auto& t : targets.value(json::json_pointer("/data/activeTargets"), json::array())) {
      if (t.value(json::json_pointer("/labels/pod"), std::string()) != "scrape-agent") continue;
      target = t;
      return t.value("health", std::string()) == "up";
    }
    return false;
  }, std::chrono::seconds(90), std::chrono::seconds(2))) << "the agent's target: " << target.dump();
  json series;
  EXPECT_TRUE(eventually([&] {
    series = getJson(prometheus_url + "/api/v1/query?query=claude_code_token_usage_tokens_total%7Bpod%3D%22scrape-agent%22%7D");
    return !series.value(json::json_pointer("/data/result"), json::array()).empty();
  }, std::chrono::seconds(30), std::chrono::seconds(2))) << series.dump();
  for (const auto& s : series.value(json::json_pointer("/data/result"), json::array())) {
    EXPECT_EQ(s["metric"].value("agentrun", std::string()), "scrape") << s.dump();
    EXPECT_EQ(s["metric"].value("namespace", std::string()), ns->name()) << s.dump();
  }

  // Only Prometheus: the outsider reaches another pod's metrics port (the control), not the agent's.
  EXPECT_TRUE(connectsFrom("monitoring", "prometheus", "agent", agent_ip, 9464)) << "Prometheus cannot connect to the agent";
  EXPECT_TRUE(connectsFrom("monitoring", "outsider", "agent", peer["status"]["podIP"], 9464)) << "control: the outsider reaches no pod";
  EXPECT_FALSE(connectsFrom("monitoring", "outsider", "agent", agent_ip, 9464))
      << "a monitoring pod without Prometheus' label reaches the agent's metrics port";
  EXPECT_FALSE(connects("peer", agent_ip, 9464)) << "a pod of the team's namespace reaches the agent's metrics port";
}

TEST_F(NodeE2E, BudgetKillGivesTheGracePeriodAndTheWorkSurvivesForTheNextStage) {
  // The workspace claim's volume: a directory of this machine that the pods' fsGroup may write,
  // as an administrator provisions one (kube-controller-manager's hostPath provisioner makes its
  // directories root's, mode 0750, which no non-root agent can write).
  const std::string dir = "/tmp/paddock-node-e2e-" + ns->name();
  ASSERT_EQ(std::system(("install -d -o 65532 -g 65532 -m 0770 " + dir).c_str()), 0);
  const std::string pv_name = "workspace-" + ns->name();
  ASSERT_TRUE(client.create(persistentvolumes, "",
                            {{"apiVersion", "v1"}, {"kind", "PersistentVolume"}, {"metadata", {{"name", pv_name}}},
                             {"spec", {{"capacity", {{"storage", "10Gi"}}}, {"accessModes", {"ReadWriteOnce"}},
                                       {"storageClassName", "paddock-node-workspace"},
                                       {"persistentVolumeReclaimPolicy", "Retain"},
                                       {"claimRef", {{"namespace", ns->name()}, {"name", "wip-workspace"}}},
                                       {"hostPath", {{"path", dir}, {"type", "Directory"}}}}}}).ok());
  struct Gone {
    kube::Client& c;
    std::string pv, dir;
    ~Gone() {
      (void)c.remove(persistentvolumes, "", pv);
      std::filesystem::remove_all(dir);
    }
  } gone{client, pv_name, dir};

  auto team = policy(json::array());
  team.stages.push_back(StageSpec{.name = "pr"});
  PlanOptions options;
  options.stage_image = kStageImage;
  options.workspace_storage_class = "paddock-node-workspace";
  auto pod = startAgent("wip", team, {}, options);
  auto agent = waitPod(pod, running);
  ASSERT_FALSE(agent.is_null());
  // The operator's budget kill: the pod deleted with the plan's grace period, on its UID.
  kube::DeleteOptions del;
  del.grace_period_seconds = static_cast<int>(options.termination_grace.count());
  del.precondition_uid = agent["metadata"]["uid"].get<std::string>();
  auto killed_at = std::chrono::system_clock::now();
  ASSERT_TRUE(client.remove(kube::resources::pods, ns->name(), "wip-agent", del).ok());
  auto ended = waitPod(agent, [](const json& p) { return p.contains(json::json_pointer("/status/containerStatuses/0/state/terminated")); },
                       std::chrono::seconds(90));
  ASSERT_FALSE(ended.is_null()) << "the killed agent's container never ended";
  const auto& terminated = ended["status"]["containerStatuses"][0]["state"]["terminated"];
  // Exit 0: the simulator wrote wip.json on SIGTERM (it exits 1 when it cannot), not a SIGKILL (137).
  EXPECT_EQ(terminated.value("exitCode", -1), 0) << terminated.dump();
  EXPECT_LT(std::chrono::system_clock::now() - killed_at, options.termination_grace) << "the agent outlived its grace period";
  ASSERT_TRUE(eventually([&] {
    auto p = client.get(kube::resources::pods, ns->name(), "wip-agent");
    return !p.ok() && p.error().code == 404;
  }, std::chrono::seconds(90))) << "the killed agent's pod is still there";

  // The next stage's pod, on the same claim, finds the work in progress.
  json stage = planStagePod(last_run, team, team.stages[0], options);
  stage["spec"].erase("initContainers");
  stage["spec"]["containers"][0]["command"] = {"cat", "/workspace/wip.json"};
  stage["spec"]["containers"][0].erase("args");
  auto created = client.create(kube::resources::pods, ns->name(), stage);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto done = waitPod(*created, [](const json& p) {
    auto phase = p.value(json::json_pointer("/status/phase"), std::string());
    return phase == "Succeeded" || phase == "Failed";
  });
  ASSERT_FALSE(done.is_null());
  Process logs({env("PADDOCK_KUBECTL"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "logs", "-n", ns->name(),
                stagePodName(last_run, "pr")});
  ASSERT_EQ(logs.wait(std::chrono::seconds(30)), 0);
  std::string text;
  for (const auto& l : logs.lines()) text += l + "\n";
  EXPECT_EQ(done["status"]["phase"], "Succeeded") << text;
  auto wip = json::parse(text, nullptr, false);
  ASSERT_FALSE(wip.is_discarded()) << text;
  EXPECT_EQ(wip.value("reason", std::string()), "SIGTERM") << text;
}

// A TLS ClientHello record naming `sni`, cut down to the fields paddock-gateway's egress check
// reads (as tests/unit/gateway/egress_test.cc builds it), written as printf escapes for bash.
std::string clientHelloEscaped(const std::string& sni) {
  std::string list = std::string("\x00", 1) + char(sni.size() >> 8) + char(sni.size() & 0xff) + sni;
  std::string body = std::string(1, char(list.size() >> 8)) + char(list.size() & 0xff) + list;
  std::string ext = std::string("\x00\x17\x00\x00\x00\x00", 6) + char(body.size() >> 8) + char(body.size() & 0xff) + body;
  std::string hello = std::string("\x03\x03", 2) + std::string(32, 'r') + std::string("\x00\x00\x02\x13\x01\x01\x00", 7) +
                      char(ext.size() >> 8) + char(ext.size() & 0xff) + ext;
  std::string hs = std::string("\x01\x00", 2) + char(hello.size() >> 8) + char(hello.size() & 0xff) + hello;
  std::string record = std::string("\x16\x03\x01", 3) + char(hs.size() >> 8) + char(hs.size() & 0xff) + hs;
  std::string out;
  char buf[5];
  for (unsigned char c : record) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  }
  return out;
}

// Issue 17 on the real node: a run under a policy with spec.gateway. The namespace's gateway runs
// from the operator's image as the gateway reconciler plans it, the agent pod as the run
// reconciler plans it (its gateway-credential init container waits until the gateway serves the
// run's credential). From inside the agent: the model key is nowhere, a CONNECT through the gateway
// reaches the allowed test server, any other host or port is refused, and a direct connection
// around the gateway is dropped by the NetworkPolicy. The node has no cluster DNS: the test gives
// the pods the names they use (paddock-gateway, and the egress hosts for the gateway) as hostAliases.
TEST_F(NodeE2E, TheAgentReachesTheOutsideOnlyThroughItsGatewayAndNeverHoldsTheModelKey) {
  const std::string host = addresses["host_ip"];
  TcpServer allowed(host), denied(host);
  const std::string model_key = "sk-ant-model-key-node-e2e-5d1c";
  createSecret("model-key", "api-key", model_key);
  json egress = json::array({{{"host", "allowed.test"}, {"ports", {allowed.port()}}},
                             {{"cidr", host + "/32"}, {"ports", {allowed.port()}}}});
  json p = {{"metadata", {{"name", "team"}}},
            {"spec", {{"namespaceSelector", json::object()},
                      {"images", {{"default", kAgentImage}, {"allowed", {"paddock.local/*"}}}},
                      {"model", {{"pin", "claude-sonnet-4-5"}}},
                      {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "256Mi"}}}}},
                      {"egress", egress},
                      {"secrets", {{{"secretName", "model-key"}, {"key", "api-key"}, {"stages", {"agent"}}},
                                   {{"secretName", "pr-token"}, {"key", "token"}, {"stages", {"pr"}}}}},
                      {"budgets", {{"default", {{"tokens", 1000}, {"costUSD", "1"}, {"wallClock", "10m"}}}}},
                      {"sandbox", {{"command", kAgentSimCommand}}},
                      {"gateway", gatewaySpec()}}}};
  auto parsed = parseAgentPolicy(p);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const AgentPolicy team = *parsed;
  PlanOptions o = nodeOptions();

  auto run = std::make_optional(createRun("gw"));
  const std::string token(64, 'c');
  const std::string sha = issueCredential(*run, team, token);

  // The namespace's gateway, with the test's names for its egress.
  const std::string service_ip = startGateway(team, {{"gw", sha, 1000, 100}}, o, {"allowed.test", "denied.test"});
  ASSERT_FALSE(service_ip.empty());
  ASSERT_TRUE(client.create(kube::resources::networkpolicies, ns->name(), planNetworkPolicy(ns->name(), team, o)).ok());
  auto admission = admit(*run, team);
  ASSERT_TRUE(admission.admitted) << admission.message;
  json pod = withoutOperator(planAgentPod(*run, team, admission.effective, o));
  keepInitContainers(pod, {"gateway-credential", "sandbox"});  // the workspace clone needs a forge: left out
  ASSERT_EQ(pod["spec"]["initContainers"].size(), 2u) << pod["spec"]["initContainers"].dump();
  pod["spec"]["hostAliases"] = {{{"ip", service_ip}, {"hostnames", {"paddock-gateway"}}}};
  auto started = client.create(kube::resources::pods, ns->name(), pod);
  ASSERT_TRUE(started.ok()) << started.error().describe();
  auto agent = waitPod(*started, running, std::chrono::seconds(180));
  ASSERT_FALSE(agent.is_null()) << "the agent never started: its wait for the gateway to serve its credential did not end";

  // The model key: in no file the agent can read, not in its environment; its credential is.
  auto key = exec("gw-agent", "grep -rl " + model_key + " / -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; "
                              "tr '\\0' '\\n' < /proc/1/environ | grep -c " + model_key + "; true");
  EXPECT_EQ(key.output, "0\n") << "the model key is readable by the agent";
  auto credential = exec("gw-agent", "cat /var/run/paddock/gateway/credential");
  EXPECT_EQ(credential.output, token + "\n");

  ASSERT_TRUE(eventually([&] { return firewallProgrammed("gw-agent", networkPolicyName(team)); }, std::chrono::seconds(60),
                         std::chrono::seconds(1)));
  // CONNECT through the gateway, then a ClientHello naming the host: the gateway connects to it.
  auto tunnel = [&](const std::string& target, const std::string& sni) {
    return exec("gw-agent", "exec 3<>/dev/tcp/paddock-gateway/8080 || exit 9; printf 'CONNECT " + target +
                                " HTTP/1.1\\r\\nHost: " + target + "\\r\\n\\r\\n' >&3; read -t 10 status <&3; echo \"$status\"; "
                                "case \"$status\" in *' 200 '*) printf '" + clientHelloEscaped(sni) + "' >&3; "
                                "read -t 5 -n 1 <&3;; esac; true");
  };
  const std::string a = std::to_string(allowed.port()), d = std::to_string(denied.port());
  int allowed_before = allowed.accepted(), denied_before = denied.accepted();
  auto through = tunnel("allowed.test:" + a, "allowed.test");
  EXPECT_NE(through.output.find(" 200 "), std::string::npos) << through.output;
  EXPECT_TRUE(eventually([&] { return allowed.accepted() == allowed_before + 1; }, std::chrono::seconds(20)))
      << "the allowed test server never saw the gateway's connection";
  for (const std::string& target : {"denied.test:" + d, "allowed.test:" + d, host + ":" + d}) {
    auto refused = tunnel(target, "denied.test");
    EXPECT_NE(refused.output.find(" 403 "), std::string::npos) << target << ": " << refused.output;
  }
  EXPECT_EQ(denied.accepted(), denied_before) << "a refused CONNECT reached the denied server";
  // Around the gateway: dropped by the NetworkPolicy (the control: the gateway itself reached it).
  EXPECT_FALSE(connects("gw-agent", host, allowed.port())) << "the agent reaches the allowed server around its gateway";
  EXPECT_EQ(allowed.accepted(), allowed_before + 1);
}

// The agent-claude-code image as images/build.sh names it: its tag is the Claude Code release the
// Dockerfile pins (ARG CLAUDE_CODE_VERSION, the one place it is pinned).
std::string claudeCodeImage() {
  std::ifstream in(repoPath("images/agent-claude-code/Dockerfile"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("ARG CLAUDE_CODE_VERSION=")) return "paddock.local/agent-claude-code:" + line.substr(24);
  }
  ADD_FAILURE() << "no ARG CLAUDE_CODE_VERSION in images/agent-claude-code/Dockerfile";
  return "";
}

// Issue 17's budget end on the real node, with the real Claude Code (the agent-claude-code image,
// the pinned npm release) as the agent: the run's pod and the namespace's gateway as the operator
// plans them, the model a scripted stand-in of ours on the machine's end of the node's veth. Past
// 60 % of the run's tokens the gateway tells the agent to commit its work in progress and it does;
// at the cap the gateway refuses, with no token served over it, and the agent's pod ends. The run
// then hands its partial work on as the operator plans it (planStages with the agent stopped at
// its budget): the pr stage, approved, opens a draft pull request of that work through the
// gateway at the forge stand-in. The repository is a bare remote on a volume (file://); the node
// has no cluster DNS, so the pods get their names as hostAliases.
TEST_F(NodeE2E, ClaudeCodeIsCutOffAtItsBudgetByTheGatewayAndItsPartialWorkBecomesADraftPullRequest) {
  namespace fs = std::filesystem;
  using gateway::testing::Turn;
  const std::string host = addresses["host_ip"];
  const std::string dir = "/tmp/paddock-node-e2e-" + ns->name();
  const std::string remote = dir + "/remote/shop.git";
  auto sh = [](const std::string& script) { return std::system(("set -e; " + script).c_str()); };
  // The team's remote with one commit on main, and the workspace claim's directory: the pods' user's.
  ASSERT_EQ(sh("install -d -o 65532 -g 65532 -m 0770 " + dir + "/workspace; mkdir -p " + dir + "/remote " + dir + "/seed; "
               "git init -q --bare -b main " + remote + "; cd " + dir + "/seed; git init -q -b main; "
               "printf 'def retry():\\n    return 1\\n' > app.py; printf '# Shop\\n' > README.md; git add -A; "
               "git -c user.name=t -c user.email=t@example.com commit -qm base; git push -q " + remote + " main; "
               "chown -R 65532:65532 " + dir + "/remote"), 0);
  Process head({"/usr/bin/git", "--git-dir=" + remote, "rev-parse", "main"});
  ASSERT_EQ(head.wait(std::chrono::seconds(10)), 0);
  const std::string base = head.lines().at(0);
  const std::string workspace_pv = "workspace-" + ns->name(), remote_pv = "remote-" + ns->name();
  for (auto [pv, claim, path] : {std::tuple{workspace_pv, std::string("cc-workspace"), dir + "/workspace"},
                                 std::tuple{remote_pv, std::string("remote"), dir + "/remote"}}) {
    ASSERT_TRUE(client.create(persistentvolumes, "",
                              {{"apiVersion", "v1"}, {"kind", "PersistentVolume"}, {"metadata", {{"name", pv}}},
                               {"spec", {{"capacity", {{"storage", "10Gi"}}}, {"accessModes", {"ReadWriteOnce"}},
                                         {"storageClassName", "paddock-node-workspace"},
                                         {"persistentVolumeReclaimPolicy", "Retain"},
                                         {"claimRef", {{"namespace", ns->name()}, {"name", claim}}},
                                         {"hostPath", {{"path", path}, {"type", "Directory"}}}}}}).ok());
  }
  struct Gone {
    kube::Client& c;
    std::vector<std::string> pvs;
    std::string dir;
    ~Gone() {
      for (const auto& pv : pvs) (void)c.remove(persistentvolumes, "", pv);
      std::filesystem::remove_all(dir);
    }
  } gone{client, {workspace_pv, remote_pv}, dir};
  ASSERT_TRUE(client.create(kube::resources::persistentvolumeclaims, ns->name(),
                            {{"apiVersion", "v1"}, {"kind", "PersistentVolumeClaim"}, {"metadata", {{"name", "remote"}}},
                             {"spec", {{"accessModes", {"ReadWriteOnce"}}, {"storageClassName", "paddock-node-workspace"},
                                       {"volumeName", remote_pv}, {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}).ok());

  gateway::testing::ModelStandin model;
  ASSERT_TRUE(model.start(1, host));
  stage::testing::ForgeStandin forge("acme", "shop", remote);
  ASSERT_TRUE(forge.start(host));
  const std::string model_key = "sk-ant-model-key-node-e2e-77b2";
  createSecret("model-key", "api-key", model_key);
  const int64_t cap = 400000;
  json p = {{"metadata", {{"name", "team"}}},
            {"spec", {{"namespaceSelector", json::object()},
                      {"images", {{"default", claudeCodeImage()},
                                  {"allowed", {"paddock.local/*"}}}},
                      {"model", {{"pin", "claude-sonnet-4-5"}}},
                      {"tools", {{"allow", {"Write", "Edit", "Bash"}}}},
                      {"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}},
                      {"egress", {{{"host", "forge.test"}, {"ports", {forge.port()}}}, {{"cidr", host + "/32"}, {"ports", {forge.port()}}}}},
                      {"secrets", {{{"secretName", "model-key"}, {"key", "api-key"}, {"stages", {"agent"}}},
                                   {{"secretName", "pr-token"}, {"key", "token"}, {"stages", {"pr"}}}}},
                      {"budgets", {{"default", {{"tokens", cap}, {"costUSD", "50"}, {"wallClock", "30m"}}}}},
                      {"gateway", gatewaySpec("http://model.test:" + std::to_string(model.port()))}}}};
  auto parsed = parseAgentPolicy(p);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  AgentPolicy team = *parsed;
  team.stages.push_back(StageSpec{.name = "pr", .approver_users = {"lead"}});
  PlanOptions o = nodeOptions();
  o.workspace_storage_class = "paddock-node-workspace";

  auto run = std::make_optional(createRun("cc", {{"task", "Make the client retry three times."}, {"stages", {"pr"}},
                                          {"repository", {{"url", "https://forge.test/acme/shop.git"}}}}));

  const std::string token = "paddock-run-credential-" + std::string(40, 'e');
  const std::string sha = issueCredential(*run, team, token);
  ASSERT_TRUE(client.create(kube::resources::persistentvolumeclaims, ns->name(), planWorkspaceClaim(*run, team, o)).ok());

  // The namespace's gateway, with the test's names for the model and the forge.
  const std::string service_ip = startGateway(team, {{"cc", sha, cap, 5000}}, o, {"model.test", "forge.test"});
  ASSERT_FALSE(service_ip.empty());
  ASSERT_TRUE(client.create(kube::resources::networkpolicies, ns->name(), planNetworkPolicy(ns->name(), team, o)).ok());
  const json gateway_alias = {{{"ip", service_ip}, {"hostnames", {"paddock-gateway"}}}};
  // The remote's volume, where the clone (read-only) and the pr stage (its push) find it.
  auto withRemote = [](json& spec, const std::string& container, bool read_only) {
    spec["volumes"].push_back({{"name", "remote"}, {"persistentVolumeClaim", {{"claimName", "remote"}}}});
    for (const char* list : {"initContainers", "containers"}) {
      if (!spec.contains(list)) continue;
      for (auto& c : spec[list]) {
        if (c["name"] == container) c["volumeMounts"].push_back({{"name", "remote"}, {"mountPath", "/remote"}, {"readOnly", read_only}});
      }
    }
  };

  // The script: a change, then (told to checkpoint past 60 %) a commit of it, then a call that
  // spends everything it is granted; the next is refused at the gateway and never arrives here.
  Turn write;
  write.kind = Turn::Kind::ToolUse, write.tool = "Write", write.text = "Writing the retry.";
  write.input = {{"file_path", "/workspace/retry.py"}, {"content", "RETRIES = 3  # half done\n"}};
  write.input_tokens = 250000;
  Turn commit;
  commit.kind = Turn::Kind::ToolUse, commit.tool = "Bash", commit.text = "Committing my work in progress.";
  commit.input = {{"command", "git add -A && git commit -qm 'WIP: retry three times' && git log --format=%s -1"},
                  {"description", "commit work in progress"}};
  Turn spend = write;
  spend.input = {{"file_path", "/workspace/notes.md"}, {"content", "more\n"}};
  spend.input_tokens = -1;
  spend.spend_all = true;
  Turn unreachable;
  unreachable.text = "unreachable";
  model.setScript({write, commit, spend, spend, unreachable});

  auto admission = admit(*run, team);
  ASSERT_TRUE(admission.admitted) << admission.message;
  // The API server and admission take only https and ssh remotes; the pods are planned with the
  // test's remote on its volume instead (the clone and the pr stage read it from repository.json).
  run->repository_url = "file:///remote/shop.git";
  json pod = withoutOperator(planAgentPod(*run, team, admission.effective, o));
  pod["spec"]["hostAliases"] = gateway_alias;
  withRemote(pod["spec"], "workspace", true);
  auto started = client.create(kube::resources::pods, ns->name(), pod);
  ASSERT_TRUE(started.ok()) << started.error().describe();
  auto ended = waitEnded(*started, std::chrono::seconds(420));
  ASSERT_FALSE(ended.is_null()) << "the agent never ended";
  const std::string said = agentLogs("cc-agent");

  // What reached the model: every call on the pinned model with the real key, the checkpoint in
  // the second, and no more than the cap served in all.
  std::vector<gateway::testing::Received> calls;
  for (auto& r : model.received()) {
    EXPECT_EQ(r.header("x-api-key"), model_key) << r.target;
    EXPECT_EQ(r.body.find(token), std::string::npos) << "the run's credential went upstream";
    if (r.target.starts_with("/v1/messages") && r.target.find("count_tokens") == std::string::npos) calls.push_back(r);
  }
  ASSERT_GE(calls.size(), 3u) << said;
  ASSERT_LE(calls.size(), 4u) << "a call past the cap reached the model";
  for (const auto& r : calls) EXPECT_EQ(r.json.value("model", ""), "claude-sonnet-4-5");
  auto lastUser = [](const json& request) {
    const json& last = request["messages"].back();
    return last["content"].is_string() ? last["content"].get<std::string>() : last["content"].dump();
  };
  EXPECT_EQ(lastUser(calls[0].json).find("Paddock budget checkpoint"), std::string::npos);
  EXPECT_NE(lastUser(calls[1].json).find("Paddock budget checkpoint"), std::string::npos);
  int64_t served = 0;
  const std::vector<Turn> script = {write, commit, spend, spend};
  for (size_t i = 0; i < calls.size(); ++i) {
    const Turn& t = script[i];
    int64_t max_tokens = calls[i].json.value("max_tokens", int64_t{0});
    served += (t.input_tokens >= 0 ? t.input_tokens : static_cast<int64_t>(calls[i].body.size() / 4)) +
              (t.spend_all ? max_tokens : std::min(t.output_tokens, max_tokens));
  }
  EXPECT_LE(served, cap) << "tokens served over the run's cap";
  EXPECT_GT(served, cap * 3 / 4) << "the run ended well before its cap";
  EXPECT_NE(said.find("budget is spent"), std::string::npos) << said;
  EXPECT_EQ(said.find(model_key), std::string::npos);
  // The work in progress, committed in the workspace as the checkpoint asked.
  Process wip({"/usr/bin/git", "-c", "safe.directory=*", "-C", dir + "/workspace", "log", "--format=%s", "-1"});
  ASSERT_EQ(wip.wait(std::chrono::seconds(10)), 0);
  EXPECT_EQ(wip.lines().at(0), "WIP: retry three times");

  // The operator's reading of the ended pod (what the agent left in its termination message): the
  // gateway stopped it at its budget, and its work goes on to the pr stage.
  LifecycleInput li;
  li.phase = "Running", li.pod_created = true, li.pod_name = "cc-agent";
  li.trust.verdict = PodJudgement::Verdict::Ours;
  li.pod = observePod(&ended);
  li.gateway = true, li.pr_stage = true;
  auto decision = decideLifecycle(li);
  EXPECT_EQ(decision.phase, "BudgetExceeded") << ended["status"].dump();
  EXPECT_TRUE(decision.hand_off);

  // The run stopped at its budget hands its partial work on, as the operator plans it.
  json clone_status;
  for (const auto& c : ended["status"].value("initContainerStatuses", json::array())) {
    if (c["name"] == "workspace") clone_status = c;
  }
  StagesInput in;
  in.run = &*run;
  in.policy = &team;
  in.plan = o;
  in.now = std::chrono::system_clock::now();
  in.old_stages = json::array({{{"name", "agent"}, {"phase", "BudgetExceeded"}, {"partial", true},
                                {"message", decision.message},
                                {"baseCommit", cloneBaseCommit(clone_status.value(json::json_pointer("/state/terminated/message"), std::string()))}}});
  EXPECT_EQ(in.old_stages[0]["baseCommit"], base) << clone_status.dump();
  AgentApproval approval;
  approval.ns = ns->name(), approval.name = "a1", approval.run = "cc", approval.stage = "pr", approval.username = "lead";
  approval.creation_timestamp = "2026-12-07T10:00:00Z";
  in.approvals = {approval};
  in.rbac_allows = {{"a1", true}};
  auto plan = planStages(in);
  ASSERT_EQ(plan.actions.size(), 1u) << plan.phase << ": " << plan.message;
  json stage = plan.actions[0].pod;
  stage["spec"]["hostAliases"] = gateway_alias;
  withRemote(stage["spec"], "stage", false);
  // The remote is a file:// URL: the forge's API is named (through the gateway, by name).
  for (std::string a : {std::string("--forge-api-url"), "http://forge.test:" + std::to_string(forge.port()), std::string("--forge-repository"), std::string("acme/shop")}) {
    stage["spec"]["containers"][0]["args"].push_back(a);
  }
  auto stage_pod = client.create(kube::resources::pods, ns->name(), stage);
  ASSERT_TRUE(stage_pod.ok()) << stage_pod.error().describe();
  auto done = waitPod(*stage_pod, [](const json& x) {
    auto phase = x.value(json::json_pointer("/status/phase"), std::string());
    return phase == "Succeeded" || phase == "Failed";
  }, std::chrono::seconds(180));
  ASSERT_FALSE(done.is_null());
  std::string report = done.value(json::json_pointer("/status/containerStatuses/0/state/terminated/message"), std::string());
  EXPECT_EQ(done["status"]["phase"], "Succeeded") << report;
  EXPECT_NE(report.find("PullRequestOpened"), std::string::npos) << report;
  auto requests = forge.requests();
  ASSERT_EQ(requests.size(), 1u) << report;
  EXPECT_TRUE(requests[0].problems.empty()) << requests[0].problems.front();
  auto body = json::parse(requests[0].body);
  EXPECT_EQ(body["draft"], true);
  EXPECT_EQ(body["head"], "paddock/cc");
  EXPECT_NE(body["body"].get<std::string>().find("Partial work, opened as a draft"), std::string::npos);
  Process change({"/usr/bin/git", "--git-dir=" + remote, "show", "refs/heads/paddock/cc:retry.py"});
  ASSERT_EQ(change.wait(std::chrono::seconds(10)), 0);
  EXPECT_EQ(change.lines().at(0), "RETRIES = 3  # half done");
}

// paddock-sandbox and the read-only mounts, injected by the operator's plan: whatever the agent
// process tries against the policy's protected paths, the kernel refuses it, while the rest of its
// workspace, its $HOME and /tmp stay writable; TCP connect reaches the policy's port alone. The
// agent is a bash session run as the image's entrypoint (spec.sandbox.command), so every probe is
// the agent process's own descendant, as a real agent's tool call is. Two sessions: literal globs
// (held by read-only mounts of themselves: the repository's root stays writable) and a wildcard
// glob (held by Landlock alone: its matches' folders take no new entries).
TEST_F(NodeE2E, TheSandboxKeepsProtectedPathsAndTcpToThePolicysPortsWhateverTheAgentTries) {
  const std::string host = addresses["host_ip"];
  TcpServer allowed(host), other(host);
  const std::string target = "/dev/tcp/" + host + "/";
  const std::string probe = R"SH(cd /workspace
p() { local name=$1; shift; if out=$("$@" 2>&1); then echo "$name=ok"; else echo "$name=refused:${out##*: }"; fi; }
)SH";
  const std::string literal_script = probe + R"SH(
p write-protected sh -c 'echo evil >> .github/workflows/ci.yml'
p truncate-protected truncate -s 0 CODEOWNERS
p delete-protected rm -f CODEOWNERS
p delete-tree rm -rf .github
p move-aside sh -c 'mv .github gh-aside && mkdir -p .github/workflows && echo evil > .github/workflows/ci.yml'
p rename-away mv .github/workflows/ci.yml src/ci.yml
p rename-over sh -c 'echo evil > src/evil.yml && mv -f src/evil.yml .github/workflows/ci.yml'
p symlink-write sh -c 'ln -s /workspace/.github/workflows/ci.yml src/link && echo evil >> src/link'
p hardlink ln .github/workflows/ci.yml src/hard
p new-workflow sh -c 'echo x > .github/workflows/new.yml'
p managed-settings sh -c 'echo {} > /etc/claude-code/managed-settings.json'
p new-at-root sh -c 'echo x > NEW.md'
p edit-root sh -c 'echo more >> README.md && mv README.md README.tmp && mv README.tmp README.md'
p edit-allowed sh -c 'echo "# fixed" >> src/app.py'
p create-allowed sh -c 'echo new > src/new.py && mkdir -p src/pkg && echo y > src/pkg/mod.py'
p home sh -c 'echo x > "$HOME/x"'
p tmp sh -c 'echo x > /tmp/x'
p tcp-allowed bash -c 'exec 3<>)SH" + target + std::to_string(allowed.port()) + R"SH('
p tcp-other bash -c 'exec 3<>)SH" + target + std::to_string(other.port()) + R"SH('
echo "workflow=$(cat .github/workflows/ci.yml)"
echo "codeowners=$(cat CODEOWNERS)"
grep NoNewPrivs /proc/self/status
)SH";
  const std::string wildcard_script = probe + R"SH(
p write-tf sh -c 'echo evil >> src/infra/main.tf'
p delete-tf rm -f src/infra/main.tf
p rename-tf mv src/infra/main.tf src/main.tf
p symlink-tf sh -c 'ln -s /workspace/src/infra/main.tf docs/link && echo evil >> docs/link'
p hardlink-tf ln src/infra/main.tf docs/hard
p new-at-root sh -c 'echo x > NEW.md'
p edit-root sh -c 'echo more >> README.md'
p create-in-docs sh -c 'echo new > docs/new.md && mkdir -p docs/a/b && echo y > docs/a/b/c.md'
echo "tf=$(cat src/infra/main.tf)"
)SH";
  // The repository as a clone would leave it (the test's own init container, outside the sandbox).
  const std::string seed_script =
      "mkdir -p .github/workflows src/infra docs"
      " && echo 'on: push' > .github/workflows/ci.yml && echo '* @acme/leads' > CODEOWNERS && echo 'print(1)' > src/app.py"
      " && echo 'resource {}' > src/infra/main.tf && echo '# shop' > README.md && echo '# docs' > docs/index.md";

  AgentPolicy base = policy(json::array({{{"cidr", host + "/32"}, {"ports", {allowed.port()}}}}));
  PlanOptions o = nodeOptions();
  // The NetworkPolicy allows both ports, so Landlock (the policy's first port alone) is what
  // refuses the second.
  json np = planNetworkPolicy(ns->name(), base, o);
  np["spec"]["egress"][1]["ports"].push_back({{"protocol", "TCP"}, {"port", other.port()}});
  ASSERT_TRUE(client.create(kube::resources::networkpolicies, ns->name(), np).ok());

  auto session = [&](const std::string& name, const std::vector<std::string>& globs, const std::string& script) {
    AgentPolicy team = base;
    team.protected_paths = globs;
    team.sandbox.command = {"/bin/bash", "-c", script};
    AgentRun run = createRun(name);
    auto admission = admit(run, team);
    EXPECT_TRUE(admission.admitted) << admission.message;
    json pod = withoutOperator(planAgentPod(run, team, admission.effective, o));
    keepInitContainers(pod, {"sandbox"});
    seedWorkspace(pod, seed_script);
    auto started = client.create(kube::resources::pods, ns->name(), pod);
    EXPECT_TRUE(started.ok()) << started.error().describe();
    return started.ok() ? *started : json();
  };
  auto ended = [&](const json& pod) { return waitEnded(pod, std::chrono::seconds(180)); };
  // The session's "probe=answer" lines.
  auto said = [&](const std::string& pod, std::string& all) {
    all = agentLogs(pod);
    std::map<std::string, std::string> out;
    std::istringstream lines(all);
    for (std::string l; std::getline(lines, l);) {
      auto eq = l.find('=');
      if (eq != std::string::npos) out[l.substr(0, eq)] = l.substr(eq + 1);
    }
    return out;
  };
  auto literal_pod = session("held", {".github/workflows/**", "CODEOWNERS"}, literal_script);
  auto wildcard_pod = session("globbed", {"**/*.tf"}, wildcard_script);
  ASSERT_FALSE(literal_pod.is_null());
  ASSERT_FALSE(wildcard_pod.is_null());

  auto literal_end = ended(literal_pod);
  ASSERT_FALSE(literal_end.is_null()) << "the sandboxed session never ended";
  // The operator reads the install's report of the node's kernel for the run's Sandboxed condition.
  auto report = sandboxReport(observePod(&literal_end, "sandbox"), false);
  ASSERT_TRUE(report) << literal_end["status"].dump();
  EXPECT_TRUE(report->landlock) << report->message;
  // The launcher, not the image, is the container's command.
  EXPECT_EQ(literal_end["spec"]["containers"][0]["command"][0], "/paddock/sandbox/paddock-sandbox");
  std::string all;
  auto held = said("held-agent", all);
  EXPECT_EQ(literal_end["status"]["phase"], "Succeeded") << all;
  for (const char* refused : {"write-protected", "truncate-protected", "delete-protected", "delete-tree", "move-aside", "rename-away",
                              "rename-over", "symlink-write", "hardlink", "new-workflow", "managed-settings", "tcp-other"}) {
    EXPECT_EQ(held[refused].rfind("refused:", 0), 0u) << refused << " was allowed:\n" << all;
  }
  EXPECT_NE(held["write-protected"].find("Read-only file system"), std::string::npos) << all;
  // Landlock's TCP refusal is immediate (EACCES), not a NetworkPolicy's timeout.
  EXPECT_NE(held["tcp-other"].find("Permission denied"), std::string::npos) << all;
  for (const char* ok : {"new-at-root", "edit-root", "edit-allowed", "create-allowed", "home", "tmp", "tcp-allowed"}) {
    EXPECT_EQ(held[ok], "ok") << ok << ":\n" << all;
  }
  EXPECT_EQ(held["workflow"], "on: push") << all;
  EXPECT_EQ(held["codeowners"], "* @acme/leads") << all;
  EXPECT_NE(all.find("NoNewPrivs:\t1"), std::string::npos) << all;
  EXPECT_TRUE(eventually([&] { return allowed.accepted() == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(other.accepted(), 0);

  auto wildcard_end = ended(wildcard_pod);
  ASSERT_FALSE(wildcard_end.is_null());
  all.clear();
  auto globbed = said("globbed-agent", all);
  EXPECT_EQ(wildcard_end["status"]["phase"], "Succeeded") << all;
  // The root is an ancestor of a Landlock-held path: its files stay writable, new entries do not.
  for (const char* refused : {"write-tf", "delete-tf", "rename-tf", "symlink-tf", "hardlink-tf", "new-at-root"}) {
    EXPECT_EQ(globbed[refused].rfind("refused:", 0), 0u) << refused << " was allowed:\n" << all;
  }
  EXPECT_NE(globbed["write-tf"].find("Permission denied"), std::string::npos) << "Landlock's EACCES:\n" << all;
  EXPECT_EQ(globbed["edit-root"], "ok") << all;
  EXPECT_EQ(globbed["create-in-docs"], "ok") << all;
  EXPECT_EQ(globbed["tf"], "resource {}") << all;
}

// Issue 18 with the real Claude Code as the agent, under the launcher and the managed settings the
// operator plans: the scripted model asks for a write into a protected folder, a shell write to a
// protected file, a denied tool (Bash(curl:*)), a write of the managed settings and a TCP
// connection past the gateway; Claude Code runs each tool call, the kernel or its own managed
// permissions refuse it, and the model receives the refusal as the tool's result. An allowed write
// lands, and the session goes on to its end.
TEST_F(NodeE2E, ClaudeCodeIsRefusedProtectedPathsDeniedToolsAndOtherPortsAndTheModelHearsWhy) {
  using gateway::testing::Turn;
  const std::string host = addresses["host_ip"];
  TcpServer beyond(host);
  gateway::testing::ModelStandin model;
  ASSERT_TRUE(model.start(1, host));
  const std::string model_key = "sk-ant-model-key-node-e2e-91c0";
  createSecret("model-key", "api-key", model_key);
  // The reference MCP server from npm on the node's veth, reached by the gateway as mcp.test.
  gateway::testing::McpServerProcess mcp(PADDOCK_MCP_SERVER_SH, PADDOCK_LISTEN_HOST_CJS, host,
                                         std::filesystem::temp_directory_path() / ("paddock-node-mcp-" + ns->name()),
                                         {"MCP_SERVER_SECRET=server-side-only-value"});
  ASSERT_TRUE(mcp.ready()) << mcp.log();
  createSecret("mcp-everything", "token", "mcp-scoped-credential-node-e2e");
  const int64_t cap = 400000;
  json p = {{"metadata", {{"name", "team"}}},
            {"spec", {{"namespaceSelector", json::object()},
                      {"images", {{"default", claudeCodeImage()}, {"allowed", {"paddock.local/*"}}}},
                      {"model", {{"pin", "claude-sonnet-4-5"}}},
                      {"tools", {{"allow", {"Write", "Bash"}},
                                 {"deny", {"Bash(curl:*)"}},
                                 {"mcpServers", {{{"name", "everything"},
                                                  {"url", "http://mcp.test:" + std::to_string(mcp.port()) + "/mcp"},
                                                  {"allowTools", {"echo", "get-sum"}},
                                                  {"credential", {{"secretName", "mcp-everything"}, {"key", "token"}}}}}}}},
                      {"protectedPaths", {".github/workflows/**", "CODEOWNERS"}},
                      {"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}},
                      {"egress", {{{"cidr", host + "/32"}, {"ports", {beyond.port()}}}}},
                      {"budgets", {{"default", {{"tokens", cap}, {"costUSD", "50"}, {"wallClock", "30m"}}}}},
                      {"gateway", gatewaySpec("http://model.test:" + std::to_string(model.port()))}}}};
  auto parsed = parseAgentPolicy(p);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const AgentPolicy team = *parsed;
  PlanOptions o = nodeOptions();

  auto run = std::make_optional(createRun("boxed-cc", {{"task", "Tidy the repository."}, {"repository", {{"url", "https://example.com/acme/shop.git"}}}}));
  const std::string token = "paddock-run-credential-" + std::string(40, 'b');
  const std::string sha = issueCredential(*run, team, token);
  const std::string service_ip = startGateway(team, {{"boxed-cc", sha, cap, 5000}}, o, {"model.test", "mcp.test"});
  ASSERT_FALSE(service_ip.empty());
  ASSERT_TRUE(client.create(kube::resources::networkpolicies, ns->name(), planNetworkPolicy(ns->name(), team, o)).ok());

  auto tool = [](const std::string& name, json input) {
    Turn t;
    t.kind = Turn::Kind::ToolUse, t.tool = name, t.input = std::move(input), t.text = "Trying " + name + ".";
    return t;
  };
  const std::string beyond_tcp = "/dev/tcp/" + host + "/" + std::to_string(beyond.port());
  Turn done;
  done.text = "Done.";
  const std::vector<Turn> script = {
      tool("Write", {{"file_path", "/workspace/.github/workflows/evil.yml"}, {"content", "on: push\n"}}),
      tool("Bash", {{"command", "echo '* @evil' >> /workspace/CODEOWNERS"}, {"description", "own the repository"}}),
      tool("Bash", {{"command", "curl -s http://" + host + ":" + std::to_string(beyond.port()) + "/"}, {"description", "fetch"}}),
      tool("Bash", {{"command", "echo '{}' > /etc/claude-code/managed-settings.json"}, {"description", "widen my tools"}}),
      tool("Bash", {{"command", "bash -c 'exec 3<>" + beyond_tcp + "' && echo connected"}, {"description", "reach out"}}),
      // MCP through the gateway: an allowed call, invalid arguments, a tool off the allow-list.
      tool("mcp__everything__echo", {{"message", "hello from the pod"}}),
      tool("mcp__everything__get-sum", {{"a", "one"}, {"b", 2}}),
      tool("mcp__everything__get-env", json::object()),
      // Egress through the gateway's proxy to a host the policy does not allow.
      tool("Bash", {{"command", "git ls-remote https://not-allowed.example/acme/shop.git"}, {"description", "reach another forge"}}),
      tool("Write", {{"file_path", "/workspace/NOTES.md"}, {"content", "tidied\n"}}),
      // The gateway's counts, read from inside the team's network (its /metrics is not served to
      // the host): every refusal above was reported by now.
      tool("Bash", {{"command", "exec 3<>/dev/tcp/paddock-gateway/8080 && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && "
                                "grep '^paddock_gateway_refusals_total' <&3"},
                    {"description", "read the gateway's refusal counts"}}),
      done};
  model.setScript(script);

  auto admission = admit(*run, team);
  ASSERT_TRUE(admission.admitted) << admission.message;
  json pod = withoutOperator(planAgentPod(*run, team, admission.effective, o));
  keepInitContainers(pod, {"gateway-credential", "sandbox"});
  seedWorkspace(pod, "mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml"
                     " && echo '* @acme/leads' > CODEOWNERS && echo '# shop' > README.md");
  pod["spec"]["hostAliases"] = {{{"ip", service_ip}, {"hostnames", {"paddock-gateway"}}}};
  auto started = client.create(kube::resources::pods, ns->name(), pod);
  ASSERT_TRUE(started.ok()) << started.error().describe();
  auto ended = waitEnded(*started, std::chrono::seconds(420));
  ASSERT_FALSE(ended.is_null()) << "the agent never ended";
  const std::string said = agentLogs("boxed-cc-agent");
  EXPECT_EQ(ended["status"]["phase"], "Succeeded") << said;
  EXPECT_NE(said.find("\"sandbox applied\""), std::string::npos) << "the launcher ran first:\n" << said;

  // What the model heard back for each tool call: the tool_result of the call before.
  std::vector<json> calls;
  for (auto& r : model.received()) {
    if (r.target.starts_with("/v1/messages") && r.target.find("count_tokens") == std::string::npos) calls.push_back(r.json);
  }
  ASSERT_EQ(calls.size(), script.size()) << said;
  auto resultOf = [&](size_t turn) {
    json out = {{"is_error", false}, {"text", ""}};
    const json& content = calls.at(turn + 1)["messages"].back()["content"];
    for (const auto& block : content.is_array() ? content : json::array()) {
      if (block.value("type", "") != "tool_result") continue;
      out["is_error"] = block.value("is_error", false);
      out["text"] = block["content"].is_string() ? block["content"].get<std::string>() : block["content"].dump();
    }
    return out;
  };
  struct Expect { size_t turn; bool error; const char* words; };
  for (const Expect& e : {Expect{0, true, "read-only file system"}, Expect{1, true, "Read-only file system"},
                          // Claude Code refuses a write outside its working folders before the
                          // kernel would (the read-only mount; the shell session above proves it).
                          Expect{2, true, "denied"}, Expect{3, true, "managed-settings.json"},
                          Expect{4, true, "Permission denied"},
                          // The gateway passed the allowed call on and the server answered; it
                          // refused the invalid arguments, naming them; the unlisted tool does
                          // not exist for the agent.
                          Expect{5, false, "Echo: hello from the pod"}, Expect{6, true, "/a: must be a number"},
                          Expect{7, true, "get-env"}, Expect{8, true, "403"}, Expect{9, false, ""},
                          Expect{10, false, "paddock_gateway_refusals_total"}}) {
    json r = resultOf(e.turn);
    std::string text = r["text"];
    std::string lower = text;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string words = e.words;
    std::transform(words.begin(), words.end(), words.begin(), [](unsigned char c) { return std::tolower(c); });
    EXPECT_EQ(r["is_error"].get<bool>(), e.error) << "turn " << e.turn << ": " << text;
    EXPECT_NE(lower.find(words), std::string::npos) << "turn " << e.turn << ": " << text;
  }
  EXPECT_EQ(beyond.accepted(), 0) << "a connection past the gateway was made";
  for (const auto& c : calls) EXPECT_EQ(c.dump().find("server-side-only-value"), std::string::npos);

  // What the gateway counted for the run by reason.
  const std::string counts = resultOf(10)["text"];
  auto refused = [&](const std::string& reason) {
    double sum = 0;
    std::istringstream lines(counts);
    for (std::string l; std::getline(lines, l);) {
      if (l.starts_with("paddock_gateway_refusals_total{") && l.find("agentrun=\"boxed-cc\"") != std::string::npos &&
          l.find("reason=\"" + reason + "\"") != std::string::npos) {
        sum += std::stod(l.substr(l.rfind(' ') + 1));
      }
    }
    return sum;
  };
  EXPECT_EQ(refused("mcp_arguments"), 1) << counts;
  EXPECT_GE(refused("tool"), 1) << "Claude Code's deny rule (curl)";
  EXPECT_GE(refused("sandbox"), 3) << "the read-only protected paths and Landlock's connect rule";
  EXPECT_EQ(refused("egress"), 1) << "the other forge, refused at the gateway's proxy as the run's";
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
