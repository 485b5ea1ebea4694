#include "sandbox/cli.h"

#include <cstdlib>

namespace paddock::sandbox {
namespace {

struct Arg {
  std::string name, value;
};

// Splits "--name=value" or "--name value" (advancing i); false with `error` set when the value is missing.
bool takeFlag(const std::vector<std::string>& args, size_t& i, Arg& out, std::string& error) {
  const std::string& a = args[i];
  auto eq = a.find('=');
  out.name = a.substr(0, eq);
  if (eq != std::string::npos) {
    out.value = a.substr(eq + 1);
    return true;
  }
  if (i + 1 >= args.size()) {
    error = out.name + " needs a value";
    return false;
  }
  out.value = args[++i];
  return true;
}

bool parseWhen(const Arg& a, bool& refuse, std::string& error) {
  if (a.value == "refuse") refuse = true;
  else if (a.value == "warn") refuse = false;
  else {
    error = "--when-unavailable " + a.value + ": give refuse or warn";
    return false;
  }
  return true;
}

Cli fail(std::string error, bool install) {
  Cli c;
  c.mode = Cli::Mode::Error;
  c.error = std::move(error) + "; see paddock-sandbox " + (install ? "install " : "") + "--help";
  return c;
}

Cli parseInstall(const std::vector<std::string>& args) {
  Cli c;
  c.mode = Cli::Mode::Install;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      c.mode = Cli::Mode::Help;
      c.install_help = true;
      return c;
    }
    Arg a;
    if (!args[i].starts_with("--")) return fail("unexpected argument " + args[i], true);
    if (!takeFlag(args, i, a, c.error)) return fail(c.error, true);
    if (a.name == "--to") c.install.to = a.value;
    else if (a.name == "--termination-log") c.install.termination_log = a.value;
    else if (a.name == "--when-unavailable") {
      if (!parseWhen(a, c.install.refuse_unavailable, c.error)) return fail(c.error, true);
    } else return fail("unknown flag " + a.name, true);
  }
  if (c.install.to.empty()) return fail("install needs --to DIR, the folder to copy paddock-sandbox into", true);
  return c;
}

}  // namespace

Cli parseCli(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "install") return parseInstall(args);
  Cli c;
  c.mode = Cli::Mode::Run;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i] == "--help" || args[i] == "-h") {
      c.mode = Cli::Mode::Help;
      return c;
    }
    if (!args[i].starts_with("--")) {
      return fail("unexpected argument " + args[i] + ": give the command after --, as in paddock-sandbox -- " + args[i],
                  false);
    }
    if (args[i] == "--restrict-tcp") {
      c.run.restrict_tcp = true;
      continue;
    }
    Arg a;
    if (!takeFlag(args, i, a, c.error)) return fail(c.error, false);
    if (a.name == "--workspace") c.run.workspace = a.value;
    else if (a.name == "--protected-paths-file") c.run.protected_paths_file = a.value;
    else if (a.name == "--writable") c.run.writable.push_back(a.value);
    else if (a.name == "--connect-port") {
      char* end = nullptr;
      long port = std::strtol(a.value.c_str(), &end, 10);
      if (a.value.empty() || *end || port < 1 || port > 65535) {
        return fail("--connect-port " + a.value + ": give a TCP port from 1 to 65535", false);
      }
      c.run.connect_ports.push_back(static_cast<int>(port));
    } else if (a.name == "--when-unavailable") {
      if (!parseWhen(a, c.run.refuse_unavailable, c.error)) return fail(c.error, false);
    } else return fail("unknown flag " + a.name, false);
  }
  if (i + 1 >= args.size()) return fail("no command: give it after --, as in paddock-sandbox -- /bin/sh", false);
  c.run.command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
  if (c.run.workspace.empty()) return fail("--workspace is empty: give the workspace's folder", false);
  return c;
}

std::string runUsage() {
  return R"(paddock-sandbox: run a command under a Landlock ruleset (docs/sandbox.md)

Usage:
  paddock-sandbox [flags] -- COMMAND [ARGS...]
  paddock-sandbox install --to DIR [--when-unavailable refuse|warn] [--termination-log FILE]

Sets no_new_privs, restricts the process to: read and execute everywhere; write the workspace
except its protected paths, the --writable folders, /dev's files and /dev/shm; TCP connect only
to the --connect-port ports (when any is given, or with --restrict-tcp). Then executes COMMAND.

Flags:
  --workspace DIR              the workspace, writable except the protected paths (default /workspace)
  --protected-paths-file FILE  one glob a line, relative to the workspace: `*` and `?` stop at '/',
                               `**` crosses it (default: none)
  --writable DIR               a folder writable in full (repeatable)
  --connect-port N             a TCP port the command may connect to (repeatable; none given:
                               TCP connect is not restricted, unless --restrict-tcp)
  --restrict-tcp               TCP connect only to the --connect-port ports, none when none is given
  --when-unavailable MODE      refuse (default): exit 126 when the kernel has no Landlock;
                               warn: log a warning and run the command unsandboxed

Exit status: COMMAND's; 126 when the sandbox cannot be applied, 127 when COMMAND cannot be executed.
)";
}

std::string installUsage() {
  return R"(paddock-sandbox install: copy paddock-sandbox into a folder and report the kernel's Landlock

Usage:
  paddock-sandbox install --to DIR [--when-unavailable refuse|warn] [--termination-log FILE]

Copies this program to DIR/paddock-sandbox (mode 0555), then prints one line to stdout and to the
termination log: "landlock ABI <n>" or "landlock unavailable: <reason>".

Flags:
  --to DIR                 the folder to copy paddock-sandbox into (required)
  --when-unavailable MODE  refuse (default): exit 3 when the kernel has no Landlock; warn: exit 0
  --termination-log FILE   where the line is also written (default /dev/termination-log; skipped
                           when it cannot be written)
)";
}

std::vector<std::string> parseGlobLines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos) {
      line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
      if (line.front() != '#') out.push_back(line);
    }
    start = end + 1;
  }
  return out;
}

}  // namespace paddock::sandbox
