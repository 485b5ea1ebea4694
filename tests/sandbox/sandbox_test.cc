// paddock-sandbox on this machine's kernel: the built binary runs paddock-sandbox-probe as its
// command, and each test asserts what the kernel answered the probe (an errno, a value, an exit
// status). A kernel without Landlock fails every test, unless PADDOCK_SANDBOX_ALLOW_NO_LANDLOCK=1
// (then they are skipped).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

const std::string kSandbox = PADDOCK_SANDBOX_BIN;
const std::string kProbe = PADDOCK_SANDBOX_PROBE;

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

struct Result {
  int status = -1;  // the exit status, or 128 + signal
  std::string out, err;
  std::map<std::string, std::string> answers;  // the probe's "operation=answer" lines
};

// Runs argv with stdout and stderr captured in files under `dir`.
Result runProcess(const std::vector<std::string>& args, const fs::path& dir) {
  fs::path out = dir / "stdout", err = dir / "stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  Result r;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) return r;
  posix_spawn_file_actions_destroy(&actions);
  int ws = 0;
  waitpid(pid, &ws, 0);
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  r.out = readFile(out);
  r.err = readFile(err);
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.rfind('=');
    if (eq != std::string::npos) r.answers[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return r;
}

// A loopback listener on an ephemeral port, held open for the test.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 && listen(fd, 8) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ~Listener() { close(fd); }
};

class Sandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, 1U);
    if (abi < 1) {
      std::string why = "this kernel has no usable Landlock (landlock_create_ruleset: " + std::string(strerror(errno)) +
                        "); paddock-sandbox cannot be tested here";
      const char* allow = std::getenv("PADDOCK_SANDBOX_ALLOW_NO_LANDLOCK");
      if (allow && std::string(allow) == "1") GTEST_SKIP() << why;
      FAIL() << why << ". Run on a kernel with Landlock (5.13+, lsm=landlock), or set "
             << "PADDOCK_SANDBOX_ALLOW_NO_LANDLOCK=1 to skip.";
    }
    abi_ = static_cast<int>(abi);
    char tmpl[] = "/tmp/paddock-sandbox-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ws_ = root_ / "workspace";
    home_ = root_ / "home";
    outside_ = root_ / "outside";
    fs::create_directories(home_);
    fs::create_directories(outside_);
    writeFile(ws_ / "CODEOWNERS", "* @platform\n");
    writeFile(ws_ / "README.md", "readme\n");
    writeFile(ws_ / "src/main.cc", "int main() {}\n");
    writeFile(ws_ / ".github/ISSUE_TEMPLATE/bug.md", "bug\n");
    writeFile(ws_ / ".git/HEAD", "ref: refs/heads/main\n");
    writeFile(root_ / "protected-paths", "CODEOWNERS\n\n.github/workflows/**\n");
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  // paddock-sandbox with the test's workspace, protected paths and $HOME, then the probe's operations.
  Result sandboxed(const std::vector<std::string>& ops, std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {kSandbox, "--workspace", ws_.string(), "--protected-paths-file",
                                     (root_ / "protected-paths").string(), "--writable", home_.string()};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("--");
    args.push_back(kProbe);
    args.insert(args.end(), ops.begin(), ops.end());
    return runProcess(args, root_);
  }

  std::string w(const std::string& rel) { return (ws_ / rel).string(); }
  std::string h(const std::string& rel) { return (home_ / rel).string(); }

  int abi_ = 0;
  fs::path root_, ws_, home_, outside_;
};

TEST_F(Sandbox, ProtectedFileCannotBeWrittenRemovedOrReplaced) {
  std::vector<std::string> ops = {
      "write:" + w("CODEOWNERS"),
      "unlink:" + w("CODEOWNERS"),
      "create:" + w("CODEOWNERS"),
      "rename:" + w("CODEOWNERS") + ":" + w("CODEOWNERS.bak"),
      "rename:" + w("CODEOWNERS") + ":" + w("src/CODEOWNERS"),
      "rename:" + w("README.md") + ":" + w("CODEOWNERS"),
      "rename:" + w("src/main.cc") + ":" + w("CODEOWNERS"),
  };
  Result r = sandboxed(ops);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.answers[ops[0]], "EACCES");
  EXPECT_EQ(r.answers[ops[1]], "EACCES");
  EXPECT_EQ(r.answers[ops[2]], "EACCES");
  EXPECT_EQ(r.answers[ops[3]], "EACCES");
  for (size_t i = 4; i < ops.size(); ++i) {
    EXPECT_TRUE(r.answers[ops[i]] == "EACCES" || r.answers[ops[i]] == "EXDEV") << ops[i] << " = " << r.answers[ops[i]];
  }
  EXPECT_EQ(readFile(ws_ / "CODEOWNERS"), "* @platform\n");
  EXPECT_TRUE(fs::exists(ws_ / "src/main.cc"));
  EXPECT_FALSE(fs::exists(ws_ / "src/CODEOWNERS"));
}

