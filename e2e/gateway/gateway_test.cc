// paddock-gateway as its own process on loopback, between the real Claude Code CLI (from npm, run
// headless with Paddock's managed settings) and the scripted Messages API stand-in
// (model_standin.h). Claude Code runs in a mount namespace of its own, where its managed settings
// are at /etc/claude-code/managed-settings.json (an overlay on /etc that only it sees) and the
// gateway's secrets folder is an empty tmpfs, as in an agent pod that mounts no key.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <set>
#include <fstream>
#include <sstream>
#include <thread>

#include "e2e/gateway/harness.h"
#include "e2e/gateway/model_standin.h"
#include "operator/audit/store.h"
#include "stage/git.h"

namespace paddock::gateway::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kKey = "sk-ant-api03-PADDOCKREALKEY0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
const std::string kToken = "paddock-run-token-7f3a9c1e5b2d4f60";
const std::string kModel = "claude-sonnet-4-5";

std::string claudeBinary() {
  static const std::string path = [] {
    auto out = stage::runProcess({PADDOCK_CLAUDE_CODE_SH}, {"PATH=/usr/bin:/bin", "HOME=" + std::string(getenv("HOME"))});
    std::string p = out ? out->out : "";
    while (!p.empty() && p.back() == '\n') p.pop_back();
    return p;
  }();
  return path;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("paddock-gateway-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "workspace");
    ASSERT_TRUE(standin_.start());
  }
  void TearDown() override {
    gateway_.reset();
    standin_.stop();
    if (!HasFailure() && !getenv("PADDOCK_KEEP_TEST_DIRS")) fs::remove_all(dir_);
  }

  // Starts the gateway with one run (team-a/run-1) whose budget is `budget` (YAML) and `extra`.
  void startGateway(const std::string& budget, const std::string& extra = "") {
    std::string config = "upstream: " + standin_.url() + "\nmodel: {pin: " + kModel +
                         "}\ncheckpointPercent: 60\nclientWriteTimeoutSeconds: 1\nupstreamTimeoutSeconds: 5\n"
                         "prices:\n  " + kModel + ": {input: \"3\", output: \"15\", cacheRead: \"0.30\", cacheWrite: \"3.75\"}\n"
                         "runs:\n  - {namespace: team-a, name: run-1, tokenSHA256: " + sha256Hex(kToken) +
                         ", budget: " + budget + "}\n" + extra;
    gateway_ = std::make_unique<GatewayProcess>(PADDOCK_GATEWAY_BIN, dir_ / "gateway", kKey, config);
    ASSERT_TRUE(gateway_->ready()) << gateway_->log();
  }

  // Claude Code, headless, on `task` in the workspace; its JSON result.
  // `managed_mcp`: Claude Code's managed MCP configuration, when not null; `allow`: more tool rules.
  json runClaude(const std::string& task, const json& managed_mcp = nullptr, const std::vector<std::string>& allow = {}) {
    std::string bin = claudeBinary();
    EXPECT_FALSE(bin.empty()) << "Claude Code could not be installed (e2e/gateway/claude-code.sh)";
    fs::create_directories(dir_ / "etc-upper/claude-code");
    fs::create_directories(dir_ / "etc-work");
    fs::create_directories(dir_ / "home");
    json rules = {"Write", "Edit", "Bash"};
    for (const auto& a : allow) rules.push_back(a);
    json settings = {{"apiKeyHelper", "echo " + kToken},
                     {"permissions", {{"allow", rules}, {"disableBypassPermissionsMode", "disable"}}},
                     {"env", {{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"}, {"DISABLE_AUTOUPDATER", "1"}}}};
    std::ofstream(dir_ / "etc-upper/claude-code/managed-settings.json") << settings.dump(2);
    if (!managed_mcp.is_null()) std::ofstream(dir_ / "etc-upper/claude-code/managed-mcp.json") << managed_mcp.dump(2);
    std::string script =
        "set -e; mount -t overlay overlay -o lowerdir=/etc,upperdir=" + (dir_ / "etc-upper").string() +
        ",workdir=" + (dir_ / "etc-work").string() + " /etc; mount -t tmpfs tmpfs " +
        (dir_ / "gateway/secrets").string() + "; cd " + (dir_ / "workspace").string() + "; exec " + bin +
        " -p \"$1\" --model " + kModel + " --output-format json";
    auto out = stage::runProcess(
        {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", task},
        {"PATH=/usr/bin:/bin", "HOME=" + (dir_ / "home").string(), "ANTHROPIC_BASE_URL=" + gateway_->url(),
         "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "GIT_AUTHOR_NAME=Agent",
         "GIT_AUTHOR_EMAIL=agent@example.com", "GIT_COMMITTER_NAME=Agent", "GIT_COMMITTER_EMAIL=agent@example.com"});
    EXPECT_TRUE(out.ok());
    if (!out.ok()) return json();
    claude_err_ = out->err;
    json result = json::parse(out->out, nullptr, false);
    EXPECT_FALSE(result.is_discarded()) << "claude printed: " << out->out << "\nstderr: " << out->err;
    return result;
  }

  // The messages calls the stand-in received (count_tokens and others left out).
  std::vector<Received> calls() const {
    std::vector<Received> out;
    for (auto& r : standin_.received()) {
      if (r.target.starts_with("/v1/messages") && r.target.find("count_tokens") == std::string::npos) out.push_back(r);
    }
    return out;
  }

  std::string audit(const std::vector<std::string>& args, const char* program = PADDOCK_AUDIT_BIN) {
    std::vector<std::string> argv = {program};
    argv.insert(argv.end(), args.begin(), args.end());
    // MONGOC_DISABLE_SHM: libmongoc (linked, though the file store is read here) otherwise warns
    // on stderr at load when /dev/shm is short, which is no part of what is compared.
    auto out = stage::runProcess(argv, {"PATH=/usr/bin:/bin", "MONGOC_DISABLE_SHM=1"});
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->out + out->err : "";
  }

  // Everything upstream received, headers and bodies: no run token, always the real key.
  void expectUpstreamSawOnlyTheRealKey() {
    for (const auto& r : standin_.received()) {
      EXPECT_EQ(r.header("x-api-key"), kKey);
      EXPECT_EQ(r.header("authorization"), "");
      for (const auto& [k, v] : r.headers) EXPECT_EQ(v.find(kToken), std::string::npos) << k;
      EXPECT_EQ(r.body.find(kToken), std::string::npos);
    }
  }

  fs::path dir_;
  ModelStandin standin_;
  std::unique_ptr<GatewayProcess> gateway_;
  std::string claude_err_;
};

// Claude Code runs in a mount namespace of its own (its managed settings, no key folder): root only.
bool canRunClaudeCode() { return ::geteuid() == 0; }

Turn tool(const std::string& name, json input, int64_t input_tokens = -1) {
  Turn t;
  t.kind = Turn::Kind::ToolUse;
  t.text = "Using " + name + ".";
  t.tool = name;
  t.input = std::move(input);
  t.input_tokens = input_tokens;
  return t;
}

Turn text(const std::string& s) {
  Turn t;
  t.text = s;
  return t;
}

std::string lastUserText(const json& request) {
  const json& last = request["messages"].back();
  return last["content"].is_string() ? last["content"].get<std::string>() : last["content"].dump();
}

TEST_F(GatewayTest, ClaudeCodeWritesEditsAndRunsCommandsThroughTheGatewayWithoutTheKey) {
  if (!canRunClaudeCode()) GTEST_SKIP() << "needs root for the agent's mount namespace (unshare, overlay on /etc)";
  startGateway("{tokens: 5000000, costUSD: \"50\"}");
  std::string key_file = gateway_->keyFile().string();
  standin_.setScript({
      tool("Write", {{"file_path", (dir_ / "workspace/hello.txt").string()}, {"content", "hello from the agent\n"}}),
      tool("Edit", {{"file_path", (dir_ / "workspace/hello.txt").string()}, {"old_string", "hello"},
                    {"new_string", "goodbye"}}),
      tool("Bash", {{"command", "cat " + key_file + " 2>&1; env | grep -ci sk-ant || true"},
                    {"description", "look for the model key"}}),
      text("All done."),
  });
  json result = runClaude("Write hello.txt, edit it, then look around.");
  EXPECT_EQ(result.value("is_error", true), false) << result.dump() << claude_err_;
  EXPECT_EQ(result.value("result", ""), "All done.");
  std::ifstream f(dir_ / "workspace/hello.txt");
  std::string content((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(content, "goodbye from the agent\n");

  auto got = calls();
  ASSERT_EQ(got.size(), 4u);
  for (const auto& r : got) EXPECT_EQ(r.json.value("model", ""), kModel);
  // The Bash tool's output came back in the next call: the key file was not there to read.
  std::string bash_result = lastUserText(got[3].json);
  EXPECT_NE(bash_result.find("No such file"), std::string::npos) << bash_result;
  expectUpstreamSawOnlyTheRealKey();
  for (const auto& r : got) EXPECT_EQ(r.body.find(kKey), std::string::npos);

  EXPECT_EQ(gateway_->metric("paddock_gateway_requests_total{agentrun=\"run-1\",code=\"200\""), 4);
  EXPECT_EQ(gateway_->metric("paddock_gateway_first_byte_seconds_count{namespace=\"team-a\"}"), 4);
  EXPECT_EQ(gateway_->metric("paddock_gateway_overhead_seconds_count{namespace=\"team-a\"}"), 4);
  // Stopping the gateway writes what is queued for the transcript.
  EXPECT_EQ(gateway_->terminate(), 0);
  EXPECT_EQ(gateway_->log().find(kKey), std::string::npos);

  // The transcript: every call, its tool calls, and a chain (with its blobs) that verifies.
  std::string transcript = audit({"show", "--run", "team-a/run-1", "--transcript", gateway_->auditDir().string()});
  for (const char* want : {"Write", "Edit", "Bash", "All done.", "tool_result"}) {
    EXPECT_NE(transcript.find(want), std::string::npos) << want << "\n" << transcript;
  }
  EXPECT_EQ(transcript.find(kKey), std::string::npos);
  // kubectl paddock transcript prints the same, through paddock-audit beside it.
  EXPECT_EQ(audit({"transcript", "run-1", "-n", "team-a", "--store", gateway_->auditDir().string()}, PADDOCK_PLUGIN_BIN),
            transcript);
  EXPECT_NE(audit({"verify", gateway_->auditDir().string()}).find("blobs verified"), std::string::npos);
  // A changed blob breaks verify, as a changed record does.
  for (const auto& e : fs::recursive_directory_iterator(gateway_->auditDir() / "blobs")) {
    if (!e.is_regular_file()) continue;
    std::ofstream(e.path(), std::ios::app) << "tampered";
    break;
  }
  EXPECT_NE(audit({"verify", gateway_->auditDir().string()}).find("does not hash to its name"), std::string::npos);
}

TEST_F(GatewayTest, CheckpointInstructionArrivesPastSixtyPercentAndTheAgentCommits) {
  if (!canRunClaudeCode()) GTEST_SKIP() << "needs root for the agent's mount namespace (unshare, overlay on /etc)";
  startGateway("{tokens: 400000}");
  ASSERT_EQ(stage::runProcess({"/usr/bin/git", "init", "-q", (dir_ / "workspace").string()}, {"PATH=/usr/bin:/bin"})->exit_code, 0);
  standin_.setScript({
      // Reports a large cached context: the run is past 60 % after this call.
      tool("Write", {{"file_path", (dir_ / "workspace/work.txt").string()}, {"content", "half done\n"}}, 250000),
      tool("Bash", {{"command", "git add -A && git commit -qm 'WIP: half done' && git log --oneline | wc -l"},
                    {"description", "commit work in progress"}}),
      text("Committed my work in progress."),
  });
  json result = runClaude("Do the work.");
  EXPECT_EQ(result.value("is_error", true), false) << result.dump() << claude_err_;
  auto got = calls();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(lastUserText(got[0].json).find("Paddock budget checkpoint"), std::string::npos);
  EXPECT_NE(lastUserText(got[1].json).find("Paddock budget checkpoint"), std::string::npos);
  EXPECT_NE(lastUserText(got[1].json).find("git commit"), std::string::npos);
  auto log = stage::runProcess({"/usr/bin/git", "-C", (dir_ / "workspace").string(), "log", "--format=%s"},
                               {"PATH=/usr/bin:/bin"});
  EXPECT_EQ(log->out, "WIP: half done\n");
}

TEST_F(GatewayTest, CutOffAtTheCapWithZeroTokensOver) {
  if (!canRunClaudeCode()) GTEST_SKIP() << "needs root for the agent's mount namespace (unshare, overlay on /etc)";
  const int64_t cap = 150000;
  startGateway("{tokens: " + std::to_string(cap) + "}");
  Turn spend = tool("Write", {{"file_path", (dir_ / "workspace/a.txt").string()}, {"content", "a\n"}});
  spend.spend_all = true;  // every call produces all the max_tokens it is granted
  standin_.setScript({spend, spend, spend, spend, spend, text("unreachable")});
  json result = runClaude("Spend.");
  EXPECT_EQ(result.value("is_error", false), true) << result.dump();
  EXPECT_NE(result.dump().find("budget is spent"), std::string::npos) << result.dump();
  auto got = calls();
  ASSERT_GE(got.size(), 1u);
  ASSERT_LT(got.size(), 6u);
  int64_t charged = 0;
  for (const auto& r : got) charged += static_cast<int64_t>(r.body.size() / 4) + r.json.value("max_tokens", int64_t{0});
  double spent = gateway_->metric("paddock_gateway_tokens_total{agentrun=\"run-1\"");
  EXPECT_EQ(spent, static_cast<double>(charged));
  EXPECT_LE(spent, static_cast<double>(cap));
  // The series carry the run's name and the first 12 hex digits of its credential's hash.
  EXPECT_GE(gateway_->metric("paddock_gateway_refusals_total{agentrun=\"run-1\",credential=\"" + sha256Hex(kToken).substr(0, 12) +
                             "\",namespace=\"team-a\",reason=\"budget\""),
            1);
  EXPECT_EQ(gateway_->metric("paddock_gateway_overshoot_tokens_total"), 0);
  EXPECT_EQ(gateway_->metric("paddock_gateway_reserved_usd"), 0);
}


// Bad input, straight to the gateway (no Claude Code): each gets an Anthropic-style answer or a
// clean close, and the ledger holds nothing afterwards.

json minimalRequest(const std::string& model = kModel, bool stream = true) {
  return {{"model", model}, {"max_tokens", 1000}, {"stream", stream},
          {"messages", {{{"role", "user"}, {"content", "hello"}}}}};
}

std::vector<std::pair<std::string, std::string>> auth(const std::string& token = kToken) {
  return {{"x-api-key", token}, {"content-type", "application/json"}, {"anthropic-version", "2023-06-01"}};
}

// Sends `raw` and reads until `marker` has arrived (or the connection ends); what was read.
std::string readUntil(int port, const std::string& raw, const std::string& marker) {
  int fd = connectLoopback(port);
  std::string seen;
  if (fd >= 0 && ::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(raw.size())) {
    char buf[4096];
    while (seen.find(marker) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      seen.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return seen;
}

std::string errorType(const HttpReply& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("type", "") : "";
}

TEST_F(GatewayTest, BadRequestsGetAnthropicStyleErrors) {
  startGateway("{tokens: 5000000}", "maxRequestBytes: 65536\n");
  struct Case {
    const char* name;
    std::string body;
    std::string token;
    int status;
    const char* type;
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "{\"model\":", kToken, 400, "invalid_request_error"},
      {"no messages", R"({"model":"claude-sonnet-4-5","max_tokens":5})", kToken, 400, "invalid_request_error"},
      {"oversized", std::string(70000, 'x'), kToken, 413, "request_too_large"},
      {"unknown credential", minimalRequest().dump(), "sk-ant-not-a-run-token", 401, "authentication_error"},
      {"no credential", minimalRequest().dump(), "", 401, "authentication_error"},
      {"another model", minimalRequest("claude-opus-5-5").dump(), kToken, 403, "permission_error"},
  };
  for (const auto& c : cases) {
    HttpReply r = httpRequest(gateway_->port(), "POST", "/v1/messages?beta=true", auth(c.token), c.body);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    EXPECT_EQ(errorType(r), c.type) << c.name << ": " << r.body;
  }
  EXPECT_TRUE(calls().empty());
  // count_tokens is relayed with the real key, and checked like a model call.
  HttpReply count = httpRequest(gateway_->port(), "POST", "/v1/messages/count_tokens", auth(),
                                json{{"model", kModel}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump());
  EXPECT_EQ(count.status, 200) << count.body;
  EXPECT_TRUE(json::parse(count.body, nullptr, false).contains("input_tokens")) << count.body;
  HttpReply other = httpRequest(gateway_->port(), "POST", "/v1/messages/count_tokens", auth(),
                                json{{"model", "claude-opus-5-5"}, {"messages", json::array()}}.dump());
  EXPECT_EQ(errorType(other), "permission_error");
  ASSERT_EQ(standin_.received().size(), 1u);
  expectUpstreamSawOnlyTheRealKey();
  HttpReply unknown = httpRequest(gateway_->port(), "GET", "/v1/files", auth(), "");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(errorType(unknown), "not_found_error");
  EXPECT_EQ(gateway_->metric("paddock_gateway_unauthenticated_total"), 2);
}

TEST_F(GatewayTest, UpstreamErrorsAreRelayedAndNothingIsCharged) {
  startGateway("{tokens: 5000000}");
  Turn e429, e500, e529;
  e429.kind = e500.kind = e529.kind = Turn::Kind::Error;
  e429.status = 429;
  e500.status = 500;
  e529.status = 529;
  standin_.setScript({e429, e500, e529});
  for (auto [status, type] : std::vector<std::pair<int, std::string>>{
           {429, "rate_limit_error"}, {500, "api_error"}, {529, "overloaded_error"}}) {
    HttpReply r = httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), minimalRequest().dump());
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(errorType(r), type);
    if (status == 429) {
      EXPECT_EQ(r.headers["retry-after"], "0");
    }
  }
  EXPECT_EQ(gateway_->metric("paddock_gateway_tokens_total"), 0);
  EXPECT_EQ(gateway_->metric("paddock_gateway_reserved_usd"), 0);
  EXPECT_EQ(gateway_->metric("paddock_gateway_requests_total{agentrun=\"run-1\",code=\"529\""), 1);
}

TEST_F(GatewayTest, AStreamCutUpstreamEndsWithAnErrorEventAndChargesWhatWasReported) {
  startGateway("{tokens: 5000000}");
  Turn cut = text("a long answer that never finishes");
  cut.input_tokens = 700;
  cut.cut_after_events = 4;  // message_start, ping, content_block_start, one delta
  standin_.setScript({cut});
  HttpReply r = httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), minimalRequest().dump());
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("event: message_start"), std::string::npos);
  EXPECT_NE(r.body.find("event: error"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("api_error"), std::string::npos);
  EXPECT_EQ(r.body.find("message_stop"), std::string::npos);
  // message_start reported 700 input tokens and 1 output token; nothing more was produced.
  EXPECT_EQ(gateway_->metric("paddock_gateway_tokens_total{agentrun=\"run-1\""), 701);
  EXPECT_EQ(gateway_->metric("paddock_gateway_reserved_usd"), 0);
}

TEST_F(GatewayTest, ASlowClientIsDroppedAndItsReservationReleased) {
  startGateway("{tokens: 5000000}");
  Turn big = text(std::string(32 << 20, 'z'));  // 32 MiB: more than the socket buffers hold
  big.delta_events = 512;
  big.input_tokens = 10;
  standin_.setScript({big});
  // A client that sends its request and then reads nothing.
  std::string body = minimalRequest().dump();
  SilentClient slow(gateway_->port(), "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + kToken +
                                          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(slow.connected());
  bool released = false;
  for (int i = 0; i < 200 && !released; ++i) {
    released = gateway_->log().find("the agent stopped reading") != std::string::npos;
    if (!released) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(released) << gateway_->log();
  EXPECT_EQ(gateway_->metric("paddock_gateway_reserved_usd"), 0);
  // Only message_start's report was charged: the answer's end never reached the client.
  EXPECT_EQ(gateway_->metric("paddock_gateway_tokens_total{agentrun=\"run-1\""), 11);
}

TEST_F(GatewayTest, ConcurrentCallsOfOneRunNeverOverspendItsBudget) {
  const int64_t cap = 60000;
  startGateway("{tokens: " + std::to_string(cap) + "}");
  Turn all = text("spent");
  all.spend_all = true;
  standin_.setRepeat(all);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0}, refused{0};
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&] {
      json req = minimalRequest();
      req["max_tokens"] = 4000;
      HttpReply r = httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), req.dump());
      (r.status == 200 ? ok : refused)++;
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_LE(gateway_->metric("paddock_gateway_tokens_total{agentrun=\"run-1\""), static_cast<double>(cap));
  EXPECT_EQ(gateway_->metric("paddock_gateway_reserved_usd"), 0);
}

// The ledger survives a restart: it is read back from the transcript's spend totals.
TEST_F(GatewayTest, ARestartKeepsTheRunsSpend) {
  startGateway("{tokens: 20000}");
  Turn all = text("spent");
  all.spend_all = true;
  standin_.setScript({all, all});
  json req = minimalRequest();
  req["max_tokens"] = 100000;  // clamped to what the run has
  EXPECT_EQ(httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), req.dump()).status, 200);
  double spent = gateway_->metric("paddock_gateway_tokens_total{agentrun=\"run-1\"");
  EXPECT_GT(spent, 15000);
  EXPECT_EQ(gateway_->terminate(), 0);
  startGateway("{tokens: 20000}");
  HttpReply again = httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), req.dump());
  EXPECT_EQ(again.status, 402) << again.body;
  EXPECT_EQ(errorType(again), "billing_error");
  EXPECT_EQ(calls().size(), 1u);
}

