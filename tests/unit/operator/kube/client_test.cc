// Client retries against a loopback server that throttles and fails: Retry-After is honoured,
// backoff is bounded, and the retry budget ends in the server's error.
#include "operator/kube/client.h"

#include <gtest/gtest.h>

#include <atomic>

#include "operator/http/server.h"

namespace paddock::kube {
namespace {

struct Fixture {
  http::Server server;
  std::unique_ptr<RestClient> rest;
  std::atomic<int> calls{0};

  void start(std::function<http::Reply(int call)> reply) {
    server.handle("/api/v1/namespaces/ns/configmaps/cm", [this, reply] { return reply(++calls); });
    ASSERT_TRUE(server.start("127.0.0.1:0").ok());
    ClusterConfig config;
    config.server = "http://127.0.0.1:" + std::to_string(server.port());
    auto r = RestClient::create(config, "test");
    ASSERT_TRUE(r.ok());
    rest = std::move(r.value());
  }
};

http::Reply status(int code, const std::string& reason, std::vector<std::pair<std::string, std::string>> headers = {}) {
  json body = {{"kind", "Status"}, {"status", "Failure"}, {"reason", reason}, {"message", reason + " happened"}, {"code", code}};
  return {code, "application/json", body.dump(), std::move(headers)};
}

TEST(ClientRetries, HonoursRetryAfterAndBacksOffUntilSuccess) {
  Fixture f;
  f.start([](int call) -> http::Reply {
    if (call == 1) return status(429, "TooManyRequests", {{"Retry-After", "1"}});
    if (call == 2) return status(503, "ServiceUnavailable");
    return {200, "application/json", R"({"kind":"ConfigMap","metadata":{"name":"cm"}})"};
  });
  std::vector<int> codes;
  ClientOptions opt;
  opt.retry_base = std::chrono::milliseconds(10);
  Client c(*f.rest, opt, [&](const std::string& verb, const std::string& res, int code, auto) {
    EXPECT_EQ(verb, "get");
    EXPECT_EQ(res, "configmaps");
    codes.push_back(code);
  });
  auto start = std::chrono::steady_clock::now();
  auto got = c.get(resources::configmaps, "ns", "cm");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ((*got)["metadata"]["name"], "cm");
  EXPECT_EQ(codes, (std::vector<int>{429, 503, 200}));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(950)) << "Retry-After: 1 was not honoured";
}

TEST(ClientRetries, GivesUpAfterTheRetryBudgetWithTheServersError) {
  Fixture f;
  f.start([](int) { return status(503, "ServiceUnavailable"); });
  ClientOptions opt;
  opt.max_retries = 2;
  opt.retry_base = std::chrono::milliseconds(1);
  Client c(*f.rest, opt);
  auto got = c.get(resources::configmaps, "ns", "cm");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, 503);
  EXPECT_EQ(got.error().reason, "ServiceUnavailable");
  EXPECT_EQ(f.calls.load(), 3);
  EXPECT_TRUE(isTransient(got.error()));
}

TEST(ClientRetries, DoesNotRetryClientErrors) {
  Fixture f;
  f.start([](int) { return status(409, "Conflict"); });
  Client c(*f.rest, {});
  auto got = c.get(resources::configmaps, "ns", "cm");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().reason, "Conflict");
  EXPECT_EQ(f.calls.load(), 1);
  EXPECT_FALSE(isTransient(got.error()));
}

TEST(Resource, BuildsApiPaths) {
  EXPECT_EQ(resources::pods.path("ns", "p", "status"), "/api/v1/namespaces/ns/pods/p/status");
  EXPECT_EQ(resources::agentruns.path("team"), "/apis/paddock.dev/v1alpha1/namespaces/team/agentruns");
  EXPECT_EQ(resources::agentruns.path(), "/apis/paddock.dev/v1alpha1/agentruns");
  EXPECT_EQ(resources::agentpolicies.path("ignored", "p"), "/apis/paddock.dev/v1alpha1/agentpolicies/p");
  EXPECT_EQ(resources::agentruns.apiVersion(), "paddock.dev/v1alpha1");
  EXPECT_EQ(urlEncode("a=b,c!=d"), "a%3Db%2Cc%21%3Dd");
}

}  // namespace
}  // namespace paddock::kube
