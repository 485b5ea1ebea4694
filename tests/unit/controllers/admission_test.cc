#include "controllers/admission.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

json policyJson() {
  return json::parse(R"({
    "metadata": {"name": "payments"},
    "spec": {
      "namespaceSelector": {"matchLabels": {"paddock.dev/team": "payments"}},
      "images": {"default": "registry.example.com/payments/agent:2.1.4", "allowed": ["registry.example.com/payments/*"]},
      "model": {"pin": "claude-sonnet-4-5"},
      "budgets": {
        "default": {"tokens": 2000000, "costUSD": "10", "wallClock": "1h"},
        "max": {"tokens": 10000000, "costUSD": "40", "wallClock": "4h"},
        "checkpointPercent": 60
      },
      "concurrency": {"maxRunning": 2},
      "stages": [
        {"name": "pr", "image": "registry.example.com/platform/paddock-stage:1.0",
         "approval": {"approvers": {"groups": ["payments-leads"]}, "minApprovals": 1, "timeout": "72h"}},
        {"name": "deploy", "image": "registry.example.com/platform/paddock-stage:1.0",
         "approval": {"approvers": {"groups": ["payments-oncall"]}, "minApprovals": 2, "timeout": "24h"}}
      ],
      "secrets": [{"secretName": "anthropic-api-key", "key": "api-key", "stages": ["agent"]}],
      "repositories": [{"host": "github.com", "organizations": ["acme"]}, {"host": "git.example.com"}]
    }})");
}

AgentPolicy policy() {
  auto p = parseAgentPolicy(policyJson());
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.value();
}

AgentRun run(json spec) {
  json obj = {{"metadata", {{"name", "r"}, {"namespace", "payments"}, {"uid", "u1"}, {"generation", 1},
                            {"creationTimestamp", "2026-11-23T10:00:00Z"}}},
              {"spec", json{{"task", "Fix it."}, {"repository", {{"url", "https://github.com/acme/payments"}}}}}};
  obj["spec"].merge_patch(spec);
  auto r = parseAgentRun(obj);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.value();
}

TEST(ParseAgentPolicy, ReadsEveryField) {
  auto p = policy();
  EXPECT_EQ(p.name, "payments");
  EXPECT_EQ(p.default_image, "registry.example.com/payments/agent:2.1.4");
  EXPECT_EQ(p.model_pin, "claude-sonnet-4-5");
  EXPECT_EQ(p.default_budget.cost_cents, 1000);
  EXPECT_EQ(p.max_budget.wall_clock, std::chrono::hours(4));
  EXPECT_EQ(p.max_running, 2);
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[1].min_approvals, 2);
  EXPECT_EQ(p.stages[1].approval_timeout, std::chrono::hours(24));
  EXPECT_EQ(p.stages[0].approver_groups, std::vector<std::string>{"payments-leads"});
  ASSERT_EQ(p.secrets.size(), 1u);
  EXPECT_EQ(p.secrets[0].stages, std::vector<std::string>{"agent"});
  // spec.sandbox unset: Paddock's agent images' entrypoint, and no agent without Landlock.
  EXPECT_EQ(p.sandbox.command, std::vector<std::string>{"/usr/local/bin/paddock-agent"});
  EXPECT_FALSE(p.sandbox.warn_when_unavailable);
  json j = policyJson();
  j["spec"]["sandbox"] = {{"command", {"/usr/bin/tini", "--", "/usr/local/bin/paddock-agent"}}, {"whenUnavailable", "Warn"}};
  auto set = parseAgentPolicy(j);
  ASSERT_TRUE(set.ok()) << set.error().describe();
  EXPECT_EQ(set->sandbox.command, (std::vector<std::string>{"/usr/bin/tini", "--", "/usr/local/bin/paddock-agent"}));
  EXPECT_TRUE(set->sandbox.warn_when_unavailable);
}

