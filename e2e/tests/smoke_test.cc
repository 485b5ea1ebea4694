// The local control plane is real: the pinned API server version, pods scheduled to kwok
// nodes and run, and Pod Security Admission enforced.
#include <gtest/gtest.h>

#include "e2e/tests/support.h"

namespace paddock::e2e {
namespace {

json pod(const std::string& name, bool privileged) {
  json container = {{"name", "main"}, {"image", "registry.example.com/smoke:1"}};
  if (privileged) container["securityContext"] = {{"privileged", true}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}}},
          {"spec", {{"containers", json::array({container})}, {"restartPolicy", "Never"}}}};
}

TEST(Smoke, ApiServerReportsThePinnedVersion) {
  auto c = adminClient();
  auto v = c->getJson("/version");
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->value("gitVersion", ""), env("PADDOCK_E2E_KUBE_VERSION"));
  std::cout << "kube-apiserver version: " << v->value("gitVersion", "") << " (" << v->value("platform", "") << ")\n";
}

TEST(Smoke, PodIsScheduledToAKwokNodeAndRuns) {
  auto c = adminClient();
  TempNamespace ns(*c, "smoke");
  auto created = request(*c, http::Method::Post, "/api/v1/namespaces/" + ns.name() + "/pods", pod("runner", false));
  ASSERT_EQ(created.status, 201) << created.body;
  auto rv = json::parse(created.body)["metadata"]["resourceVersion"].get<std::string>();
  auto running = watchUntil(*c, "/api/v1/namespaces/" + ns.name() + "/pods?fieldSelector=metadata.name%3Drunner", rv,
                            [](const std::string&, const json& p) {
                              return p["status"].value("phase", "") == "Running";
                            },
                            std::chrono::seconds(60));
  ASSERT_FALSE(running.is_null()) << "pod did not reach Running within 60 s";
  EXPECT_EQ(running["spec"].value("nodeName", "").rfind("kwok-node-", 0), 0u) << running["spec"].dump();
  EXPECT_FALSE(running["status"].value("podIP", "").empty());
}

TEST(Smoke, RestrictedNamespaceRejectsAPrivilegedPod) {
  auto c = adminClient();
  TempNamespace ns(*c, "smoke-restricted", {{"pod-security.kubernetes.io/enforce", "restricted"}});
  auto r = request(*c, http::Method::Post, "/api/v1/namespaces/" + ns.name() + "/pods", pod("privileged", true));
  EXPECT_EQ(r.status, 403) << r.body;
  auto e = kube::errorFromResponse(r);
  EXPECT_EQ(e.reason, "Forbidden");
  EXPECT_NE(e.message.find("violates PodSecurity \"restricted:latest\""), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("privileged"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace paddock::e2e
