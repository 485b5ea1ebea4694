#include "controllers/stage_report.h"

#include <gtest/gtest.h>

namespace paddock::controllers {
namespace {

using nlohmann::json;

const std::string kSha(40, 'c');

TEST(ParseStageReport, ReadsWhatPaddockStageWrites) {
  json written = {{"stage", "pr"},
                  {"outcome", "Refused"},
                  {"reason", "ProtectedPath"},
                  {"message", "the change touches 1 protected path(s)"},
                  {"baseCommit", kSha},
                  {"startCommit", std::string(64, 'd')},
                  {"refusedPaths", {".github/workflows/ci.yml"}},
                  {"findings", {{{"file", "config.py"}, {"line", 3}, {"pattern", "github-token"}}}}};
  auto r = parseStageReport(written.dump(), "pr");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->outcome, "Refused");
  EXPECT_EQ(r->reason, "ProtectedPath");
  EXPECT_EQ(r->base_commit, kSha);
  EXPECT_EQ(r->start_commit, std::string(64, 'd'));
  EXPECT_EQ(r->refused_paths, std::vector<std::string>{".github/workflows/ci.yml"});
  EXPECT_EQ(r->findings, std::vector<std::string>{"config.py:3:github-token"});
  EXPECT_TRUE(r->dropped.empty());
  EXPECT_EQ(reportStatus(*r)["findings"], json::array({"config.py:3:github-token"}));

  json opened = {{"stage", "pr"}, {"outcome", "PullRequestOpened"}, {"branch", "paddock/fix-flake"}, {"commit", kSha},
                 {"pullRequest", {{"url", "https://github.com/acme/shop/pull/12"}, {"number", 12}}}};
  auto o = parseStageReport(opened.dump(), "pr");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(reportStatus(*o), json::parse(R"({"outcome":"PullRequestOpened","branch":"paddock/fix-flake",
      "commit":")" + kSha + R"(","pullRequest":{"url":"https://github.com/acme/shop/pull/12","number":12}})"));

  auto staged = parseStageReport(R"({"stage":"deploy","outcome":"Staged","release":{"id":"rel-1","status":"staged"}})", "deploy");
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(staged->release_id, "rel-1");
}

TEST(ParseStageReport, RefusesWhatIsNotAResultOfTheStage) {
  struct Case {
    const char* name;
    std::string message;
    const char* why;
  };
  const Case cases[] = {
      {"empty (the stage wrote nothing)", "", "is empty"},
      {"over the kubelet's limit", "{\"stage\":\"pr\",\"outcome\":\"X\",\"message\":\"" + std::string(5000, 'a') + "\"}",
       "larger than 4096"},
      {"log lines (FallbackToLogsOnError)", "{\"level\":\"info\"}\n{\"level\":\"error\"}", "not a JSON object"},
      {"an array", "[1,2]", "not a JSON object"},
      {"deeply nested", std::string(2000, '[') + std::string(2000, ']'), "not a JSON object"},
      {"another stage's result", R"({"stage":"deploy","outcome":"Staged"})", "not a result of stage pr"},
      {"stage of the wrong type", R"({"stage":["pr"],"outcome":"Staged"})", "not a result of stage pr"},
      {"no outcome", R"({"stage":"pr"})", "no valid outcome"},
      {"an outcome that is not a word", R"({"stage":"pr","outcome":"Opened\u0000; rm -rf /"})", "no valid outcome"},
      {"invalid UTF-8", std::string("{\"stage\":\"pr\",\"outcome\":\"A\xff\"}"), "not a JSON object"},
  };
  for (const auto& c : cases) {
    auto r = parseStageReport(c.message, "pr");
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.error().message.find(c.why), std::string::npos) << c.name << ": " << r.error().message;
    EXPECT_NE(r.error().message.find("stage pr"), std::string::npos) << c.name;
  }
}