TEST_F(Sandbox, ProtectedFileCannotBeReachedThroughLinks) {
  std::vector<std::string> ops = {
      "symlink:" + w("CODEOWNERS") + ":" + h("soft"),
      "write:" + h("soft"),
      "link:" + w("CODEOWNERS") + ":" + h("hard"),
      "symlink:" + w("CODEOWNERS") + ":" + w("src/soft"),
      "write:" + w("src/soft"),
  };
  Result r = sandboxed(ops);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.answers[ops[0]], "ok") << "the link itself may be made in a writable folder";
  EXPECT_EQ(r.answers[ops[1]], "EACCES");
  EXPECT_TRUE(r.answers[ops[2]] == "EXDEV" || r.answers[ops[2]] == "EACCES") << r.answers[ops[2]];
  EXPECT_EQ(r.answers[ops[3]], "ok");
  EXPECT_EQ(r.answers[ops[4]], "EACCES");
  EXPECT_FALSE(fs::exists(home_ / "hard"));
  EXPECT_EQ(readFile(ws_ / "CODEOWNERS"), "* @platform\n");
}

TEST_F(Sandbox, MissingProtectedFolderCannotBeCreated) {
  std::vector<std::string> ops = {
      "mkdir:" + w(".github/workflows"),
      "create:" + w(".github/workflows/ci.yml"),
      "create:" + w(".github/ci.yml"),
      "write:" + w(".github/ISSUE_TEMPLATE/bug.md"),
      "create:" + w(".github/ISSUE_TEMPLATE/feature.md"),
  };
  Result r = sandboxed(ops);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.answers[ops[0]], "EACCES");
  EXPECT_EQ(r.answers[ops[1]], "ENOENT") << "the folder was not made";
  EXPECT_EQ(r.answers[ops[2]], "EACCES") << "no new entry directly in an ancestor (docs/sandbox.md)";
  EXPECT_EQ(r.answers[ops[3]], "ok");
  EXPECT_EQ(r.answers[ops[4]], "ok");
  EXPECT_FALSE(fs::exists(ws_ / ".github/workflows"));
}

TEST_F(Sandbox, UnprotectedWorkspaceAndWritableFoldersAreWritableNothingElse) {
  std::vector<std::string> ops = {
      "write:" + w("src/main.cc"),
      "create:" + w("src/new.cc"),
      "mkdir:" + w("src/lib"),
      "create:" + w("src/lib/a.cc"),
      "rename:" + w("src/new.cc") + ":" + w("src/lib/b.cc"),
      "write:" + w("README.md"),
      "create:" + w(".git/index.lock"),
      "create:" + w("NEW.md"),
      "create:" + h("notes"),
      "create:" + (outside_ / "x").string(),
      "create:/tmp/paddock-sandbox-test-outside",
      "write:/dev/null",
  };
  Result r = sandboxed(ops);
  ASSERT_EQ(r.status, 0) << r.err;
  for (size_t i : {0, 1, 2, 3, 4, 5, 6, 8, 11}) EXPECT_EQ(r.answers[ops[i]], "ok") << ops[i];
  EXPECT_EQ(r.answers[ops[7]], "EACCES") << "the workspace's root is an ancestor of CODEOWNERS";
  EXPECT_EQ(r.answers[ops[9]], "EACCES");
  EXPECT_EQ(r.answers[ops[10]], "EACCES");
  EXPECT_EQ(readFile(ws_ / "src/main.cc"), "probe\n");
  EXPECT_TRUE(fs::exists(ws_ / "src/lib/b.cc"));
  EXPECT_FALSE(fs::exists(outside_ / "x"));
}

