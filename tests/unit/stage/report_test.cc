#include "stage/report.h"

#include <gtest/gtest.h>

namespace paddock::stage {
namespace {

const RunInfo kRun{"fix-login", "team-a"};

TEST(StageChangelog, EntryCarriesTitleSummaryAndRun) {
  std::string entry = renderChangelogEntry(kRun, "# Fix the login redirect\n\nThe redirect kept `next`.\n## Details\nmore\n",
                                           "2025-05-01");
  EXPECT_EQ(entry,
            "## 2025-05-01 Fix the login redirect\n\n"
            "The redirect kept `next`.\n"
            "##### Details\n"
            "more\n\n"
            "Proposed by Paddock run `team-a/fix-login` on branch `paddock/fix-login`.\n");
  EXPECT_EQ(renderChangelogEntry(kRun, "", "2025-05-01"),
            "## 2025-05-01 Changes by Paddock run fix-login\n\n"
            "Proposed by Paddock run `team-a/fix-login` on branch `paddock/fix-login`.\n");
}

TEST(StageChangelog, InsertedAsTheNewestEntry) {
  const std::string entry = "## 2025-05-01 New\n\nText.\n";
  EXPECT_EQ(insertChangelogEntry("", entry), "# Changelog\n\n## 2025-05-01 New\n\nText.\n");
  EXPECT_EQ(insertChangelogEntry("# Changelog\n\nAll notable changes.\n\n## 1.0.0\n\n- first\n", entry),
            "# Changelog\n\nAll notable changes.\n\n## 2025-05-01 New\n\nText.\n\n## 1.0.0\n\n- first\n");
  EXPECT_EQ(insertChangelogEntry("# Changelog\nIntro", entry), "# Changelog\nIntro\n\n## 2025-05-01 New\n\nText.\n");
}

TEST(StageChangelog, TitleOfSummary) {
  EXPECT_EQ(titleOf("\n\n## Add retries\nbody", "x"), "Add retries");
  EXPECT_EQ(titleOf("  \n", "fallback"), "fallback");
  EXPECT_EQ(titleOf(std::string(100, 'a'), "x").substr(0, 71), std::string(71, 'a'));
}

TEST(StageResult, JsonNamesFindingsNeverValues) {
  StageResult r;
  r.stage = "pr";
  r.outcome = "Refused";
  r.reason = "Credential";
  r.message = "the change adds 1 line(s) that look like credentials";
  r.base_commit = "abc";
  r.refused_paths = {".github/workflows/ci.yml"};
  r.findings = {{"config.py", 3, "github-token"}};
  auto j = nlohmann::json::parse(renderResult(r));
  EXPECT_EQ(j, nlohmann::json::parse(R"({"stage":"pr","outcome":"Refused","reason":"Credential",
      "message":"the change adds 1 line(s) that look like credentials","baseCommit":"abc",
      "refusedPaths":[".github/workflows/ci.yml"],"findings":[{"file":"config.py","line":3,"pattern":"github-token"}]})"));

  StageResult ok;
  ok.stage = "pr";
  ok.outcome = "PullRequestOpened";
  ok.branch = "paddock/fix-login";
  ok.commit = "def";
  ok.pull_request_url = "https://github.com/o/r/pull/7";
  ok.pull_request_number = 7;
  j = resultJson(ok);
  EXPECT_EQ(j["pullRequest"], nlohmann::json::parse(R"({"url":"https://github.com/o/r/pull/7","number":7})"));
  EXPECT_EQ(j["branch"], "paddock/fix-login");
}

TEST(StageResult, CutToTheTerminationMessageLimit) {
  StageResult r;
  r.stage = "pr";
  r.outcome = "Refused";
  for (int i = 0; i < 500; ++i) r.findings.push_back({"some/rather/long/path/file" + std::to_string(i) + ".txt", i, "canary"});
  std::string text = renderResult(r, 4096);
  EXPECT_LE(text.size(), 4096u);
  auto j = nlohmann::json::parse(text);
  EXPECT_GT(j["truncated"].get<int>(), 0);
  EXPECT_EQ(j["findings"].size() + j["truncated"].get<size_t>(), 500u);
}


TEST(StageResult, AConflictNamesItsFilesAndFitsTheLimit) {
  StageResult r;
  r.stage = "pr";
  r.outcome = "Conflict";
  r.base_commit = std::string(40, 'b');
  r.start_commit = std::string(40, 'a');
  for (int i = 0; i < 400; ++i) r.conflicts.push_back("src/module" + std::to_string(i) + "/file.py");
  std::string text = renderResult(r, 4096);
  EXPECT_LE(text.size(), 4096u);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["startCommit"], std::string(40, 'a'));
  EXPECT_EQ(j["conflicts"][0], "src/module0/file.py");
  EXPECT_EQ(j["conflicts"].size() + j["truncated"].get<size_t>(), 400u);
}

}  // namespace
}  // namespace paddock::stage
