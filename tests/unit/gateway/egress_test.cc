#include "gateway/egress.h"

#include <gtest/gtest.h>

namespace paddock::gateway {
namespace {

std::vector<EgressRule> rules() {
  return {EgressRule{"api.example.test", std::nullopt, "", {443}},
          EgressRule{"*.pkg.test", std::nullopt, "", {443, 8443}},
          EgressRule{"", parseCidr("198.18.0.0/15"), "198.18.0.0/15", {}},
          EgressRule{"", parseCidr("127.0.0.1/32"), "127.0.0.1/32", {9443}}};
}

TEST(Egress, HostTable) {
  struct Case {
    const char* host;
    int port;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {"api.example.test", 443, true},   {"api.example.test", 80, false}, {"evil.example.test", 443, false},
      {"a.pkg.test", 8443, true},        {"x.y.pkg.test", 443, true},     {"pkg.test", 443, false},
      {"evilpkg.test", 443, false},      {"a.pkg.test.evil", 443, false}, {"api.example.test.evil", 443, false},
  };
  for (const auto& c : cases) EXPECT_EQ(hostAllowed(rules(), c.host, c.port), c.allowed) << c.host << ":" << c.port;
}

TEST(Egress, AddressTable) {
  struct Case {
    const char* address;
    int port;
    bool allowed;
    const char* why;
  };
  const std::vector<Case> cases = {
      {"93.184.215.14", 443, true, ""},
      {"10.1.2.3", 443, false, "private"},
      {"172.20.0.1", 443, false, "private"},
      {"192.168.1.1", 443, false, "private"},
      {"169.254.169.254", 80, false, "link-local"},
      {"127.0.0.1", 443, false, "loopback"},
      {"127.0.0.1", 9443, true, ""},  // a CIDR rule with that port
      {"127.0.0.2", 9443, false, "loopback"},
      {"198.18.3.4", 8080, true, ""},  // a CIDR rule with any port
      {"::1", 443, false, "loopback"},
      {"fe80::1", 443, false, "link-local"},
      {"fd00:ec2::254", 80, false, "private"},
      {"::ffff:10.0.0.1", 443, false, "private"},
      {"0.0.0.0", 443, false, "unspecified"},
      {"2606:4700::1", 443, true, ""},
  };
  for (const auto& c : cases) {
    auto a = parseAddress(c.address);
    ASSERT_TRUE(a) << c.address;
    std::string why;
    EXPECT_EQ(addressAllowed(rules(), *a, c.port, &why), c.allowed) << c.address;
    EXPECT_NE(why.find(c.why), std::string::npos) << c.address << ": " << why;
  }
}

TEST(Egress, HostPort) {
  EXPECT_EQ(parseHostPort("API.Example.test:443")->host, "api.example.test");
  EXPECT_EQ(parseHostPort("[::1]:8443")->port, 8443);
  EXPECT_EQ(parseHostPort("[::1]:8443")->host, "::1");
  EXPECT_EQ(parseHostPort("example.test", 80)->port, 80);
  EXPECT_FALSE(parseHostPort("example.test"));
  EXPECT_FALSE(parseHostPort("example.test:0"));
  EXPECT_FALSE(parseHostPort("example.test:99999"));
  EXPECT_FALSE(parseHostPort("exa mple.test:443"));
  EXPECT_FALSE(parseHostPort("a..b:443"));
}

// A ClientHello as OpenSSL sends it, cut down to the fields the parser walks.
std::string clientHello(const std::string& sni) {
  std::string ext;
  if (!sni.empty()) {
    std::string list = std::string("\x00", 1) + char(sni.size() >> 8) + char(sni.size() & 0xff) + sni;
    std::string body = std::string(1, char(list.size() >> 8)) + char(list.size() & 0xff) + list;
    ext = std::string("\x00\x00", 2) + char(body.size() >> 8) + char(body.size() & 0xff) + body;
  }
  ext = std::string("\x00\x17\x00\x00", 4) + ext;  // an extension before it (extended_master_secret)
  std::string hello = std::string("\x03\x03", 2) + std::string(32, 'r') + std::string("\x00", 1) +
                      std::string("\x00\x02\x13\x01", 4) + std::string("\x01\x00", 2) + char(ext.size() >> 8) +
                      char(ext.size() & 0xff) + ext;
  std::string hs = std::string("\x01\x00", 2) + char(hello.size() >> 8) + char(hello.size() & 0xff) + hello;
  return std::string("\x16\x03\x01", 3) + char(hs.size() >> 8) + char(hs.size() & 0xff) + hs;
}

TEST(Egress, ClientHelloSni) {
  auto found = parseClientHelloSni(clientHello("API.example.test"));
  EXPECT_EQ(found.kind, SniResult::Kind::Found);
  EXPECT_EQ(found.name, "api.example.test");
  EXPECT_EQ(parseClientHelloSni(clientHello("")).kind, SniResult::Kind::NoSni);
  std::string whole = clientHello("api.example.test");
  EXPECT_EQ(parseClientHelloSni(whole.substr(0, whole.size() - 3)).kind, SniResult::Kind::Incomplete);
  EXPECT_EQ(parseClientHelloSni("GET / HTTP/1.1\r\n").kind, SniResult::Kind::NotTls);
  std::string garbage = whole;
  garbage[5] = 0x02;  // not a ClientHello
  EXPECT_EQ(parseClientHelloSni(garbage).kind, SniResult::Kind::NotTls);
}

}  // namespace
}  // namespace paddock::gateway

namespace paddock::gateway {
namespace {

TEST(ProxyCredential, ThePasswordOfABasicProxyAuthorization) {
  // base64("run:pdk-token-1") and base64("run:") as curl and git send them from a proxy URL.
  EXPECT_EQ(proxyCredential("Basic cnVuOnBkay10b2tlbi0x"), "pdk-token-1");
  EXPECT_EQ(proxyCredential("basic   cnVuOnBkay10b2tlbi0x"), "pdk-token-1");
  EXPECT_EQ(proxyCredential("Basic cnVuOg=="), "");
  for (const char* bad : {"", "Bearer x", "Basic", "Basic !!!", "Basic cnVu" /* "run": no colon */}) {
    EXPECT_EQ(proxyCredential(bad), "") << bad;
  }
}

}  // namespace
}  // namespace paddock::gateway