TEST_F(Sandbox, NoProtectedPathsMeansTheWholeWorkspace) {
  std::vector<std::string> ops = {"create:" + w("NEW.md"), "write:" + w("CODEOWNERS"), "create:" + (outside_ / "x").string()};
  Result r = runProcess({kSandbox, "--workspace", ws_.string(), "--", kProbe, ops[0], ops[1], ops[2]}, root_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.answers[ops[0]], "ok");
  EXPECT_EQ(r.answers[ops[1]], "ok");
  EXPECT_EQ(r.answers[ops[2]], "EACCES");
}

TEST_F(Sandbox, TcpConnectOnlyToListedPorts) {
  if (abi_ < 4) FAIL() << "Landlock ABI " << abi_ << " has no TCP rules (needs 4)";
  Listener allowed, other;
  ASSERT_GT(allowed.port, 0);
  ASSERT_GT(other.port, 0);
  std::vector<std::string> ops = {"connect:" + std::to_string(allowed.port), "connect:" + std::to_string(other.port)};
  Result r = sandboxed(ops, {"--connect-port", std::to_string(allowed.port)});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.answers[ops[0]], "ok");
  EXPECT_EQ(r.answers[ops[1]], "EACCES");
  EXPECT_NE(r.err.find("\"connectPorts\":[" + std::to_string(allowed.port) + "]"), std::string::npos) << r.err;

  // Without --connect-port, TCP connect is not restricted; with --restrict-tcp it is closed.
  Result open = sandboxed({ops[1]});
  EXPECT_EQ(open.answers[ops[1]], "ok") << open.err;
  Result closed = sandboxed({ops[0], ops[1]}, {"--restrict-tcp"});
  EXPECT_EQ(closed.answers[ops[0]], "EACCES") << closed.err;
  EXPECT_EQ(closed.answers[ops[1]], "EACCES") << closed.err;
}

TEST_F(Sandbox, NoNewPrivsLogLineAndExitStatus) {
  Result r = sandboxed({"nonewprivs", "exit:7"});
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.answers["nonewprivs"], "1");
  EXPECT_NE(r.err.find("\"msg\":\"sandbox applied\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"component\":\"sandbox\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"abi\":" + std::to_string(abi_)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"protectedPaths\":2"), std::string::npos) << r.err;
}

TEST_F(Sandbox, FailuresBeforeExecAreNamedAndExit126Or127) {
  Result missing = runProcess({kSandbox, "--workspace", ws_.string(), "--protected-paths-file",
                               (root_ / "nope").string(), "--", kProbe, "exit:0"}, root_);
  EXPECT_EQ(missing.status, 126);
  EXPECT_TRUE(missing.err.starts_with("paddock-sandbox: ")) << missing.err;
  EXPECT_NE(missing.err.find((root_ / "nope").string()), std::string::npos) << missing.err;

  Result no_ws = runProcess({kSandbox, "--workspace", (root_ / "nope").string(), "--", kProbe}, root_);
  EXPECT_EQ(no_ws.status, 126);
  EXPECT_NE(no_ws.err.find("--workspace"), std::string::npos) << no_ws.err;

  Result no_cmd = runProcess({kSandbox, "--workspace", ws_.string(), "--", (root_ / "no-such-program").string()}, root_);
  EXPECT_EQ(no_cmd.status, 127);
  EXPECT_TRUE(no_cmd.err.find("paddock-sandbox: cannot execute") != std::string::npos) << no_cmd.err;

  Result overlap = sandboxed({"exit:0"}, {"--writable", root_.string()});
  EXPECT_EQ(overlap.status, 126);
  EXPECT_NE(overlap.err.find("--writable " + root_.string() + " and the workspace"), std::string::npos) << overlap.err;
  Result inside = sandboxed({"exit:0"}, {"--writable", w("src")});
  EXPECT_EQ(inside.status, 126) << inside.err;

  Result usage = runProcess({kSandbox, "--connect-port", "x", "--", kProbe}, root_);
  EXPECT_EQ(usage.status, 126);
  EXPECT_NE(usage.err.find("--connect-port x"), std::string::npos) << usage.err;
}