// Each event reaches the agent when upstream sends it: message_start arrives while the stand-in
// holds the rest of the stream back.
TEST_F(GatewayTest, StreamsAreRelayedUnbuffered) {
  startGateway("{tokens: 5000000}");
  Turn held = text("after the pause");
  held.hold_ms = 1500;
  standin_.setScript({held});
  std::string body = minimalRequest().dump();
  auto start = std::chrono::steady_clock::now();
  std::string raw = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-api-key: " + kToken +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string seen = readUntil(gateway_->port(), raw, "event: message_start");
  auto first_event = std::chrono::steady_clock::now() - start;
  EXPECT_NE(seen.find("event: message_start"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("after the pause"), std::string::npos) << "the rest came later";
  EXPECT_LT(first_event, std::chrono::milliseconds(1000));
}

TEST_F(GatewayTest, StopsGracefullyOnSigterm) {
  startGateway("{tokens: 5000000}");
  Turn slow = text("slowly");
  slow.delta_events = 6;
  slow.event_gap_ms = 100;
  standin_.setScript({slow});
  HttpReply r;
  std::thread call([&] { r = httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), minimalRequest().dump()); });
  // The call is in flight once the stand-in has it.
  for (int i = 0; i < 200 && calls().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(gateway_->terminate(), 0);
  call.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("message_stop"), std::string::npos) << "the call in flight finished";
}

