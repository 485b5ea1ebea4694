#include "controllers/lifecycle.h"
#include "gateway/budget.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {
using nlohmann::json;
using std::chrono::seconds;

json pod(const char* phase) {
  return {{"metadata", {{"name", "r-agent"}}}, {"status", {{"phase", phase}}}};
}

json terminated(const char* phase, int code, const char* reason) {
  json p = pod(phase);
  p["status"]["containerStatuses"] = json::array(
      {{{"name", "workspace"}, {"state", {{"terminated", {{"exitCode", 0}}}}}},
       {{"name", "agent"}, {"state", {{"terminated", {{"exitCode", code}, {"reason", reason}}}}}}});
  return p;
}

json waiting(const char* reason) {
  json p = pod("Pending");
  p["status"]["containerStatuses"] = json::array({{{"name", "agent"}, {"state", {{"waiting", {{"reason", reason}}}}}}});
  return p;
}

json unschedulable() {
  json p = pod("Pending");
  p["status"]["conditions"] = json::array(
      {{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"}, {"message", "0/4 nodes are available"}}});
  return p;
}

TEST(ObservePod, ReadsTheAgentContainerAndConditions) {
  json p = terminated("Failed", 137, "OOMKilled");
  auto o = observePod(&p);
  EXPECT_TRUE(o.exists);
  EXPECT_EQ(o.exit_code, 137) << "the agent container's code, not the workspace's";
  EXPECT_EQ(o.terminated_reason, "OOMKilled");
  json u = unschedulable();
  EXPECT_TRUE(observePod(&u).unschedulable);
  EXPECT_FALSE(observePod(nullptr).exists);
  json odd = {{"status", "not an object"}};
  EXPECT_TRUE(observePod(&odd).exists) << "odd shapes read as empty, not as a crash";
  json deleting = pod("Running");
  deleting["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z";
  EXPECT_TRUE(observePod(&deleting).deleting);
}

TEST(ObservePod, ReadsTheNamedContainerWithItsTerminationMessage) {
  json p = pod("Failed");
  p["status"]["initContainerStatuses"] = json::array(
      {{{"name", "workspace"}, {"state", {{"terminated", {{"exitCode", 0}, {"message", "{\"stage\":\"clone\"}"}}}}}}});
  p["status"]["containerStatuses"] = json::array(
      {{{"name", "stage"}, {"state", {{"terminated", {{"exitCode", 3}, {"reason", "Error"}, {"message", "{\"stage\":\"pr\"}"}}}}}}});
  auto stage = observePod(&p, "stage");
  EXPECT_EQ(stage.exit_code, 3) << "the stage container's own code (issue 25.15)";
  EXPECT_EQ(stage.termination_message, "{\"stage\":\"pr\"}");
  auto clone = observePod(&p, "workspace");
  EXPECT_EQ(clone.termination_message, "{\"stage\":\"clone\"}");
  EXPECT_EQ(observePod(&p).exit_code, 0) << "no container named agent";
}

TEST(PendingCause, NamesTheImageTheClaimOrTheNode) {
  json image = waiting("ImagePullBackOff");
  EXPECT_EQ(pendingCause(observePod(&image)).reason, "ImagePullFailed");
  json claim = unschedulable();
  claim["status"]["conditions"][0]["message"] =
      "0/4 nodes are available: persistentvolumeclaim \"ship-workspace\" not found. preemption: not helpful";
  auto c = pendingCause(observePod(&claim));
  EXPECT_EQ(c.reason, "WorkspaceClaimMissing");
  EXPECT_NE(c.detail.find("ship-workspace"), std::string::npos);
  claim["status"]["conditions"][0]["message"] = "0/4 nodes are available: persistentvolumeclaim \"ship-workspace\" is being deleted.";
  EXPECT_EQ(pendingCause(observePod(&claim)).reason, "WorkspaceClaimMissing");
  json node = unschedulable();
  EXPECT_EQ(pendingCause(observePod(&node)).reason, "Unschedulable");
  json quiet = pod("Pending");
  EXPECT_EQ(pendingCause(observePod(&quiet)).reason, "");
}

TEST(DecideLifecycle, Table) {
  struct Case {
    const char* name;
    std::string phase;
    bool cancel, created;
    json pod;  // null: no pod
    int pending_for;
    const char* want_phase;
    const char* want_reason;
    bool create, del;
    const char* message_part;
  } cases[] = {
      {"new run creates its pod", "", false, false, nullptr, 0, "Pending", "PodCreated", true, false, "created"},
      {"pod starting", "Pending", false, true, pod("Pending"), 5, "Pending", "PodStarting", false, false, "starting"},
      {"pod running", "Running", false, true, pod("Running"), 0, "Running", "AgentRunning", false, false, "working"},
      {"pod succeeded", "Running", false, true, terminated("Succeeded", 0, "Completed"), 0, "Succeeded", "Completed", false, false, "finished"},
      {"pod failed", "Running", false, true, terminated("Failed", 3, "Error"), 0, "Failed", "AgentFailed", false, false, "exited with code 3 (Error)"},
      {"pod out of memory", "Running", false, true, terminated("Failed", 137, "OOMKilled"), 0, "Failed", "AgentFailed", false, false, "resources.limits"},
      {"deadline backstop", "Running", false, true, [] { json p = pod("Failed"); p["status"]["reason"] = "DeadlineExceeded"; return p; }(), 0,
       "TimedOut", "WallClockExceeded", false, false, "spec.budget.wallClock"},
      {"evicted", "Running", false, true, [] { json p = pod("Failed"); p["status"]["reason"] = "Evicted"; p["status"]["message"] = "low on memory"; return p; }(), 0,
       "Failed", "Evicted", false, false, "low on memory"},
      {"pod deleted under the run", "Running", false, true, nullptr, 0, "Failed", "PodDeleted", false, false, "new AgentRun"},
      {"cancel stops the pod", "Running", true, true, pod("Running"), 0, "Cancelled", "Cancelled", false, true, "grace period"},
      {"cancel while already stopping", "Running", true, true, [] { json p = pod("Running"); p["metadata"]["deletionTimestamp"] = "x"; return p; }(), 0,
       "Cancelled", "Cancelled", false, false, "grace period"},
      {"cancel before the pod", "Pending", true, false, nullptr, 0, "Cancelled", "Cancelled", false, false, "before its pod started"},
      {"image pull within the deadline", "Pending", false, true, waiting("ImagePullBackOff"), 599, "Pending", "PodStarting", false, false, ""},
      {"image pull past the deadline", "Running", false, true, waiting("ImagePullBackOff"), 600, "Failed", "ImagePullFailed", false, true, "spec.image"},
      {"unschedulable past the deadline", "Running", false, true, unschedulable(), 900, "Failed", "Unschedulable", false, true, "0/4 nodes"},
      {"workspace claim missing past the deadline", "Running", false, true,
       [] { json p = unschedulable(); p["status"]["conditions"][0]["message"] = "persistentvolumeclaim \"r-workspace\" not found"; return p; }(),
       600, "Failed", "WorkspaceClaimMissing", false, true, "r-workspace"},
      {"finished runs stay finished", "Succeeded", true, true, nullptr, 0, "Succeeded", "", false, false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    LifecycleInput in;
    in.phase = c.phase;
    in.cancel = c.cancel;
    in.pod_created = c.created;
    in.pod = observePod(c.pod.is_null() ? nullptr : &c.pod);
    in.pod_pending_for = seconds(c.pending_for);
    auto d = decideLifecycle(in);
    EXPECT_EQ(d.phase, c.want_phase);
    EXPECT_EQ(d.reason, c.want_reason);
    EXPECT_EQ(d.create_pod, c.create);
    EXPECT_EQ(d.delete_pod, c.del);
    EXPECT_NE(d.message.find(c.message_part), std::string::npos) << d.message;
  }
}

// The gateway refused the agent's next call for its budget and the agent ended on it: the run is
// stopped at its budget (handed on to a pr stage as a draft when there is one), on the gateway
// path only; the same words without a gateway are an agent's failure like any other.
json sandboxInstalled(int code, const std::string& message) {
  json p = pod(code == 0 ? "Running" : "Failed");
  p["status"]["initContainerStatuses"] = json::array(
      {{{"name", "sandbox"}, {"state", {{"terminated", {{"exitCode", code}, {"reason", code ? "Error" : "Completed"},
                                                         {"message", message}}}}}}});
  return p;
}

TEST(DecideLifecycle, AContainerTheKubeletCannotSetUpFailsTheRunNamingTheProtectedPaths) {
  json stuck = waiting("CreateContainerConfigError");
  stuck["status"]["containerStatuses"][0]["state"]["waiting"]["message"] =
      "failed to prepare subPath for volumeMount \"workspace\" of container \"agent\"";
  LifecycleInput in;
  in.phase = "Pending";
  in.pod_created = true;
  in.pod = observePod(&stuck);
  in.pod_pending_for = seconds(30);
  EXPECT_EQ(decideLifecycle(in).reason, "PodStarting") << "the kubelet retries: not before the pending deadline";
  in.pod_pending_for = in.pending_deadline;
  auto d = decideLifecycle(in);
  EXPECT_EQ(d.phase, "Failed");
  EXPECT_EQ(d.reason, "ContainerConfigInvalid");
  EXPECT_TRUE(d.delete_pod);
  EXPECT_NE(d.message.find("failed to prepare subPath"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("spec.protectedPaths"), std::string::npos) << d.message;
}

TEST(SandboxReport, ReadsTheInstallersWordsOfTheNodesKernel) {
  json abi = sandboxInstalled(0, "landlock ABI 7\n");
  auto r = sandboxReport(observePod(&abi, "sandbox"), false);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->landlock);
  EXPECT_EQ(r->reason, "Landlock");
  EXPECT_NE(r->message.find("ABI 7"), std::string::npos) << r->message;
  EXPECT_EQ(r->message.find("cannot"), std::string::npos) << r->message;
  // An older kernel's Landlock: applied, with what it cannot hold said.
  json old = sandboxInstalled(0, "landlock ABI 2\n");
  r = sandboxReport(observePod(&old, "sandbox"), false);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->landlock);
  EXPECT_NE(r->message.find("cannot refuse truncating"), std::string::npos) << r->message;
  EXPECT_NE(r->message.find("nor restrict TCP connect"), std::string::npos) << r->message;
  json none = sandboxInstalled(0, "landlock unavailable: the kernel does not support it (EOPNOTSUPP)");
  r = sandboxReport(observePod(&none, "sandbox"), true);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->landlock);
  EXPECT_EQ(r->reason, "LandlockUnavailable");
  EXPECT_NE(r->message.find("runs without the sandbox because spec.sandbox.whenUnavailable is Warn"), std::string::npos);
  r = sandboxReport(observePod(&none, "sandbox"), false);
  EXPECT_NE(r->message.find("set spec.sandbox.whenUnavailable: Warn"), std::string::npos) << r->message;
  // Not run yet, or a node that runs nothing (kwok): no word either way.
  json quiet = sandboxInstalled(0, "");
  EXPECT_FALSE(sandboxReport(observePod(&quiet, "sandbox"), false));
  json fresh = pod("Pending");
  EXPECT_FALSE(sandboxReport(observePod(&fresh, "sandbox"), false));
}

TEST(DecideLifecycle, ANodeWithoutLandlockOrALauncherThatFailsEndsTheRunSayingSo) {
  LifecycleInput in;
  in.phase = "Pending";
  in.pod_created = true;
  json refused = sandboxInstalled(3, "landlock unavailable: the kernel does not support it (EOPNOTSUPP)");
  in.pod = observePod(&refused);
  in.sandbox = observePod(&refused, "sandbox");
  auto d = decideLifecycle(in);
  EXPECT_EQ(d.phase, "Failed");
  EXPECT_EQ(d.reason, "SandboxUnavailable");
  EXPECT_NE(d.message.find("has no Landlock"), std::string::npos) << d.message;
  // The launcher in the agent container could not start the image's entrypoint.
  // The launcher's own words, from its termination message.
  json failed = terminated("Failed", 127, "Error");
  failed["status"]["containerStatuses"][1]["state"]["terminated"]["message"] =
      "paddock-sandbox: cannot execute /usr/local/bin/paddock-agent: No such file or directory; check the container's "
      "command and PATH\n";
  in.phase = "Running";
  in.pod = observePod(&failed);
  in.sandbox = {};
  d = decideLifecycle(in);
  EXPECT_EQ(d.reason, "SandboxFailed");
  EXPECT_NE(d.message.find("spec.sandbox.command"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("cannot execute /usr/local/bin/paddock-agent"), std::string::npos) << d.message;
  failed["status"]["containerStatuses"][1]["state"]["terminated"]["exitCode"] = 126;
  failed["status"]["containerStatuses"][1]["state"]["terminated"]["message"] =
      "paddock-sandbox: cannot list the workspace folder /workspace/x: Permission denied\n";
  in.pod = observePod(&failed);
  d = decideLifecycle(in);
  EXPECT_EQ(d.reason, "SandboxFailed");
  EXPECT_EQ(d.message.find("spec.sandbox.command"), std::string::npos) << "not the entrypoint's fault: " << d.message;
  failed["status"]["containerStatuses"][1]["state"]["terminated"]["exitCode"] = 127;
  // Exit 126 from the agent itself is the agent's failure.
  failed["status"]["containerStatuses"][1]["state"]["terminated"]["message"] = "bash: ./x: Permission denied";
  in.pod = observePod(&failed);
  EXPECT_EQ(decideLifecycle(in).reason, "AgentFailed");
}

TEST(DecideLifecycle, AnAgentEndedByTheGatewaysBudgetRefusalIsStoppedAtItsBudget) {
  json ended = terminated("Failed", 1, "Error");
  ended["status"]["containerStatuses"][1]["state"]["terminated"]["message"] =
      std::string("API Error: 400 {\"type\":\"error\",\"error\":{\"message\":\"") + gateway::kBudgetSpentMarker + ": ...\"}}";
  LifecycleInput in;
  in.phase = "Running";
  in.pod_created = true;
  in.pod = observePod(&ended);
  in.gateway = true;
  in.pr_stage = true;
  auto d = decideLifecycle(in);
  EXPECT_EQ(d.phase, "BudgetExceeded");
  EXPECT_EQ(d.reason, "BudgetExceeded");
  EXPECT_TRUE(d.hand_off);
  in.pr_stage = false;
  d = decideLifecycle(in);
  EXPECT_EQ(d.phase, "BudgetExceeded");
  EXPECT_FALSE(d.hand_off);
  in.gateway = false;
  EXPECT_EQ(decideLifecycle(in).phase, "Failed");
  // The kubelet's deadline backstop hands on too.
  in.pr_stage = true;
  json late = pod("Failed");
  late["status"]["reason"] = "DeadlineExceeded";
  in.pod = observePod(&late);
  d = decideLifecycle(in);
  EXPECT_EQ(d.phase, "TimedOut");
  EXPECT_TRUE(d.hand_off);
}

TEST(DecideLifecycle, APodThatIsNotTheRunsOrNotItsPlanEndsTheRun) {
  using V = PodJudgement::Verdict;
  struct Case {
    const char* name;
    V verdict;
    bool cancel, created;
    json pod;  // what the run may read of it (null for a pod that is not the run's)
    const char* want_reason;
    bool del;
    const char* message_part;
  } cases[] = {
      {"a squatter under the pod's name", V::NotOurs, false, false, nullptr, "PodNameTaken", false,
       "pod r-agent was not created by this run"},
      {"a squatter, cancelled: still never deleted", V::NotOurs, true, false, nullptr, "PodNameTaken", false, "leaves it alone"},
      {"another pod after the run's own went", V::NotOurs, false, true, nullptr, "PodNameTaken", false, "delete it"},
      {"a tampered pod is deleted", V::Tampered, false, true, pod("Running"), "PodTampered", true,
       "metadata.labels[\"paddock.dev/team\"] and spec.containers[0].image changed"},
      {"a tampered pod on its way out", V::Tampered, false, true,
       [] { json p = pod("Running"); p["metadata"]["deletionTimestamp"] = "x"; return p; }(), "PodTampered", false, "deleted it"},
      {"the run's own pod, as planned", V::Ours, false, true, pod("Running"), "AgentRunning", false, "working"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    LifecycleInput in;
    in.phase = "Running";
    in.cancel = c.cancel;
    in.pod_created = c.created;
    in.pod_name = "r-agent";
    in.trust.verdict = c.verdict;
    if (c.verdict == V::Tampered) in.trust.fields = {"metadata.labels[\"paddock.dev/team\"]", "spec.containers[0].image"};
    in.pod = observePod(c.pod.is_null() ? nullptr : &c.pod);
    auto d = decideLifecycle(in);
    EXPECT_EQ(d.reason, c.want_reason);
    if (c.verdict != V::Ours) {
      EXPECT_EQ(d.phase, "Failed");
    }
    EXPECT_FALSE(d.create_pod);
    EXPECT_EQ(d.delete_pod, c.del);
    EXPECT_NE(d.message.find(c.message_part), std::string::npos) << d.message;
  }
  EXPECT_FALSE(decideTrust({}, "r-agent").has_value()) << "nothing under the name: nothing to distrust";
}

}  // namespace
}  // namespace paddock::controllers
