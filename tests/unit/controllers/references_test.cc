#include "controllers/references.h"

#include <gtest/gtest.h>

#include <vector>

namespace paddock::controllers {
namespace {

TEST(RepositoryUrl, AcceptsTheThreeFormsAndNamesHostAndOrganisation) {
  struct Case { const char* url; const char* host; const char* org; } cases[] = {
      {"https://github.com/acme/payments", "github.com", "acme"},
      {"https://github.com/acme/payments.git", "github.com", "acme"},
      {"https://git.example.com:8443/group/sub/repo", "git.example.com", "group"},
      {"https://github.com/acme/.github", "github.com", "acme"},
      {"git@github.com:acme/payments.git", "github.com", "acme"},
      {"ssh://git@github.com/acme/payments.git", "github.com", "acme"},
      {"ssh://git@gitea.example.com:2222/acme/x", "gitea.example.com", "acme"},
  };
  for (const auto& c : cases) {
    auto got = parseRepositoryUrl(c.url);
    ASSERT_TRUE(got.url) << c.url << ": " << got.problem;
    EXPECT_EQ(got.url->host, c.host) << c.url;
    EXPECT_EQ(got.url->organization, c.org) << c.url;
  }
}

TEST(RepositoryUrl, RefusesHostileValuesWithoutRepeatingThem) {
  struct Case { const char* url; const char* problem; } cases[] = {
      {"http://github.com/acme/x", "must be an https:// or ssh Git URL"},
      {"file:///srv/git/x", "must be an https:// or ssh Git URL"},
      {"ext::sh -c touch% /tmp/pwned", "must be an https:// or ssh Git URL"},
      {"https://x-access-token:ghp_secret@github.com/acme/x", "must not carry credentials"},
      {"https://ghp_secret@github.com/acme/x", "must not carry credentials"},
      {"ssh://git:hunter2@github.com/acme/x", "must not carry credentials"},
      {"ssh://ghp_secret@github.com/acme/x", "must not carry credentials"},
      {"ssh://git@evil@github.com/acme/x", "must not carry credentials"},
      {"ghp_secret@github.com:acme/x", "must not carry credentials"},
      {"ssh://github.com/acme/x", "must be https://HOST/PATH"},
      {"https://github.com/acme/x?access_token=ghp_secret", "query string or fragment"},
      {"https://github.com/acme/x#ghp_secret", "query string or fragment"},
      {"https://169.254.169.254/latest/meta-data", "IP address"},
      {"https://127.0.0.1/acme/x", "IP address"},
      {"https://10.0.0.1:8443/acme/x", "IP address"},
      {"https://2130706433/acme/x", "IP address"},
      {"https://[fd00:ec2::254]/acme/x", "IP address"},
      {"git@192.168.1.1:acme/x", "IP address"},
      {"https://localhost/acme/x", "loopback or cloud metadata"},
      {"https://git.localhost/acme/x", "loopback or cloud metadata"},
      {"https://metadata.google.internal/computeMetadata/v1", "loopback or cloud metadata"},
      {"https://github.com/--upload-pack=touch /tmp/pwned", "must be https://HOST/PATH"},
      {"https://github.com/acme/--upload-pack=x", "must be https://HOST/PATH"},
      {"git@github.com:-oProxyCommand=x", "must be https://HOST/PATH"},
      {"git@-oProxyCommand=x:acme/y", "must be https://HOST/PATH"},
      {"https://github.com/acme/../other", "must be https://HOST/PATH"},
      {"https://github.com/acme/./x", "must be https://HOST/PATH"},
      {"https://github.com/acme//x", "must be https://HOST/PATH"},
      {"https://github.com/acme/x/", "must be https://HOST/PATH"},
      {"https://GitHub.com/acme/x", "must be https://HOST/PATH"},
      {"https://github.com:99999/acme/x", "must be https://HOST/PATH"},
      {"https://github.com:0/acme/x", "must be https://HOST/PATH"},
      {"https://github.com/acme/x y", "must be https://HOST/PATH"},
      {"https://github.com/acme/x%2F..", "must be https://HOST/PATH"},
      {"https://github.com", "must be https://HOST/PATH"},
      {"https://intranet/acme/x", "must be https://HOST/PATH"},
  };
  for (const auto& c : cases) {
    auto got = parseRepositoryUrl(c.url);
    EXPECT_FALSE(got.url) << c.url;
    EXPECT_NE(got.problem.find(c.problem), std::string::npos) << c.url << ": " << got.problem;
    EXPECT_EQ(got.problem.find("secret"), std::string::npos) << "the problem repeats the value: " << got.problem;
  }
  EXPECT_FALSE(parseRepositoryUrl("https://github.com/" + std::string(600, 'a')).url);
}

TEST(BranchName, FollowsGitCheckRefFormat) {
  for (const char* ok : {"main", "release/1.2", "feature/x_y-z", "v1.0", "_private"}) {
    EXPECT_EQ(branchNameProblem(ok), "") << ok;
  }
  struct Case { const char* name; const char* problem; } cases[] = {
      {"refs/heads/main", "short name"},
      {"-main", "must not start with '-'"},
      {"--upload-pack=x", "must not start with '-'"},
      {"a..b", "check-ref-format"},
      {"main.lock", "check-ref-format"},
      {"a.lock/b", "check-ref-format"},
      {"a/.hidden", "check-ref-format"},
      {"a//b", "check-ref-format"},
      {"main/", "check-ref-format"},
      {"main.", "check-ref-format"},
      {"HEAD", "check-ref-format"},
      {"a@{1}", "check-ref-format"},
      {"a b", "check-ref-format"},
      {"a~1", "check-ref-format"},
      {"a^", "check-ref-format"},
      {"a:b", "check-ref-format"},
      {"a\x01", "check-ref-format"},
      {"a\x7f", "check-ref-format"},
      {"", "check-ref-format"},
  };
  for (const auto& c : cases) {
    EXPECT_NE(branchNameProblem(c.name).find(c.problem), std::string::npos) << c.name << ": " << branchNameProblem(c.name);
  }
  EXPECT_NE(branchNameProblem(std::string(256, 'a')), "");
}

TEST(ImageReference, ParsesByTheDistributionGrammar) {
  auto ref = parseImageReference("registry.example.com:5000/team/sub/agent:1.2@sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->registry, "registry.example.com:5000");
  EXPECT_EQ(ref->repository, "team/sub/agent");
  EXPECT_EQ(ref->tag, "1.2");
  EXPECT_EQ(ref->digest, "sha256:" + std::string(64, 'a'));
  for (const char* ok : {"registry.example.com/a", "docker.io/library/ubuntu:22.04", "r.io/a__b/c-d/e--f/g.h", "r.io/a:_x"}) {
    EXPECT_TRUE(parseImageReference(ok)) << ok;
  }
  for (const std::string& bad : std::vector<std::string>{"ubuntu:22.04", "ubuntu", "localhost/a", "registry.example.com/../etc", "registry.example.com/a/../b",
                          "registry.example.com/a/./b", "registry.example.com/a//b", "registry.example.com/A/b",
                          "registry.example.com/a..b", "registry.example.com/a___b", "registry.example.com/-a",
                          "registry.example.com/a-", "registry.example.com/a:", "registry.example.com/a:-x",
                          "registry.example.com/a@sha256:abc", "registry.example.com/a@sha256:" + std::string(64, 'A'),
                          "registry.example.com/a@md5:" + std::string(32, 'a'), "registry.example.com/a@" + std::string(64, 'a'),
                          "registry.example.com/a b", "registry.example.com/a\n", "-registry.example.com/a",
                          "registry.example.com:port/a", "registry.example.com/a:" + std::string(129, 't')}) {
    EXPECT_FALSE(parseImageReference(bad)) << bad;
  }
}

TEST(ImagePattern, MatchesOnTheParsedReferenceNotTheString) {
  std::string digest = "sha256:" + std::string(64, 'b');
  struct Case { std::string pattern, image; bool match; } cases[] = {
      {"registry.example.com/payments/*", "registry.example.com/payments/agent:1.0", true},
      {"registry.example.com/payments/*", "registry.example.com/payments/agent", true},
      {"registry.example.com/payments/*", "registry.example.com/payments/agent@" + digest, true},
      {"registry.example.com/payments/*", "registry.example.com/payments-evil/x:1", false},
      {"registry.example.com/payments/*", "registry.example.com/payments/sub/agent:1", false},
      {"registry.example.com/payments/*", "registry.example.com.evil.io/payments/agent:1", false},
      {"registry.example.com/payments/*", "evil.io/registry.example.com/payments/agent:1", false},
      {"registry.example.com/payments/*", "registry.example.com:5000/payments/agent:1", false},
      {"registry.example.com/payments/**", "registry.example.com/payments/sub/agent:1", true},
      {"registry.example.com/payments/**", "registry.example.com/paymentsx/agent:1", false},
      {"registry.example.com/payments/agent:1.*", "registry.example.com/payments/agent:1.4", true},
      {"registry.example.com/payments/agent:1.*", "registry.example.com/payments/agent:2.0", false},
      {"registry.example.com/payments/agent:1.*", "registry.example.com/payments/agent", false},
      {"registry.example.com/payments/agent:1.*", "registry.example.com/payments/agent:1.4@" + digest, true},
      {"registry.example.com/payments/age?t", "registry.example.com/payments/agent:3", true},
      {"registry.example.com/payments/agent@" + digest, "registry.example.com/payments/agent@" + digest, true},
      {"registry.example.com/payments/agent@" + digest, "registry.example.com/payments/agent:1@" + digest, true},
      {"registry.example.com/payments/agent@" + digest, "registry.example.com/payments/agent:1", false},
      {"registry.example.com/payments/agent@" + digest, "registry.example.com/payments/agent@sha256:" + std::string(64, 'c'), false},
      {"*", "anything.example.org/x/y:z", true},
      {"**", "anything.example.org/x/y:z", true},
  };
  for (const auto& c : cases) {
    auto pattern = parseImagePattern(c.pattern);
    auto image = parseImageReference(c.image);
    ASSERT_TRUE(pattern) << c.pattern;
    ASSERT_TRUE(image) << c.image;
    EXPECT_EQ(imageMatches(*pattern, *image), c.match) << c.pattern << " vs " << c.image;
  }
  for (const char* bad : {"*.example.com/payments/*", "registry.example.com*/payments/*", "registry.example.com/../*",
                          "registry.example.com/payments/*@sha256:abc", "registry.example.com", "payments/*",
                          "registry.example.com/payments/*:", "registry.example.com/Payments/*"}) {
    EXPECT_FALSE(parseImagePattern(bad)) << bad;
  }
}

TEST(ProtectedPath, IsARelativeGlobInsideTheRepository) {
  for (const char* ok : {"billing/**", ".github/workflows/**", "db/migrations/*.sql", "README.md", "a/.b/c"}) {
    EXPECT_EQ(protectedPathProblem(ok), "") << ok;
  }
  struct Case { std::string pattern; const char* problem; } cases[] = {
      {"/etc/passwd", "must not start with '/'"},
      {"../outside/**", "'.' or '..' segments"},
      {"billing/../../x", "'.' or '..' segments"},
      {"billing/..", "'.' or '..' segments"},
      {"./billing", "'.' or '..' segments"},
      {std::string("bill\0ing", 8), "control characters"},
      {"billing\n**", "control characters"},
      {"billing//x", "empty segments"},
      {"billing\\x", "backslashes"},
      {std::string(513, 'a'), "1 to 512"},
  };
  for (const auto& c : cases) {
    EXPECT_NE(protectedPathProblem(c.pattern).find(c.problem), std::string::npos) << c.pattern << ": " << protectedPathProblem(c.pattern);
  }
}

TEST(TaskText, RefusesControlAndBidiOverrideCharacters) {
  EXPECT_EQ(taskTextProblem("Fix the flaky test.\n\n\tThen run it twice. Ünïcødé, 日本語, עברית."), "");
  EXPECT_EQ(taskTextProblem("mark: \u200f right-to-left mark is fine"), "");
  for (const std::string& bad : {std::string("a\0b", 3), std::string("a\rb"), std::string("a\x1b[2Jb"), std::string("a\x7f"),
                          std::string("a\u0085b")}) {
    EXPECT_NE(taskTextProblem(bad).find("control characters"), std::string::npos) << bad;
  }
  for (const std::string& bad : {std::string("a\u202eb"), std::string("a\u202ab"), std::string("a\u2066b"), std::string("a\u2069b")}) {
    EXPECT_NE(taskTextProblem(bad).find("bidirectional"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace paddock::controllers
