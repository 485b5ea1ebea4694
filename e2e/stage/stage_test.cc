// paddock-stage against real git: a bare remote in a temporary folder with a base branch `main`,
// a workspace cloned from it where the "agent" works, the stage binary run as its own process as
// the stage pod runs it, and the stand-in forge (forge_standin.h) on loopback.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/stage/forge_standin.h"
#include "stage/git.h"

namespace paddock::stage {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ForgeStandin;

extern "C" char** environ;

const char* kToken = "forge-token-3c1f9a7e5b";  // must never show up in output, results or commits
const char* kCanary = "PADDOCK-CANARY-51d0c2";

std::vector<std::string> gitEnv() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::string_view(*e).starts_with("GIT_")) continue;
    env.emplace_back(*e);
  }
  for (const char* v : {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=Agent",
                        "GIT_AUTHOR_EMAIL=agent@example.com", "GIT_COMMITTER_NAME=Agent",
                        "GIT_COMMITTER_EMAIL=agent@example.com"}) {
    env.emplace_back(v);
  }
  return env;
}

std::string git(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto out = runProcess(argv, gitEnv());
  EXPECT_TRUE(out.ok());
  if (!out.ok()) return "";
  EXPECT_EQ(out->exit_code, 0) << args.front() << ": " << out->err;
  return out->out;
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::trunc) << text;
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct StageRun {
  int exit_code = -1;
  std::string out, err;
  json result;
};

class StageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "paddock-stage-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    remote_ = dir_ / "remote.git";
    workspace_ = dir_ / "workspace";
    git({"init", "-q", "--bare", "-b", "main", remote_.string()});
    fs::path seed = dir_ / "seed";
    git({"clone", "-q", remote_.string(), seed.string()});
    git({"-C", seed.string(), "checkout", "-q", "-b", "main"});
    write(seed / "README.md", "# shop\n");
    write(seed / "CHANGELOG.md", "# Changelog\n\nAll notable changes.\n\n## 0.1.0\n\n- First release.\n");
    write(seed / ".github/workflows/ci.yml", "on: push\n");
    write(seed / "src/app.py", "def main():\n    return 1\n");
    git({"-C", seed.string(), "add", "-A"});
    git({"-C", seed.string(), "commit", "-q", "-m", "initial"});
    git({"-C", seed.string(), "push", "-q", "origin", "main"});
    base_ = trim(git({"--git-dir=" + remote_.string(), "rev-parse", "refs/heads/main"}));
    git({"clone", "-q", "--branch", "main", remote_.string(), workspace_.string()});

    write(dir_ / "task/repository.json",
          json{{"url", "file://" + remote_.string()}, {"baseBranch", "main"}}.dump(2));
    write(dir_ / "task/protected-paths", ".github/workflows/**\ndb/migrations/**\n");
    write(dir_ / "task/task.md", "Make the client retry.\n");
    write(dir_ / "secrets/github-pr-token/token", std::string(kToken) + "\n");
    fs::create_directories(dir_ / "tmp");
    forge_ = std::make_unique<ForgeStandin>("acme", "shop", remote_.string());
    ASSERT_TRUE(forge_->start());
  }

  void TearDown() override {
    forge_.reset();
    std::error_code ec;
    if (!HasFailure()) fs::remove_all(dir_, ec);
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  StageRun stage(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {PADDOCK_STAGE_BIN, name,
                                     "--workspace", workspace_.string(),
                                     "--repository-file", (dir_ / "task/repository.json").string(),
                                     "--protected-paths-file", (dir_ / "task/protected-paths").string(),
                                     "--result", (dir_ / "result.json").string(),
                                     "--forge-api-url", forge_->url(),
                                     "--forge-repository", "acme/shop",
                                     "--scratch", (dir_ / "tmp").string(),
                                     "--date", "2025-05-01"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    env.push_back("PADDOCK_RUN=r1");
    env.push_back("PADDOCK_NAMESPACE=team-a");
    env.push_back("PADDOCK_STAGE=" + name);
    env.push_back("PADDOCK_TASK_FILE=" + (dir_ / "task/task.md").string());
    env.push_back("PADDOCK_SECRETS_DIR=" + (dir_ / "secrets").string());
    env.push_back(std::string("PADDOCK_CANARIES=") + kCanary);
    std::error_code ec;
    fs::remove(dir_ / "result.json", ec);
    auto out = runProcess(argv, env);
    EXPECT_TRUE(out.ok());
    StageRun run;
    if (!out.ok()) return run;
    run.exit_code = out->exit_code;
    run.out = out->out;
    run.err = out->err;
    std::string text = read(dir_ / "result.json");
    run.result = json::parse(text, nullptr, false);
    EXPECT_FALSE(run.result.is_discarded()) << "result: " << text << "\nstderr: " << run.err;
    // The token never shows up: not in the result, not on stdout, not in the JSON logs.
    EXPECT_EQ(text.find(kToken), std::string::npos);
    EXPECT_EQ(run.out.find(kToken), std::string::npos);
    EXPECT_EQ(run.err.find(kToken), std::string::npos) << run.err;
    // Whatever happened, the stage's scratch git directory is gone.
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
    return run;
  }

  // The stand-in's endpoint got one request: the deploy token as a bearer token, and `body`.
  void expectOneEndpointCall(const json& body) {
    auto requests = forge_->requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].header("Authorization"), "Bearer deploy-token-77");
    EXPECT_EQ(json::parse(requests[0].body), body);
  }

  bool remoteHas(const std::string& ref) {
    auto out = runProcess({"git", "--git-dir=" + remote_.string(), "rev-parse", "--verify", "-q", ref}, gitEnv());
    return out.ok() && out->exit_code == 0;
  }

  fs::path dir_, remote_, workspace_;
  std::string base_;
  std::unique_ptr<ForgeStandin> forge_;
};

