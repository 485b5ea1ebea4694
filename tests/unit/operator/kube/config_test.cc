#include "operator/kube/config.h"

#include <gtest/gtest.h>

#include "tests/unit/operator/common/fake_clock.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace paddock::kube {
namespace {
namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("paddock-config-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "certs");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(KubeconfigTest, ReadsFilesRelativeToTheKubeconfigAndInlineData) {
  write("certs/ca.crt", "CA-PEM");
  write("certs/admin.key", "KEY-PEM");
  std::string path = write("config", R"(
apiVersion: v1
kind: Config
current-context: local
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: certs/ca.crt}
users:
- name: admin
  user:
    client-certificate-data: Q0VSVC1QRU0=
    client-key: certs/admin.key
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: team-a}
)");
  auto c = loadKubeconfig({path});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->tls.ca_pem, "CA-PEM");
  EXPECT_EQ(c->tls.cert_pem, "CERT-PEM");
  EXPECT_EQ(c->tls.key_pem, "KEY-PEM");
  EXPECT_EQ(c->default_namespace, "team-a");
  EXPECT_FALSE(c->tls.insecure_skip_verify);
}

TEST_F(KubeconfigTest, ContextOverrideAndTokens) {
  std::string path = write("config", R"(
current-context: a
clusters:
- {name: one, cluster: {server: "https://one:443", insecure-skip-tls-verify: true}}
- {name: two, cluster: {server: "https://two:443"}}
users:
- {name: bot, user: {token: abc123}}
- {name: filebot, user: {tokenFile: token}}
contexts:
- {name: a, context: {cluster: one, user: bot}}
- {name: b, context: {cluster: two, user: filebot}}
)");
  write("token", "from-file\n");
  auto a = loadKubeconfig({path});
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->server, "https://one:443");
  EXPECT_TRUE(a->tls.insecure_skip_verify);
  EXPECT_EQ(BearerToken(*a).current(), "abc123");
  EXPECT_EQ(a->default_namespace, "default");
  auto b = loadKubeconfig({path}, "b");
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(b->server, "https://two:443");
  EXPECT_EQ(BearerToken(*b).current(), "from-file");
}

TEST_F(KubeconfigTest, FirstFileWinsWhenMerging) {
  std::string first = write("first", R"(
current-context: x
clusters: [{name: c, cluster: {server: "https://first"}}]
contexts: [{name: x, context: {cluster: c}}]
)");
  std::string second = write("second", R"(
current-context: y
clusters: [{name: c, cluster: {server: "https://second"}}, {name: d, cluster: {server: "https://d"}}]
contexts: [{name: y, context: {cluster: d}}]
)");
  auto c = loadKubeconfig({first, (dir_ / "missing").string(), second});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->server, "https://first");
  auto y = loadKubeconfig({first, second}, "y");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->server, "https://d");
}

TEST_F(KubeconfigTest, ErrorsNameWhatIsWrong) {
  struct Case { const char* yaml; const char* context; const char* expect; } cases[] = {
      {"clusters: []\n", "", "no current-context"},
      {"current-context: nope\n", "", "no context \"nope\""},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: gone}}]\n", "", "cluster \"gone\", which is not defined"},
      {"current-context: a\nclusters: [{name: c, cluster: {}}]\ncontexts: [{name: a, context: {cluster: c}}]\n", "", "has no server"},
      {"current-context: a\nclusters: [{name: c, cluster: {server: s, certificate-authority-data: '!!!'}}]\n"
       "contexts: [{name: a, context: {cluster: c}}]\n", "", "not valid base64"},
      {"current-context: a\nclusters: [{name: c, cluster: {server: s, certificate-authority: /no/such/ca}}]\n"
       "contexts: [{name: a, context: {cluster: c}}]\n", "", "cannot read /no/such/ca"},
      {"current-context: a\nclusters: [{name: c, cluster: {server: s}}]\nusers: [{name: u, user: {exec: {command: x}}}]\n"
       "contexts: [{name: a, context: {cluster: c, user: u}}]\n", "", "exec or auth-provider"},
      {"current-context: [unclosed\n", "", "not valid YAML"},
      {"current-context: a\nclusters: [{name: c, cluster: {server: s, certificate-authority-data: Q0E=, insecure-skip-tls-verify: true}}]\n"
       "contexts: [{name: a, context: {cluster: c}}]\n", "", "remove one of them"},
  };
  for (const auto& c : cases) {
    std::string path = write("config", c.yaml);
    auto r = loadKubeconfig({path}, c.context);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  auto none = loadKubeconfig({(dir_ / "absent").string()});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no kubeconfig file found"), std::string::npos);
}

TEST_F(KubeconfigTest, InClusterReadsServiceAccountFiles) {
  write("ca.crt", "CA");
  write("token", "sa-token\n");
  write("namespace", "paddock-system");
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = loadInCluster(dir_.string());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->default_namespace, "paddock-system");
  EXPECT_EQ(BearerToken(*c).current(), "sa-token");
  auto outside = loadInCluster(dir_.string());
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
}

TEST_F(KubeconfigTest, RotatedTokenFileIsPickedUpWithinAMinute) {
  std::string path = write("token", "first\n");
  ClusterConfig config;
  config.token_file = path;
  FakeClock clock;
  BearerToken token(config, clock);
  EXPECT_EQ(token.current(), "first");
  write("token", "second\n");
  clock.advance(std::chrono::seconds(30));
  EXPECT_EQ(token.current(), "first") << "re-read at most once a minute";
  clock.advance(std::chrono::seconds(30));
  EXPECT_EQ(token.current(), "second");
  // A token file that disappears keeps the last good token rather than sending none.
  std::filesystem::remove(path);
  clock.advance(std::chrono::minutes(2));
  EXPECT_EQ(token.current(), "second");
}

TEST(Base64, DecodesWithPaddingAndWhitespace) {
  std::string out;
  ASSERT_TRUE(base64Decode("aGVs\nbG8=", out));
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(base64Decode("aGk=", out));
  EXPECT_EQ(out, "hi");
  ASSERT_TRUE(base64Decode("", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(base64Decode("abc", out));
}

}  // namespace
}  // namespace paddock::kube
