#include "operator/common/glob.h"

#include <gtest/gtest.h>

namespace paddock {
namespace {

// Protected-path globs (image references are tested with admission, tests/unit/controllers).
TEST(Glob, ProtectedPathSemantics) {
  struct Case { const char* pattern; const char* text; bool match; } cases[] = {
      {"CODEOWNERS", "CODEOWNERS", true},
      {"CODEOWNERS", "docs/CODEOWNERS", false},
      {".github/workflows/**", ".github/workflows/ci.yml", true},
      {".github/workflows/**", ".github/workflows/sub/ci.yml", true},
      {".github/workflows/**", ".github/workflows", false},
      {"**/*.tf", "infra/main.tf", true},
      {"**/*.tf", "infra/modules/vpc/main.tf", true},
      {"**/*.tf", "main.tf", false},
      {"*.tf", "main.tf", true},
      {"*.tf", "infra/main.tf", false},
      {"src/?.cc", "src/a.cc", true},
      {"src/?.cc", "src/ab.cc", false},
      {"src/?", "src//", false},
      {"***", "a/b", true},
      {"a/**/b/*.c", "a/x/y/b/z.c", true},
      {"a/**/b/*.c", "a/x/y/b/z/w.c", false},
      {"**/test/**", "src/test/unit/a.cc", true},
      {"*/*", "a/b/c", false},
      {"", "", true},
      {"", "a", false},
  };
  for (const auto& c : cases) EXPECT_EQ(globMatch(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
}

TEST(Glob, RepositoryGlob) {
  EXPECT_EQ(repositoryGlob("/CODEOWNERS"), "CODEOWNERS");
  EXPECT_EQ(repositoryGlob("deploy/"), "deploy/**");
  EXPECT_EQ(repositoryGlob("//deploy/"), "deploy/**");
  EXPECT_EQ(repositoryGlob("**/*.tf"), "**/*.tf");
}

}  // namespace
}  // namespace paddock