TEST_F(StageTest, CleanChangeIsPushedWithChangelogAndOpensAPullRequest) {
  // The agent commits one change and leaves another uncommitted; both are the change.
  write(workspace_ / "src/app.py", "def main():\n    return retry(3)\n");
  git({"-C", workspace_.string(), "commit", "-q", "-am", "agent: retry"});
  write(workspace_ / "docs/retries.md", "Retries happen three times.\n");
  write(workspace_ / ".paddock/summary.md", "# Retry the client three times\n\nThe client now retries.\n");

  StageRun run = stage("pr");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.result["outcome"], "PullRequestOpened");
  EXPECT_EQ(run.result["branch"], "paddock/r1");
  EXPECT_EQ(run.result["baseCommit"], base_);
  EXPECT_EQ(run.result["pullRequest"]["url"], "https://github.com/acme/shop/pull/1");
  EXPECT_EQ(run.result["pullRequest"]["number"], 1);

  // The branch on the remote: one commit by paddock on main's tip, with the CHANGELOG entry.
  ASSERT_TRUE(remoteHas("refs/heads/paddock/r1"));
  std::string gd = "--git-dir=" + remote_.string();
  EXPECT_EQ(trim(git({gd, "rev-parse", "refs/heads/paddock/r1"})), run.result["commit"].get<std::string>());
  EXPECT_EQ(trim(git({gd, "rev-parse", "refs/heads/paddock/r1^"})), base_);
  EXPECT_EQ(trim(git({gd, "log", "-1", "--format=%an <%ae>|%cn|%s", "refs/heads/paddock/r1"})),
            "paddock <paddock@paddock.dev>|paddock|Retry the client three times");
  std::string changelog = git({gd, "show", "refs/heads/paddock/r1:CHANGELOG.md"});
  EXPECT_EQ(changelog,
            "# Changelog\n\nAll notable changes.\n\n"
            "## 2025-05-01 Retry the client three times\n\nThe client now retries.\n\n"
            "Proposed by Paddock run `team-a/r1` on branch `paddock/r1`.\n\n"
            "## 0.1.0\n\n- First release.\n");
  std::string files = git({gd, "diff", "--name-only", base_, "refs/heads/paddock/r1"});
  EXPECT_EQ(files, "CHANGELOG.md\ndocs/retries.md\nsrc/app.py\n");  // not .paddock/
  // Never merged: main is where it was.
  EXPECT_EQ(trim(git({gd, "rev-parse", "refs/heads/main"})), base_);
  // The workspace is as the agent left it (the CHANGELOG went into the stage's own index).
  EXPECT_EQ(read(workspace_ / "CHANGELOG.md"), "# Changelog\n\nAll notable changes.\n\n## 0.1.0\n\n- First release.\n");

  // One pull request request, valid against the pulls/create schema.
  auto requests = forge_->requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& req = requests[0];
  EXPECT_EQ(req.status, 201);
  EXPECT_TRUE(req.problems.empty()) << req.problems.front();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/repos/acme/shop/pulls");
  EXPECT_EQ(req.header("Authorization"), std::string("Bearer ") + kToken);
  auto body = json::parse(req.body);
  EXPECT_EQ(body["head"], "paddock/r1");
  EXPECT_EQ(body["base"], "main");
  EXPECT_EQ(body["title"], "Retry the client three times");
  EXPECT_NE(body["body"].get<std::string>().find("The client now retries."), std::string::npos);
  EXPECT_EQ(body["draft"], false);

  // The branch is fresh: a second run does not overwrite it.
  StageRun again = stage("pr");
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_EQ(again.result["outcome"], "ForgeError");
  EXPECT_EQ(again.result["reason"], "BranchExists");
  EXPECT_EQ(forge_->requests().size(), 1u);
}

