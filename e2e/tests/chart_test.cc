// The Helm chart (charts/paddock). ChartRender (label chart) checks what `helm template` renders,
// without a cluster. Chart (label e2e) lints it, has the real API server dry-run everything it
// renders, installs it, runs the operator as a local process with the chart's flags under the
// chart's ServiceAccount token until it reconciles a run, upgrades it, and uninstalls it leaving
// no object with the release's labels behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "e2e/tests/support.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"

namespace paddock::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Output {
  int rc = -1;
  std::string out;                  // stdout
  std::vector<std::string> errors;  // stderr, line by line
};

// Runs argv with stdout kept apart (helm and kubectl print YAML there, warnings on stderr).
Output run(std::vector<std::string> argv, std::chrono::seconds timeout = 180s) {
  std::string file = testing::TempDir() + "/chart-stdout-" + randomSuffix();
  std::vector<std::string> sh = {"/bin/sh", "-c", "exec \"$0\" \"$@\" > '" + file + "'"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  Process p(sh);
  Output o;
  o.rc = p.wait(timeout);
  o.errors = p.lines();
  std::ifstream in(file);
  o.out.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(file);
  return o;
}

std::string chartDir() { return repoPath("charts/paddock"); }

Output helm(std::vector<std::string> args) {
  args.insert(args.begin(), {env("PADDOCK_HELM"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG")});
  return run(args);
}

Output kubectl(std::vector<std::string> args) {
  args.insert(args.begin(), {env("PADDOCK_KUBECTL"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG")});
  return run(args);
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// `helm template` of release paddock-test in namespace paddock-system with `sets` (--set a=b).
std::vector<json> render(const std::vector<std::string>& sets = {}, const std::string& release = "paddock-test",
                         const std::string& ns = "paddock-system") {
  std::vector<std::string> args = {"template", release, chartDir(), "--namespace", ns, "--kube-version",
                                   env("PADDOCK_E2E_KUBE_VERSION")};
  for (const auto& s : sets) args.insert(args.end(), {"--set", s});
  auto o = helm(args);
  EXPECT_EQ(o.rc, 0) << joined(o.errors);
  return o.rc == 0 ? loadYamlDocuments(o.out) : std::vector<json>{};
}

json find(const std::vector<json>& docs, const std::string& kind, const std::string& name_suffix = "") {
  for (const auto& d : docs) {
    std::string name = d["metadata"].value("name", "");
    if (d.value("kind", "") == kind && name.size() >= name_suffix.size() &&
        name.compare(name.size() - name_suffix.size(), name_suffix.size(), name_suffix) == 0) {
      return d;
    }
  }
  return nullptr;
}

bool hasArg(const json& container, const std::string& arg) {
  for (const auto& a : container.value("args", json::array())) {
    if (a == arg) return true;
  }
  return false;
}

// Every toggle on, except the ones that need CRDs the test cluster lacks (Prometheus Operator).
const std::vector<std::string> kEverything = {"prometheus.url=http://prometheus.monitoring:9090",
                                              "prometheus.bearerTokenSecret.name=prom-token",
                                              "prometheus.caConfigMap.name=prom-ca"};

TEST(ChartRender, OperatorRulesAreTheFileTheTestsGrant) {
  auto docs = render();
  json role = find(docs, "ClusterRole", "-operator");
  ASSERT_FALSE(role.is_null());
  json file = loadYaml(repoPath("charts/paddock/files/operator-rules.yaml"));
  EXPECT_EQ(role["rules"], file) << "the chart's ClusterRole must be files/operator-rules.yaml as it is";
  json binding = find(docs, "ClusterRoleBinding", "-operator");
  ASSERT_FALSE(binding.is_null());
  EXPECT_EQ(binding["roleRef"]["name"], role["metadata"]["name"]);
  json sa = find(docs, "ServiceAccount");
  EXPECT_EQ(binding["subjects"][0]["name"], sa["metadata"]["name"]);
  EXPECT_EQ(binding["subjects"][0]["namespace"], "paddock-system");
  EXPECT_EQ(find(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"], sa["metadata"]["name"]);
}

TEST(ChartRender, CrdsAreTheRepositorysCrds) {
  std::set<std::string> repo, chart;
  for (const auto& e : fs::directory_iterator(repoPath("crds"))) {
    if (e.is_regular_file()) repo.insert(e.path().filename());
  }
  for (const auto& e : fs::directory_iterator(repoPath("charts/paddock/crds"))) chart.insert(e.path().filename());
  EXPECT_EQ(chart, repo) << "charts/paddock/crds must hold exactly the files of crds/ (cp crds/*.yaml charts/paddock/crds/)";
  for (const auto& f : repo) {
    EXPECT_EQ(readFile(repoPath("charts/paddock/crds/" + f)), readFile(repoPath("crds/" + f)))
        << f << " differs: cp crds/*.yaml charts/paddock/crds/";
  }
}

// The admission policies are the files as they are, with the chart's labels; the mutating one only
// where the API server serves MutatingAdmissionPolicy (helm's .Capabilities).
TEST(ChartRender, AdmissionPoliciesAreTheFilesAndTheMutatingOneOnlyWhereServed) {
  auto policies = [](const std::vector<json>& docs) {
    std::vector<json> out;
    for (auto d : docs) {
      if (d.value("apiVersion", "").rfind("admissionregistration.k8s.io/", 0) != 0) continue;
      d["metadata"].erase("labels");
      out.push_back(d);
    }
    // Helm orders what it renders by kind; the comparison is of the set.
    std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
      return std::make_pair(a.value("kind", ""), a["metadata"].value("name", "")) <
             std::make_pair(b.value("kind", ""), b["metadata"].value("name", ""));
    });
    return out;
  };
  auto file = [&](const char* path) { return policies(loadYamlDocuments(readFile(repoPath(path)))); };
  auto validating = file("charts/paddock/files/admission-policies.yaml");
  auto mutating = file("charts/paddock/files/mutating-admission-policies.yaml");
  ASSERT_EQ(mutating.size(), 2u);
  EXPECT_EQ(mutating[0]["kind"], "MutatingAdmissionPolicy");
  EXPECT_EQ(mutating[1]["kind"], "MutatingAdmissionPolicyBinding");
  EXPECT_EQ(policies(render()), validating) << "without MutatingAdmissionPolicy served, only the validating ones";

  auto served = helm({"template", "paddock-test", chartDir(), "--namespace", "paddock-system", "--kube-version",
                      env("PADDOCK_E2E_KUBE_VERSION"), "--api-versions",
                      "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy"});
  ASSERT_EQ(served.rc, 0) << joined(served.errors);
  auto both = validating;
  both.insert(both.end(), mutating.begin(), mutating.end());
  EXPECT_EQ(policies(loadYamlDocuments(served.out)), policies(both));
  EXPECT_TRUE(policies(render({"admissionPolicies.enabled=false"})).empty());
}

TEST(ChartRender, EveryObjectCarriesTheReleaseLabels) {
  auto sets = kEverything;
  sets.insert(sets.end(), {"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"});
  auto docs = render(sets);
  ASSERT_GE(docs.size(), 12u);
  for (const auto& d : docs) {
    const json& labels = d["metadata"].value("labels", json::object());
    EXPECT_EQ(labels.value("app.kubernetes.io/instance", ""), "paddock-test") << d["kind"] << " " << d["metadata"]["name"];
    EXPECT_EQ(labels.value("app.kubernetes.io/managed-by", ""), "Helm") << d["kind"] << " " << d["metadata"]["name"];
  }
}

TEST(ChartRender, TheOperatorDeploymentIsHardenedAndHighlyAvailable) {
  auto docs = render();
  json d = find(docs, "Deployment");
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["spec"]["replicas"], 2);
  const json& pod = d["spec"]["template"]["spec"];
  const json& c = pod["containers"][0];
  EXPECT_TRUE(hasArg(c, "--leader-elect=true"));
  EXPECT_TRUE(hasArg(c, "--leader-election-namespace=paddock-system"));
  EXPECT_TRUE(hasArg(c, "--audit-store=/var/lib/paddock/audit"));
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["runAsUser"], 65532);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_TRUE(c["resources"].contains("requests"));
  EXPECT_TRUE(c["resources"].contains("limits"));
  ASSERT_TRUE(pod.contains("topologySpreadConstraints"));
  EXPECT_EQ(pod["topologySpreadConstraints"][0]["topologyKey"], "kubernetes.io/hostname");
  json pdb = find(docs, "PodDisruptionBudget");
  ASSERT_FALSE(pdb.is_null());
  EXPECT_EQ(pdb["spec"]["maxUnavailable"], 1);
  EXPECT_EQ(pdb["spec"]["selector"], d["spec"]["selector"]);
  EXPECT_FALSE(find(docs, "NetworkPolicy").is_null());
  EXPECT_FALSE(find(docs, "Lease").is_null()) << "the chart owns the Lease, so uninstall removes it";
  // One replica: no budget that would block every drain.
  EXPECT_TRUE(find(render({"replicaCount=1"}), "PodDisruptionBudget").is_null());
}

TEST(ChartRender, AMongoAuditStoreComesFromASecretIntoTheEnvironment) {
  auto docs = render({"audit.store=mongodb", "audit.mongodb.uriSecret.name=audit-mongo"});
  json c = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
  json want = {{"name", "PADDOCK_AUDIT_STORE"},
               {"valueFrom", {{"secretKeyRef", {{"name", "audit-mongo"}, {"key", "uri"}}}}}};
  ASSERT_TRUE(c.contains("env"));
  EXPECT_EQ(c["env"][0], want);
  EXPECT_FALSE(hasArg(c, "--audit-store=/var/lib/paddock/audit")) << "--audit-store would win over the environment";
  EXPECT_TRUE(find(docs, "PersistentVolumeClaim").is_null());
  // Without the Secret's name the chart refuses, rather than rendering an operator with no store.
  auto missing = helm({"template", "t", chartDir(), "--kube-version", env("PADDOCK_E2E_KUBE_VERSION"), "--set",
                       "audit.store=mongodb"});
  EXPECT_NE(missing.rc, 0);
}

TEST(ChartRender, TheFileAuditStoreIsAClaimKeptOnUninstall) {
  auto docs = render();
  json pvc = find(docs, "PersistentVolumeClaim");
  ASSERT_FALSE(pvc.is_null());
  EXPECT_EQ(pvc["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
  EXPECT_EQ(pvc["spec"]["accessModes"], json::array({"ReadWriteMany"}));
  json volumes = find(docs, "Deployment")["spec"]["template"]["spec"]["volumes"];
  EXPECT_NE(volumes.dump().find(pvc["metadata"]["name"].get<std::string>()), std::string::npos);
}

TEST(ChartRender, UserRolesAggregateWhereThatFits) {
  auto docs = render();
  json author = find(docs, "ClusterRole", "-run-author");
  json approver = find(docs, "ClusterRole", "-approver");
  json viewer = find(docs, "ClusterRole", "-viewer");
  ASSERT_FALSE(author.is_null());
  ASSERT_FALSE(approver.is_null());
  ASSERT_FALSE(viewer.is_null());
  EXPECT_EQ(author["metadata"]["labels"].value("rbac.authorization.k8s.io/aggregate-to-edit", ""), "true");
  EXPECT_EQ(author["metadata"]["labels"].value("rbac.authorization.k8s.io/aggregate-to-admin", ""), "true");
  EXPECT_FALSE(author["metadata"]["labels"].contains("rbac.authorization.k8s.io/aggregate-to-view"));
  EXPECT_EQ(viewer["metadata"]["labels"].value("rbac.authorization.k8s.io/aggregate-to-view", ""), "true");
  // Approving is a grant of its own: not part of admin, edit or view unless asked for.
  for (const auto& [k, v] : approver["metadata"]["labels"].items()) {
    EXPECT_EQ(k.find("rbac.authorization.k8s.io/aggregate-to"), std::string::npos) << k;
  }
  bool approve = false;
  for (const auto& r : approver["rules"]) {
    if (r["resources"].dump().find("\"agentruns\"") != std::string::npos &&
        r["verbs"].dump().find("\"approve\"") != std::string::npos) {
      approve = true;
    }
  }
  EXPECT_TRUE(approve) << approver.dump();
  for (const auto& role : {author, viewer}) EXPECT_EQ(role.dump().find("approve"), std::string::npos);
  EXPECT_EQ(find(render({"rbac.userRoles.aggregateApproverToAdmin=true"}), "ClusterRole", "-approver")["metadata"]["labels"]
                .value("rbac.authorization.k8s.io/aggregate-to-admin", ""),
            "true");
}

TEST(ChartRender, TheSchemaRejectsUnknownAndMistypedValues) {
  for (const char* bad : {"audti.store=file", "replicaCount=two", "audit.store=s3", "operator.logLevel=loud",
                          "leaderElection.leaseDuration=fifteen"}) {
    auto o = helm({"template", "t", chartDir(), "--kube-version", env("PADDOCK_E2E_KUBE_VERSION"), "--set", bad});
    EXPECT_NE(o.rc, 0) << bad << " was accepted";
  }
}

// The alerts name only metrics the operator serves, and Prometheus accepts them.
// Every paddock_* metric named in `exprs` is one the sources of the operator or paddock-gateway register.
void expectServedMetricsOnly(const std::string& exprs) {
  std::string sources;
  for (const char* dir : {"operator", "controllers", "gateway"}) {
    for (const auto& e : fs::recursive_directory_iterator(repoPath(dir))) {
      if (e.path().extension() == ".cc") sources += readFile(e.path());
    }
  }
  std::regex metric("paddock_[a-z_]+");
  for (auto it = std::sregex_iterator(exprs.begin(), exprs.end(), metric); it != std::sregex_iterator(); ++it) {
    std::string name = std::regex_replace(it->str(), std::regex("_(bucket|sum|count)$"), "");
    EXPECT_NE(sources.find("\"" + name + "\""), std::string::npos) << name << " is not a metric the operator or paddock-gateway serves";
  }
}

// promtool (Debian's prometheus package) parses a rule file's every expression; JSON is YAML.
void expectPromtoolAccepts(const json& rule_file) {
  std::string file = testing::TempDir() + "/paddock-rules-" + randomSuffix() + ".json";
  std::ofstream(file) << rule_file.dump();
  auto check = run({"promtool", "check", "rules", file});
  fs::remove(file);
  if (check.rc == 127) GTEST_SKIP() << "promtool is not installed";
  EXPECT_EQ(check.rc, 0) << check.out << joined(check.errors);
}

TEST(ChartRender, AlertsUseTheOperatorsMetricsAndParse) {
  auto docs = render({"metrics.prometheusRule.enabled=true"});
  json rule = find(docs, "PrometheusRule");
  ASSERT_FALSE(rule.is_null());
  std::string exprs;
  std::set<std::string> alerts;
  for (const auto& g : rule["spec"]["groups"]) {
    for (const auto& r : g["rules"]) {
      exprs += r["expr"].get<std::string>() + "\n";
      alerts.insert(r["alert"]);
    }
  }
  for (const char* a : {"PaddockRunsStuck", "PaddockBudgetEnforcementFailing", "PaddockAuditLag"}) {
    EXPECT_TRUE(alerts.count(a)) << a;
  }
  EXPECT_NE(exprs.find("paddock_prometheus_query_errors_total"), std::string::npos);
  EXPECT_NE(exprs.find("paddock_audit_"), std::string::npos);
  expectServedMetricsOnly(exprs);
  expectPromtoolAccepts(rule["spec"]);
}

TEST(ChartRender, TheGrafanaDashboardParsesAndUsesTheOperatorsMetrics) {
  EXPECT_TRUE(find(render(), "ConfigMap", "-dashboard").is_null()) << "off by default";
  auto docs = render({"metrics.grafanaDashboard.enabled=true", "metrics.grafanaDashboard.folder=Platform"});
  json cm = find(docs, "ConfigMap", "-dashboard");
  ASSERT_FALSE(cm.is_null());
  EXPECT_EQ(cm["metadata"]["labels"]["grafana_dashboard"], "1");
  EXPECT_EQ(cm["metadata"]["annotations"]["grafana_folder"], "Platform");
  json dashboard = json::parse(cm["data"]["paddock.json"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(dashboard.is_object()) << "the dashboard is not JSON";
  EXPECT_EQ(dashboard, json::parse(readFile(repoPath("charts/paddock/dashboards/paddock.json")))) << "rendered verbatim";
  std::string exprs;
  json rules = json::array();
  std::set<std::string> titles;
  for (const auto& panel : dashboard["panels"]) {
    titles.insert(panel["title"].get<std::string>());
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const auto& t : panel["targets"]) {
      exprs += t["expr"].get<std::string>() + "\n";
      rules.push_back({{"record", "paddock:dashboard_" + std::to_string(rules.size())}, {"expr", t["expr"]}});
    }
  }
  for (const char* t : {"Runs by team and phase", "Spend against budget, per run", "Spend against budget, per team",
                        "Budget checkpoints and terminations", "Reconciles by result", "Reconcile latency",
                        "Reconcile errors", "Work queue", "Audit appends"}) {
    EXPECT_TRUE(titles.count(t)) << t;
  }
  expectServedMetricsOnly(exprs);
  expectPromtoolAccepts({{"groups", {{{"name", "paddock-dashboard"}, {"rules", rules}}}}});
}

// The agents' scrape: the PodMonitor renders the relabelling of files/agent-scrape-job.yaml (the
// job a plain Prometheus uses, and the e2e Prometheus too), and the scrape's source reaches the
// operator as the flags that open each team's NetworkPolicy to it.
TEST(ChartRender, TheAgentPodMonitorBindsSeriesToPodsAsTheScrapeJobDoes) {
  auto docs = render({"prometheus.url=http://prometheus.monitoring:9090", "prometheus.agentPodMonitor.enabled=true",
                      "prometheus.scrapeFrom.namespaceSelector.kubernetes\\.io/metadata\\.name=monitoring",
                      "prometheus.scrapeFrom.podSelector.app=prometheus"});
  json monitor = find(docs, "PodMonitor", "-agents");
  ASSERT_FALSE(monitor.is_null());
  EXPECT_EQ(monitor["spec"]["selector"]["matchLabels"], (json{{"app.kubernetes.io/managed-by", "paddock"}}));
  EXPECT_EQ(monitor["spec"]["namespaceSelector"], (json{{"any", true}}));
  // The agents' metrics port and the gateway's http port, each with the job's relabelling.
  ASSERT_EQ(monitor["spec"]["podMetricsEndpoints"].size(), 2u);
  EXPECT_EQ(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
  EXPECT_EQ(monitor["spec"]["podMetricsEndpoints"][1]["port"], "http");
  EXPECT_EQ(monitor["spec"]["podMetricsEndpoints"][0]["relabelings"], monitor["spec"]["podMetricsEndpoints"][1]["relabelings"]);
  const json& endpoint = monitor["spec"]["podMetricsEndpoints"][0];
  EXPECT_EQ(endpoint["honorLabels"], false) << "the agent's own labels must not win";
  json job = loadYamlDocuments(readFile(repoPath("charts/paddock/files/agent-scrape-job.yaml")))[0][0];
  ASSERT_EQ(endpoint["relabelings"].size(), job["relabel_configs"].size());
  std::map<std::string, std::string> targets;
  for (size_t i = 0; i < job["relabel_configs"].size(); ++i) {
    const json& plain = job["relabel_configs"][i];
    const json& rendered = endpoint["relabelings"][i];
    EXPECT_EQ(rendered["sourceLabels"], plain["source_labels"]) << i;
    EXPECT_EQ(rendered["action"], plain.value("action", "replace")) << i;
    EXPECT_EQ(rendered.value("regex", ""), plain.value("regex", "")) << i;
    if (plain.contains("target_label")) targets[plain["target_label"]] = plain["source_labels"][0];
  }
  EXPECT_EQ(targets, (std::map<std::string, std::string>{{"namespace", "__meta_kubernetes_namespace"},
                                                         {"pod", "__meta_kubernetes_pod_name"},
                                                         {"pod_uid", "__meta_kubernetes_pod_uid"},
                                                         {"agentrun", "__meta_kubernetes_pod_label_paddock_dev_run"}}));
  json operator_container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
  EXPECT_TRUE(hasArg(operator_container, "--prometheus-namespace-selector=kubernetes.io/metadata.name=monitoring"))
      << operator_container["args"].dump();
  EXPECT_TRUE(hasArg(operator_container, "--prometheus-pod-selector=app=prometheus")) << operator_container["args"].dump();
  EXPECT_TRUE(find(render(), "PodMonitor").is_null()) << "off by default";
}

TEST(Chart, LintPasses) {
  for (const std::vector<std::string>& sets :
       {std::vector<std::string>{}, {"audit.store=mongodb", "audit.mongodb.uriSecret.name=audit-mongo"},
        {"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "prometheus.url=http://p:9090"}}) {
    std::vector<std::string> args = {"lint", "--strict", chartDir(), "--kube-version", env("PADDOCK_E2E_KUBE_VERSION")};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    auto o = helm(args);
    EXPECT_EQ(o.rc, 0) << o.out << joined(o.errors);
  }
}

// What `helm template` renders (the CRDs included), as the API server itself judges it.
TEST(Chart, TheRenderedManifestsPassAServerSideDryRun) {
  auto admin = adminClient();
  TempNamespace ns(*admin, "chart-dry", {{"pod-security.kubernetes.io/enforce", "restricted"},
                                         {"pod-security.kubernetes.io/warn", "restricted"}});
  for (std::vector<std::string> sets :
       {kEverything, std::vector<std::string>{"audit.store=mongodb", "audit.mongodb.uriSecret.name=audit-mongo"}}) {
    std::vector<std::string> args = {"template", "paddock-dry-" + randomSuffix(), chartDir(), "--namespace", ns.name(),
                                     "--include-crds", "--kube-version", env("PADDOCK_E2E_KUBE_VERSION")};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    auto rendered = helm(args);
    ASSERT_EQ(rendered.rc, 0) << joined(rendered.errors);
    std::string file = testing::TempDir() + "/chart-rendered.yaml";
    std::ofstream(file) << rendered.out;
    // --force-conflicts: the admission policies are already in the cluster, applied by the fixture
    // under another field manager; a dry run only asks whether the API server accepts these.
    auto applied = kubectl({"apply", "--dry-run=server", "--server-side", "--force-conflicts", "--field-manager=helm",
                            "-f", file});
    EXPECT_EQ(applied.rc, 0) << applied.out << joined(applied.errors);
    for (const auto& l : applied.errors) EXPECT_EQ(l.find("would violate PodSecurity"), std::string::npos) << l;
    // Every object was judged: one "serverside-applied (server dry run)" line per document.
    size_t lines = std::count(applied.out.begin(), applied.out.end(), '\n');
    EXPECT_EQ(lines, loadYamlDocuments(rendered.out).size()) << applied.out;
  }
}

// Lua table syntax for a JSON value, so health.lua can judge a status the operator wrote.
std::string lua(const json& v) {
  if (v.is_object()) {
    std::string s = "{";
    for (const auto& [k, x] : v.items()) s += "[" + json(k).dump() + "]=" + lua(x) + ",";
    return s + "}";
  }
  if (v.is_array()) {
    std::string s = "{";
    for (const auto& x : v) s += lua(x) + ",";
    return s + "}";
  }
  if (v.is_null()) return "nil";
  return v.dump();  // numbers, booleans, and strings (JSON escapes read the same in Lua)
}

std::string argoHealth(const json& agentrun) {
  std::string file = testing::TempDir() + "/chart-health.lua";
  std::ofstream(file) << "obj = " << lua(agentrun) << "\nlocal hs = dofile(" << json(repoPath("charts/paddock/argocd/health.lua")).dump()
                      << ")\nprint(hs.status)\n";
  auto o = run({"lua5.4", file});
  if (o.rc != 0) return "lua5.4 failed: " + joined(o.errors);
  return o.out.substr(0, o.out.find('\n'));
}

// Every object carrying the release's label, of every kind that can be listed, in every namespace.
std::vector<std::string> labelled(const std::string& release) {
  auto kinds = kubectl({"api-resources", "--verbs=list", "-o", "name"});
  EXPECT_EQ(kinds.rc, 0) << joined(kinds.errors);
  std::string all;
  std::istringstream in(kinds.out);
  for (std::string k; std::getline(in, k);) {
    if (!k.empty() && k != "events" && k != "events.events.k8s.io") all += (all.empty() ? "" : ",") + k;
  }
  auto got = kubectl({"get", all, "--all-namespaces", "-l", "app.kubernetes.io/instance=" + release, "-o",
                      "custom-columns=KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name", "--no-headers"});
  EXPECT_EQ(got.rc, 0) << joined(got.errors);
  std::vector<std::string> out;
  std::istringstream lines(got.out);
  for (std::string l; std::getline(lines, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

TEST(Chart, InstallsRunsTheOperatorUnderItsServiceAccountUpgradesAndUninstallsClean) {
  auto admin = adminClient();
  kube::Client client{*admin, {.qps = 0}};
  std::string release = "paddock-" + randomSuffix();
  TempNamespace system(*admin, "chart-sys");
  std::string team = "chart-" + randomSuffix();
  auto teamNs = std::make_unique<TempNamespace>(*admin, "chart-team",
                                                json{{"paddock.dev/team", team},
                                                     {"pod-security.kubernetes.io/enforce", "restricted"}});
  bool uninstalled = false;
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    if (!uninstalled) helm({"uninstall", release, "--namespace", system.name(), "--wait", "--timeout", "60s"});
    client.remove(kube::resources::agentpolicies, "", team).ok();
    kubectl({"delete", "pvc", "--all", "--namespace", system.name(), "--wait=false"});
  }};

  // Install. No --wait: the local control plane has no image to pull,
  // so the Deployment's own pods never become ready; the operator runs as a local process instead.
  // The admission policies are cluster-wide and already in place (the e2e fixture applies them with
  // the CRDs, and other tests rely on them), so this release leaves them out; the render and
  // dry-run tests cover their templates.
  auto installed = helm({"install", release, chartDir(), "--namespace", system.name(), "--timeout", "120s", "--set",
                         "admissionPolicies.enabled=false"});
  ASSERT_EQ(installed.rc, 0) << installed.out << joined(installed.errors);
  EXPECT_NE(installed.out.find("rollout status deployment/" + release + "-operator"), std::string::npos)
      << "NOTES.txt tells the user what to do next:\n" << installed.out;

  // The operator's flags, as the chart renders them for the Deployment.
  auto manifest = helm({"get", "manifest", release, "--namespace", system.name()});
  ASSERT_EQ(manifest.rc, 0) << joined(manifest.errors);
  auto docs = loadYamlDocuments(manifest.out);
  json deployment = find(docs, "Deployment");
  ASSERT_FALSE(deployment.is_null()) << manifest.out;
  std::string sa = deployment["spec"]["template"]["spec"]["serviceAccountName"];
  std::string dir = testing::TempDir() + "/" + release;
  fs::create_directories(dir + "/audit");
  std::vector<std::string> argv = {env("PADDOCK_OPERATOR_BIN")};
  for (const auto& a : deployment["spec"]["template"]["spec"]["containers"][0]["args"]) {
    std::string arg = a;
    if (arg.starts_with("--listen-address=")) arg = "--listen-address=127.0.0.1:0";  // one port per test run
    if (arg.starts_with("--audit-store=")) arg = "--audit-store=" + dir + "/audit";  // the claim's mount point
    argv.push_back(arg);
  }

  // The chart's ServiceAccount token (TokenRequest), in a kubeconfig of its own.
  auto token = request(*admin, http::Method::Post,
                       "/api/v1/namespaces/" + system.name() + "/serviceaccounts/" + sa + "/token",
                       {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"},
                        {"spec", {{"expirationSeconds", 3600}}}});
  ASSERT_EQ(token.status, 201) << token.body;
  auto admin_config = kube::loadKubeconfig({env("PADDOCK_E2E_KUBECONFIG")});
  ASSERT_TRUE(admin_config.ok());
  std::ofstream(dir + "/ca.crt") << admin_config->tls.ca_pem;
  std::ofstream(dir + "/kubeconfig")
      << "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
      << "clusters: [{name: c, cluster: {server: '" << admin_config->server << "', certificate-authority: " << dir
      << "/ca.crt}}]\n"
      << "users: [{name: sa, user: {token: '" << json::parse(token.body)["status"]["token"].get<std::string>() << "'}}]\n"
      << "contexts: [{name: sa, context: {cluster: c, user: sa, namespace: " << system.name() << "}}]\n";
  argv.push_back("--kubeconfig=" + dir + "/kubeconfig");
  auto op = std::make_unique<Process>(argv);
  auto serving = op->waitForLine([](const std::string& l) { return l.find("serving /healthz") != std::string::npos; }, 30s);
  int port = json::parse(serving, nullptr, false).value("port", 0);
  ASSERT_GT(port, 0) << testing::PrintToString(op->lines());
  auto http = http::makeClient("http://127.0.0.1:" + std::to_string(port), {});
  ASSERT_TRUE(http.ok());
  ASSERT_TRUE(eventually([&] {
    auto m = (*http)->send({http::Method::Get, "/metrics"});
    auto r = (*http)->send({http::Method::Get, "/readyz"});
    return m.ok() && r.ok() && r->status == 200 && m->body.find("\npaddock_leader 1") != std::string::npos;
  }, 60s)) << "not ready and leading; log: " << testing::PrintToString(op->lines());
  // It leads through the chart's Lease.
  auto lease = client.get(kube::resources::leases, system.name(), "paddock-operator");
  ASSERT_TRUE(lease.ok()) << lease.error().describe();
  EXPECT_FALSE((*lease)["spec"].value("holderIdentity", "").empty());
  EXPECT_EQ((*lease)["metadata"]["labels"].value("app.kubernetes.io/instance", ""), release);

  // It reconciles a run to the end.
  json policy = loadYaml(repoPath("crds/samples/policy.yaml"));
  policy["metadata"] = {{"name", team}};
  policy["spec"]["namespaceSelector"] = {{"matchLabels", {{"paddock.dev/team", team}}}};
  ASSERT_TRUE(client.create(kube::resources::agentpolicies, "", policy).ok());
  json run = loadYaml(repoPath("crds/samples/run.yaml"));
  run["metadata"] = {{"name", "hello"}};
  auto created = client.create(kube::resources::agentruns, teamNs->name(), run);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  std::string runs = kube::resources::agentruns.path(teamNs->name()) + "?fieldSelector=metadata.name%3Dhello";
  auto running = watchUntil(*admin, runs, (*created)["metadata"]["resourceVersion"],
                            [](const std::string&, const json& o) { return phaseOf(o) == "Running"; }, 60s);
  ASSERT_FALSE(running.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(argoHealth(running), "Progressing");
  ASSERT_TRUE(eventually([&] { return client.get(kube::resources::pods, teamNs->name(), "hello-agent").ok(); }, 10s));
  ASSERT_TRUE(client.mergePatch(kube::resources::pods, teamNs->name(), "hello-agent",
                                {{"metadata", {{"annotations", {{"kwok.paddock.dev/exit", "0"}}}}}})
                  .ok());
  auto done = watchUntil(*admin, runs, running["metadata"]["resourceVersion"],
                         [](const std::string&, const json& o) { return phaseOf(o) == "Succeeded"; }, 60s);
  ASSERT_FALSE(done.is_null()) << testing::PrintToString(op->lines());
  EXPECT_EQ(argoHealth(done), "Healthy") << "the Argo CD health check on the status the operator wrote";
  EXPECT_FALSE(done["metadata"].contains("finalizers")) << "a run must not need the operator to be deleted";

  // Upgrade: new values reach the objects, and the operator keeps its Lease through the chart's apply.
  auto upgraded = helm({"upgrade", release, chartDir(), "--namespace", system.name(), "--reuse-values", "--set",
                        "replicaCount=3", "--set", "rbac.userRoles.aggregate=false", "--timeout", "120s"});
  ASSERT_EQ(upgraded.rc, 0) << upgraded.out << joined(upgraded.errors);
  auto d = client.get(kube::Resource{"apps", "v1", "deployments", true}, system.name(), deployment["metadata"]["name"]);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)["spec"]["replicas"], 3);
  auto author = client.get(kube::Resource{"rbac.authorization.k8s.io", "v1", "clusterroles", false}, "",
                           release + "-run-author");
  ASSERT_TRUE(author.ok());
  EXPECT_FALSE((*author)["metadata"]["labels"].contains("rbac.authorization.k8s.io/aggregate-to-edit"));
  lease = client.get(kube::resources::leases, system.name(), "paddock-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE((*lease)["spec"].value("holderIdentity", "").empty()) << "the upgrade must not clear the holder";
  auto m = (*http)->send({http::Method::Get, "/metrics"});
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("\npaddock_leader 1"), std::string::npos);

  op->signal(SIGTERM);
  EXPECT_EQ(op->wait(20s), 0);
  for (const auto& l : op->lines()) EXPECT_EQ(l.find("is forbidden: User"), std::string::npos) << l;

  // Uninstall, bounded: nothing waits on a finalizer.
  auto start = std::chrono::steady_clock::now();
  auto removed = helm({"uninstall", release, "--namespace", system.name(), "--wait", "--timeout", "120s"});
  ASSERT_EQ(removed.rc, 0) << removed.out << joined(removed.errors);
  uninstalled = true;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 90s);
  // Left: the audit claim alone, by design (helm.sh/resource-policy: keep). Pods of the
  // Deployment go with the garbage collector.
  std::vector<std::string> left;
  ASSERT_TRUE(eventually([&] {
    left = labelled(release);
    return left.size() == 1;
  }, 60s, 1000ms)) << testing::PrintToString(left);
  EXPECT_EQ(left[0].substr(0, left[0].find(' ')), "PersistentVolumeClaim") << left[0];
  EXPECT_NE(left[0].find(release + "-audit"), std::string::npos) << left[0];

  // The team's namespace, run and all, goes without the operator.
  std::string team_ns = teamNs->name();
  teamNs.reset();
  EXPECT_TRUE(eventually([&] { return !client.get(kube::resources::namespaces, "", team_ns).ok(); }, 60s, 500ms))
      << "the namespace with a finished run hangs without the operator";
}

}  // namespace
}  // namespace paddock::e2e
