// paddock-operator as a process against the real API server: flags, connection over TLS with
// a client certificate, JSON logs, health endpoints and graceful SIGTERM.
#include <gtest/gtest.h>

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
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    auto r = (*http)->send({http::Method::Get, path});
    ASSERT_TRUE(r.ok()) << path << ": " << r.error().describe();
    EXPECT_EQ(r->status, 200) << path;
  }

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
