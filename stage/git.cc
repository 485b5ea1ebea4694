#include "stage/git.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace paddock::stage {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

Result<ProcessOutput> runProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                 const std::string& input) {
  if (argv.empty()) return Error::local("Spawn", "no program to run");
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Error::local("Spawn", std::strerror(errno));
  Fd in_r{in[0]}, in_w{in[1]};
  if (pipe2(out, O_CLOEXEC) != 0) return Error::local("Spawn", std::strerror(errno));
  Fd out_r{out[0]}, out_w{out[1]};
  if (pipe2(err, O_CLOEXEC) != 0) return Error::local("Spawn", std::strerror(errno));
  Fd err_r{err[0]}, err_w{err[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = argv[0].find('/') == std::string::npos
               ? posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), envp.data())
               : posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Error::local("Spawn", "cannot run " + argv[0] + ": " + std::strerror(rc));
  in_r.close();
  out_w.close();
  err_w.close();

  ProcessOutput result;
  size_t written = 0;
  if (input.empty()) in_w.close();
  char buf[65536];
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    pollfd fds[3];
    int n = 0;
    for (int fd : {out_r.fd, err_r.fd}) {
      if (fd >= 0) fds[n++] = {fd, POLLIN, 0};
    }
    if (in_w.fd >= 0) fds[n++] = {in_w.fd, POLLOUT, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_w.fd) {
        ssize_t w = write(in_w.fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == input.size()) in_w.close();
        continue;
      }
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      Fd& which = fds[i].fd == out_r.fd ? out_r : err_r;
      if (r > 0) {
        (fds[i].fd == out_r.fd ? result.out : result.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        which.close();
      }
    }
  }
  in_w.close();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Git::Git(std::string binary, std::string git_dir, std::string work_tree)
    : binary_(std::move(binary)), git_dir_(std::move(git_dir)), work_tree_(std::move(work_tree)) {}

void Git::setIdentity(std::string name, std::string email) {
  name_ = std::move(name);
  email_ = std::move(email);
}

std::vector<std::string> Git::environment(bool remote) const {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view v(*e);
    // Nothing of the caller's git settings (GIT_DIR, GIT_TRACE*, GIT_CONFIG_*, GIT_SSH_COMMAND...).
    if (v.starts_with("GIT_")) continue;
    env.emplace_back(v);
  }
  std::vector<std::pair<std::string, std::string>> config = {
      {"core.hooksPath", "/dev/null"},
      {"core.fsmonitor", "false"},
      {"core.autocrlf", "false"},
      {"core.quotePath", "false"},
      {"commit.gpgSign", "false"},
      {"credential.helper", ""},
  };
  if (remote && !authorization_.empty()) config.push_back({"http.extraHeader", authorization_});
  env.push_back("GIT_CONFIG_NOSYSTEM=1");
  env.push_back("GIT_CONFIG_GLOBAL=/dev/null");
  env.push_back("GIT_TERMINAL_PROMPT=0");
  env.push_back("GIT_ASKPASS=/bin/false");
  env.push_back("GIT_AUTHOR_NAME=" + name_);
  env.push_back("GIT_AUTHOR_EMAIL=" + email_);
  env.push_back("GIT_COMMITTER_NAME=" + name_);
  env.push_back("GIT_COMMITTER_EMAIL=" + email_);
  env.push_back("GIT_CONFIG_COUNT=" + std::to_string(config.size()));
  for (size_t i = 0; i < config.size(); ++i) {
    env.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + config[i].first);
    env.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + config[i].second);
  }
  return env;
}

std::vector<std::string> Git::argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {binary_};
  if (!work_tree_.empty()) argv.insert(argv.end(), {"-C", work_tree_, "--work-tree=" + work_tree_});
  argv.push_back("--git-dir=" + git_dir_);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<ProcessOutput> Git::output(const std::vector<std::string>& args) const {
  return runProcess(argv(args), environment(false));
}

Result<std::string> Git::exec(const std::vector<std::string>& args, const std::string& input, bool remote) const {
  auto out = runProcess(argv(args), environment(remote), input);
  if (!out) return out.error();
  if (out->exit_code != 0) {
    std::string err = out->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (err.size() > 600) err = err.substr(err.size() - 600);
    return Error::local("Git", "git " + (args.empty() ? std::string() : args[0]) + " exited " +
                                   std::to_string(out->exit_code) + (err.empty() ? "" : ": " + err));
  }
  return std::move(out->out);
}

Result<std::string> Git::run(const std::vector<std::string>& args, const std::string& input) const {
  return exec(args, input, false);
}

Result<std::string> Git::runRemote(const std::vector<std::string>& args) const { return exec(args, "", true); }

Result<std::string> readBelow(const std::string& root, const std::string& relative, size_t limit) {
  int dir = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Error::local("NotFound", root + ": " + std::strerror(errno));
  Fd current{dir};
  size_t start = 0;
  while (true) {
    size_t slash = relative.find('/', start);
    std::string part = relative.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    start = slash + 1;
    if (part.empty() || part == "." ) {
      if (slash == std::string::npos) return Error::local("Invalid", relative + " names no file");
      continue;
    }
    if (part == "..") return Error::local("Invalid", relative + " leaves " + root);
    bool last = slash == std::string::npos;
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY);
    int fd = openat(current.fd, part.c_str(), flags);
    if (fd < 0) {
      return Error::local(errno == ENOENT ? "NotFound" : "Invalid",
                          relative + ": " + (errno == ELOOP ? "a symbolic link" : std::strerror(errno)));
    }
    current.close();
    current.fd = fd;
    if (last) break;
  }
  struct stat st {};
  if (fstat(current.fd, &st) != 0 || !S_ISREG(st.st_mode)) return Error::local("Invalid", relative + " is not a regular file");
  if (static_cast<size_t>(st.st_size) > limit) {
    return Error::local("Invalid", relative + " is larger than " + std::to_string(limit) + " bytes");
  }
  std::string out;
  char buf[8192];
  ssize_t r;
  while ((r = read(current.fd, buf, sizeof buf)) > 0 && out.size() <= limit) out.append(buf, static_cast<size_t>(r));
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace paddock::stage