// The operator rewrites the configuration as runs start and finish (a mounted ConfigMap): the
// gateway serves the new runs without a restart, drops the finished ones, lets a call in flight
// finish on the configuration it started with, and keeps the last good one when a file is bad.
TEST_F(GatewayTest, ReloadsItsConfigurationWithoutARestart) {
  const std::string prices = "upstream: " + standin_.url() + "\nmodel: {pin: " + kModel + "}\n"
                             "prices:\n  " + kModel + ": {input: \"3\", output: \"15\", cacheRead: \"0.30\", cacheWrite: \"3.75\"}\n";
  const std::string kToken2 = "paddock-run-token-second-run-0001";
  startGateway("{tokens: 5000000}");
  auto served = [&](const std::string& token) {
    return httpRequest(gateway_->port(), "GET", "/v1/paddock/credential", auth(token), "").status;
  };
  EXPECT_EQ(served(kToken), 204);
  EXPECT_EQ(served(kToken2), 401);
  EXPECT_EQ(served(""), 401);

  // A call of run-1 in flight while run-1 leaves and run-2 arrives.
  Turn slow = text("slowly");
  slow.delta_events = 10;
  slow.event_gap_ms = 100;
  standin_.setScript({slow, text("second run")});
  HttpReply in_flight;
  std::atomic<bool> finished{false};
  std::thread call([&] {
    in_flight = httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), minimalRequest().dump());
    finished = true;
  });
  ASSERT_TRUE([&] {
    for (int i = 0; i < 500; ++i) {
      if (!calls().empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }()) << "the stand-in never got the call";
  gateway_->rewriteConfig(prices + "runs:\n  - {namespace: team-a, name: run-2, tokenSHA256: " + sha256Hex(kToken2) +
                          ", budget: {tokens: 5000000}}\n");
  bool reloaded = false;
  for (int i = 0; i < 300 && !reloaded; ++i) {
    reloaded = served(kToken2) == 204;
    if (!reloaded) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(reloaded) << gateway_->log();
  EXPECT_FALSE(finished) << "the new configuration came while the call (1 s long) was in flight";
  call.join();
  EXPECT_EQ(in_flight.status, 200);
  EXPECT_NE(in_flight.body.find("message_stop"), std::string::npos) << "the call in flight finished";
  EXPECT_EQ(served(kToken), 401) << "a run that left the configuration is not served";
  EXPECT_EQ(httpRequest(gateway_->port(), "POST", "/v1/messages", auth(), minimalRequest().dump()).status, 401);
  EXPECT_EQ(httpRequest(gateway_->port(), "POST", "/v1/messages", auth(kToken2), minimalRequest().dump()).status, 200);
  EXPECT_GT(gateway_->metric("paddock_gateway_tokens_total{agentrun=\"run-2\""), 0);

  // A bad file is logged and ignored: run-2 is still served.
  gateway_->rewriteConfig(prices + "runs:\n  - {namespace: team-a, name: run-3, tokenSHA256: not-a-hash}\n");
  bool told = false;
  for (int i = 0; i < 300 && !told; ++i) {
    told = gateway_->log().find("configuration not reloaded") != std::string::npos;
    if (!told) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(told) << gateway_->log();
  EXPECT_NE(gateway_->log().find("tokenSHA256"), std::string::npos) << "the error names the field";
  EXPECT_EQ(served(kToken2), 204);
}

// The agent pod's init container: paddock-gateway --wait-for-credential exits 0 once the gateway
// serves the run's credential, and 1 with the reason after its timeout.
TEST_F(GatewayTest, TheCredentialWaitEndsWhenTheGatewayServesTheRun) {
  startGateway("{tokens: 5000000}");
  const std::string kToken2 = "paddock-run-token-waiting-run-0002";
  std::ofstream(dir_ / "credential") << kToken2 << "\n";
  std::ofstream(dir_ / "unknown") << "paddock-run-token-never-served\n";
  // Unknown for good: exits 1 after its timeout, saying why.
  auto refused = stage::runProcess({PADDOCK_GATEWAY_BIN, "--wait-for-credential", (dir_ / "unknown").string(),
                                    "--gateway-url", gateway_->url(), "--wait-timeout", "1s"},
                                   {"PATH=/usr/bin:/bin"});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->exit_code, 1);
  EXPECT_NE(refused->err.find("did not serve the run's credential within 1s"), std::string::npos) << refused->err;
  EXPECT_NE(refused->err.find("401"), std::string::npos) << refused->err;
  EXPECT_EQ(refused->err.find("paddock-run-token-never-served"), std::string::npos) << "the token is never printed";
  // Served after a while: the wait ends then.
  Result<stage::ProcessOutput> waited = Error{0, "NotRun", ""};
  std::thread wait([&] {
    waited = stage::runProcess({PADDOCK_GATEWAY_BIN, "--wait-for-credential", (dir_ / "credential").string(),
                                "--gateway-url", gateway_->url(), "--wait-timeout", "30s"},
                               {"PATH=/usr/bin:/bin"});
  });
  gateway_->rewriteConfig("upstream: " + standin_.url() + "\nprices:\n  " + kModel +
                          ": {input: \"3\", output: \"15\", cacheRead: \"0.30\", cacheWrite: \"3.75\"}\n"
                          "runs:\n  - {namespace: team-a, name: run-2, tokenSHA256: " + sha256Hex(kToken2) + "}\n");
  wait.join();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_code, 0) << waited->err;
}

// ---------------------------------------------------------------------------------------------
// MCP through the gateway: the real reference server (@modelcontextprotocol/server-everything from
// npm, e2e/gateway/mcp-server.sh) on loopback behind the gateway, with the real Claude Code as the
// client, and straight requests for what a client would not send.

const std::string kMcpCredential = "mcp-scoped-credential-5d1f0c7e9a";

class McpTest : public GatewayTest {
 protected:
  // The MCP server on a free loopback port, and the gateway with run-1 and the server as
  // "everything", allowing echo and get-sum, its credential in a file of the gateway's.
  void startMcp() {
    mcp_ = std::make_unique<McpServerProcess>(PADDOCK_MCP_SERVER_SH, PADDOCK_LISTEN_HOST_CJS, "127.0.0.1", dir_ / "mcp",
                                              std::vector<std::string>{"MCP_SERVER_SECRET=server-side-only-value"});
    ASSERT_TRUE(mcp_->ready()) << "the MCP server did not start (e2e/gateway/mcp-server.sh installs it):\n" << mcp_->log();
    fs::create_directories(dir_ / "mcp-credential");
    std::ofstream(dir_ / "mcp-credential/everything") << kMcpCredential << "\n";
    startGateway("{tokens: 5000000, costUSD: \"50\"}", mcpConfig("everything", mcp_->url()));
  }
  std::string mcpConfig(const std::string& name, const std::string& url) {
    return "mcpServers:\n  - {name: " + name + ", url: \"" + url + "\", tools: [echo, get-sum], credentialFile: " +
           (dir_ / "mcp-credential/everything").string() + "}\n";
  }
  void TearDown() override {
    GatewayTest::TearDown();
    mcp_.reset();
  }

  // One JSON-RPC message to the gateway's /mcp/everything; the reply and its messages.
  struct McpReply {
    HttpReply http;
    std::vector<json> messages;
    json answer;  // the message with the request's id
  };
  McpReply post(const json& message, const std::string& token = kToken, const std::string& server = "everything") {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"authorization", "Bearer " + token}, {"content-type", "application/json"}, {"accept", "application/json, text/event-stream"}};
    if (!session_.empty()) headers.push_back({"mcp-session-id", session_});
    McpReply r;
    r.http = httpRequest(gateway_->port(), "POST", "/mcp/" + server, headers, message.dump());
    if (r.http.headers.count("mcp-session-id")) session_ = r.http.headers["mcp-session-id"];
    std::string body = r.http.body;
    if (r.http.headers["content-type"].starts_with("text/event-stream")) {
      for (size_t at = body.find("data: "); at != std::string::npos; at = body.find("data: ", at + 6)) {
        json m = json::parse(body.substr(at + 6, body.find('\n', at) - at - 6), nullptr, false);
        if (!m.is_discarded()) r.messages.push_back(m);
      }
    } else {
      json m = json::parse(body, nullptr, false);
      if (!m.is_discarded()) r.messages.push_back(m);
    }
    for (const auto& m : r.messages) {
      if (message.contains("id") && m.value("id", json()) == message["id"]) r.answer = m;
    }
    return r;
  }

  // The gateway's ToolCall records, in order (the gateway is stopped first, so they are written).
  std::vector<json> toolCallRecords() {
    EXPECT_EQ(gateway_->terminate(), 0);
    std::vector<json> out;
    audit::readStore(gateway_->auditDir().string(), [&](const audit::StoredItem& item) {
      if (item.kind == audit::StoredItem::Kind::Record && item.json.value("action", "") == "ToolCall") out.push_back(item.json);
      return true;
    });
    return out;
  }

  std::unique_ptr<McpServerProcess> mcp_;
  std::string session_;
};

