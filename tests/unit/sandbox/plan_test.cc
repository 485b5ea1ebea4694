#include "sandbox/plan.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "sandbox/cli.h"

namespace paddock::sandbox {
namespace {

constexpr auto D = EntryType::Dir;
constexpr auto F = EntryType::File;
constexpr auto L = EntryType::Symlink;

// A repository: a root with files, .github/{workflows,ISSUE_TEMPLATE}, src/{app,infra}, docs.
std::vector<Entry> repository() {
  return {{".git", D},
          {".git/HEAD", F},
          {".github", D},
          {".github/workflows", D},
          {".github/workflows/ci.yml", F},
          {".github/ISSUE_TEMPLATE", D},
          {".github/ISSUE_TEMPLATE/bug.md", F},
          {"CODEOWNERS", F},
          {"README.md", F},
          {"docs", D},
          {"docs/index.md", F},
          {"src", D},
          {"src/app", D},
          {"src/app/main.tf", F},
          {"src/app/main.cc", F},
          {"src/infra", D},
          {"src/infra/net.tf", F},
          {"src/infra/modules", D},
          {"src/infra/modules/vpc.tf", F}};
}

std::vector<Entry> without(std::vector<Entry> listing, const std::string& prefix) {
  std::erase_if(listing, [&](const Entry& e) { return e.path == prefix || e.path.starts_with(prefix + "/"); });
  return listing;
}

struct Case {
  const char* name;
  std::vector<Entry> listing;
  std::vector<std::string> globs;
  std::vector<WorkspaceRule> rules;
  std::vector<std::string> protected_paths;
  std::vector<std::string> ancestors;
};

TEST(PlanWorkspace, TableOfPlans) {
  constexpr auto T = Grant::Tree;
  constexpr auto Fi = Grant::File;
  const Case cases[] = {
      {"no globs: the whole workspace", repository(), {}, {{"", T}}, {}, {}},
      {"globs that match nothing and name no literal path: the whole workspace",
       repository(), {"**/*.secret"}, {{"", T}}, {}, {}},
      {"a protected file at the root: its siblings get rules of their own",
       repository(),
       {"CODEOWNERS"},
       {{".git", T}, {".github", T}, {"README.md", Fi}, {"docs", T}, {"src", T}},
       {"CODEOWNERS"},
       {""}},
      {".github/workflows/** with the folder: the folder and its siblings' subtrees",
       repository(),
       {".github/workflows/**"},
       {{".git", T}, {".github/ISSUE_TEMPLATE", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}, {"src", T}},
       {".github/workflows"},
       {"", ".github"}},
      {".github/workflows/** without .github: nothing can create it, the rest is writable",
       without(repository(), ".github"),
       {".github/workflows/**"},
       {{".git", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}, {"src", T}},
       {".github/workflows"},
       {"", ".github"}},
      {"a trailing slash and a leading slash mean the same",
       without(repository(), ".github/workflows"),
       {"/.github/workflows/"},
       {{".git", T}, {".github/ISSUE_TEMPLATE", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}, {"src", T}},
       {".github/workflows"},
       {"", ".github"}},
      {"a wildcard glob matching files in two folders and one below: each folder an ancestor",
       repository(),
       {"**/*.tf"},
       {{".git", T}, {".github", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}, {"src/app/main.cc", Fi}},
       {"src/app/main.tf", "src/infra/modules/vpc.tf", "src/infra/net.tf"},
       {"", "src", "src/app", "src/infra", "src/infra/modules"}},
      {"nested ancestors: a file deep down and a folder beside it",
       repository(),
       {"src/infra/modules/vpc.tf", "src/app"},
       {{".git", T}, {".github", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}, {"src/infra/net.tf", Fi}},
       {"src/app", "src/infra/modules/vpc.tf"},
       {"", "src", "src/infra", "src/infra/modules"}},
      {"a protected folder covers what a narrower glob also names",
       repository(),
       {"src/**", "src/app/main.cc"},
       {{".git", T}, {".github", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}},
       {"src"},
       {""}},
      {"symbolic links get no rule, protected or not",
       {{"docs", D}, {"docs/index.md", F}, {"link-to-docs", L}, {"CODEOWNERS", L}, {"fifo", EntryType::Other},
        {"secret.key", F}},
       {"*.key"},
       {{"docs", T}},
       {"secret.key"},
       {""}},
      {"a glob naming a path through a symbolic link: the link's folder gets nothing beneath it",
       {{"vendor", L}, {"src", D}},
       {"vendor/lib/**"},
       {{"src", T}},
       {"vendor/lib"},
       {"", "vendor"}},
      {".git is an ordinary folder", repository(), {".git/**"},
       {{".github", T}, {"CODEOWNERS", Fi}, {"README.md", Fi}, {"docs", T}, {"src", T}}, {".git"}, {""}},
      {"everything", repository(), {"**"}, {}, {".git", ".github", "CODEOWNERS", "README.md", "docs", "src"}, {""}},
  };
  for (const auto& c : cases) {
    WorkspacePlan plan = planWorkspace(c.listing, c.globs);
    EXPECT_EQ(plan.rules, c.rules) << c.name;
    EXPECT_EQ(plan.protected_paths, c.protected_paths) << c.name;
    EXPECT_EQ(plan.ancestors, c.ancestors) << c.name;
  }
}

TEST(PlanWorkspace, LiteralPaths) {
  EXPECT_EQ(literalPath("CODEOWNERS"), "CODEOWNERS");
  EXPECT_EQ(literalPath(".github/workflows/**"), ".github/workflows");
  EXPECT_EQ(literalPath("/deploy/"), "deploy");
  EXPECT_EQ(literalPath("**/*.tf"), "");
  EXPECT_EQ(literalPath("infra/*/main.tf"), "");
  EXPECT_EQ(literalPath("../etc/passwd"), "");
  EXPECT_EQ(literalPath("a//b"), "");
  EXPECT_EQ(literalPath("**"), "");
}

TEST(PlanWorkspace, WhatTheOperatorsReadOnlyMountsHoldLeavesTheRootWritableButItsFoldersInPlace) {
  // The sample policy's literal globs, both mounted read-only over themselves: Landlock holds
  // nothing itself; the folders above the mounts keep their folders (".github" cannot be moved
  // aside with its mounted "workflows") and take new entries; their other children get all rights.
  auto plan = planWorkspace(repository(), {".github/workflows/**", "CODEOWNERS"}, {".github/workflows", "CODEOWNERS"});
  EXPECT_EQ(plan.rules, (std::vector<WorkspaceRule>{{"", Grant::KeepFolders},
                                                    {".git", Grant::Tree},
                                                    {".github", Grant::KeepFolders},
                                                    {".github/ISSUE_TEMPLATE", Grant::Tree},
                                                    {"README.md", Grant::File},
                                                    {"docs", Grant::Tree},
                                                    {"src", Grant::Tree}}));
  EXPECT_TRUE(plan.protected_paths.empty());
  EXPECT_TRUE(plan.ancestors.empty());
  EXPECT_EQ(plan.keeping, (std::vector<std::string>{"", ".github"}));
  EXPECT_EQ(plan.held, (std::vector<std::string>{".github/workflows", ".github/workflows/ci.yml", "CODEOWNERS"}));
  // A wildcard glob no mount can hold makes its matches' folders ancestors with no right; a
  // folder above a mount only keeps its folders; matches under a mount are held.
  plan = planWorkspace(repository(), {".github/workflows/**", "**/*.tf"}, {".github/workflows"});
  EXPECT_EQ(plan.protected_paths, (std::vector<std::string>{"src/app/main.tf", "src/infra/modules/vpc.tf", "src/infra/net.tf"}));
  EXPECT_EQ(plan.ancestors, (std::vector<std::string>{"", "src", "src/app", "src/infra", "src/infra/modules"}));
  EXPECT_EQ(plan.keeping, std::vector<std::string>{".github"});
  EXPECT_NE(std::find(plan.rules.begin(), plan.rules.end(), WorkspaceRule{".github", Grant::KeepFolders}), plan.rules.end());
  EXPECT_EQ(std::find(plan.rules.begin(), plan.rules.end(), WorkspaceRule{"", Grant::KeepFolders}), plan.rules.end())
      << "the root is an ancestor of a path Landlock holds: no right of its own";
  // A mount that is not one of the protected paths (the operator's or anybody's) changes nothing.
  plan = planWorkspace(repository(), {"CODEOWNERS"}, {"docs"});
  EXPECT_EQ(plan.protected_paths, std::vector<std::string>{"CODEOWNERS"});
  EXPECT_TRUE(plan.keeping.empty());
}

TEST(ReadOnlyMountsUnder, ReadsTheWorkspacesReadOnlyMountPointsFromMountinfo) {
  const std::string mountinfo =
      "1502 1480 0:412 / / ro,relatime master:1 - overlay overlay rw,lowerdir=/l\n"
      "1510 1502 252:1 /pods/x/volumes/ws /workspace rw,relatime - ext4 /dev/vda1 rw\n"
      "1511 1510 252:1 /pods/x/volumes/ws/.github/workflows /workspace/.github/workflows ro,relatime - ext4 /dev/vda1 rw\n"
      "1512 1510 252:1 /pods/x/volumes/ws/CODEOWNERS /workspace/CODEOWNERS ro,nosuid,relatime - ext4 /dev/vda1 rw\n"
      "1513 1510 252:1 /pods/x/volumes/ws/my\\040docs /workspace/my\\040docs ro - ext4 /dev/vda1 rw\n"
      "1514 1510 252:1 /pods/x/volumes/ws/src /workspace/src rw,relatime - ext4 /dev/vda1 ro\n"
      "1515 1502 0:33 / /workspace2/x ro - tmpfs tmpfs ro\n"
      "1516 1502 0:34 / /etc/claude-code ro,relatime - tmpfs tmpfs ro\n"
      "truncated line\n";
  EXPECT_EQ(readOnlyMountsUnder(mountinfo, "/workspace"),
            (std::vector<std::string>{".github/workflows", "CODEOWNERS", "my docs"}))
      << "the workspace itself, a rw mount (whatever its superblock), and mounts elsewhere are not";
}

TEST(SandboxCli, RunForm) {
  Cli c = parseCli({"--workspace", "/w", "--protected-paths-file=/etc/p", "--writable", "/tmp", "--writable=/home/a",
                    "--connect-port", "8080", "--connect-port=443", "--when-unavailable", "warn", "--", "claude",
                    "--print", "--"});
  ASSERT_EQ(c.mode, Cli::Mode::Run) << c.error;
  EXPECT_EQ(c.run.workspace, "/w");
  EXPECT_EQ(c.run.protected_paths_file, "/etc/p");
  EXPECT_EQ(c.run.writable, (std::vector<std::string>{"/tmp", "/home/a"}));
  EXPECT_EQ(c.run.connect_ports, (std::vector<int>{8080, 443}));
  EXPECT_FALSE(c.run.refuse_unavailable);
  EXPECT_EQ(c.run.command, (std::vector<std::string>{"claude", "--print", "--"}));

  Cli d = parseCli({"--", "sh"});
  ASSERT_EQ(d.mode, Cli::Mode::Run);
  EXPECT_EQ(d.run.workspace, "/workspace");
  EXPECT_TRUE(d.run.refuse_unavailable);
  EXPECT_TRUE(d.run.connect_ports.empty());
  EXPECT_FALSE(d.run.restrict_tcp);
  Cli closed = parseCli({"--restrict-tcp", "--", "sh"});
  ASSERT_EQ(closed.mode, Cli::Mode::Run) << closed.error;
  EXPECT_TRUE(closed.run.restrict_tcp);
}

TEST(SandboxCli, InstallForm) {
  Cli c = parseCli({"install", "--to", "/paddock/sandbox"});
  ASSERT_EQ(c.mode, Cli::Mode::Install) << c.error;
  EXPECT_EQ(c.install.to, "/paddock/sandbox");
  EXPECT_TRUE(c.install.refuse_unavailable);
  EXPECT_EQ(c.install.termination_log, "/dev/termination-log");
  Cli h = parseCli({"install", "--help"});
  EXPECT_EQ(h.mode, Cli::Mode::Help);
  EXPECT_TRUE(h.install_help);
  EXPECT_EQ(parseCli({"--help"}).mode, Cli::Mode::Help);
}

TEST(SandboxCli, ErrorsNameTheFlagAndTheFix) {
  struct Case { std::vector<std::string> args; const char* part; } cases[] = {
      {{"sh"}, "give the command after --"},
      {{"--workspace", "/w"}, "no command"},
      {{"--"}, "no command"},
      {{"--connect-port", "http", "--", "sh"}, "--connect-port http: give a TCP port"},
      {{"--connect-port", "70000", "--", "sh"}, "--connect-port 70000"},
      {{"--when-unavailable", "maybe", "--", "sh"}, "give refuse or warn"},
      {{"--writable"}, "--writable needs a value"},
      {{"--bogus", "x", "--", "sh"}, "unknown flag --bogus"},
      {{"install"}, "install needs --to DIR"},
      {{"install", "--to", "/x", "--when-unavailable", "no"}, "give refuse or warn"},
  };
  for (const auto& c : cases) {
    Cli cli = parseCli(c.args);
    EXPECT_EQ(cli.mode, Cli::Mode::Error) << c.part;
    EXPECT_NE(cli.error.find(c.part), std::string::npos) << cli.error;
  }
}

TEST(SandboxCli, GlobLines) {
  EXPECT_EQ(parseGlobLines("CODEOWNERS\n\n  .github/workflows/**  \r\n# a comment\n**/*.tf"),
            (std::vector<std::string>{"CODEOWNERS", ".github/workflows/**", "**/*.tf"}));
  EXPECT_TRUE(parseGlobLines("").empty());
}

}  // namespace
}  // namespace paddock::sandbox
