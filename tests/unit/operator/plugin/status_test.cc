#include "operator/plugin/status.h"

#include <gtest/gtest.h>

namespace paddock::plugin {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

system_clock::time_point at(const char* stamp) {
  std::tm tm{};
  strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  return system_clock::from_time_t(timegm(&tm));
}

// An AgentRun waiting for its pr stage: the shape run_reconciler.cc writes.
const json kRun = json::parse(R"({
  "apiVersion": "paddock.dev/v1alpha1", "kind": "AgentRun",
  "metadata": {"name": "ship", "namespace": "payments"},
  "spec": {"task": "Fix the flaky refund test.", "requestedBy": "alice",
           "budget": {"tokens": 1500000, "costUSD": "6", "wallClock": "45m"}, "stages": ["pr"]},
  "status": {
    "phase": "AwaitingApproval", "currentStage": "pr", "policy": "default",
    "startTime": "2026-11-23T10:00:00Z",
    "usage": {"tokens": 812345, "costUSD": "3.1200", "wallClockSeconds": 60, "observedAt": "2026-11-23T10:01:00Z"},
    "conditions": [
      {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "admitted by policy default"},
      {"type": "BudgetMetricsAvailable", "status": "False", "reason": "NoPrometheus", "message": "no --prometheus-url"},
      {"type": "AwaitingApproval", "status": "True", "reason": "AwaitingApproval", "message": "0 of 1 approvals"}
    ],
    "stages": [
      {"name": "agent", "phase": "Succeeded", "pod": "ship-agent", "message": "the agent exited 0"},
      {"name": "pr", "phase": "AwaitingApproval", "message": "0 of 1 approvals",
       "approvals": [
         {"name": "alice-pr", "approver": "alice", "decision": "Approve", "counted": false, "authorized": true,
          "reason": "the requester cannot approve their own run"},
         {"name": "ship-pr-bob-x7k2q", "approver": "bob", "decision": "Approve", "counted": true, "authorized": true}
       ]}
    ],
    "audit": {"sequence": 1834, "head": "sha256:abc"}
  }
})");

json event(const std::string& reason, const std::string& time, const std::string& note, int count = 0) {
  json e = {{"type", "Normal"}, {"reason", reason}, {"eventTime", time}, {"note", note},
            {"regarding", {{"kind", "AgentRun"}, {"name", "ship"}}}};
  if (count) e["series"] = {{"count", count}, {"lastObservedTime", time}};
  return e;
}

// The line of `text` that starts (after indentation) with `head`, or "".
std::string line(const std::string& text, const std::string& head) {
  size_t at = text.find("\n  " + head);
  if (at == std::string::npos) return "";
  size_t end = text.find('\n', at + 1);
  return text.substr(at + 1, end - at - 1);
}

TEST(PluginStatus, RendersPhaseUsageStagesApprovalsConditionsAndEvents) {
  std::vector<json> events = {event("ApprovalCounted", "2026-11-23T10:20:00.000000Z", "AgentApproval ship-pr-bob-x7k2q counted"),
                              event("Running", "2026-11-23T10:00:05.000000Z", "agent pod started", 3)};
  std::string out = renderStatus(kRun, events, at("2026-11-23T10:30:00"));
  SCOPED_TRACE(out);
  EXPECT_EQ(out.rfind("AgentRun payments/ship\n", 0), 0u);
  EXPECT_NE(line(out, "Phase:").find("AwaitingApproval (stage pr)"), std::string::npos);
  EXPECT_NE(line(out, "Requested by:").find("alice"), std::string::npos);
  EXPECT_NE(line(out, "Audit:").find("sequence 1834, head sha256:abc"), std::string::npos);
  // Usage against spec.budget; the wall clock from startTime to now, not the stale usage figure.
  EXPECT_EQ(line(out, "tokens"), "  tokens      812345  1500000  54%");
  EXPECT_EQ(line(out, "cost"), "  cost        $3.12   $6.00    52%");
  EXPECT_EQ(line(out, "wall clock"), "  wall clock  30m     45m      66%");
  EXPECT_NE(line(out, "agent").find("Succeeded"), std::string::npos);
  EXPECT_NE(line(out, "agent").find("ship-agent"), std::string::npos);
  // Approvals: who, counted or why not.
  size_t approvals = out.find("Approvals:");
  ASSERT_NE(approvals, std::string::npos);
  std::string rest = out.substr(approvals);
  EXPECT_NE(line(rest, "pr     alice").find("no       the requester cannot approve their own run  alice-pr"), std::string::npos);
  EXPECT_NE(line(rest, "pr     bob").find("yes"), std::string::npos);
  // Conditions: False or out of the ordinary; Admitted=True is left out.
  EXPECT_NE(out.find("BudgetMetricsAvailable  False"), std::string::npos);
  EXPECT_NE(out.find("AwaitingApproval        True"), std::string::npos);
  EXPECT_EQ(out.find("Admitted "), std::string::npos);
  // Events, oldest first, with their series count.
  size_t running = out.find("agent pod started"), counted = out.find("AgentApproval ship-pr-bob-x7k2q counted");
  ASSERT_NE(running, std::string::npos);
  ASSERT_NE(counted, std::string::npos);
  EXPECT_LT(running, counted);
  EXPECT_NE(line(out, "29m ago").find("Running          3"), std::string::npos);
  EXPECT_NE(line(out, "10m ago").find("ApprovalCounted  1"), std::string::npos);
}