json rpc(int id, const std::string& method, json params = json::object()) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

TEST_F(McpTest, ClaudeCodeCallsAnAllowedToolThroughTheGatewayAndTheModelHearsEachRefusal) {
  if (!canRunClaudeCode()) GTEST_SKIP() << "needs root for the agent's mount namespace (unshare, overlay on /etc)";
  ASSERT_NO_FATAL_FAILURE(startMcp());
  // Claude Code's helper prints the run's credential as a header, as the agent pod's does.
  fs::create_directories(dir_ / "agent-credential");
  std::ofstream(dir_ / "agent-credential/mcp-headers") << json{{"Authorization", "Bearer " + kToken}}.dump();
  json managed_mcp = {{"mcpServers",
                       {{"everything", {{"type", "http"}, {"url", gateway_->url() + "/mcp/everything"},
                                        {"headersHelper", "cat " + (dir_ / "agent-credential/mcp-headers").string()}}}}}};
  standin_.setScript({
      tool("mcp__everything__echo", {{"message", "hello through the gateway"}}),
      tool("mcp__everything__get-sum", {{"a", "one"}, {"b", 2}}),
      tool("mcp__everything__get-env", json::object()),
      text("All done."),
  });
  json result = runClaude("Use the everything server's tools.", managed_mcp,
                          {"mcp__everything__echo", "mcp__everything__get-sum", "mcp__everything__get-env"});
  EXPECT_EQ(result.value("is_error", true), false) << result.dump() << claude_err_;
  auto got = calls();
  ASSERT_EQ(got.size(), 4u) << claude_err_;
  // The model was offered the allowed tools only (Claude Code may defer MCP tools behind its tool
  // search: then the names are in the request's text).
  std::string offered = got[0].body;
  EXPECT_NE(offered.find("mcp__everything__echo"), std::string::npos);
  EXPECT_EQ(offered.find("mcp__everything__get-env"), std::string::npos) << "an unlisted tool is not offered";
  // 1: the allowed call reached the server and its answer came back.
  EXPECT_NE(lastUserText(got[1].json).find("Echo: hello through the gateway"), std::string::npos) << lastUserText(got[1].json);
  // 2: invalid arguments stopped at the gateway; the model reads the violation.
  std::string sum = lastUserText(got[2].json);
  EXPECT_NE(sum.find("do not match its input schema"), std::string::npos) << sum;
  EXPECT_NE(sum.find("/a"), std::string::npos) << sum;
  // 3: a tool off the allow-list does not exist for Claude Code; the model hears that.
  std::string env = lastUserText(got[3].json);
  EXPECT_NE(env.find("\"is_error\":true"), std::string::npos) << env;
  EXPECT_EQ(env.find("server-side-only-value"), std::string::npos) << env;
  expectUpstreamSawOnlyTheRealKey();

  EXPECT_EQ(gateway_->metric("paddock_gateway_tool_calls_total{agentrun=\"run-1\",credential=\"" + sha256Hex(kToken).substr(0, 12) +
                             "\",namespace=\"team-a\",server=\"everything\",tool=\"echo\",verdict=\"forwarded\"}"), 1);
  EXPECT_EQ(gateway_->metric("paddock_gateway_refusals_total{agentrun=\"run-1\",credential=\"" + sha256Hex(kToken).substr(0, 12) +
                             "\",namespace=\"team-a\",reason=\"mcp_arguments\"}"), 1);
  auto records = toolCallRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["details"]["tool"], "echo");
  EXPECT_EQ(records[0]["details"]["verdict"], "forwarded");
  EXPECT_EQ(records[0]["details"]["arguments"]["message"], "hello through the gateway");
  EXPECT_EQ(records[0]["details"]["resultSHA256"].get<std::string>().size(), 64u);
  EXPECT_EQ(records[0]["run"]["name"], "run-1");
  EXPECT_EQ(records[1]["details"]["tool"], "get-sum");
  EXPECT_EQ(records[1]["details"]["verdict"], "refused");
  EXPECT_EQ(records[1]["details"]["reason"], "arguments");
  EXPECT_NE(audit({"verify", gateway_->auditDir().string()}).find("OK"), std::string::npos);
}

