// The Kubernetes client against the real API server: every verb, paged lists, server-side apply
// that writes nothing when nothing changed, optimistic concurrency, and the request rate limit.
#include "operator/kube/client.h"

#include <gtest/gtest.h>

#include <cmath>

#include "e2e/tests/support.h"

namespace paddock::e2e {
namespace {
using kube::resources::configmaps;

json configMap(const std::string& name, json data, json labels = json::object()) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", labels}}}, {"data", data}};
}

class ClientE2E : public ::testing::Test {
 protected:
  std::unique_ptr<kube::RestClient> rest = adminClient();
  std::vector<std::string> verbs;
  kube::Client client{*rest, kube::ClientOptions{.qps = 0},
                      [this](const std::string& verb, const std::string&, int, auto) { verbs.push_back(verb); }};
};

TEST_F(ClientE2E, CreateGetPagedListAndDelete) {
  TempNamespace ns(*rest, "client");
  for (int i = 0; i < 5; ++i) {
    auto cm = client.create(configmaps, ns.name(), configMap("cm-" + std::to_string(i), {{"i", std::to_string(i)}}, {{"set", "a"}}));
    ASSERT_TRUE(cm.ok()) << cm.error().describe();
  }
  ASSERT_TRUE(client.create(configmaps, ns.name(), configMap("other", {})).ok());
  auto dup = client.create(configmaps, ns.name(), configMap("cm-0", {}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().reason, "AlreadyExists");

  verbs.clear();
  auto list = client.list(configmaps, ns.name(), {.label_selector = "set=a", .page_size = 2});
  ASSERT_TRUE(list.ok()) << list.error().describe();
  EXPECT_EQ(list->items.size(), 5u);
  EXPECT_EQ(verbs.size(), 3u) << "5 items in pages of 2 take 3 requests";
  EXPECT_FALSE(list->resource_version.empty());

  auto got = client.get(configmaps, ns.name(), "cm-3");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["data"]["i"], "3");

  auto stale = client.remove(configmaps, ns.name(), "cm-3", {.precondition_uid = "00000000-0000-0000-0000-000000000000"});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, 409) << stale.error().describe();
  ASSERT_TRUE(client.remove(configmaps, ns.name(), "cm-3",
                            {.precondition_uid = (*got)["metadata"]["uid"].get<std::string>()}).ok());
  auto gone = client.get(configmaps, ns.name(), "cm-3");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().reason, "NotFound");
}

TEST_F(ClientE2E, ApplyOfAnUnchangedObjectWritesNothing) {
  TempNamespace ns(*rest, "apply");
  auto first = client.apply(configmaps, ns.name(), "applied", configMap("applied", {{"k", "v"}}), "paddock-test");
  ASSERT_TRUE(first.ok()) << first.error().describe();
  std::string rv = (*first)["metadata"]["resourceVersion"];
  verbs.clear();
  auto again = client.apply(configmaps, ns.name(), "applied", configMap("applied", {{"k", "v"}}), "paddock-test");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(verbs, std::vector<std::string>{"apply"}) << "one request, no retries";
  EXPECT_EQ((*again)["metadata"]["resourceVersion"], rv) << "unchanged apply must not write";
  auto changed = client.apply(configmaps, ns.name(), "applied", configMap("applied", {{"k", "w"}}), "paddock-test");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE((*changed)["metadata"]["resourceVersion"], rv);
  EXPECT_EQ((*changed)["data"]["k"], "w");
}

TEST_F(ClientE2E, PatchesAndOptimisticConcurrency) {
  TempNamespace ns(*rest, "patch");
  auto cm = client.create(configmaps, ns.name(), configMap("p", {{"a", "1"}}));
  ASSERT_TRUE(cm.ok());
  auto merged = client.mergePatch(configmaps, ns.name(), "p", {{"metadata", {{"labels", {{"x", "y"}}}}}});
  ASSERT_TRUE(merged.ok()) << merged.error().describe();
  EXPECT_EQ((*merged)["metadata"]["labels"]["x"], "y");

  // A JSON patch whose test op fails changes nothing.
  json guarded = json::array({{{"op", "test"}, {"path", "/data/a"}, {"value", "stale"}},
                              {{"op", "replace"}, {"path", "/data/a"}, {"value", "2"}}});
  auto refused = client.jsonPatch(configmaps, ns.name(), "p", guarded);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, 422) << refused.error().describe();
  guarded[0]["value"] = "1";
  auto patched = client.jsonPatch(configmaps, ns.name(), "p", guarded);
  ASSERT_TRUE(patched.ok()) << patched.error().describe();
  EXPECT_EQ((*patched)["data"]["a"], "2");

  // A PUT with a stale resourceVersion is a conflict.
  json old = *cm;
  old["data"]["a"] = "3";
  auto conflict = client.replace(configmaps, ns.name(), "p", old);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().reason, "Conflict");
}

TEST_F(ClientE2E, RateLimiterHoldsTheRequestRateWithinTenPercent) {
  TempNamespace ns(*rest, "rate");
  ASSERT_TRUE(client.create(configmaps, ns.name(), configMap("r", {})).ok());
  const double qps = 40;
  kube::Client limited(*rest, kube::ClientOptions{.qps = qps, .burst = 1});
  ASSERT_TRUE(limited.get(configmaps, ns.name(), "r").ok());  // spends the burst
  const int n = 80;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) ASSERT_TRUE(limited.get(configmaps, ns.name(), "r").ok());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double rate = n / secs;
  std::cout << "rate limit " << qps << " qps: measured " << rate << " requests/s over " << n << " requests\n";
  EXPECT_LT(std::abs(rate - qps) / qps, 0.10) << "measured " << rate << " requests/s";
}

}  // namespace
}  // namespace paddock::e2e
