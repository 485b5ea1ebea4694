#include "e2e/tests/agent_host.h"

#include <signal.h>
#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "images/agent-sim/downward.h"
#include "operator/http/client.h"

namespace paddock::e2e {
namespace fs = std::filesystem;

namespace {

std::string number(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

AgentHost::AgentHost(Options options) : options_(std::move(options)) {
  if (options_.targets_dir.empty()) options_.targets_dir = env("PADDOCK_E2E_PROMETHEUS_TARGETS");
  std::string pattern = (fs::temp_directory_path() / ("paddock-agent-" + options_.ns + "-" + options_.agentrun + "-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a directory like " + pattern);
  dir_ = pattern;
  fs::create_directories(controlDir());
  fs::create_directories(workspace());

  std::vector<std::string> argv = {env("PADDOCK_AGENT_SIM_BIN"),
                                   "--listen=127.0.0.1:0",
                                   "--agentrun=" + (options_.claims_run.empty() ? options_.agentrun : options_.claims_run),
                                   "--namespace=" + options_.ns,
                                   "--tokens-per-second=" + number(options_.tokens_per_second),
                                   "--usd-per-second=" + number(options_.usd_per_second),
                                   "--reset-after=" + number(options_.reset_after),
                                   "--duration=" + number(options_.duration),
                                   "--exit-code=" + std::to_string(options_.exit_code),
                                   "--control-dir=" + controlDir(),
                                   "--workspace=" + workspace(),
                                   "--poll-interval=100ms"};
  if (!options_.model.empty()) argv.push_back("--model=" + options_.model);
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = std::make_unique<Process>(argv);
  std::string line = process_->waitForLine(
      [](const std::string& l) { return l.find("\"msg\":\"serving metrics\"") != std::string::npos; },
      std::chrono::seconds(10));
  auto parsed = json::parse(line, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("address")) {
    std::string out;
    for (const auto& l : process_->lines()) out += l + "\n";
    throw std::runtime_error("paddock-agent-sim for " + options_.ns + "/" + options_.agentrun +
                             " did not serve metrics:\n" + out);
  }
  address_ = parsed["address"].get<std::string>();
}

void AgentHost::registerPod(const json& pod) {
  // What Kubernetes service discovery (role pod) knows of the pod's metrics port; the scrape
  // job's relabelling turns it into the namespace, pod, pod_uid and agentrun target labels.
  const json& meta = pod.value("metadata", json::object());
  json labels = {{"__meta_kubernetes_namespace", meta.value("namespace", "")},
                 {"__meta_kubernetes_pod_name", meta.value("name", "")},
                 {"__meta_kubernetes_pod_uid", meta.value("uid", "")},
                 {"__meta_kubernetes_pod_container_port_name", "metrics"}};
  const json pod_labels = meta.value("labels", json::object());
  for (const auto& [k, v] : pod_labels.items()) {
    std::string name = "__meta_kubernetes_pod_label_";
    for (char c : k) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (v.is_string()) labels[name] = v;
  }
  // One file per agent, written whole and renamed in, so Prometheus never reads half of it.
  fs::create_directories(options_.targets_dir);
  target_file_ = options_.targets_dir + "/" + options_.ns + "_" + options_.agentrun + ".json";
  json targets = json::array({{{"targets", {address_}}, {"labels", labels}}});
  std::string tmp = target_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << targets.dump() << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, target_file_);
}

json standInPod(const std::string& ns, const std::string& run) {
  return {{"metadata",
           {{"name", run + "-agent"}, {"namespace", ns}, {"uid", "stand-in-" + randomSuffix()},
            {"labels", {{"paddock.dev/run", run}, {"paddock.dev/stage", "agent"}, {"app.kubernetes.io/managed-by", "paddock"}}}}}};
}

AgentHost::~AgentHost() {
  unregister();
  process_.reset();  // kills it if it still runs
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void AgentHost::projectAnnotations(const json& annotations) {
  std::map<std::string, std::string> entries;
  if (annotations.is_object()) {
    for (const auto& [key, value] : annotations.items()) entries[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  auto st = agentsim::projectFiles(controlDir(), {{"annotations", agentsim::formatDownwardMap(entries)}});
  if (!st) throw std::runtime_error(st.error().describe());
}

void AgentHost::terminate() {
  std::call_once(terminated_, [&] { process_->signal(SIGTERM); });
}

int AgentHost::wait(std::chrono::seconds timeout) { return process_->wait(timeout); }

void AgentHost::unregister() {
  if (target_file_.empty()) return;
  std::error_code ec;
  fs::remove(target_file_, ec);
  target_file_.clear();
}

json AgentHost::workspaceFile(const std::string& name) const {
  std::ifstream in(fs::path(workspace()) / name);
  if (!in) return nullptr;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

json prometheusQuery(const std::string& promql) {
  std::string url = env("PADDOCK_E2E_PROMETHEUS_URL");
  auto client = http::makeClient(url, {});
  if (!client) throw std::runtime_error("Prometheus client for " + url + ": " + client.error().describe());
  http::Request req{http::Method::Get, "/api/v1/query?query=" + http::urlEncode(promql)};
  req.timeout = std::chrono::seconds(5);
  auto resp = (*client)->send(req);
  if (!resp) throw std::runtime_error("query " + promql + ": " + resp.error().describe());
  auto body = json::parse(resp->body, nullptr, false);
  if (resp->status != 200 || !body.is_object() || body.value("status", "") != "success") {
    throw std::runtime_error("query " + promql + ": HTTP " + std::to_string(resp->status) + " " + resp->body);
  }
  return body["data"]["result"];
}

std::optional<double> prometheusValue(const std::string& promql) {
  json result = prometheusQuery(promql);
  if (!result.is_array() || result.empty()) return std::nullopt;
  const json& value = result[0]["value"];  // [time, "text"]
  if (!value.is_array() || value.size() != 2 || !value[1].is_string()) return std::nullopt;
  return std::stod(value[1].get<std::string>());
}

}  // namespace paddock::e2e
