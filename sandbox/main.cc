// paddock-sandbox: the in-pod launcher that applies Paddock's Landlock ruleset and executes the
// agent (docs/sandbox.md). Linked statically, so it runs from any team image: an init container
// copies it into a volume (`install`), and the agent container's command runs through it.
// The I/O edges live here; the workspace's rules are planned by sandbox/plan.h.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "operator/common/log.h"
#include "sandbox/cli.h"
#include "sandbox/landlock.h"
#include "sandbox/plan.h"

namespace fs = std::filesystem;
namespace ll = paddock::sandbox::landlock;
using namespace paddock::sandbox;

namespace {

constexpr int kExitSandboxFailed = 126;
constexpr int kExitExecFailed = 127;
constexpr int kExitInstallUnavailable = 3;

// A failure before the command runs: what failed and what to do, then exit.
// Where the kubelet reads the container's termination message; set while starting the agent, so
// the run's status quotes the launcher's own words whatever the agent's log holds (a file that
// does not exist, outside a container, is left alone).
const char* g_termination_log = nullptr;

[[noreturn]] void fail(const std::string& message, int code) {
  const std::string line = "paddock-sandbox: " + message + "\n";
  std::fputs(line.c_str(), stderr);
  if (g_termination_log) {
    int fd = open(g_termination_log, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd >= 0) {
      (void)!write(fd, line.data(), line.size());
      close(fd);
    }
  }
  std::fflush(nullptr);
  _exit(code);
}

std::string errnoText(int err) { return std::strerror(err); }

// Why Landlock cannot be used, from the errno of the version probe.
std::string unavailableReason(int err) {
  switch (err) {
    case ENOSYS:
      return "the kernel has no Landlock (ENOSYS): it needs Linux 5.13 or later built with CONFIG_SECURITY_LANDLOCK";
    case EOPNOTSUPP:
      return "Landlock is disabled on this node (EOPNOTSUPP): add landlock to the kernel's lsm= boot parameter";
    case EPERM:
      return "the Landlock system calls are denied (EPERM), likely by the container's seccomp profile: allow "
             "landlock_create_ruleset, landlock_add_rule and landlock_restrict_self";
    default:
      return "landlock_create_ruleset failed: " + errnoText(err);
  }
}

// --- install -------------------------------------------------------------------------------------

int install(const InstallOptions& o) {
  std::string target = o.to + "/paddock-sandbox";
  int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (in < 0) fail("install: cannot open /proc/self/exe: " + errnoText(errno) + "; is /proc mounted?", 1);
  std::string tmp_name = o.to + "/.paddock-sandbox.XXXXXX";
  std::vector<char> tmp(tmp_name.begin(), tmp_name.end());
  tmp.push_back('\0');
  int out = mkostemp(tmp.data(), O_CLOEXEC);
  if (out < 0) fail("install: cannot create a file in " + o.to + ": " + errnoText(errno) + "; check --to and its volume", 1);
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("install: cannot read /proc/self/exe: " + errnoText(errno), 1);
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        unlink(tmp.data());
        fail("install: cannot write " + std::string(tmp.data()) + ": " + errnoText(errno), 1);
      }
      done += w;
    }
  }
  close(in);
  if (fchmod(out, 0555) != 0 || fsync(out) != 0 || close(out) != 0 || rename(tmp.data(), target.c_str()) != 0) {
    int err = errno;
    unlink(tmp.data());
    fail("install: cannot put " + target + " in place: " + errnoText(err), 1);
  }

  int abi = ll::abiVersion();
  int err = errno;
  std::string line = abi >= 1 ? "landlock ABI " + std::to_string(abi) : "landlock unavailable: " + unavailableReason(err);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (int fd = open(o.termination_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); fd >= 0) {
    std::string text = line + "\n";
    (void)!write(fd, text.data(), text.size());
    close(fd);
  }
  return abi < 1 && o.refuse_unavailable ? kExitInstallUnavailable : 0;
}

// --- run -----------------------------------------------------------------------------------------

std::vector<Entry> listWorkspace(const std::string& workspace) {
  std::vector<Entry> out;
  std::error_code ec;
  // A folder that cannot be read fails the listing: what lies beneath it could be protected.
  fs::recursive_directory_iterator it(workspace, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto status = it->symlink_status(ec);
    if (ec) break;
    EntryType type = EntryType::Other;
    if (fs::is_symlink(status)) type = EntryType::Symlink;
    else if (fs::is_directory(status)) type = EntryType::Dir;
    else if (fs::is_regular_file(status)) type = EntryType::File;
    out.push_back({it->path().lexically_relative(workspace).generic_string(), type});
  }
  if (ec) {
    fail("cannot list the workspace " + workspace + " to find its protected paths: " + ec.message() +
             "; every folder in it must be readable by the agent's user",
         kExitSandboxFailed);
  }
  return out;
}