// A kernel without Landlock, as a seccomp profile that denies its system calls shows it.
TEST_F(Sandbox, UnavailableLandlockIsRefusedOrWarnedByChoice) {
  std::string op = "create:" + (outside_ / "x").string();
  Result refused = runProcess({kProbe, "--deny-landlock", kSandbox, "--workspace", ws_.string(), "--", kProbe, op}, root_);
  EXPECT_EQ(refused.status, 126);
  EXPECT_TRUE(refused.err.starts_with("paddock-sandbox: landlock unavailable: ")) << refused.err;
  EXPECT_NE(refused.err.find("EPERM"), std::string::npos) << refused.err;
  EXPECT_TRUE(refused.answers.empty()) << "the command must not run";

  Result warned = runProcess({kProbe, "--deny-landlock", kSandbox, "--workspace", ws_.string(), "--when-unavailable",
                              "warn", "--", kProbe, op, "nonewprivs"},
                             root_);
  EXPECT_EQ(warned.status, 0) << warned.err;
  EXPECT_NE(warned.err.find("\"level\":\"warn\""), std::string::npos) << warned.err;
  EXPECT_NE(warned.err.find("landlock unavailable"), std::string::npos) << warned.err;
  EXPECT_EQ(warned.answers[op], "ok") << "unsandboxed";
  EXPECT_EQ(warned.answers["nonewprivs"], "1");

  fs::path to = root_ / "paddock";
  fs::create_directories(to);
  fs::path log = root_ / "termination-log";
  Result install = runProcess(
      {kProbe, "--deny-landlock", kSandbox, "install", "--to", to.string(), "--termination-log", log.string()}, root_);
  EXPECT_EQ(install.status, 3);
  EXPECT_TRUE(install.out.starts_with("landlock unavailable: ")) << install.out;
  EXPECT_EQ(readFile(log), install.out);
  EXPECT_TRUE(fs::exists(to / "paddock-sandbox")) << "installed either way; the run decides";
  Result install_warn = runProcess({kProbe, "--deny-landlock", kSandbox, "install", "--to", to.string(),
                                    "--termination-log", log.string(), "--when-unavailable", "warn"},
                                   root_);
  EXPECT_EQ(install_warn.status, 0);
  EXPECT_TRUE(install_warn.out.starts_with("landlock unavailable: ")) << install_warn.out;
}

TEST_F(Sandbox, InstallCopiesItselfAndReportsTheAbi) {
  fs::path to = root_ / "paddock";
  fs::create_directories(to);
  fs::path log = root_ / "termination-log";
  Result r = runProcess({kSandbox, "install", "--to", to.string(), "--termination-log", log.string()}, root_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "landlock ABI " + std::to_string(abi_) + "\n");
  EXPECT_GE(abi_, 4);
  EXPECT_EQ(readFile(log), r.out);
  fs::path copy = to / "paddock-sandbox";
  struct stat st {};
  ASSERT_EQ(stat(copy.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  EXPECT_EQ(fs::file_size(copy), fs::file_size(kSandbox));
  EXPECT_EQ(std::distance(fs::directory_iterator(to), fs::directory_iterator()), 1) << "no temporary file left";

  // The copy runs, and sandboxes like the original.
  std::string op = "create:" + (outside_ / "x").string();
  Result again = runProcess({copy.string(), "--workspace", ws_.string(), "--", kProbe, op}, root_);
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.answers[op], "EACCES");
}

}  // namespace

