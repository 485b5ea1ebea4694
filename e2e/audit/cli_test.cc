// paddock-audit as a person runs it: verify (both backends), show, export, --help.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "e2e/audit/mongo_testing.h"
#include "operator/audit/file_store.h"
#include "operator/audit/mongo_store.h"
#include "operator/audit/segment.h"
#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

struct Ran {
  int exit_code = -1;
  std::string out;
};

// Runs paddock-audit with `args` (shell words); stdout only, the JSON log goes to /dev/null.
Ran paddockAudit(const std::string& args) {
  Ran ran;
  FILE* p = ::popen((std::string(PADDOCK_AUDIT_BIN) + " " + args + " 2>/dev/null").c_str(), "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) ran.out.append(buf, n);
  int status = ::pclose(p);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// One run's life, and another run's records around it.
void writeStory(std::unique_ptr<Backend> backend) {
  auto log = openAuditLog(std::move(backend));
  ASSERT_TRUE(log.ok());
  RunRef run{"team-a", "fix-flaky", "uid-7"};
  std::vector<Entry> entries = {
      {"paddock-operator", run, Action::RunAdmitted, {{"policy", "default"}, {"task", "fix the flaky test"}}},
      testing::sampleEntry(1),
      {"paddock-operator", run, Action::SecretMounted, {{"secret", "git-credentials"}, {"key", "token"}}},
      {"mallory", run, Action::ApprovalRefused, {{"stage", "pr"}, {"reason", "not an approver"}}},
      {"alice", run, Action::ApprovalCounted, {{"stage", "pr"}}},
      {"paddock-operator", run, Action::RunFinished, {{"phase", "Succeeded"}, {"spent", {{"tokens", 12000}}}}},
  };
  for (auto& e : entries) ASSERT_TRUE((*log)->append({e}, CancelToken()).ok());
}

TEST(AuditCli, VerifyProvesTheChainOrNamesTheFirstBadRecord) {
  testing::TempDir tmp;
  writeStory(std::make_unique<FileStore>(tmp.path(), 1 << 20));
  Ran ok = paddockAudit("verify " + tmp.path());
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.out.rfind("OK: 6 records, head seq 6 sha256:", 0), 0u) << ok.out;
  EXPECT_EQ(paddockAudit("verify --expect-seq 6 " + tmp.path()).exit_code, 0);
  Ran cut = paddockAudit("verify --expect-seq 7 " + tmp.path());
  EXPECT_EQ(cut.exit_code, 1);
  EXPECT_EQ(cut.out.rfind("BAD at seq 7 (end of store)", 0), 0u) << cut.out;

  std::string path = tmp.path() + "/" + segmentName(1);
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  auto r = nlohmann::json::parse(lines.at(5));  // seq 5: alice's approval
  r["actor"] = "mallory";
  lines[5] = canonical(r);
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : lines) out << l << '\n';
  out.close();

  Ran bad = paddockAudit("verify " + tmp.path());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.out.rfind("BAD at seq 5 (" + segmentName(1) + ":6): hash does not match", 0), 0u) << bad.out;
  EXPECT_EQ(paddockAudit("verify " + tmp.sub("missing")).exit_code, 2);
}

TEST(AuditCli, VerifyReadsMongoDB) {
  std::string collection = testing::freshCollection();
  writeStory(std::make_unique<MongoStore>(testing::mongoUri(), collection));
  Ran ok = paddockAudit("verify '" + testing::mongoUri() + "' --collection " + collection);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("OK: 6 records"), std::string::npos) << ok.out;
  testing::RawCollection(testing::mongoUri(), collection).remove(R"({"seq": 2})");
  Ran bad = paddockAudit("verify '" + testing::mongoUri() + "' --collection " + collection);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("BAD at seq 2"), std::string::npos) << bad.out;
}

TEST(AuditCli, ShowTellsOneRunsStoryAndExportWritesJsonLines) {
  testing::TempDir tmp;
  writeStory(std::make_unique<FileStore>(tmp.path(), 1 << 20));
  Ran story = paddockAudit("show --run team-a/fix-flaky " + tmp.path());
  EXPECT_EQ(story.exit_code, 0);
  EXPECT_NE(story.out.find("Run team-a/fix-flaky: 5 audit records"), std::string::npos) << story.out;
  EXPECT_NE(story.out.find("Asked:     RunAdmitted: policy=default, task=fix the flaky test"), std::string::npos);
  EXPECT_NE(story.out.find("Approved:  alice (stage=pr)"), std::string::npos) << story.out;
  EXPECT_NE(story.out.find("Spent:     {\"tokens\":12000}"), std::string::npos) << story.out;
  EXPECT_NE(story.out.find("SecretMounted by paddock-operator: key=token, secret=git-credentials"), std::string::npos);
  EXPECT_EQ(paddockAudit("show " + tmp.path()).exit_code, 2) << "--run is required";

  Ran all = paddockAudit("export " + tmp.path());
  EXPECT_EQ(all.exit_code, 0);
  size_t lines = 0;
  for (size_t start = 0, nl; (nl = all.out.find('\n', start)) != std::string::npos; start = nl + 1, ++lines) {
    auto j = nlohmann::json::parse(all.out.substr(start, nl - start));
    EXPECT_EQ(j["seq"], lines + 1);
  }
  EXPECT_EQ(lines, 6u);
  Ran one = paddockAudit("export --run team-a/fix-flaky " + tmp.path());
  EXPECT_EQ(std::count(one.out.begin(), one.out.end(), '\n'), 5);
}

TEST(AuditCli, EveryCommandHasHelp) {
  Ran top = paddockAudit("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("verify STORE"), std::string::npos);
  for (const char* command : {"verify", "show", "export"}) {
    Ran help = paddockAudit(std::string(command) + " --help");
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_NE(help.out.find("--collection"), std::string::npos) << command;
  }
  EXPECT_EQ(paddockAudit("frobnicate").exit_code, 2);
}

}  // namespace
}  // namespace paddock::audit