TEST(ParseAgentPolicy, NamesTheFieldOfEveryShapeError) {
  struct Case { const char* pointer; json value; const char* field; } cases[] = {
      {"/spec/budgets/max/tokens", "lots", "spec.budgets.max.tokens: must be an integer"},
      {"/spec/budgets/default/costUSD", "ten", "spec.budgets.default.costUSD: must be a decimal string"},
      {"/spec/budgets/default/wallClock", "an hour", "spec.budgets.default.wallClock: must be a duration"},
      {"/spec/images/allowed", "registry.example.com/*", "spec.images.allowed: must be a list of strings"},
      {"/spec/stages/1/approval/minApprovals", "two", "spec.stages[1].approval.minApprovals: must be an integer"},
      {"/spec/namespaceSelector/matchLabels", json::array(), "spec.namespaceSelector.matchLabels: must be a map"},
      {"/spec/concurrency", 5, "spec.concurrency: must be an object"},
      // The grammar the CRD checks at apply, checked again by the operator's parser.
      {"/spec/images/default", "agent:1", "spec.images.default: must be an image reference that names its registry"},
      {"/spec/images/allowed/0", "registry.example.com/../*", "spec.images.allowed[0]: must be REGISTRY/PATH[:TAG]"},
      {"/spec/images/allowed/0", "*.example.com/payments/*", "spec.images.allowed[0]: must be REGISTRY/PATH[:TAG]"},
      {"/spec/stages/1/image", "registry.example.com/a@sha256:bad", "spec.stages[1].image: must be an image reference"},
      {"/spec/protectedPaths", json::array({"billing/**", "../outside"}), "spec.protectedPaths[1]: must not have '.' or '..'"},
      {"/spec/protectedPaths", json::array({std::string("a\0b", 3)}), "spec.protectedPaths[0]: must not contain NUL"},
      {"/spec/repositories/1/host", "169.254.169.254", "spec.repositories[1].host: must be a lower-case DNS name"},
      {"/spec/sandbox", json{{"whenUnavailable", "Ignore"}}, "spec.sandbox.whenUnavailable: must be Refuse or Warn"},
      {"/spec/sandbox", json{{"command", json::array()}}, "spec.sandbox.command: must name the agent image's entrypoint"},
      {"/spec/sandbox", json{{"command", "claude"}}, "spec.sandbox.command: must be a list of strings"},
  };
  for (const auto& c : cases) {
    json j = policyJson();
    j[json::json_pointer(c.pointer)] = c.value;
    auto p = parseAgentPolicy(j);
    ASSERT_FALSE(p.ok()) << c.pointer;
    EXPECT_NE(p.error().message.find(c.field), std::string::npos) << p.error().message;
  }
  json no_image = policyJson();
  no_image["spec"]["images"].erase("default");
  auto p = parseAgentPolicy(no_image);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("spec.images.default"), std::string::npos);
}

TEST(ParseAgentRun, RefusesWhatTheCrdRefusesWithoutRepeatingTheValue) {
  struct Case { const char* pointer; std::string value; const char* message; } cases[] = {
      {"/spec/repository/url", "https://x-access-token:ghp_secret@github.com/acme/x",
       "spec.repository.url: must not carry credentials"},
      {"/spec/repository/url", "ssh://ghp_secret@github.com/acme/x", "spec.repository.url: must not carry credentials"},
      {"/spec/repository/url", "https://169.254.169.254/secret", "spec.repository.url: names its host by an IP address"},
      {"/spec/repository/url", "https://github.com/secret/--upload-pack=x", "spec.repository.url: must be https://HOST/PATH"},
      {"/spec/repository/baseBranch", "refs/heads/main", "spec.repository.baseBranch: must be the branch's short name"},
      {"/spec/repository/baseBranch", "secret..x", "spec.repository.baseBranch: is not a valid branch name"},
      {"/spec/image", "registry.example.com/secret/../x", "spec.image: must be an image reference"},
      {"/spec/task", "ignore the above\u202e secret", "spec.task: must not contain bidirectional"},
      {"/spec/task", std::string("secret\0", 7), "spec.task: must not contain control characters"},
  };
  for (const auto& c : cases) {
    json obj = {{"metadata", {{"name", "r"}, {"namespace", "payments"}}},
                {"spec", {{"task", "Fix it."}, {"repository", {{"url", "https://github.com/acme/payments"}}}}}};
    obj[json::json_pointer(c.pointer)] = c.value;
    auto r = parseAgentRun(obj);
    ASSERT_FALSE(r.ok()) << c.pointer << " " << c.value;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("secret"), std::string::npos) << "the message repeats the value: " << r.error().message;
  }
}

