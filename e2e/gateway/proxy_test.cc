// The gateway's egress proxy against real clients and servers on loopback: curl and openssl
// s_client through it, to an openssl s_server holding a certificate for localhost. Allowed:
// localhost on the s_server's port (with a cidr entry for 127.0.0.1 on that port only, as a test
// host needs one); everything else is refused before a packet leaves.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "e2e/gateway/harness.h"
#include "e2e/gateway/model_standin.h"
#include "stage/git.h"

namespace paddock::gateway::testing {
namespace {

namespace fs = std::filesystem;

// A free port on 127.0.0.1 (bound and released; the test server takes it next).
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "no_proxy=", "NO_PROXY="};

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("paddock-proxy-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cert_ = (dir_ / "cert.pem").string();
    auto made = stage::runProcess({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                   "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                                   "-addext", "subjectAltName=DNS:localhost", "-keyout", (dir_ / "key.pem").string(),
                                   "-out", cert_},
                                  kEnv);
    ASSERT_TRUE(made.ok() && made->exit_code == 0) << (made.ok() ? made->err : "");
    tls_port_ = freePort();
    server_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/openssl", "s_server", "-quiet", "-www", "-accept",
                                 "127.0.0.1:" + std::to_string(tls_port_), "-cert", cert_, "-key",
                                 (dir_ / "key.pem").string()},
        kEnv, (dir_ / "s_server.log").string());
    ASSERT_TRUE(standin_.start());
    std::string p = std::to_string(tls_port_), sp = std::to_string(standin_.port());
    std::string config =
        "prices: {m: {input: \"1\", output: \"1\", cacheRead: \"1\", cacheWrite: \"1\"}}\n"
        "egress:\n"
        "  - {host: localhost, ports: [" + p + ", " + sp + ", 1]}\n"
        "  - {cidr: 127.0.0.1/32, ports: [" + p + ", " + sp + "]}\n"
        "runs:\n  - {namespace: team-a, name: run-1, tokenSHA256: " + sha256Hex(kRunToken) + "}\n";
    gateway_ = std::make_unique<GatewayProcess>(PADDOCK_GATEWAY_BIN, dir_ / "gateway", "sk-unused", config);
    ASSERT_TRUE(gateway_->ready()) << gateway_->log();
    // The s_server answers once it listens.
    for (int i = 0; i < 300 && !tlsServerUp(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void TearDown() override {
    gateway_.reset();
    server_.reset();
    standin_.stop();
    if (!HasFailure() && !getenv("PADDOCK_KEEP_TEST_DIRS")) fs::remove_all(dir_);
  }

  bool tlsServerUp() {
    int fd = connectLoopback(tls_port_);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  }

  stage::ProcessOutput curl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--fail", "--max-time", "10", "--proxy", gateway_->url()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = stage::runProcess(argv, kEnv);
    EXPECT_TRUE(out.ok());
    return out.ok() ? *out : stage::ProcessOutput{-1, "", ""};
  }

  static constexpr const char* kRunToken = "proxy-run-credential-0a1b2c3d4e5f";
  fs::path dir_;
  std::string cert_;
  int tls_port_ = 0;
  std::unique_ptr<Process> server_;
  ModelStandin standin_;
  std::unique_ptr<GatewayProcess> gateway_;
};

TEST_F(ProxyTest, ConnectToAnAllowedHostPasses) {
  auto out = curl({"--cacert", cert_, "https://localhost:" + std::to_string(tls_port_) + "/"});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("s_server"), std::string::npos) << out.out;
  EXPECT_EQ(gateway_->metric("paddock_gateway_egress_total{result=\"allowed\"}"), 1);
}

TEST_F(ProxyTest, PlainHttpToAnAllowedHostIsForwarded) {
  auto out = curl({"-X", "POST", "-d", "{}", "http://localhost:" + std::to_string(standin_.port()) +
                                             "/v1/messages/count_tokens"});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "{\"input_tokens\":0}");
  ASSERT_EQ(standin_.received().size(), 1u);
  EXPECT_EQ(standin_.received()[0].target, "/v1/messages/count_tokens");
}

TEST_F(ProxyTest, EverythingElseIsRefused) {
  struct Case {
    const char* name;
    std::string url;
    const char* result;
  };
  const std::vector<Case> cases = {
      // Not in the allow-list: refused before any name is resolved.
      {"another host", "https://example.com/", "refused_host"},
      {"another port", "https://localhost:" + std::to_string(tls_port_ + 1) + "/", "refused_host"},
      // Allowed by name on port 1, but localhost is loopback and no cidr entry allows port 1.
      {"a loopback address without a cidr entry", "https://localhost:1/", "refused_address"},
      {"an address literal outside the cidr entries", "https://127.0.0.2:" + std::to_string(tls_port_) + "/",
       "refused_address"},
      {"plain http to another host", "http://example.com/", "refused_host"},
  };
  for (const auto& c : cases) {
    double before = gateway_->metric(std::string("paddock_gateway_egress_total{result=\"") + c.result + "\"}");
    auto out = curl({"--cacert", cert_, c.url});
    EXPECT_NE(out.exit_code, 0) << c.name;
    EXPECT_EQ(gateway_->metric(std::string("paddock_gateway_egress_total{result=\"") + c.result + "\"}"), before + 1)
        << c.name << ": " << out.err;
  }
  EXPECT_EQ(gateway_->metric("paddock_gateway_egress_total{result=\"allowed\"}"), 0);
}