// An agent stopped at its budget: its work in progress is proposed as a draft that says so, and
// the same checks hold (a protected path still stops it).
TEST_F(StageTest, PartialWorkOpensADraftPullRequestMarkedAsSuch) {
  write(workspace_ / "src/app.py", "def main():\n    return retry(2)  # half done\n");
  StageRun run = stage("pr", {"--partial", "spec.budget.tokens is spent: 1,500 of 1,000 tokens"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.result["outcome"], "PullRequestOpened");
  EXPECT_NE(run.result["message"].get<std::string>().find("opened draft pull request #1"), std::string::npos) << run.result.dump();
  auto requests = forge_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].problems.empty()) << requests[0].problems.front();
  auto body = json::parse(requests[0].body);
  EXPECT_EQ(body["draft"], true);
  const std::string text = body["body"];
  EXPECT_EQ(text.rfind("> **Partial work, opened as a draft.**", 0), 0u) << text;
  EXPECT_NE(text.find("spec.budget.tokens is spent: 1,500 of 1,000 tokens"), std::string::npos) << text;

  write(workspace_ / ".github/workflows/ci.yml", "on: push\njobs: {}\n");
  StageRun refused = stage("pr", {"--partial", "spec.budget.tokens is spent"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_EQ(refused.result["reason"], "ProtectedPath");
  EXPECT_EQ(forge_->requests().size(), 1u);
}

TEST_F(StageTest, ProtectedPathStopsTheStage) {
  write(workspace_ / ".github/workflows/ci.yml", "on: push\njobs: {}\n");
  write(workspace_ / "src/app.py", "def main():\n    return 2\n");

  StageRun run = stage("pr");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.result["outcome"], "Refused");
  EXPECT_EQ(run.result["reason"], "ProtectedPath");
  EXPECT_EQ(run.result["refusedPaths"], json::array({".github/workflows/ci.yml"}));
  EXPECT_NE(run.result["message"].get<std::string>().find(".github/workflows/ci.yml"), std::string::npos);
  EXPECT_FALSE(run.result.contains("branch"));
  EXPECT_FALSE(remoteHas("refs/heads/paddock/r1"));
  EXPECT_TRUE(forge_->requests().empty());
}

TEST_F(StageTest, DeletingAProtectedFileStopsTheStageToo) {
  fs::remove(workspace_ / ".github/workflows/ci.yml");
  StageRun run = stage("pr");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.result["refusedPaths"], json::array({".github/workflows/ci.yml"}));
  EXPECT_FALSE(remoteHas("refs/heads/paddock/r1"));
}