// The container's PID 1: the launcher stays as the agent's parent, hands it the kubelet's SIGTERM
// (which the kernel would drop for a PID 1 without a handler) and exits with its status. A PID
// namespace of the test's own (unshare, as root) makes the launcher PID 1.
TEST_F(Sandbox, AsPidOneItForwardsTheKubeletsSignalAndExitsWithTheAgentsStatus) {
  if (geteuid() != 0) GTEST_SKIP() << "a PID namespace of the test's own needs root";
  fs::path out = root_ / "pid1.out";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, (root_ / "pid1.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  // The agent installs no handler for SIGTERM (as a PID 1 it would never see it): a sleep.
  const std::string script = "(sleep 60 &); echo ready; exec sleep 30";
  std::vector<std::string> args = {"/usr/bin/unshare", "--pid", "--fork", "--kill-child", "--", kSandbox, "--workspace",
                                   ws_.string(), "--", "/bin/sh", "-c", script};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t unshare = 0;
  ASSERT_EQ(posix_spawn(&unshare, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // The agent says it is ready (its trap is set) once the launcher has started it.
  bool ready = false;
  for (int i = 0; i < 200 && !ready; ++i) {
    ready = readFile(out).find("ready") != std::string::npos;
    if (!ready) usleep(25000);
  }
  ASSERT_TRUE(ready) << readFile(root_ / "pid1.err");
  // unshare's one child is the launcher, PID 1 of its namespace.
  std::string children = readFile("/proc/" + std::to_string(unshare) + "/task/" + std::to_string(unshare) + "/children");
  pid_t launcher = std::atoi(children.c_str());
  ASSERT_GT(launcher, 0) << children;
  std::string status = readFile("/proc/" + std::to_string(launcher) + "/status");
  EXPECT_NE(status.find("NSpid:\t" + std::to_string(launcher) + "\t1\n"), std::string::npos) << status;
  EXPECT_NE(readFile(root_ / "pid1.err").find("\"supervising\":true"), std::string::npos) << readFile(root_ / "pid1.err");
  ASSERT_EQ(kill(launcher, SIGTERM), 0);
  int ws = 0;
  ASSERT_EQ(waitpid(unshare, &ws, 0), unshare);
  ASSERT_TRUE(WIFEXITED(ws)) << "unshare ended by signal " << WTERMSIG(ws);
  EXPECT_EQ(WEXITSTATUS(ws), 128 + SIGTERM) << "the agent ended by the forwarded SIGTERM, at once";
}

// The operator's read-only mounts of the literal protected paths, made here as the kubelet makes
// them (bind mounts, then read-only) in a mount namespace of the test's own: the launcher leaves
// those paths to the mounts, so the root takes new files; and the folder above a mount cannot be
// renamed aside to put a new ".github/workflows" in its place.
TEST_F(Sandbox, ReadOnlyMountsHoldTheirPathsAndTheirFoldersCannotBeMovedAside) {
  if (geteuid() != 0) GTEST_SKIP() << "a mount namespace of the test's own needs root";
  writeFile(ws_ / ".github/workflows/ci.yml", "on: push\n");
  std::string mounts;
  for (const char* held : {".github/workflows", "CODEOWNERS"}) {
    std::string at = w(held);
    mounts += "mount --bind '" + at + "' '" + at + "' && mount -o remount,bind,ro '" + at + "' && ";
  }
  std::string inner = kSandbox + " --workspace " + ws_.string() + " --protected-paths-file " + (root_ / "protected-paths").string() +
                      " -- " + kProbe + " create:" + w("NEW.md") + " write:" + w("README.md") + " write:" + w("CODEOWNERS") +
                      " create:" + w(".github/workflows/new.yml") + " rename:" + w(".github") + ":" + w("gh-aside") +
                      " rename:" + w(".github/workflows") + ":" + w("workflows-aside") + " unlink:" + w("CODEOWNERS") +
                      " create:" + w(".github/dependabot.yml") + " rename:" + w("src") + ":" + w("source") +
                      " create:" + w("src/new.cc") + " unlink:" + w("src/main.cc");
  Result r = runProcess({"/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", mounts + inner}, root_);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("\"keepingFolders\":[\"\",\".github\"]"), std::string::npos) << r.err;
  EXPECT_EQ(r.answers["create:" + w("NEW.md")], "ok") << "the root takes new files";
  EXPECT_EQ(r.answers["write:" + w("README.md")], "ok");
  EXPECT_EQ(r.answers["write:" + w("CODEOWNERS")], "EROFS");
  EXPECT_EQ(r.answers["create:" + w(".github/workflows/new.yml")], "EROFS");
  EXPECT_EQ(r.answers["rename:" + w(".github") + ":" + w("gh-aside")], "EACCES") << "the folder above a mount stays";
  const std::string moved = r.answers["rename:" + w(".github/workflows") + ":" + w("workflows-aside")];
  EXPECT_TRUE(moved == "EACCES" || moved == "EBUSY") << moved;
  EXPECT_EQ(r.answers["unlink:" + w("CODEOWNERS")], "EBUSY");
  EXPECT_EQ(r.answers["create:" + w(".github/dependabot.yml")], "ok") << "a folder above a mount takes new files";
  EXPECT_EQ(r.answers["rename:" + w("src") + ":" + w("source")], "EACCES") << "no folder directly in the root moves";
  EXPECT_EQ(r.answers["create:" + w("src/new.cc")], "ok");
  EXPECT_EQ(r.answers["unlink:" + w("src/main.cc")], "ok");
  EXPECT_EQ(readFile(ws_ / ".github/workflows/ci.yml"), "on: push\n");
}
