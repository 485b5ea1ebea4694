// The Grafana dashboard (charts/paddock/dashboards/paddock.json) against real data: the e2e
// Prometheus scrapes the operator's /metrics while a run is checkpointed and then stopped for its
// budget by a paddock-agent-sim spending tokens, and every panel's every query must return series
// over that time. Then render-png.sh draws the main panels from the same queries.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "e2e/tests/agent_host.h"
#include "e2e/tests/support.h"
#include "operator/http/client.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {

using kube::resources::agentruns;

// Series a range query returns (`data.result` of /api/v1/query_range).
json prometheusRange(const std::string& promql, int64_t start, int64_t end) {
  auto client = http::makeClient(env("PADDOCK_E2E_PROMETHEUS_URL"), {});
  if (!client) throw std::runtime_error(client.error().describe());
  http::Request req{http::Method::Get, "/api/v1/query_range?query=" + http::urlEncode(promql) + "&start=" +
                                           std::to_string(start) + "&end=" + std::to_string(end) + "&step=1"};
  req.timeout = std::chrono::seconds(10);
  auto resp = (*client)->send(req);
  if (!resp) throw std::runtime_error(resp.error().describe());
  auto body = json::parse(resp->body, nullptr, false);
  if (resp->status != 200 || !body.is_object()) throw std::runtime_error("HTTP " + std::to_string(resp->status) + " " + resp->body);
  return body["data"]["result"];
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

TEST(DashboardE2E, EveryPanelShowsDataOfARunStoppedForItsBudget) {
  auto rest = adminClient();
  kube::Client client(*rest, {.qps = 0});
  const std::string team = "dash-" + randomSuffix();
  TempNamespace ns(*rest, "dash", json{{"paddock.dev/team", team}});
  json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
  policy["metadata"] = {{"name", team}};
  policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
  ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", policy).ok());
  const std::string audit_dir = testing::TempDir() + "dash-audit-" + randomSuffix();
  const auto start = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  Process op({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "--listen-address", "127.0.0.1:0",
              "--leader-election-namespace", ns.name(), "--prometheus-url", env("PADDOCK_E2E_PROMETHEUS_URL"),
              "--budget-interval", "1s", "--usage-write-interval", "1s", "--audit-store", audit_dir});
  auto serving = op.waitForLine([](const std::string& l) { return l.find("serving /healthz") != std::string::npos; },
                                std::chrono::seconds(20));
  ASSERT_FALSE(serving.empty()) << testing::PrintToString(op.lines());
  int port = json::parse(serving, nullptr, false).value("port", 0);
  ASSERT_GT(port, 0) << serving;
  ASSERT_TRUE(reconciling(op)) << testing::PrintToString(op.lines());
  // The operator as a scrape target of the e2e Prometheus.
  const std::string target = env("PADDOCK_E2E_PROMETHEUS_TARGETS") + "/operator/" + team + ".json";
  {
    std::ofstream(target + ".tmp") << json::array({{{"targets", {"127.0.0.1:" + std::to_string(port)}}}}).dump();
  }
  std::filesystem::rename(target + ".tmp", target);

  // 500 tokens a second against 6000: checkpoint near 7 s, stopped near 12 s.
  AgentHost agent({.agentrun = "dash", .ns = ns.name(), .tokens_per_second = 500, .usd_per_second = 0.0001});
  json run = loadYaml(repoPath("crds/samples/run.yaml"));
  run["metadata"] = {{"name", "dash"}};
  run["spec"]["idempotencyKey"] = "dash";
  run["spec"]["budget"]["tokens"] = 6000;
  auto created = client.create(agentruns, ns.name(), run);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto stopped = watchUntil(*rest, agentruns.path(ns.name()) + "?fieldSelector=metadata.name%3Ddash",
                            (*created)["metadata"]["resourceVersion"],
                            [](const std::string&, const json& o) { return phaseOf(o) == "BudgetExceeded"; },
                            std::chrono::seconds(90));
  ASSERT_FALSE(stopped.is_null()) << testing::PrintToString(op.lines());

  // Every query of every panel, over the test's time, as the dashboard would show it.
  json dashboard = json::parse(std::ifstream(repoPath("charts/paddock/dashboards/paddock.json")));
  std::vector<std::string> empty;
  ASSERT_TRUE(eventually([&] {
    empty.clear();
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (const auto& panel : dashboard["panels"]) {
      for (const auto& t : panel["targets"]) {
        std::string expr = replaceAll(t["expr"], "$namespace", ns.name());
        if (prometheusRange(expr, start, now).empty()) empty.push_back(panel["title"].get<std::string>() + ": " + expr);
      }
    }
    return empty.empty();
  }, std::chrono::seconds(60), std::chrono::seconds(2))) << "panels without data:\n" << testing::PrintToString(empty);

  // The main panels as a PNG, from the same queries.
  const auto end = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const char* keep = std::getenv("PADDOCK_DASHBOARD_PNG");
  const std::string png = keep ? keep : testing::TempDir() + "paddock-dashboard-" + randomSuffix() + ".png";
  Process render({repoPath("charts/paddock/dashboards/render-png.sh"), env("PADDOCK_E2E_PROMETHEUS_URL"),
                  std::to_string(start), std::to_string(end), png});
  ASSERT_EQ(render.wait(std::chrono::seconds(60)), 0) << testing::PrintToString(render.lines());
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG") << png;
  if (!keep) std::filesystem::remove(png);

  std::filesystem::remove(target);
  op.signal(SIGTERM);
  EXPECT_EQ(op.wait(std::chrono::seconds(20)), 0);
  client.remove(kube::resources::agentpolicies, "", team).ok();
  std::filesystem::remove_all(audit_dir);
}

}  // namespace
}  // namespace paddock::e2e
