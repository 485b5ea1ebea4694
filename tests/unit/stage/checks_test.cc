#include "stage/checks.h"

#include <gtest/gtest.h>

namespace paddock::stage {
namespace {

TEST(StageProtectedPaths, GlobsFollowAdmissionSemantics) {
  auto globs = parseGlobList("# the policy's protectedPaths\n.github/workflows/**\n\n  db/migrations/  \n*.pem\nsecrets/?.txt\n");
  ASSERT_EQ(globs, (std::vector<std::string>{".github/workflows/**", "db/migrations/", "*.pem", "secrets/?.txt"}));
  std::vector<std::string> changed = {
      ".github/workflows/ci.yml",        // ** crosses folders
      ".github/workflows/a/b/deploy.yml",
      ".github/CODEOWNERS",              // not below workflows/
      "db/migrations/001_init.sql",      // a trailing / covers the folder
      "db/seed.sql",
      "server.pem",                      // * at the root
      "certs/server.pem",                // * does not cross /
      "secrets/a.txt",
      "secrets/ab.txt",                  // ? is one character
      "src/main.cc",
  };
  EXPECT_EQ(protectedPaths(changed, globs),
            (std::vector<std::string>{".github/workflows/ci.yml", ".github/workflows/a/b/deploy.yml",
                                      "db/migrations/001_init.sql", "server.pem", "secrets/a.txt"}));
  EXPECT_TRUE(protectedPaths(changed, {}).empty());
  EXPECT_EQ(protectedPaths({"Makefile"}, {"/Makefile"}), std::vector<std::string>{"Makefile"});
  // A `**` before a `*`: both stars give back what they took.
  EXPECT_EQ(protectedPaths({"main.tf", "infra/main.tf", "infra/modules/vpc/main.tf", "infra/main.tfvars"}, {"**/*.tf"}),
            (std::vector<std::string>{"infra/main.tf", "infra/modules/vpc/main.tf"}));
}

TEST(StageDiff, AddedLinesCarryFileAndNewLineNumber) {
  const char* diff =
      "diff --git a/src/app.py b/src/app.py\n"
      "index 1111111..2222222 100644\n"
      "--- a/src/app.py\n"
      "+++ b/src/app.py\n"
      "@@ -3,0 +4,2 @@ def main():\n"
      "+    x = 1\n"
      "+    y = 2\n"
      "@@ -10 +12 @@\n"
      "-old\n"
      "+new\n"
      "diff --git a/gone.txt b/gone.txt\n"
      "deleted file mode 100644\n"
      "--- a/gone.txt\n"
      "+++ /dev/null\n"
      "@@ -1 +0,0 @@\n"
      "-bye\n"
      "diff --git a/new file.txt b/new file.txt\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/new file.txt\n"
      "@@ -0,0 +1 @@\n"
      "+++ looks like a header but is content\n";
  auto lines = addedLines(diff);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].file, "src/app.py");
  EXPECT_EQ(lines[0].line, 4);
  EXPECT_EQ(lines[1].line, 5);
  EXPECT_EQ(lines[2].line, 12);
  EXPECT_EQ(lines[2].text, "new");
  EXPECT_EQ(lines[3].file, "new file.txt");
  EXPECT_EQ(lines[3].line, 1);
}

struct CredentialCase {
  const char* text;
  const char* pattern;  // nullptr: no finding
};

TEST(StageCredentials, TableOfTrueAndFalsePositives) {
  const CredentialCase cases[] = {
      // Token formats.
      {"token = \"ghp_16C7e42F292c6912E7710c838347Ae178B4a\"", "github-token"},
      {"GH=gho_16C7e42F292c6912E7710c838347Ae178B4a", "github-token"},
      {"ghs_16C7e42F292c6912E7710c838347Ae178B4a", "github-token"},
      {"github_pat_11ABCDEFG0123456789abc_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRS", "github-fine-grained-pat"},
      {"aws_access_key_id = AKIAQYLPMN5HHHFPZAM2", "aws-access-key-id"},
      {"SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack-token"},
      {"key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD", "anthropic-api-key"},
      {"-----BEGIN RSA PRIVATE KEY-----", "private-key"},
      {"-----BEGIN OPENSSH PRIVATE KEY-----", "private-key"},
      {"-----BEGIN PRIVATE KEY-----", "private-key"},
      {"maps = 'AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW'", "google-api-key"},
      // High-entropy values assigned to secret-sounding names.
      {"api_key = \"q8Zr2LmX9vTp4NwK7sYc1HdF\"", "secret-assignment"},
      {"DB_PASSWORD: Xk29vQm4LpZ8rT1nW6sB", "secret-assignment"},
      {"\"client_secret\": \"9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c\"", "secret-assignment"},
      // False positives that must stay quiet.
      {"aws_access_key_id = AKIAIOSFODNN7EXAMPLE", nullptr},  // AWS's documentation key
      {"token = os.environ[\"GITHUB_TOKEN\"]", nullptr},
      {"token: ${{ secrets.GITHUB_TOKEN }}", nullptr},
      {"password = \"aaaaaaaaaaaaaaaaaaaaaaaa\"", nullptr},              // no entropy
      {"api_key = \"your-api-key-goes-here-1234\"", nullptr},            // a placeholder
      {"secret_name = process_environment_variable", nullptr},          // no digit: a name, not a value
      {"-----BEGIN PUBLIC KEY-----", nullptr},
      {"-----BEGIN CERTIFICATE-----", nullptr},
      {"Use a ghp_ token with the repo scope.", nullptr},
      {"commit 3f786850e387550fdab836ed7e6dc881de23001b", nullptr},     // a hash, not assigned
      {"sk-ant- keys start like this", nullptr},
      {"desk-management-service-for-all-the-teams", nullptr},
  };
  for (const auto& c : cases) {
    auto findings = findCredentials({{"f.txt", 7, c.text}}, {});
    if (c.pattern == nullptr) {
      EXPECT_TRUE(findings.empty()) << c.text << " gave " << (findings.empty() ? "" : findings[0].pattern);
      continue;
    }
    bool found = false;
    for (const auto& f : findings) {
      EXPECT_EQ(f.file, "f.txt");
      EXPECT_EQ(f.line, 7);
      found = found || f.pattern == c.pattern;
    }
    EXPECT_TRUE(found) << c.text << " should be " << c.pattern;
  }
}

TEST(StageCredentials, CanariesFromFileAndEnvironment) {
  auto canaries = parseCanaries("PADDOCK-CANARY-7f3a, other-canary\n\nthird\n");
  ASSERT_EQ(canaries, (std::vector<std::string>{"PADDOCK-CANARY-7f3a", "other-canary", "third"}));
  auto findings = findCredentials({{"notes.md", 2, "found PADDOCK-CANARY-7f3a in env"}, {"ok.md", 1, "nothing"}}, canaries);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0], (Finding{"notes.md", 2, "canary"}));
}

TEST(StageCredentials, Entropy) {
  EXPECT_DOUBLE_EQ(entropy("aaaa"), 0.0);
  EXPECT_DOUBLE_EQ(entropy("abab"), 1.0);
  EXPECT_GT(entropy("q8Zr2LmX9vTp4NwK7sYc1HdF"), 4.0);
}

}  // namespace
}  // namespace paddock::stage