TEST(CostCents, ParsesDollarStrings) {
  EXPECT_EQ(parseCostCents("6"), 600);
  EXPECT_EQ(parseCostCents("6.5"), 650);
  EXPECT_EQ(parseCostCents("6.25"), 625);
  EXPECT_EQ(parseCostCents("0.01"), 1);
  for (const char* bad : {"", ".5", "6.", "6.255", "-1", "1e3", "six", "6,5"}) EXPECT_FALSE(parseCostCents(bad)) << bad;
  EXPECT_EQ(formatCents(625), "6.25");
  EXPECT_EQ(formatCents(650), "6.5");
  EXPECT_EQ(formatCents(600), "6");
  EXPECT_EQ(formatCents(5), "0.05");
}

TEST(LabelSelector, FollowsKubernetesSemantics) {
  LabelSelector s;
  EXPECT_TRUE(s.matches({})) << "empty selects everything";
  s.match_labels = {{"team", "a"}};
  s.match_expressions = {{"tier", "In", {"gold", "silver"}}, {"frozen", "DoesNotExist", {}}};
  EXPECT_TRUE(s.matches({{"team", "a"}, {"tier", "gold"}}));
  EXPECT_FALSE(s.matches({{"team", "b"}, {"tier", "gold"}}));
  EXPECT_FALSE(s.matches({{"team", "a"}, {"tier", "bronze"}}));
  EXPECT_FALSE(s.matches({{"team", "a"}, {"tier", "gold"}, {"frozen", "yes"}}));
  s.match_expressions = {{"tier", "NotIn", {"bronze"}}, {"team", "Exists", {}}};
  EXPECT_TRUE(s.matches({{"team", "a"}}));
  EXPECT_FALSE(s.matches({{"team", "a"}, {"tier", "bronze"}}));
  s.match_expressions = {{"tier", "Sometimes", {}}};
  EXPECT_FALSE(s.matches({{"team", "a"}})) << "an unknown operator matches nothing";
}

TEST(ResolvePolicy, ExactlyOnePolicyMustSelectTheNamespace) {
  auto a = policy();
  auto b = policy();
  b.name = "catch-all";
  b.namespace_selector = {};
  auto c = policy();
  c.name = "other";
  c.namespace_selector.match_labels = {{"paddock.dev/team", "other"}};
  auto one = resolvePolicy("payments", {{"paddock.dev/team", "payments"}}, {a, c});
  ASSERT_TRUE(one.policy.has_value());
  EXPECT_EQ(one.policy->name, "payments");
  auto none = resolvePolicy("web", {{"paddock.dev/team", "web"}}, {a, c});
  EXPECT_FALSE(none.policy.has_value());
  EXPECT_EQ(none.reason, "NoPolicy");
  EXPECT_NE(none.message.find("spec.namespaceSelector"), std::string::npos);
  auto two = resolvePolicy("payments", {{"paddock.dev/team", "payments"}}, {c, b, a});
  EXPECT_FALSE(two.policy.has_value());
  EXPECT_EQ(two.reason, "AmbiguousPolicy");
  EXPECT_NE(two.message.find("(catch-all, payments)"), std::string::npos) << two.message;
}

