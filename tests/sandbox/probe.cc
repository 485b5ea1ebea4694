// paddock-sandbox-probe: the command the sandbox tests run under paddock-sandbox. Each argument
// is one operation, done in order; each prints "<operation>=ok" or "<operation>=<errno name>"
// (and "nonewprivs=<value>"), so a test asserts what the kernel answered.
//   write:P  open P O_WRONLY|O_TRUNC and write    create:P  open P O_WRONLY|O_CREAT|O_TRUNC and write
//   unlink:P   mkdir:P   rename:A:B   link:A:B   symlink:TARGET:LINK   connect:PORT (127.0.0.1)
//   nonewprivs   exit:N
// `paddock-sandbox-probe --deny-landlock PROGRAM ARGS...` instead executes PROGRAM under a seccomp
// filter that fails the Landlock system calls with EPERM, as a container runtime's profile might:
// a kernel without Landlock, as paddock-sandbox sees it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

std::string field(const std::string& op, int i) {
  size_t start = 0;
  for (int k = 0; k < i; ++k) start = op.find(':', start) + 1;
  size_t end = op.find(':', start);
  return op.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// 0 or an errno.
int writeFile(const std::string& path, int flags) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0644);
  if (fd < 0) return errno;
  int rc = write(fd, "probe\n", 6) == 6 ? 0 : errno;
  close(fd);
  return rc;
}

int connectPort(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

int denyLandlockAndExec(char** argv) {
  // landlock_create_ruleset, landlock_add_rule, landlock_restrict_self: 444 to 446 everywhere.
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 444, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 446, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::perror("probe: seccomp");
    return 100;
  }
  execv(argv[0], argv);
  std::perror("probe: exec");
  return 100;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "--deny-landlock") return denyLandlockAndExec(argv + 2);
  for (int i = 1; i < argc; ++i) {
    std::string op = argv[i];
    std::string verb = field(op, 0);
    int err = 0;
    if (verb == "write") err = writeFile(field(op, 1), O_TRUNC);
    else if (verb == "create") err = writeFile(field(op, 1), O_CREAT | O_TRUNC);
    else if (verb == "unlink") err = unlink(field(op, 1).c_str()) == 0 ? 0 : errno;
    else if (verb == "mkdir") err = mkdir(field(op, 1).c_str(), 0755) == 0 ? 0 : errno;
    else if (verb == "rename") err = rename(field(op, 1).c_str(), field(op, 2).c_str()) == 0 ? 0 : errno;
    else if (verb == "link") err = link(field(op, 1).c_str(), field(op, 2).c_str()) == 0 ? 0 : errno;
    else if (verb == "symlink") err = symlink(field(op, 1).c_str(), field(op, 2).c_str()) == 0 ? 0 : errno;
    else if (verb == "connect") err = connectPort(std::atoi(field(op, 1).c_str()));
    else if (verb == "nonewprivs") {
      std::ifstream status("/proc/self/status");
      std::string line, value = "missing";
      while (std::getline(status, line)) {
        if (line.starts_with("NoNewPrivs:")) value = line.substr(line.find_first_not_of(" \t", 11));
      }
      std::printf("%s=%s\n", op.c_str(), value.c_str());
      continue;
    } else if (verb == "exit") {
      std::fflush(stdout);
      return std::atoi(field(op, 1).c_str());
    } else {
      std::fprintf(stderr, "probe: unknown operation %s\n", op.c_str());
      return 100;
    }
    std::printf("%s=%s\n", op.c_str(), err == 0 ? "ok" : strerrorname_np(err));
  }
  return 0;
}