TEST_F(StageTest, PlantedCredentialStopsTheStage) {
  const std::string planted = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
  write(workspace_ / "src/settings.py", "DEBUG = False\nGITHUB_TOKEN = \"" + planted + "\"\n");
  write(workspace_ / "notes.md", std::string("found ") + kCanary + " in the environment\n");

  StageRun run = stage("pr");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.result["outcome"], "Refused");
  EXPECT_EQ(run.result["reason"], "Credential");
  json findings = run.result["findings"];
  EXPECT_TRUE(std::find(findings.begin(), findings.end(),
                        json{{"file", "src/settings.py"}, {"line", 2}, {"pattern", "github-token"}}) != findings.end())
      << findings.dump();
  EXPECT_TRUE(std::find(findings.begin(), findings.end(),
                        json{{"file", "notes.md"}, {"line", 1}, {"pattern", "canary"}}) != findings.end())
      << findings.dump();
  // The finding names the place, never the value.
  EXPECT_EQ(run.result.dump().find(planted), std::string::npos);
  EXPECT_EQ(run.result.dump().find(kCanary), std::string::npos);
  EXPECT_EQ(run.err.find(planted), std::string::npos);
  EXPECT_FALSE(remoteHas("refs/heads/paddock/r1"));
  EXPECT_TRUE(forge_->requests().empty());
}

TEST_F(StageTest, CredentialInTheSummaryStopsTheStage) {
  write(workspace_ / "src/app.py", "def main():\n    return 2\n");
  write(workspace_ / ".paddock/summary.md", "Done. Used key AKIAQYLPMN5HHHFPZAM2 to test.\n");
  StageRun run = stage("pr");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.result["findings"][0]["file"], "CHANGELOG.md");
  EXPECT_EQ(run.result["findings"][0]["pattern"], "aws-access-key-id");
}

TEST_F(StageTest, SummaryBehindASymbolicLinkIsNotRead) {
  // An agent points its summary at the stage's token: the stage falls back to the task.
  write(workspace_ / "src/app.py", "def main():\n    return 2\n");
  fs::create_directories(workspace_ / ".paddock");
  fs::create_symlink(dir_ / "secrets/github-pr-token/token", workspace_ / ".paddock/summary.md");
  StageRun run = stage("pr");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string changelog = git({"--git-dir=" + remote_.string(), "show", "refs/heads/paddock/r1:CHANGELOG.md"});
  EXPECT_EQ(changelog.find(kToken), std::string::npos);
  EXPECT_NE(changelog.find("## 2025-05-01 Make the client retry."), std::string::npos) << changelog;
  EXPECT_EQ(forge_->requests().at(0).body.find(kToken), std::string::npos);
}

TEST_F(StageTest, NoChangesIsItsOwnOutcome) {
  StageRun run = stage("pr");
  EXPECT_EQ(run.exit_code, 6);
  EXPECT_EQ(run.result["outcome"], "NoChanges");
  EXPECT_FALSE(remoteHas("refs/heads/paddock/r1"));
}

TEST_F(StageTest, MissingTokenIsAUsageError) {
  write(workspace_ / "src/app.py", "def main():\n    return 2\n");
  StageRun run = stage("pr", {"--token-file", (dir_ / "secrets/nope/token").string()});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.result["outcome"], "UsageError");
  EXPECT_EQ(run.result["reason"], "TokenFile");
  StageRun unknown = stage("merge");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.result["reason"], "UnknownStage");
}

