// Running git: posix_spawn with an explicit argv (never a shell) and an environment built here.
//
// The stage never runs git inside the workspace's own repository: its .git (config, hooks,
// fsmonitor, filters, refs) belongs to the agent. It uses a git directory of its own in scratch
// space with the workspace as work tree, reads no system or global config, and fetches the base
// branch from the remote itself. The token reaches git only as an http.extraHeader passed
// through GIT_CONFIG_COUNT/KEY/VALUE in the environment of fetch and push, never in argv.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "operator/common/result.h"

namespace paddock::stage {

struct ProcessOutput {
  int exit_code = 0;  // the exit status, or 128 + signal
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] looked up on PATH when it has no slash) with `env` as its whole
// environment and `input` on its stdin; collects stdout and stderr.
Result<ProcessOutput> runProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                 const std::string& input = "");

class Git {
 public:
  // `git_dir`: the stage's own repository; `work_tree`: the workspace (may be empty for commands
  // that need none).
  Git(std::string binary, std::string git_dir, std::string work_tree);

  // Identity of the commits the stage makes.
  void setIdentity(std::string name, std::string email);
  // The Authorization header fetch and push send (gitAuthorizationHeader); empty: none.
  void setAuthorization(std::string header) { authorization_ = std::move(header); }

  // Runs `git <args>`; a non-zero exit is an error (reason "Git") quoting git's stderr.
  Result<std::string> run(const std::vector<std::string>& args, const std::string& input = "") const;
  // The same, with the Authorization header in the environment (fetch, push, ls-remote).
  Result<std::string> runRemote(const std::vector<std::string>& args) const;
  // Runs `git <args>` and returns what it printed and its exit status, whatever that is (for
  // commands whose exit status is an answer, such as merge-file's count of conflicts).
  Result<ProcessOutput> output(const std::vector<std::string>& args) const;

 private:
  Result<std::string> exec(const std::vector<std::string>& args, const std::string& input, bool remote) const;
  std::vector<std::string> argv(const std::vector<std::string>& args) const;
  std::vector<std::string> environment(bool remote) const;

  std::string binary_, git_dir_, work_tree_, name_ = "paddock", email_ = "paddock@paddock.dev", authorization_;
};

// Reads the file `relative` below `root` without following any symbolic link on the way (an
// agent could point its summary at a mounted secret), at most `limit` bytes; an error when it is
// missing, not a regular file, behind a link or larger.
Result<std::string> readBelow(const std::string& root, const std::string& relative, size_t limit);

}  // namespace paddock::stage
