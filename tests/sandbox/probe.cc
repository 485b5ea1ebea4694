// paddock-sandbox-probe: the command the sandbox tests run under paddock-sandbox. Each argument
// is one operation, done in order; each prints "<operation>=ok" or "<operation>=<errno name>"
// (and "nonewprivs=<value>"), so a test asserts what the kernel answered.
//   write:P  open P O_WRONLY|O_TRUNC and write    create:P  open P O_WRONLY|O_CREAT|O_TRUNC and write
//   unlink:P   mkdir:P   rename:A:B   link:A:B   symlink:TARGET:LINK   connect:PORT (127.0.0.1)
//   nonewprivs   exit:N
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

int main(int argc, char** argv) {
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