TEST(ParseStageReport, LeavesOutFieldsThatFailTheirChecks) {
  json hostile = {{"stage", "pr"},
                  {"outcome", "PullRequestOpened"},
                  {"message", std::string("line one\nline two\x1b[31m red")},
                  {"branch", "--upload-pack=evil"},
                  {"commit", "HEAD"},
                  {"baseCommit", std::string(40, 'G')},
                  {"pullRequest", {{"url", "javascript:alert(1)"}, {"number", 1}}},
                  {"release", {{"id", "../../etc/passwd"}}},
                  {"refusedPaths", "not-a-list"},
                  {"conflicts", {"ok.py", 7}},
                  {"findings", {{{"file", "a.py"}, {"line", -1}, {"pattern", "github-token"}}}},
                  {"extra", {{"anything", true}}}};
  auto r = parseStageReport(hostile.dump(), "pr");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->message, "line one line two [31m red") << "control characters become spaces";
  EXPECT_TRUE(r->branch.empty());
  EXPECT_TRUE(r->commit.empty());
  EXPECT_TRUE(r->base_commit.empty());
  EXPECT_TRUE(r->pull_request_url.empty());
  EXPECT_TRUE(r->release_id.empty());
  EXPECT_TRUE(r->refused_paths.empty());
  EXPECT_TRUE(r->conflicts.empty());
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(r->dropped, (std::vector<std::string>{"branch", "commit", "baseCommit", "pullRequest", "release",
                                                  "refusedPaths", "conflicts", "findings"}));
  json status = reportStatus(*r);
  EXPECT_EQ(status, json::parse(R"({"outcome":"PullRequestOpened"})")) << "nothing unchecked reaches status";

  json urls = {{"stage", "pr"}, {"outcome", "PullRequestOpened"}};
  for (const char* bad : {"https://x/\"onmouseover=", "https://x y/", "http://a/\u00e9", "file:///etc/passwd"}) {
    urls["pullRequest"] = {{"url", bad}, {"number", 3}};
    auto u = parseStageReport(urls.dump(), "pr");
    ASSERT_TRUE(u.ok());
    EXPECT_TRUE(u->pull_request_url.empty()) << bad;
  }
  urls["pullRequest"] = {{"url", "https://github.com/acme/shop/pull/3"}, {"number", 1e12}};
  EXPECT_TRUE(parseStageReport(urls.dump(), "pr")->pull_request_url.empty()) << "a number out of range";
}

TEST(ParseStageReport, ALongMessageIsCutBetweenCharacters) {
  json long_message = {{"stage", "pr"}, {"outcome", "Failed"}, {"message", std::string(1023, 'a') + "\u00e9tait"}};
  auto r = parseStageReport(long_message.dump(), "pr");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message, std::string(1023, 'a'));
  EXPECT_NO_THROW(reportStatus(*r).dump()) << "status must stay valid UTF-8";
}

TEST(ParseStageReport, ListsAreCut) {
  json many = {{"stage", "pr"}, {"outcome", "Conflict"}, {"conflicts", json::array()}};
  for (int i = 0; i < 100; ++i) many["conflicts"].push_back("f" + std::to_string(i));
  auto r = parseStageReport(many.dump(), "pr");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->conflicts.size(), kReportListLimit);
}

TEST(CommitAndReleaseIds, Grammar) {
  EXPECT_TRUE(isCommitId(kSha));
  EXPECT_TRUE(isCommitId(std::string(64, '0')));
  EXPECT_FALSE(isCommitId(std::string(39, 'a')));
  EXPECT_FALSE(isCommitId(std::string(40, 'A')));
  EXPECT_FALSE(isCommitId("--upload-pack=x" + std::string(25, 'a')));
  EXPECT_TRUE(isReleaseId("rel-1"));
  EXPECT_TRUE(isReleaseId("2026.12.07:build_5"));
  EXPECT_FALSE(isReleaseId(""));
  EXPECT_FALSE(isReleaseId("-rel"));
  EXPECT_FALSE(isReleaseId("rel 1"));
  EXPECT_FALSE(isReleaseId("a/b"));
  EXPECT_FALSE(isReleaseId(std::string(129, 'a')));
}

}  // namespace
}  // namespace paddock::controllers
