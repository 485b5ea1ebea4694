#include "operator/plugin/output.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace paddock::plugin {
namespace {

using nlohmann::json;

// YAML back to JSON, to check toYaml loses nothing (scalars come back as strings).
json back(const YAML::Node& n) {
  if (n.IsMap()) {
    json o = json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = back(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& item : n) a.push_back(back(item));
    return a;
  }
  if (n.IsNull()) return nullptr;
  return n.as<std::string>();
}

TEST(PluginOutput, YamlKeepsStringsThatLookLikeOtherTypesAsStrings) {
  json run = {{"metadata", {{"name", "fix"}, {"labels", {{"on", "yes"}, {"n", "007"}}}}},
              {"spec", {{"task", "line one\nline two: with a colon"}, {"cancel", true}, {"stages", {"pr"}}, {"empty", ""}}},
              {"status", {{"usage", {{"tokens", 812345}}}, {"nothing", nullptr}}}};
  std::string text = toYaml(run);
  YAML::Node parsed = YAML::Load(text);
  EXPECT_EQ(parsed["metadata"]["labels"]["on"].Tag(), "!") << "quoted: a string, not a bool\n" << text;
  EXPECT_EQ(parsed["metadata"]["labels"]["n"].Tag(), "!") << text;
  EXPECT_EQ(parsed["spec"]["cancel"].Tag(), "?") << "a real bool stays plain\n" << text;
  EXPECT_EQ(back(parsed)["spec"]["task"], "line one\nline two: with a colon");
  EXPECT_EQ(back(parsed)["spec"]["empty"], "");
  EXPECT_EQ(back(parsed)["status"]["usage"]["tokens"], "812345");
  EXPECT_TRUE(back(parsed)["status"]["nothing"].is_null());
}

TEST(PluginOutput, TableShowsPriorityZeroColumnsAndTheNamespaceWhenAsked) {
  json table = json::parse(R"({
    "kind": "Table", "apiVersion": "meta.k8s.io/v1",
    "columnDefinitions": [{"name": "Name", "priority": 0}, {"name": "Phase", "priority": 0},
                          {"name": "Message", "priority": 1}, {"name": "Age", "priority": 0}],
    "rows": [{"cells": ["fix", "Running", "the agent is working", "3m"],
              "object": {"metadata": {"name": "fix", "namespace": "payments"}}},
             {"cells": ["ship", "Succeeded", "", "1h"], "object": {"metadata": {"name": "ship", "namespace": "web"}}}]})");
  EXPECT_EQ(renderTable(table, false), "NAME  PHASE      AGE\nfix   Running    3m\nship  Succeeded  1h\n");
  EXPECT_EQ(renderTable(table, true),
            "NAMESPACE  NAME  PHASE      AGE\npayments   fix   Running    3m\nweb        ship  Succeeded  1h\n");
  table["rows"] = json::array();
  EXPECT_EQ(renderTable(table, false), "No AgentRuns found.\n");
}

TEST(PluginOutput, WatchLinesAndExitCodes) {
  json run = {{"status", {{"phase", "Running"},
                          {"conditions", {{{"type", "Admitted"}, {"status", "True"}, {"reason", "Admitted"}, {"message", "ok"}},
                                          {{"type", "Running"}, {"status", "True"}, {"reason", "AgentRunning"},
                                           {"message", "the agent is working"}}}}}}};
  EXPECT_EQ(phaseLine(run), "Running (AgentRunning): the agent is working");
  int code = -1;
  EXPECT_FALSE(finished(run, code));
  run["status"]["phase"] = "Succeeded";
  run["status"]["conditions"].push_back({{"type", "Succeeded"}, {"status", "True"}, {"reason", "AgentSucceeded"}, {"message", "done"}});
  EXPECT_EQ(phaseLine(run), "Succeeded (AgentSucceeded): done");
  ASSERT_TRUE(finished(run, code));
  EXPECT_EQ(code, 0);
  run["status"]["phase"] = "BudgetExceeded";
  ASSERT_TRUE(finished(run, code));
  EXPECT_EQ(code, 3);
  EXPECT_EQ(phaseLine(json::object()), "(not yet reconciled)");
}

TEST(PluginOutput, CompletesCommandsFlagsValuesAndRuns) {
  auto c = complete({""});
  EXPECT_EQ(c.candidates.size(), 9u);
  EXPECT_FALSE(c.wants_runs);
  EXPECT_EQ(completionOutput(c.candidates, "st"), "status\n:4\n");
  c = complete({"-n", "payments", "status", ""});
  EXPECT_TRUE(c.wants_runs);
  EXPECT_EQ(c.ns, "payments");
  c = complete({"status", "fix", ""});
  EXPECT_FALSE(c.wants_runs) << "status takes one run";
  c = complete({"approve", "fix", "--"});
  EXPECT_NE(std::find(c.candidates.begin(), c.candidates.end(), "--stage"), c.candidates.end());
  c = complete({"approve", "fix", "--stage", ""});
  EXPECT_EQ(c.candidates, (std::vector<std::string>{"pr", "deploy", "promote"}));
  c = complete({"list", "-o", ""});
  EXPECT_EQ(c.candidates, (std::vector<std::string>{"json", "yaml"}));
  c = complete({"completion", ""});
  EXPECT_EQ(c.candidates, (std::vector<std::string>{"bash", "zsh", "kubectl"}));
  c = complete({"list", ""});
  EXPECT_FALSE(c.wants_runs);
  EXPECT_TRUE(c.candidates.empty());
  for (const char* shell : {"bash", "zsh", "kubectl"}) {
    EXPECT_NE(completionScript(shell).find("kubectl-paddock __complete"), std::string::npos) << shell;
  }
}

}  // namespace
}  // namespace paddock::plugin