TEST(PluginStatus, ShowsWhatWasRefusedByReasonAndWhoRefusedIt) {
  std::string out = renderStatus(kRun, {}, at("2026-11-23T10:30:00"));
  EXPECT_NE(out.find("Refusals:\n  (none)"), std::string::npos) << out;
  json run = kRun;
  run["status"]["usage"]["refusals"] = {{"mcp_arguments", 2}, {"sandbox", 3}, {"tool", 1}, {"budget", 1}};
  out = renderStatus(run, {}, at("2026-11-23T10:30:00"));
  SCOPED_TRACE(out);
  EXPECT_EQ(line(out, "REFUSED"), "  REFUSED        COUNT  BY");
  EXPECT_EQ(line(out, "mcp_arguments"), "  mcp_arguments  2      gateway (MCP)");
  EXPECT_EQ(line(out, "sandbox"), "  sandbox        3      the kernel (Landlock, read-only paths)");
  EXPECT_EQ(line(out, "tool "), "  tool           1      Claude Code's permission rules");
  EXPECT_EQ(line(out, "budget"), "  budget         1      gateway (model call)");
}

TEST(PluginStatus, KeepsOnlyTheLatestEventsAndCopesWithAFreshRun) {
  std::vector<json> events;
  for (int i = 0; i < 15; ++i) {
    events.push_back(event("E" + std::to_string(i), "2026-11-23T10:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) + "Z", "n"));
  }
  std::string out = renderStatus(kRun, events, at("2026-11-23T10:30:00"), 10);
  EXPECT_NE(out.find("Events (latest 10 of 15):"), std::string::npos) << out;
  EXPECT_EQ(out.find(" E4 "), std::string::npos) << out;
  EXPECT_NE(out.find(" E5 "), std::string::npos) << out;

  json fresh = {{"metadata", {{"name", "new"}, {"namespace", "ns"}}}, {"spec", {{"task", "t"}}}};
  out = renderStatus(fresh, {}, at("2026-11-23T10:30:00"));
  SCOPED_TRACE(out);
  EXPECT_NE(line(out, "Phase:").find("(not yet reconciled)"), std::string::npos);
  EXPECT_EQ(line(out, "tokens"), "  tokens      -     policy default  -");
  EXPECT_NE(out.find("Stages:\n  (none)"), std::string::npos);
  EXPECT_NE(out.find("Events:\n  (none)"), std::string::npos);
}

TEST(PluginStatus, TablesAndAges) {
  EXPECT_EQ(formatTable({{"A", "BB", "C"}, {"long", "x", ""}}), "A     BB  C\nlong  x\n");
  auto now = at("2026-11-23T10:30:00");
  EXPECT_EQ(age("2026-11-23T10:29:15Z", now), "45s");
  EXPECT_EQ(age("2026-11-23T10:00:00Z", now), "30m");
  EXPECT_EQ(age("2026-11-23T05:00:00Z", now), "5h");
  EXPECT_EQ(age("2026-11-20T10:30:00Z", now), "3d");
  EXPECT_EQ(age("yesterday", now), "?");
}

TEST(PluginStatus, ShowsOnlyTheEventsOfThisRunNotOfADeletedNamesake) {
  json run = kRun;
  run["metadata"]["uid"] = "uid-now";
  auto about = [](const std::string& kind, const std::string& uid, const std::string& reason) {
    json e = event(reason, "2026-11-23T10:00:00Z", reason);
    e["regarding"]["kind"] = kind;
    e["regarding"]["uid"] = uid;
    return e;
  };
  auto kept = eventsAbout(run, {about("AgentRun", "uid-before", "BudgetExceeded"), about("AgentRun", "uid-now", "PodCreated"),
                                about("Pod", "uid-now", "Scheduled")});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]["reason"], "PodCreated");
  std::string out = renderStatus(run, kept, at("2026-11-23T10:30:00"));
  EXPECT_EQ(out.find("BudgetExceeded"), std::string::npos) << out;
  EXPECT_TRUE(eventsAbout(run, {}).empty());
}

TEST(PluginStatus, ShowsWhatEachStageReported) {
  json run = kRun;
  run["status"]["phase"] = "Failed";
  run["status"]["pullRequestURL"] = "https://github.com/acme/payments/pull/17";
  run["status"]["stages"] = json::parse(R"([
      {"name": "agent", "phase": "Succeeded", "pod": "ship-agent", "baseCommit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
      {"name": "pr", "phase": "Succeeded", "pod": "ship-pr", "exitCode": 0, "outcome": "PullRequestOpened",
       "pullRequest": {"url": "https://github.com/acme/payments/pull/17", "number": 17}},
      {"name": "deploy", "phase": "Failed", "pod": "ship-deploy", "exitCode": 5, "outcome": "DeployError",
       "message": "the deploy endpoint answered 403"}])");
  std::string out = renderStatus(run, {}, at("2026-11-23T10:30:00"));
  SCOPED_TRACE(out);
  EXPECT_NE(line(out, "Pull request:").find("https://github.com/acme/payments/pull/17"), std::string::npos);
  EXPECT_NE(line(out, "agent ").find("from 4b825dc642cb"), std::string::npos);
  EXPECT_NE(line(out, "pr ").find("exit 0, PullRequestOpened, https://github.com/acme/payments/pull/17"), std::string::npos);
  EXPECT_NE(line(out, "deploy ").find("exit 5, DeployError"), std::string::npos);
}

}  // namespace
}  // namespace paddock::plugin
