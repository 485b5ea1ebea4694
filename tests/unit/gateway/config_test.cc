#include "gateway/config.h"

#include <gtest/gtest.h>

namespace paddock::gateway {
namespace {

const char* kGood = R"(
listen: 127.0.0.1:9000
upstream: http://127.0.0.1:8999/
apiKeyFile: /var/run/paddock/key
model: {pin: claude-sonnet-4-5}
checkpointPercent: 60
prices:
  claude-sonnet-4-5: {input: "3", output: "15", cacheRead: "0.30", cacheWrite: "3.75"}
runs:
  - {namespace: team-a, name: fix-1, tokenSHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
     budget: {tokens: 100000, costUSD: "1.50"}}
egress:
  - {host: "*.example.test", ports: [443, 8443]}
  - {host: Registry.Example.Test.}
  - {cidr: 198.18.0.0/15, ports: [443]}
)";

TEST(Config, ParsesEveryField) {
  auto c = parseConfig(kGood);
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->listen, "127.0.0.1:9000");
  EXPECT_EQ(c->upstream, "http://127.0.0.1:8999");
  EXPECT_EQ(c->pinned_model, "claude-sonnet-4-5");
  EXPECT_EQ(c->prices.at("claude-sonnet-4-5"), (Price{3000, 15000, 300, 3750}));
  ASSERT_EQ(c->runs.size(), 1u);
  EXPECT_EQ(c->runs[0].key(), "team-a/fix-1");
  EXPECT_EQ(c->runs[0].limits, (Limits{100000, 1500000000}));
  ASSERT_EQ(c->egress.size(), 3u);
  EXPECT_EQ(c->egress[0].host, "*.example.test");
  EXPECT_EQ(c->egress[1].host, "registry.example.test");
  EXPECT_TRUE(c->egress[2].cidr.has_value());
}

TEST(Config, AcceptsJson) {
  auto c = parseConfig(R"({"apiKeyFile": "/k", "prices": {"m": {"input": "1", "output": "2", "cacheRead": "0.1",
                           "cacheWrite": "1.25"}}})");
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->prices.at("m").cache_write, 1250);
}

TEST(Config, ErrorsNameTheField) {
  struct Case {
    const char* text;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"prices: {m: {input: \"1\", output: \"2\", cacheRead: \"0.1\", cacheWrite: \"1\"}}", "apiKeyFile"},
      {"apiKeyFile: /k\nupstream: ftp://x\n", "upstream"},
      {"apiKeyFile: /k\nprices: {m: {input: \"x\", output: \"2\", cacheRead: \"0.1\", cacheWrite: \"1\"}}",
       "prices.m.input"},
      {"apiKeyFile: /k\nprices: {m: {input: \"1\", output: \"2\", cacheRead: \"0.1\"}}", "prices.m.cacheWrite"},
      {"apiKeyFile: /k\nmodel: {pin: other}\nprices: {m: {input: \"1\", output: \"2\", cacheRead: \"0\", "
       "cacheWrite: \"1\"}}",
       "prices"},
      {"apiKeyFile: /k\nprices: {m: {input: \"1\", output: \"2\", cacheRead: \"0\", cacheWrite: \"1\"}}\n"
       "runs: [{namespace: a, name: b, tokenSHA256: abc}]",
       "runs[0].tokenSHA256"},
      {"apiKeyFile: /k\nprices: {m: {input: \"1\", output: \"2\", cacheRead: \"0\", cacheWrite: \"1\"}}\n"
       "egress: [{host: \"bad host\"}]",
       "egress[0].host"},
      {"apiKeyFile: /k\nprices: {m: {input: \"1\", output: \"2\", cacheRead: \"0\", cacheWrite: \"1\"}}\n"
       "egress: [{cidr: 10.0.0.0/99}]",
       "egress[0].cidr"},
      {"[1, 2", "not YAML"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().reason, "InvalidConfig");
    EXPECT_NE(r.error().message.find(c.field), std::string::npos) << r.error().message;
  }
}

TEST(Config, UsdAmounts) {
  EXPECT_EQ(parseUsdNano("10"), 10000000000);
  EXPECT_EQ(parseUsdNano("0.000000001"), 1);
  EXPECT_EQ(parseUsdNano("2.5"), 2500000000);
  EXPECT_FALSE(parseUsdNano("-1"));
  EXPECT_FALSE(parseUsdNano("1."));
  EXPECT_FALSE(parseUsdNano("0.0000000001"));
  EXPECT_EQ(parsePerMillionNano("0.30"), 300);
  EXPECT_FALSE(parsePerMillionNano("0.0001"));
  EXPECT_EQ(formatUsd(1500000000), "1.5");
  EXPECT_EQ(formatUsd(3000), "0.000003");
  EXPECT_EQ(formatUsd(0), "0");
}

}  // namespace
}  // namespace paddock::gateway