TEST_F(McpTest, TheGatewayShowsAllowedToolsChecksArgumentsAndAnswersForTheServer) {
  ASSERT_NO_FATAL_FAILURE(startMcp());
  // Not a run's credential, or no such server.
  EXPECT_EQ(post(rpc(0, "initialize"), "not-a-run-token").http.status, 401);
  EXPECT_EQ(post(rpc(0, "initialize"), kToken, "github").http.status, 404);
  EXPECT_EQ(post(json::array({rpc(0, "ping")})).http.status, 400) << "one message per POST";

  McpReply init = post(rpc(0, "initialize", {{"protocolVersion", "2025-06-18"},
                                             {"capabilities", {{"roots", {{"listChanged", true}}}, {"sampling", json::object()},
                                                               {"elicitation", json::object()}}},
                                             {"clientInfo", {{"name", "paddock-test"}, {"version", "1"}}}}));
  ASSERT_EQ(init.http.status, 200) << init.http.body;
  ASSERT_FALSE(session_.empty()) << "the server's session passes through";
  EXPECT_EQ(init.answer["result"]["capabilities"], json({{"tools", init.answer["result"]["capabilities"]["tools"]}}))
      << "only the tools capability is shown: " << init.answer.dump();
  EXPECT_EQ(post({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}).http.status, 202);

  // A call before any listing: the gateway lists the tools itself for the schema.
  McpReply sum = post(rpc(1, "tools/call", {{"name", "get-sum"}, {"arguments", {{"a", 2}, {"b", 3}}}}));
  ASSERT_EQ(sum.http.status, 200) << sum.http.body;
  EXPECT_NE(sum.answer.dump().find("5"), std::string::npos) << sum.answer.dump();
  EXPECT_FALSE(sum.answer["result"].value("isError", false));

  McpReply list = post(rpc(2, "tools/list"));
  std::vector<std::string> names;
  for (const auto& t : list.answer["result"]["tools"]) names.push_back(t["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "get-sum"})) << list.http.body;

  McpReply env = post(rpc(3, "tools/call", {{"name", "get-env"}, {"arguments", json::object()}}));
  EXPECT_EQ(env.answer["result"]["isError"], true);
  EXPECT_EQ(env.answer["result"]["_meta"]["dev.paddock/refusal"]["reason"], "tool");
  EXPECT_EQ(env.http.body.find("server-side-only-value"), std::string::npos);

  McpReply bad = post(rpc(4, "tools/call", {{"name", "get-sum"}, {"arguments", {{"a", "one"}}}}));
  EXPECT_EQ(bad.answer["result"]["isError"], true);
  json violations = bad.answer["result"]["_meta"]["dev.paddock/refusal"]["violations"];
  ASSERT_EQ(violations.size(), 2u) << bad.answer.dump();
  std::set<std::string> paths = {violations[0]["path"], violations[1]["path"]};
  EXPECT_EQ(paths, (std::set<std::string>{"/a", ""})) << violations.dump() << ": /a is a string, b is missing";

  McpReply resources = post(rpc(5, "resources/list"));
  EXPECT_EQ(resources.answer["error"]["code"], -32601);
  EXPECT_EQ(httpRequest(gateway_->port(), "GET", "/mcp/everything",
                        {{"authorization", "Bearer " + kToken}, {"accept", "text/event-stream"}, {"mcp-session-id", session_}}, "")
                .status,
            405)
      << "no server-initiated stream through the gateway";
  EXPECT_EQ(httpRequest(gateway_->port(), "DELETE", "/mcp/everything", {{"authorization", "Bearer " + kToken}, {"mcp-session-id", session_}}, "")
                .status,
            200);

  EXPECT_EQ(gateway_->metric("paddock_gateway_tool_calls_total{agentrun=\"run-1\""), 3);
  EXPECT_EQ(gateway_->metric("paddock_gateway_refusals_total{agentrun=\"run-1\""), 4) << "tool, arguments, method, and the batch";
  auto records = toolCallRecords();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["details"]["verdict"], "forwarded");
  EXPECT_EQ(records[0]["details"]["status"], 200);
  EXPECT_EQ(records[1]["details"]["reason"], "tool");
  EXPECT_EQ(records[2]["details"]["reason"], "arguments");
}

TEST_F(McpTest, TheServerGetsItsCredentialFromTheGatewayAndNeverTheRunsOwn) {
  // The stand-in records every request: here it is the "MCP server" whose headers are looked at.
  fs::create_directories(dir_ / "mcp-credential");
  std::ofstream(dir_ / "mcp-credential/everything") << kMcpCredential << "\n";
  ASSERT_NO_FATAL_FAILURE(startGateway("{tokens: 5000000}", mcpConfig("recorder", standin_.url() + "/mcp")));
  post(rpc(0, "initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}}), kToken, "recorder");
  auto got = standin_.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/mcp");
  EXPECT_EQ(got[0].header("authorization"), "Bearer " + kMcpCredential);
  for (const auto& [k, v] : got[0].headers) EXPECT_EQ(v.find(kToken), std::string::npos) << k;
  EXPECT_EQ(got[0].body.find(kToken), std::string::npos);
  // A credential that cannot be read: the call fails at the gateway, saying why.
  fs::remove(dir_ / "mcp-credential/everything");
  McpReply r = post(rpc(1, "ping"), kToken, "recorder");
  EXPECT_EQ(r.http.status, 502);
  EXPECT_NE(r.http.body.find("cannot read the credential"), std::string::npos) << r.http.body;
  EXPECT_EQ(standin_.received().size(), 1u);
}

}  // namespace
}  // namespace paddock::gateway::testing
