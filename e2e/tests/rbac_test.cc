// The operator's RBAC (charts/paddock/files/operator-rules.yaml) on the real API server: its
// service account can read no Secret anywhere, and the operator runs under exactly those rules:
// caches sync, it leads, and nothing it does is forbidden.
#include <gtest/gtest.h>

#include <fstream>

#include "e2e/tests/support.h"

namespace paddock::e2e {
namespace {

// Creates a cluster-scoped object and deletes it when the guard goes.
struct ClusterObject {
  ClusterObject(kube::RestClient& c, std::string collection, const json& body) : c_(c) {
    auto r = request(c_, http::Method::Post, collection, body);
    if (r.status != 201) throw std::runtime_error("create " + collection + ": " + r.body);
    path_ = collection + "/" + body["metadata"]["name"].get<std::string>();
  }
  ~ClusterObject() {
    try {
      request(c_, http::Method::Delete, path_);
    } catch (...) {
    }
  }
  kube::RestClient& c_;
  std::string path_;
};

bool allowed(kube::RestClient& c, const std::string& user, const std::string& sa_ns, const std::string& ns,
             const std::string& verb, const std::string& group, const std::string& resource, const std::string& name = "") {
  json review = {{"apiVersion", "authorization.k8s.io/v1"},
                 {"kind", "SubjectAccessReview"},
                 {"spec", {{"user", user},
                           {"groups", {"system:serviceaccounts", "system:serviceaccounts:" + sa_ns, "system:authenticated"}},
                           {"resourceAttributes", {{"namespace", ns}, {"verb", verb}, {"group", group}, {"resource", resource},
                                                   {"name", name}}}}}};
  auto r = request(c, http::Method::Post, "/apis/authorization.k8s.io/v1/subjectaccessreviews", review);
  if (r.status != 201) throw std::runtime_error("SubjectAccessReview: " + r.body);
  return json::parse(r.body)["status"].value("allowed", false);
}

TEST(OperatorRbac, ReadsNoSecretAndIsEnoughToRun) {
  auto admin = adminClient();
  TempNamespace ns(*admin, "rbac");
  std::string name = "paddock-operator-" + randomSuffix();
  json rules = loadYaml(repoPath("charts/paddock/files/operator-rules.yaml"));
  ASSERT_TRUE(rules.is_array()) << rules.dump();
  ClusterObject role(*admin, "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                     {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "ClusterRole"},
                      {"metadata", {{"name", name}}}, {"rules", rules}});
  auto sa = request(*admin, http::Method::Post, "/api/v1/namespaces/" + ns.name() + "/serviceaccounts",
                    {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "paddock-operator"}}}});
  ASSERT_EQ(sa.status, 201) << sa.body;
  ClusterObject binding(*admin, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                        {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "ClusterRoleBinding"},
                         {"metadata", {{"name", name}}},
                         {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", name}}},
                         {"subjects", json::array({{{"kind", "ServiceAccount"}, {"name", "paddock-operator"},
                                                    {"namespace", ns.name()}}})}});
  std::string user = "system:serviceaccount:" + ns.name() + ":paddock-operator";

  // Secrets: created (a run's gateway credential), never read, listed, changed or deleted, in any
  // namespace, nor cluster-wide.
  for (const std::string& where : {std::string(""), std::string("default"), std::string("kube-system"), ns.name()}) {
    for (const char* verb : {"get", "list", "watch", "update", "patch", "delete"}) {
      EXPECT_FALSE(allowed(*admin, user, ns.name(), where, verb, "", "secrets"))
          << verb << " secrets in \"" << where << "\" must be denied";
    }
  }
  EXPECT_TRUE(allowed(*admin, user, ns.name(), "default", "create", "", "secrets"));
  // The namespace's paddock-gateway: created, then read, applied (patch) and deleted by its name
  // only; no other ConfigMap, Service or Deployment, and never listed, watched or updated whole.
  for (const auto& [group, resource] : {std::pair{"", "configmaps"}, std::pair{"", "services"}, std::pair{"apps", "deployments"}}) {
    EXPECT_TRUE(allowed(*admin, user, ns.name(), "default", "create", group, resource)) << resource;
    for (const char* verb : {"get", "patch", "delete"}) {
      EXPECT_TRUE(allowed(*admin, user, ns.name(), "default", verb, group, resource, "paddock-gateway")) << verb << " " << resource;
      EXPECT_FALSE(allowed(*admin, user, ns.name(), "default", verb, group, resource, "kube-root-ca.crt"))
          << verb << " another " << resource;
      EXPECT_FALSE(allowed(*admin, user, ns.name(), "default", verb, group, resource)) << verb << " any " << resource;
    }
    for (const char* verb : {"list", "watch", "update"}) {
      EXPECT_FALSE(allowed(*admin, user, ns.name(), "default", verb, group, resource)) << verb << " " << resource;
    }
  }
  // The control: what it needs is granted.
  EXPECT_TRUE(allowed(*admin, user, ns.name(), "default", "create", "", "pods"));
  EXPECT_TRUE(allowed(*admin, user, ns.name(), "", "watch", "paddock.dev", "agentruns"));

  // The same answer from kubectl, as a platform engineer would ask it.
  Process canI({env("PADDOCK_KUBECTL"), "--kubeconfig", env("PADDOCK_E2E_KUBECONFIG"), "auth", "can-i", "get", "secrets",
                "--all-namespaces", "--as", user});
  EXPECT_EQ(canI.wait(std::chrono::seconds(30)), 1) << "kubectl auth can-i must answer no";
  ASSERT_FALSE(canI.lines().empty());
  EXPECT_EQ(canI.lines().front(), "no");

  // Run the operator as that service account.
  auto token = request(*admin, http::Method::Post,
                       "/api/v1/namespaces/" + ns.name() + "/serviceaccounts/paddock-operator/token",
                       {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"},
                        {"spec", {{"expirationSeconds", 3600}}}});
  ASSERT_EQ(token.status, 201) << token.body;
  auto admin_config = kube::loadKubeconfig({env("PADDOCK_E2E_KUBECONFIG")});
  ASSERT_TRUE(admin_config.ok());
  std::string dir = testing::TempDir();
  std::ofstream(dir + "/rbac-ca.crt") << admin_config->tls.ca_pem;
  std::ofstream(dir + "/rbac-kubeconfig")
      << "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
      << "clusters: [{name: c, cluster: {server: '" << admin_config->server << "', certificate-authority: " << dir
      << "/rbac-ca.crt}}]\n"
      << "users: [{name: sa, user: {token: '" << json::parse(token.body)["status"]["token"].get<std::string>() << "'}}]\n"
      << "contexts: [{name: sa, context: {cluster: c, user: sa, namespace: " << ns.name() << "}}]\n";
  Process op({env("PADDOCK_OPERATOR_BIN"), "--kubeconfig", dir + "/rbac-kubeconfig", "--listen-address", "127.0.0.1:0"});
  auto serving = op.waitForLine([](const std::string& l) { return l.find("serving /healthz") != std::string::npos; },
                                std::chrono::seconds(20));
  int port = json::parse(serving, nullptr, false).value("port", 0);
  ASSERT_GT(port, 0) << testing::PrintToString(op.lines());
  auto http = http::makeClient("http://127.0.0.1:" + std::to_string(port), {});
  ASSERT_TRUE(http.ok());
  EXPECT_TRUE(eventually([&] {
    auto m = (*http)->send({http::Method::Get, "/metrics"});
    auto r = (*http)->send({http::Method::Get, "/readyz"});
    return m.ok() && r.ok() && r->status == 200 && m->body.find("\npaddock_leader 1") != std::string::npos;
  }, std::chrono::seconds(30))) << "not ready and leading under its RBAC; log: " << testing::PrintToString(op.lines());
  op.signal(SIGTERM);
  EXPECT_EQ(op.wait(std::chrono::seconds(15)), 0);
  // An RBAC denial reads "<resource> is forbidden: User \"system:serviceaccount:...\" cannot ...".
  // (A 403 for writing into a namespace that is being deleted is not about RBAC.)
  for (const auto& l : op.lines()) EXPECT_EQ(l.find("is forbidden: User"), std::string::npos) << l;
}

}  // namespace
}  // namespace paddock::e2e