// Adds a path-beneath rule on an open O_PATH descriptor, with the rights the ruleset handles.
void addPathRule(int ruleset, int fd, uint64_t rights, uint64_t handled, const std::string& what) {
  ll::PathBeneathAttr attr{rights & handled, fd};
  if (attr.allowed_access == 0) return;
  if (ll::addRule(ruleset, ll::kRulePathBeneath, &attr) != 0) {
    fail("landlock_add_rule for " + what + " failed: " + errnoText(errno), kExitSandboxFailed);
  }
}

// Opens a system path (symlinks followed) and adds a rule: all rights on a folder, or `file_rights`
// on anything else. Returns false when the path does not exist.
bool addSystemRule(int ruleset, const std::string& path, uint64_t dir_rights, uint64_t file_rights, uint64_t handled) {
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    fail("cannot open " + path + ": " + errnoText(errno), kExitSandboxFailed);
  }
  struct stat st {};
  fstat(fd, &st);
  addPathRule(ruleset, fd, S_ISDIR(st.st_mode) ? dir_rights : file_rights, handled, path);
  close(fd);
  return true;
}

// Opens a path below the workspace without following any symbolic link on the way; -1 when it
// has gone or turned into a link since the listing.
int openBeneath(int workspace_fd, const std::string& rel) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;
  int fd = static_cast<int>(syscall(SYS_openat2, workspace_fd, rel.c_str(), &how, sizeof how));
  if (fd < 0 && errno != ENOENT && errno != ELOOP) {
    fail("cannot open the workspace's " + rel + ": " + errnoText(errno), kExitSandboxFailed);
  }
  return fd;
}

[[noreturn]] void execCommand(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  fail("cannot execute " + command[0] + ": " + errnoText(errno) + "; check the container's command and PATH",
       kExitExecFailed);
}