TEST_F(StageTest, CloneFetchesTheBaseBranchIntoTheEmptyWorkspace) {
  fs::path into = dir_ / "fresh";
  auto run = stage("clone", {"--into", into.string(), "--token-file", (dir_ / "secrets/github-pr-token/token").string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.result["outcome"], "Cloned") << run.result.dump();
  EXPECT_EQ(run.result["baseCommit"], base_) << run.result.dump();
  EXPECT_EQ(read(into / "README.md"), "# shop\n");
  EXPECT_EQ(trim(git({"-C", into.string(), "rev-parse", "HEAD"})), base_);
  EXPECT_EQ(trim(git({"-C", into.string(), "remote", "get-url", "origin"})), "file://" + remote_.string());
  // A workspace that already holds files is never cloned over.
  auto again = stage("clone", {"--into", into.string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.result["reason"], "WorkspaceNotEmpty") << again.result.dump();
}

TEST_F(StageTest, DeployStagesARelease) {
  write(dir_ / "secrets/deploy-token/token", "deploy-token-77\n");
  StageRun run = stage("deploy", {"--deploy-url", forge_->url() + "/deploy", "--commit", base_});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.result["outcome"], "Staged");
  EXPECT_EQ(run.result["release"]["id"], "rel-1");
  expectOneEndpointCall({{"run", "r1"}, {"namespace", "team-a"}, {"stage", "deploy"}, {"ref", "paddock/r1"},
                         {"branch", "paddock/r1"}, {"commit", base_}});

  forge_->setDeployStatus(403);
  StageRun refused = stage("deploy", {"--deploy-url", forge_->url() + "/deploy"});
  EXPECT_EQ(refused.exit_code, 5);
  EXPECT_EQ(refused.result["outcome"], "DeployError");
  EXPECT_EQ(refused.result["reason"], "DeployRefused");
  EXPECT_EQ(refused.result.dump().find("deploy-token-77"), std::string::npos);
}

// Issue 23.8: the agent starts from A; while it works, upstream moves the base to B, changing
// files the agent never touched (one of them protected). The stage diffs the agent's work against
// A, the commit the clone recorded, and proposes it on top of B: nothing of B is reverted.
class BaseMovedTest : public StageTest {
 protected:
  // Upstream pushes one more commit to main (through a clone of its own) and returns it.
  std::string upstreamCommits(const std::map<std::string, std::string>& files) {
    fs::path up = dir_ / "upstream";
    if (!fs::exists(up)) git({"clone", "-q", "--branch", "main", remote_.string(), up.string()});
    git({"-C", up.string(), "pull", "-q", "--ff-only"});
    for (const auto& [path, text] : files) write(up / path, text);
    git({"-C", up.string(), "add", "-A"});
    git({"-C", up.string(), "commit", "-q", "-m", "upstream"});
    git({"-C", up.string(), "push", "-q", "origin", "main"});
    return trim(git({"--git-dir=" + remote_.string(), "rev-parse", "refs/heads/main"}));
  }
  std::string show(const std::string& rev, const std::string& path) {
    return git({"--git-dir=" + remote_.string(), "show", rev + ":" + path});
  }
};

TEST_F(BaseMovedTest, TheAgentsWorkIsProposedOnTheNewBaseWithoutRevertingIt) {
  std::string b = upstreamCommits({{"README.md", "# shop\n\nNow with docs.\n"},
                                   {".github/workflows/ci.yml", "on: [push, pull_request]\n"}});
  write(workspace_ / "src/app.py", "def main():\n    return retry(3)\n");

  StageRun run = stage("pr", {"--base-commit", base_});
  ASSERT_EQ(run.exit_code, 0) << run.result.dump() << run.err;
  EXPECT_EQ(run.result["outcome"], "PullRequestOpened");
  EXPECT_EQ(run.result["baseCommit"], b);
  EXPECT_EQ(run.result["startCommit"], base_);
  std::string gd = "--git-dir=" + remote_.string();
  EXPECT_EQ(trim(git({gd, "rev-parse", "refs/heads/paddock/r1^"})), b) << "the branch does not sit on the new base";
  EXPECT_EQ(git({gd, "diff", "--name-only", b, "refs/heads/paddock/r1"}), "CHANGELOG.md\nsrc/app.py\n")
      << "the pull request reverts upstream's work";
  EXPECT_EQ(show("refs/heads/paddock/r1", "README.md"), "# shop\n\nNow with docs.\n");
  EXPECT_EQ(show("refs/heads/paddock/r1", ".github/workflows/ci.yml"), "on: [push, pull_request]\n");
}

TEST_F(BaseMovedTest, ChangesToOtherLinesOfTheSameFileAreMerged) {
  write(workspace_ / "src/app.py", "import retry\ndef main():\n    return 1\n");
  std::string b = upstreamCommits({{"src/app.py", "def main():\n    return 1\n# upstream's footer\n"}});
  StageRun run = stage("pr", {"--base-commit", base_});
  ASSERT_EQ(run.exit_code, 0) << run.result.dump() << run.err;
  EXPECT_EQ(show("refs/heads/paddock/r1", "src/app.py"), "import retry\ndef main():\n    return 1\n# upstream's footer\n");
}

TEST_F(BaseMovedTest, AConflictStopsTheStageWithItsOwnOutcome) {
  write(workspace_ / "src/app.py", "def main():\n    return 2\n");
  upstreamCommits({{"src/app.py", "def main():\n    return 3\n"}});
  StageRun run = stage("pr", {"--base-commit", base_});
  EXPECT_EQ(run.exit_code, 7) << run.result.dump();
  EXPECT_EQ(run.result["outcome"], "Conflict");
  EXPECT_EQ(run.result["conflicts"], json::array({"src/app.py"}));
  EXPECT_NE(run.result["message"].get<std::string>().find("src/app.py"), std::string::npos);
  EXPECT_FALSE(remoteHas("refs/heads/paddock/r1"));
  EXPECT_TRUE(forge_->requests().empty());
}

TEST_F(BaseMovedTest, TheAgentsOwnChangeToAProtectedPathIsStillRefused) {
  upstreamCommits({{"README.md", "# shop v2\n"}});
  write(workspace_ / ".github/workflows/ci.yml", "on: push\njobs: {}\n");
  StageRun run = stage("pr", {"--base-commit", base_});
  EXPECT_EQ(run.exit_code, 3) << run.result.dump();
  EXPECT_EQ(run.result["refusedPaths"], json::array({".github/workflows/ci.yml"}));
}

TEST_F(BaseMovedTest, ABaseCommitThatIsNotACommitIdIsAUsageError) {
  write(workspace_ / "src/app.py", "def main():\n    return 2\n");
  for (const char* bad : {"main", "--upload-pack=touch /tmp/x", "abc", "HEAD~1"}) {
    StageRun run = stage("pr", {std::string("--base-commit=") + bad});
    EXPECT_EQ(run.exit_code, 2) << bad;
    EXPECT_EQ(run.result["reason"], "BaseCommit") << bad << run.result.dump();
  }
  StageRun unknown = stage("pr", {"--base-commit", std::string(40, 'e')});
  EXPECT_EQ(unknown.exit_code, 4) << unknown.result.dump();
  EXPECT_EQ(unknown.result["reason"], "FetchFailed");
  EXPECT_FALSE(remoteHas("refs/heads/paddock/r1"));
}

TEST_F(StageTest, PromotePromotesTheStagedRelease) {
  write(dir_ / "secrets/deploy-token/token", "deploy-token-77\n");
  StageRun run = stage("promote", {"--deploy-url", forge_->url() + "/promote", "--release", "rel-1"});
  ASSERT_EQ(run.exit_code, 0) << run.err << run.result.dump();
  EXPECT_EQ(run.result["outcome"], "Promoted");
  EXPECT_EQ(run.result["release"]["id"], "rel-1");
  expectOneEndpointCall({{"run", "r1"}, {"namespace", "team-a"}, {"stage", "promote"}, {"release", "rel-1"}});
  StageRun without = stage("promote", {"--deploy-url", forge_->url() + "/promote"});
  EXPECT_EQ(without.exit_code, 2);
  EXPECT_EQ(without.result["reason"], "Release");
}

TEST(ForgeStandinSchema, PullsCreate) {
  EXPECT_TRUE(ForgeStandin::checkPullsCreateBody(json{{"title", "t"}, {"head", "h"}, {"base", "b"}}).empty());
  EXPECT_TRUE(ForgeStandin::checkPullsCreateBody(json{{"issue", 5}, {"head", "h"}, {"base", "b"}}).empty());
  EXPECT_EQ(ForgeStandin::checkPullsCreateBody(json{{"title", "t"}, {"head", "h"}}).size(), 1u);
  EXPECT_EQ(ForgeStandin::checkPullsCreateBody(json{{"title", "t"}, {"head", "h"}, {"base", "b"}, {"draft", "no"}}).size(), 1u);
  EXPECT_EQ(ForgeStandin::checkPullsCreateBody(json{{"title", 1}, {"head", "h"}, {"base", "b"}, {"merge", true}}).size(), 2u);
  EXPECT_EQ(ForgeStandin::checkPullsCreateBody(json::array()).size(), 1u);
}

}  // namespace
}  // namespace paddock::stage