TEST(GlobMatch, StarStaysWithinAPathSegment) {
  struct Case { const char* pattern; const char* text; bool match; } cases[] = {
      {"registry.example.com/payments/*", "registry.example.com/payments/agent:1.0", true},
      {"registry.example.com/payments/*", "registry.example.com/payments/sub/agent:1.0", false},
      {"registry.example.com/payments/**", "registry.example.com/payments/sub/agent:1.0", true},
      {"registry.example.com/payments/*", "registry.example.com/paymentsx/agent", false},
      {"registry.example.com/payments/agent:?.0", "registry.example.com/payments/agent:2.0", true},
      {"*", "a/b", false},
      {"**", "a/b", true},
      {"exact:1", "exact:1", true},
      {"exact:1", "exact:12", false},
      {"a*b*c", "axxbyyc", true},
      {"a*b*c", "axxbyy", false},
  };
  for (const auto& c : cases) EXPECT_EQ(globMatch(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
}

TEST(Admit, TableOfDecisions) {
  auto p = policy();
  struct Case { const char* name; json spec; bool admitted; const char* reason; const char* message_part; } cases[] = {
      {"defaults fill everything", json::object(), true, "Admitted", ""},
      {"allowed image", {{"image", "registry.example.com/payments/agent-next:3"}}, true, "Admitted", ""},
      {"image outside the allowed globs", {{"image", "docker.io/evil/agent:1"}}, false, "ImageNotAllowed", "spec.image docker.io/evil/agent:1"},
      {"image in a sub-path", {{"image", "registry.example.com/payments/x/agent:1"}}, false, "ImageNotAllowed", "spec.images.allowed"},
      {"the pinned model", {{"model", "claude-sonnet-4-5"}}, true, "Admitted", ""},
      {"another model", {{"model", "claude-opus-4"}}, false, "ModelNotAllowed", "spec.model claude-opus-4"},
      {"tokens over max", {{"budget", {{"tokens", 10000001}}}}, false, "BudgetOverMax", "spec.budget.tokens 10000001 exceeds"},
      {"tokens at max", {{"budget", {{"tokens", 10000000}}}}, true, "Admitted", ""},
      {"cost over max", {{"budget", {{"costUSD", "40.01"}}}}, false, "BudgetOverMax", "spec.budget.costUSD 40.01 exceeds AgentPolicy payments max of 40"},
      {"wall clock over max", {{"budget", {{"wallClock", "4h1m"}}}}, false, "BudgetOverMax", "spec.budget.wallClock 4h1m exceeds"},
      {"zero tokens", {{"budget", {{"tokens", 0}}}}, false, "BudgetInvalid", "positive"},
      {"known stages", {{"stages", {"pr", "deploy"}}}, true, "Admitted", ""},
      {"unknown stage", {{"stages", {"pr", "release"}}}, false, "UnknownStage", "spec.stages names release"},
      // Look-alikes of the allowed registry path, matched on the parsed reference.
      {"a longer path component", {{"image", "registry.example.com/payments-evil/x:1"}}, false, "ImageNotAllowed", "spec.images.allowed"},
      {"the registry as a subdomain", {{"image", "registry.example.com.evil.io/payments/agent:1"}}, false, "ImageNotAllowed", ""},
      {"the registry as a path", {{"image", "evil.io/registry.example.com/payments/agent:1"}}, false, "ImageNotAllowed", ""},
      {"another port", {{"image", "registry.example.com:5000/payments/agent:1"}}, false, "ImageNotAllowed", ""},
      {"a digest", {{"image", "registry.example.com/payments/agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
       true, "Admitted", ""},
      {"a repository on an allowed host", {{"repository", {{"url", "https://github.com/acme/payments"}}}}, true, "Admitted", ""},
      {"a repository of an organisation in another case", {{"repository", {{"url", "git@github.com:ACME/payments.git"}}}}, true, "Admitted", ""},
      {"a repository of another organisation", {{"repository", {{"url", "https://github.com/evil/payments"}}}}, false,
       "RepositoryNotAllowed", "spec.repository.url names a host or organisation AgentPolicy payments does not allow (spec.repositories: github.com/{acme}, git.example.com)"},
      {"a repository on another host", {{"repository", {{"url", "https://gitlab.com/acme/payments"}}}}, false, "RepositoryNotAllowed", "spec.repositories"},
      {"any organisation on a host without a list", {{"repository", {{"url", "ssh://git@git.example.com:2222/any/x"}}}}, true, "Admitted", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto a = admit(run(c.spec), p);
    EXPECT_EQ(a.admitted, c.admitted);
    EXPECT_EQ(a.reason, c.reason);
    EXPECT_NE(a.message.find(c.message_part), std::string::npos) << a.message;
  }
  auto a = admit(run({{"budget", {{"tokens", 5}}}}), p);
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(a.effective.tokens, 5);
  EXPECT_EQ(a.effective.cost_cents, 1000) << "the policy's default";
  EXPECT_EQ(a.effective.wall_clock, std::chrono::hours(1));
  EXPECT_EQ(a.effective.image, "registry.example.com/payments/agent:2.1.4");
  EXPECT_EQ(a.effective.model, "claude-sonnet-4-5");
}

TEST(Admit, NoDefaultAndNoValueIsRefused) {
  auto p = policy();
  p.default_budget.cost_cents.reset();
  auto a = admit(run(json::object()), p);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.reason, "BudgetMissing");
  EXPECT_NE(a.message.find("spec.budget.costUSD"), std::string::npos);
}

AgentRun teamRun(const std::string& name, const std::string& created, const std::string& phase) {
  AgentRun r;
  r.ns = "payments";
  r.name = name;
  r.uid = "uid-" + name;
  r.creation_timestamp = created;
  r.phase = phase;
  return r;
}

TEST(ConcurrencySlot, WaitingRunsStartInCreationOrder) {
  std::vector<AgentRun> team = {
      teamRun("a", "2026-11-23T10:00:00Z", "Running"),
      teamRun("b", "2026-11-23T10:01:00Z", "AwaitingApproval"),
      teamRun("c", "2026-11-23T10:02:00Z", "Pending"),
      teamRun("d", "2026-11-23T10:03:00Z", ""),
      teamRun("e", "2026-11-23T09:00:00Z", "Succeeded"),
  };
  auto c = concurrencySlot(team[2], team, 2);
  EXPECT_FALSE(c.may_start);
  EXPECT_EQ(c.active, 2);
  EXPECT_EQ(c.position, 1);
  EXPECT_NE(c.message.find("spec.concurrency.maxRunning"), std::string::npos);
  EXPECT_EQ(concurrencySlot(team[3], team, 2).position, 2);
  // One finishes: the oldest waiting run gets the slot, the next still waits.
  team[0].phase = "Succeeded";
  EXPECT_TRUE(concurrencySlot(team[2], team, 2).may_start);
  EXPECT_FALSE(concurrencySlot(team[3], team, 2).may_start);
  // A cancelled waiting run does not hold up the line.
  team[2].cancel = true;
  EXPECT_TRUE(concurrencySlot(team[3], team, 2).may_start);
  // A run whose pod was created holds its slot while the pod is still starting (phase Pending).
  team[2].cancel = false;
  team[2].phase = "Pending";
  team[2].started = true;
  EXPECT_FALSE(concurrencySlot(team[3], team, 2).may_start);
}

TEST(FindOriginal, TheEarliestRunWithTheKeyRunsTheOthersFollowIt) {
  auto a = teamRun("a", "2026-11-23T10:00:00Z", "Succeeded");
  auto b = teamRun("b", "2026-11-23T11:00:00Z", "");
  auto c = teamRun("c", "2026-11-23T12:00:00Z", "");
  auto other = teamRun("d", "2026-11-23T09:00:00Z", "Failed");
  for (auto* r : {&a, &b, &c}) r->idempotency_key = "fix-1";
  other.idempotency_key = "fix-2";
  std::vector<AgentRun> all = {a, b, c, other};
  auto ob = findOriginal(b, all);
  EXPECT_TRUE(ob.found);
  EXPECT_EQ(ob.name, "a");
  EXPECT_EQ(ob.phase, "Succeeded");
  EXPECT_EQ(findOriginal(c, all).name, "a");
  EXPECT_FALSE(findOriginal(a, all).found) << "the earliest is the original";
  EXPECT_FALSE(findOriginal(other, all).found) << "another key";
  b.idempotency_key = "";
  EXPECT_FALSE(findOriginal(b, all).found) << "no key, no duplicates";
  // A run that already started keeps running even if an older duplicate appears later.
  c.started = true;
  EXPECT_FALSE(findOriginal(c, all).found);
  // Another namespace is another scope.
  auto elsewhere = teamRun("e", "2026-11-23T13:00:00Z", "");
  elsewhere.ns = "other";
  elsewhere.idempotency_key = "fix-1";
  EXPECT_FALSE(findOriginal(elsewhere, all).found);
}

}  // namespace
}  // namespace paddock::controllers