// As the container's PID 1 the launcher stays, as tini does, rather than exec: the kernel drops
// a signal that PID 1 has no handler for, so the kubelet's SIGTERM would never reach an agent
// that runs as PID 1 without one, and nobody would reap the orphans of its tool calls. It
// forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to the agent, reaps
// every child, and exits with the agent's status (128+N when signal N ended it). Both stay
// inside the ruleset, which restrict_self applied before the fork. Not PID 1: plain exec.
[[noreturn]] void superviseCommand(const std::vector<std::string>& command) {
  if (getpid() != 1) execCommand(command);
  sigset_t set, old;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD}) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid_t agent = fork();
  if (agent < 0) fail("cannot start the agent (fork): " + errnoText(errno), kExitSandboxFailed);
  if (agent == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    execCommand(command);
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGCHLD) {
      kill(agent, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      pid_t gone = waitpid(-1, &status, WNOHANG);
      if (gone <= 0) break;
      if (gone == agent) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

int run(const RunOptions& o) {
  paddock::log::setBaseFields({{"component", "sandbox"}});
  g_termination_log = "/dev/termination-log";
  std::vector<std::string> globs;
  if (!o.protected_paths_file.empty()) {
    std::ifstream in(o.protected_paths_file);
    if (!in) {
      fail("cannot read the protected-paths file " + o.protected_paths_file + ": " + errnoText(errno) +
               "; check --protected-paths-file and the volume that holds it",
           kExitSandboxFailed);
    }
    std::stringstream text;
    text << in.rdbuf();
    globs = parseGlobLines(text.str());
  }

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail("prctl(PR_SET_NO_NEW_PRIVS) failed: " + errnoText(errno), kExitSandboxFailed);
  }

  int abi = ll::abiVersion();
  if (abi < 1) {
    std::string reason = unavailableReason(errno);
    if (o.refuse_unavailable) {
      fail("landlock unavailable: " + reason +
               "; the policy refuses to run without it (its sandbox setting can allow a warning instead)",
           kExitSandboxFailed);
    }
    paddock::log::warn("landlock unavailable: running unsandboxed", {{"reason", reason}});
    superviseCommand(o.command);
  }

  ll::RulesetAttr attr;
  attr.handled_access_fs = ll::fsRights(abi);
  if (abi >= 4 && (o.restrict_tcp || !o.connect_ports.empty())) attr.handled_access_net = ll::kNetConnectTcp;
  if (abi >= 6) attr.scoped = ll::kScopeAbstractUnixSocket | ll::kScopeSignal;
  if (abi < 4 && (o.restrict_tcp || !o.connect_ports.empty())) {
    paddock::log::warn("landlock ABI below 4: TCP connect is not restricted", {{"abi", abi}});
  }
  const uint64_t handled = attr.handled_access_fs;
  const uint64_t all = handled;
  const uint64_t read_only = ll::kReadFile | ll::kReadDir | ll::kExecute | ll::kIoctlDev;
  const uint64_t file_write = ll::kWriteFile | ll::kTruncate | ll::kReadFile;

  int ruleset = ll::createRuleset(attr);
  if (ruleset < 0) fail("landlock_create_ruleset failed: " + errnoText(errno), kExitSandboxFailed);
  int rules = 0;

  if (!addSystemRule(ruleset, "/", read_only, read_only, handled)) fail("cannot open /", kExitSandboxFailed);
  ++rules;
  // /dev/null, /dev/tty and friends: write, not create or remove.
  rules += addSystemRule(ruleset, "/dev", ll::kWriteFile | ll::kTruncate, ll::kWriteFile | ll::kTruncate, handled);
  rules += addSystemRule(ruleset, "/dev/shm", all, file_write, handled);
  for (const auto& w : o.writable) {
    if (!addSystemRule(ruleset, w, all, file_write, handled)) {
      fail("--writable " + w + " does not exist: create it (an emptyDir volume) or drop the flag", kExitSandboxFailed);
    }
    ++rules;
  }

  // Landlock's rights add up across hierarchies: a writable folder holding the workspace (or one
  // inside it) would make protected paths writable.
  if (!globs.empty()) {
    auto resolved = [](const std::string& path) {
      std::error_code ec;
      fs::path p = fs::weakly_canonical(path, ec);
      return p.has_relative_path() && p.filename().empty() ? p.parent_path() : p;  // no trailing '/'
    };
    fs::path ws = resolved(o.workspace);
    for (const auto& w : o.writable) {
      fs::path dir = resolved(w);
      auto [a, b] = std::mismatch(ws.begin(), ws.end(), dir.begin(), dir.end());
      if (a == ws.end() || b == dir.end()) {
        fail("--writable " + w + " and the workspace " + o.workspace +
                 " overlap, which would make the protected paths writable: give folders outside the workspace",
             kExitSandboxFailed);
      }
    }
  }

  int workspace_fd = open(o.workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (workspace_fd < 0) {
    fail("cannot open the workspace " + o.workspace + ": " + errnoText(errno) + "; check --workspace and its volume",
         kExitSandboxFailed);
  }
  // The operator's read-only mounts of the protected literal paths hold those already.
  std::vector<std::string> mounted;
  if (!globs.empty()) {
    std::ifstream info("/proc/self/mountinfo");
    std::stringstream text;
    text << info.rdbuf();
    std::error_code ec;
    fs::path ws = fs::canonical(o.workspace, ec);
    if (!ec) mounted = readOnlyMountsUnder(text.str(), ws.string());
  }
  WorkspacePlan plan = planWorkspace(globs.empty() ? std::vector<Entry>{} : listWorkspace(o.workspace), globs, mounted);
  for (const auto& rule : plan.rules) {
    int fd = rule.path.empty() ? dup(workspace_fd) : openBeneath(workspace_fd, rule.path);
    if (fd < 0) continue;
    struct stat st {};
    // The rule's kind must still be what the listing saw (a file's rights on a folder would
    // reach everything beneath it).
    bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode), file = !dir && S_ISREG(st.st_mode);
    uint64_t rights = 0;
    if (rule.grant == Grant::Tree && dir) rights = all;
    if (rule.grant == Grant::KeepFolders && dir) rights = all & ~static_cast<uint64_t>(ll::kRemoveDir);
    if (rule.grant == Grant::File && file) rights = file_write;
    if (rights) {
      addPathRule(ruleset, fd, rights, handled, o.workspace + "/" + rule.path);
      ++rules;
    }
    close(fd);
  }
  close(workspace_fd);

  if (attr.handled_access_net) {
    for (int port : o.connect_ports) {
      ll::NetPortAttr net{ll::kNetConnectTcp, static_cast<uint64_t>(port)};
      if (ll::addRule(ruleset, ll::kRuleNetPort, &net) != 0) {
        fail("landlock_add_rule for TCP port " + std::to_string(port) + " failed: " + errnoText(errno),
             kExitSandboxFailed);
      }
      ++rules;
    }
  }

  if (ll::restrictSelf(ruleset) != 0) fail("landlock_restrict_self failed: " + errnoText(errno), kExitSandboxFailed);
  close(ruleset);
  paddock::log::info("sandbox applied", {{"abi", abi},
                                         {"protectedPaths", globs.size()},
                                         {"heldByReadOnlyMounts", plan.held},
                                         {"keepingFolders", plan.keeping},
                                         {"ancestors", plan.ancestors},
                                         {"rules", rules},
                                         {"supervising", getpid() == 1},
                                         {"connectPorts", attr.handled_access_net ? o.connect_ports : std::vector<int>{}}});
  superviseCommand(o.command);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli = parseCli(std::vector<std::string>(argv + 1, argv + argc));
  switch (cli.mode) {
    case Cli::Mode::Help:
      std::fputs((cli.install_help ? installUsage() : runUsage()).c_str(), stdout);
      return 0;
    case Cli::Mode::Error:
      std::fprintf(stderr, "paddock-sandbox: %s\n", cli.error.c_str());
      return argc > 1 && std::string(argv[1]) == "install" ? 2 : kExitSandboxFailed;
    case Cli::Mode::Install:
      return install(cli.install);
    case Cli::Mode::Run:
      return run(cli.run);
  }
  return kExitSandboxFailed;
}