TEST_F(ProxyTest, AClientHelloForAnotherNameIsRefused) {
  // CONNECT localhost, then a TLS handshake that names another server.
  auto out = stage::runProcess({"/usr/bin/openssl", "s_client", "-proxy", "127.0.0.1:" + std::to_string(gateway_->port()),
                                "-connect", "localhost:" + std::to_string(tls_port_), "-servername", "evil.example",
                                "-CAfile", cert_, "-brief"},
                               kEnv, "");
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->exit_code, 0) << out->out << out->err;
  EXPECT_EQ(gateway_->metric("paddock_gateway_egress_total{result=\"refused_sni\"}"), 1) << gateway_->log();
  EXPECT_EQ(gateway_->metric("paddock_gateway_egress_total{result=\"allowed\"}"), 0);
}


// The model relay's upstream over TLS (as api.anthropic.com is reached): the certificate must
// chain to the trusted CAs (SSL_CERT_FILE here) and name the upstream host.
TEST_F(ProxyTest, UpstreamOverTlsIsVerified) {
  int front_port = freePort();
  Process front({"/usr/bin/python3", PADDOCK_TLS_FRONT, std::to_string(front_port), std::to_string(standin_.port()),
                 cert_, (dir_ / "key.pem").string()},
                kEnv, (dir_ / "tls_front.log").string());
  for (int i = 0; i < 300; ++i) {
    int fd = connectLoopback(front_port);
    if (fd >= 0) {
      ::close(fd);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string token = "tls-run-token";
  auto config = [&](const std::string& upstream) {
    return "upstream: " + upstream + "\nprices: {m: {input: \"1\", output: \"1\", cacheRead: \"1\", cacheWrite: \"1\"}}\n"
           "runs: [{namespace: t, name: r, tokenSHA256: " + sha256Hex(token) + "}]\n";
  };
  const std::string body = R"({"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]})";
  std::vector<std::pair<std::string, std::string>> headers = {{"x-api-key", token}};
  struct Case {
    const char* name;
    std::string upstream;
    bool trust;
    int status;
  };
  const std::vector<Case> cases = {
      {"trusted, the name matches", "https://localhost:" + std::to_string(front_port), true, 200},
      {"trusted, another name (127.0.0.1)", "https://127.0.0.1:" + std::to_string(front_port), true, 502},
      {"an unknown CA", "https://localhost:" + std::to_string(front_port), false, 502},
  };
  int n = 0;
  for (const auto& c : cases) {
    std::vector<std::string> env;
    if (c.trust) env.push_back("SSL_CERT_FILE=" + cert_);
    GatewayProcess g(PADDOCK_GATEWAY_BIN, dir_ / ("tls-" + std::to_string(++n)), "sk-tls-key", config(c.upstream), env);
    ASSERT_TRUE(g.ready()) << g.log();
    HttpReply r = httpRequest(g.port(), "POST", "/v1/messages", headers, body);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    if (c.status == 200) {
      EXPECT_NE(r.body.find("message_stop"), std::string::npos) << r.body;
    } else {
      EXPECT_NE(r.body.find("api_error"), std::string::npos) << r.body;
      EXPECT_NE(r.body.find("could not reach the model API"), std::string::npos) << r.body;
    }
  }
  ASSERT_EQ(standin_.received().size(), 1u) << "only the verified upstream got a request";
  EXPECT_EQ(standin_.received()[0].header("x-api-key"), "sk-tls-key");
}

// A proxy URL with the run's credential as its password (the agent pod's HTTPS_PROXY): the gateway
// counts a refusal as that run's; an allowed connection goes through as before.
TEST_F(ProxyTest, ARefusalOfARunsEgressIsCountedAsTheRuns) {
  const std::string proxy = "http://run:" + std::string(kRunToken) + "@127.0.0.1:" + std::to_string(gateway_->port());
  auto with = [&](const std::string& url) {
    auto out = stage::runProcess({"/usr/bin/curl", "-sS", "--fail", "--max-time", "10", "--proxy", proxy, "--cacert", cert_, url}, kEnv);
    EXPECT_TRUE(out.ok());
    return out.ok() ? *out : stage::ProcessOutput{-1, "", ""};
  };
  EXPECT_NE(with("https://example.com/").exit_code, 0);
  EXPECT_NE(with("http://example.com/").exit_code, 0);
  EXPECT_EQ(with("https://localhost:" + std::to_string(tls_port_) + "/").exit_code, 0);
  EXPECT_EQ(gateway_->metric("paddock_gateway_refusals_total{agentrun=\"run-1\",credential=\"" + sha256Hex(kRunToken).substr(0, 12) +
                             "\",namespace=\"team-a\",reason=\"egress\"}"), 2);
  // Without a credential (or another one) a refusal is the gateway's alone.
  EXPECT_NE(curl({"https://example.com/"}).exit_code, 0);
  EXPECT_EQ(gateway_->metric("paddock_gateway_refusals_total{"), 2);
  EXPECT_EQ(gateway_->metric("paddock_gateway_egress_total{result=\"refused_host\"}"), 3);
  EXPECT_EQ(gateway_->log().find(kRunToken), std::string::npos) << "the credential is never logged";
}

}  // namespace
}  // namespace paddock::gateway::testing
