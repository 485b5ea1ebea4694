// What the operator trusts, tried as a namespace editor would (issues 23 and 25): a pod squatting
// on the agent pod's name, a widened or narrowed team NetworkPolicy, a running agent pod whose
// label or image is changed past the admission policies, a policy lowered under live runs (and
// deleted), and approvals for stages a run does not have or for runs that do not exist. Each
// ends in what docs/trust.md says, with conditions, Events and audit records that name the object
// and the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "e2e/tests/run_fixture.h"
#include "e2e/tests/support.h"
#include "operator/kube/client.h"

namespace paddock::e2e {
namespace {
using kube::resources::agentruns;
using kube::resources::pods;
const kube::Resource admission_policies{"admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", false};
const kube::Resource admission_bindings{"admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", false};

class TrustE2E : public RunE2E {
 protected:
  std::vector<std::string> operatorArgs() override { return {"--audit-store", audit_dir}; }
  void TearDown() override {
    RunE2E::TearDown();
    std::filesystem::remove_all(audit_dir);
  }
  std::vector<json> auditRecords() {
    std::vector<json> out;
    if (!std::filesystem::exists(audit_dir)) return out;
    for (const auto& f : std::filesystem::directory_iterator(audit_dir)) {
      std::ifstream in(f.path());
      for (std::string line; std::getline(in, line);) {
        auto j = json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("action")) out.push_back(j);
      }
    }
    return out;
  }
  // The first audit record of `action` about run `run`, or null; waits for it a little (records
  // are durable before the action, but the test may look before the operator got there).
  json auditRecord(const std::string& action, const std::string& run) {
    json found;
    eventually([&] {
      for (const auto& r : auditRecords()) {
        if (r["action"] == action && r["run"].value("name", "") == run) found = r;
      }
      return !found.is_null();
    }, std::chrono::seconds(10));
    return found;
  }
  // Events of the namespace with this reason (their message), about whatever object.
  std::vector<std::string> eventMessages(const std::string& reason) {
    std::vector<std::string> out;
    auto list = client.list(kube::resources::events, ns->name(), {.field_selector = "reason=" + reason});
    if (list) {
      for (const auto& e : list->items) out.push_back(e.value("type", "") + ": " + e.value("note", e.value("message", "")));
    }
    return out;
  }
  bool eventSaying(const std::string& reason, const std::string& part) {
    return eventually([&] {
      for (const auto& m : eventMessages(reason)) {
        if (m.rfind("Warning: ", 0) == 0 && m.find(part) != std::string::npos) return true;
      }
      return false;
    }, std::chrono::seconds(20));
  }
  json running(const std::string& name, json spec = json::object()) {
    auto run = create(name, std::move(spec));
    auto r = waitRun(run, [](const json& o) { return phaseOf(o) == "Running"; });
    EXPECT_FALSE(r.is_null()) << testing::PrintToString(op->lines());
    EXPECT_TRUE(eventually([&] { return client.get(pods, ns->name(), name + "-agent").ok(); }, std::chrono::seconds(10)));
    return r;
  }
  std::string audit_dir = testing::TempDir() + "trust-audit-" + randomSuffix();
};

// A condition's field, or "" (also when there is no such condition).
std::string field(const json& condition, const char* key) {
  return condition.is_object() ? condition.value(key, std::string()) : std::string();
}

// A pod an editor could make: passes PSA restricted, no Paddock owner, ends at once with code 0.
json squatter(const std::string& name, json labels = json::object()) {
  json sc = {{"allowPrivilegeEscalation", false}, {"runAsNonRoot", true}, {"runAsUser", 1000},
             {"capabilities", {{"drop", {"ALL"}}}}, {"seccompProfile", {{"type", "RuntimeDefault"}}}};
  return {{"apiVersion", "v1"}, {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", labels}, {"annotations", {{"kwok.paddock.dev/exit", "0"}}}}},
          {"spec", {{"restartPolicy", "Never"},
                    {"containers", json::array({{{"name", "agent"}, {"image", "docker.io/evil/anything:1"}, {"securityContext", sc}}})}}}};
}

TEST_F(TrustE2E, APodSquattingOnTheAgentPodsNameIsNeverAdopted) {
  // One without Paddock's labels (the operator's cache never sees it), one with them (it does).
  auto plain = client.create(pods, ns->name(), squatter("plain-agent"));
  ASSERT_TRUE(plain.ok()) << plain.error().describe();
  auto labelled = client.create(pods, ns->name(), squatter("labelled-agent", {{"app.kubernetes.io/managed-by", "paddock"},
                                                                               {"paddock.dev/stage", "agent"},
                                                                               {"paddock.dev/run", "labelled"},
                                                                               {"paddock.dev/team", team}}));
  ASSERT_TRUE(labelled.ok()) << labelled.error().describe();
  for (const char* name : {"plain-agent", "labelled-agent"}) {
    ASSERT_TRUE(eventually([&] {
      auto p = client.get(pods, ns->name(), name);
      return p.ok() && p->value(json::json_pointer("/status/phase"), std::string()) == "Succeeded";
    }, std::chrono::seconds(30))) << name << " did not finish under kwok";
  }
  for (const char* name : {"plain", "labelled"}) {
    SCOPED_TRACE(name);
    auto run = create(name);
    auto done = waitRun(run, [](const json& o) { return !phaseOf(o).empty() && phaseOf(o) != "Pending"; });
    ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
    EXPECT_EQ(phaseOf(done), "Failed") << "the squatter's exit was taken for the run's: " << done["status"].dump();
    auto c = condition(done, "Succeeded");
    EXPECT_EQ(c["reason"], "PodNameTaken") << c.dump();
    EXPECT_NE(c.value("message", "").find("pod " + std::string(name) + "-agent was not created by this run"), std::string::npos)
        << c.dump();
    EXPECT_FALSE(done["status"]["stages"][0].contains("pod")) << "the run names no pod of its own";
    EXPECT_TRUE(eventSaying("PodNameTaken", std::string(name) + "-agent")) << testing::PrintToString(eventMessages("PodNameTaken"));
    auto record = auditRecord("ChildNotAdopted", name);
    ASSERT_FALSE(record.is_null()) << "no ChildNotAdopted audit record";
    EXPECT_EQ(record["details"]["name"], std::string(name) + "-agent");
  }
  // Someone else's pods are left as they were.
  auto still = client.get(pods, ns->name(), "plain-agent");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ((*still)["metadata"]["uid"], (*plain)["metadata"]["uid"]);
  still = client.get(pods, ns->name(), "labelled-agent");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ((*still)["metadata"]["uid"], (*labelled)["metadata"]["uid"]);
  EXPECT_FALSE(still->contains(json::json_pointer("/metadata/deletionTimestamp")));
}

TEST_F(TrustE2E, AnEditedTeamNetworkPolicyIsPutBackToItsPlan) {
  running("net");
  const std::string name = "paddock-" + team;
  auto planned = client.get(kube::resources::networkpolicies, ns->name(), name);
  ASSERT_TRUE(planned.ok());
  // Egress to everywhere, the content-hash annotation left as it was.
  auto widened = client.jsonPatch(kube::resources::networkpolicies, ns->name(), name,
                                  json::array({{{"op", "add"}, {"path", "/spec/egress/-"},
                                                {"value", {{"to", json::array({{{"ipBlock", {{"cidr", "0.0.0.0/0"}}}}})}}}}}));
  ASSERT_TRUE(widened.ok()) << widened.error().describe();
  auto restored = watchUntil(*rest, kube::resources::networkpolicies.path(ns->name()) + "?fieldSelector=metadata.name%3D" + name,
                             (*widened)["metadata"]["resourceVersion"],
                             [&](const std::string&, const json& o) { return o["spec"] == (*planned)["spec"]; },
                             std::chrono::seconds(30));
  ASSERT_FALSE(restored.is_null()) << "the widened NetworkPolicy stayed widened";
  EXPECT_TRUE(eventSaying("NetworkPolicyRestored", "spec.egress")) << testing::PrintToString(eventMessages("NetworkPolicyRestored"));
  auto record = auditRecord("ChildRestored", "net");
  ASSERT_FALSE(record.is_null()) << "no ChildRestored audit record";
  EXPECT_EQ(record["details"]["fields"], json::array({"spec.egress"}));
  EXPECT_EQ(record["details"]["reason"], "Edited");

  // A selector no pod matches leaves the team's pods unrestricted: put back too, extra key and all.
  auto narrowed = client.mergePatch(kube::resources::networkpolicies, ns->name(), name,
                                    {{"spec", {{"podSelector", {{"matchLabels", {{"nothing", "here"}}}}}}}});
  ASSERT_TRUE(narrowed.ok()) << narrowed.error().describe();
  restored = watchUntil(*rest, kube::resources::networkpolicies.path(ns->name()) + "?fieldSelector=metadata.name%3D" + name,
                        (*narrowed)["metadata"]["resourceVersion"],
                        [&](const std::string&, const json& o) { return o["spec"] == (*planned)["spec"]; },
                        std::chrono::seconds(30));
  ASSERT_FALSE(restored.is_null()) << "the narrowed NetworkPolicy stayed narrowed";
  EXPECT_TRUE(eventSaying("NetworkPolicyRestored", "spec.podSelector"));
  auto run = client.get(agentruns, ns->name(), "net");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(phaseOf(*run), "Running") << "the run itself goes on";
}

// The admission policies refuse edits of a Paddock pod; an administrator can force one past them.
// These tests do so by unbinding every policy that matches pod updates for their duration.
class TamperE2E : public TrustE2E {
 protected:
  void SetUp() override {
    TrustE2E::SetUp();
    auto policies = client.list(admission_policies, "");
    auto bindings = client.list(admission_bindings, "");
    ASSERT_TRUE(policies.ok() && bindings.ok());
    std::set<std::string> pod_policies;
    for (const auto& p : policies->items) {
      for (const auto& rule : p.value(json::json_pointer("/spec/matchConstraints/resourceRules"), json::array())) {
        auto resources = rule.value("resources", json::array());
        if (std::find(resources.begin(), resources.end(), "pods") != resources.end() ||
            std::find(resources.begin(), resources.end(), "*") != resources.end()) {
          pod_policies.insert(p["metadata"]["name"]);
        }
      }
    }
    for (auto b : bindings->items) {
      if (!pod_policies.count(b.value(json::json_pointer("/spec/policyName"), std::string()))) continue;
      ASSERT_TRUE(client.remove(admission_bindings, "", b["metadata"]["name"]).ok());
      b["metadata"] = {{"name", b["metadata"]["name"]}, {"labels", b["metadata"].value("labels", json::object())}};
      unbound.push_back(b);
    }
  }
  void TearDown() override {
    for (const auto& b : unbound) {
      auto r = client.create(admission_bindings, "", b);
      EXPECT_TRUE(r.ok()) << "could not put back binding " << b["metadata"]["name"] << ": " << r.error().describe();
    }
    TrustE2E::TearDown();
  }
  // Patches a running agent pod, retrying while the unbound policies may still be enforced.
  void force(const std::string& pod, const json& ops) {
    std::string last;
    ASSERT_TRUE(eventually([&] {
      auto r = client.jsonPatch(pods, ns->name(), pod, ops);
      if (!r.ok()) last = r.error().describe();
      return r.ok();
    }, std::chrono::seconds(20), std::chrono::milliseconds(250))) << last;
  }
  void expectTampered(const json& from, const std::string& run, const std::string& field) {
    auto failed = waitRun(from, [](const json& o) { return phaseOf(o) == "Failed"; });
    ASSERT_FALSE(failed.is_null()) << "the run stayed " << phaseOf(*client.get(agentruns, ns->name(), run))
                                   << " with a tampered pod";
    auto c = condition(failed, "Succeeded");
    EXPECT_EQ(c["reason"], "PodTampered") << c.dump();
    EXPECT_NE(c.value("message", "").find(field), std::string::npos) << c.dump();
    EXPECT_TRUE(eventually([&] {
      auto p = client.get(pods, ns->name(), run + "-agent");
      return !p.ok() || p->contains(json::json_pointer("/metadata/deletionTimestamp"));
    }, std::chrono::seconds(20))) << "the tampered pod was not deleted";
    EXPECT_TRUE(eventSaying("PodTampered", field));
    auto record = auditRecord("ChildTampered", run);
    ASSERT_FALSE(record.is_null()) << "no ChildTampered audit record";
    EXPECT_EQ(record["details"]["fields"], json::array({field}));
    EXPECT_FALSE(auditRecord("ChildDeleted", run).is_null());
  }
  std::vector<json> unbound;
};

TEST_F(TamperE2E, AStrippedLabelOrAPatchedImageEndsThePodAndFailsTheRun) {
  auto lbl = running("lbl");
  force("lbl-agent", json::array({{{"op", "remove"}, {"path", "/metadata/labels/paddock.dev~1team"}}}));
  expectTampered(lbl, "lbl", "metadata.labels[\"paddock.dev/team\"]");

  auto img = running("img");
  force("img-agent", json::array({{{"op", "replace"}, {"path", "/spec/containers/0/image"}, {"value", "docker.io/evil/agent:1"}}}));
  expectTampered(img, "img", "spec.containers[0].image");
}

TEST_F(TrustE2E, ALoweredOrDeletedPolicyDoesNotAbandonLiveRuns) {
  // The sample run asks for 100000 tokens.
  auto a = running("a");
  auto b = running("b");
  auto c = running("c");
  EXPECT_EQ(a["status"]["terms"]["budget"]["tokens"], 100000) << a["status"].dump();
  auto lowered = client.mergePatch(kube::resources::agentpolicies, "", team,
                                   {{"spec", {{"budgets", {{"default", {{"tokens", 10000}}}, {"max", {{"tokens", 50000}}}}}}}});
  ASSERT_TRUE(lowered.ok()) << lowered.error().describe();
  auto changed = waitRun(a, [](const json& o) { return field(condition(o, "PolicyChanged"), "status") == "True"; });
  ASSERT_FALSE(changed.is_null()) << "no PolicyChanged condition";
  EXPECT_EQ(phaseOf(changed), "Running") << "the live run was abandoned: " << changed["status"].dump();
  EXPECT_EQ(condition(changed, "Admitted")["status"], "True");
  EXPECT_EQ(condition(changed, "PolicyChanged")["reason"], "BudgetOverMax");
  EXPECT_TRUE(eventSaying("PolicyChanged", "would not admit this run now"));
  // A new run is held to the new maximum: the edit tightens what has not started (the API server
  // refuses it at apply time, by the run-policy admission policy).
  json fresh = loadYaml(repoPath("crds/samples/run.yaml"));
  fresh["metadata"] = {{"name", "fresh"}};
  fresh["spec"]["idempotencyKey"] = "fresh";
  auto refused = client.create(agentruns, ns->name(), fresh);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("spec.budget.tokens 100000 exceeds AgentPolicy"), std::string::npos)
      << refused.error().describe();
  EXPECT_FALSE(client.get(pods, ns->name(), "fresh-agent").ok());

  // A restarted operator decides the same from status alone.
  stopOperator(*op);
  op = startOperator();
  ASSERT_TRUE(reconciling(*op)) << testing::PrintToString(op->lines());
  ASSERT_TRUE(client.mergePatch(agentruns, ns->name(), "a", {{"spec", {{"cancel", true}}}}).ok());
  auto cancelled = waitRun(changed, [](const json& o) { return phaseOf(o) == "Cancelled"; });
  ASSERT_FALSE(cancelled.is_null()) << "cancel was ignored";
  agentExits("b", 0);
  ASSERT_FALSE(waitRun(b, [](const json& o) { return phaseOf(o) == "Succeeded"; }).is_null()) << "completion was ignored";

  // The policy deleted: the last live run carries on under its recorded terms and says why.
  ASSERT_TRUE(client.remove(kube::resources::agentpolicies, "", team).ok());
  auto orphan = waitRun(c, [](const json& o) { return field(condition(o, "PolicyChanged"), "reason") == "NoPolicy"; });
  ASSERT_FALSE(orphan.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(phaseOf(orphan), "Running");
  EXPECT_NE(condition(orphan, "PolicyChanged").value("message", "").find("status.terms"), std::string::npos);
  agentExits("c", 0);
  ASSERT_FALSE(waitRun(orphan, [](const json& o) { return phaseOf(o) == "Succeeded"; }).is_null());
}

TEST_F(TrustE2E, AnApprovalForAStageTheRunDidNotAskForIsReported) {
  auto run = running("gated", {{"stages", {"pr"}}, {"requestedBy", "paddock-admin"}});
  auto approve = [&](const std::string& name, const std::string& for_run, const std::string& stage) {
    json a = {{"apiVersion", "paddock.dev/v1alpha1"}, {"kind", "AgentApproval"}, {"metadata", {{"name", name}}},
              {"spec", {{"run", for_run}, {"stage", stage}, {"decision", "Approve"},
                        {"approver", {{"username", "paddock-admin"}, {"groups", {"system:masters"}}}}}}};
    auto r = client.create(kube::resources::agentapprovals, ns->name(), a);
    ASSERT_TRUE(r.ok()) << r.error().describe();
  };
  approve("ship-it", "gated", "deploy");
  auto marked = waitRun(run, [](const json& o) { return field(condition(o, "UnmatchedApprovals"), "status") == "True"; });
  ASSERT_FALSE(marked.is_null()) << "the approval for a stage the run does not have went unremarked";
  EXPECT_NE(condition(marked, "UnmatchedApprovals").value("message", "").find(
                "AgentApproval ship-it is for stage deploy, which AgentRun gated did not ask for (its stages: pr)"),
            std::string::npos)
      << condition(marked, "UnmatchedApprovals").dump();
  EXPECT_TRUE(eventSaying("UnmatchedApproval", "AgentApproval ship-it"));
  auto record = auditRecord("ApprovalRefused", "gated");
  ASSERT_FALSE(record.is_null());
  EXPECT_EQ(record["details"]["approval"], "ship-it");
  EXPECT_EQ(record["actor"], "paddock-admin");

  approve("for-nobody", "no-such-run", "pr");
  EXPECT_TRUE(eventSaying("NoSuchRun", "AgentApproval for-nobody names AgentRun no-such-run, which does not exist"))
      << testing::PrintToString(eventMessages("NoSuchRun"));
}

}  // namespace
}  // namespace paddock::e2e
