#include "operator/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

namespace paddock::http {
namespace {

const char* statusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Status";
}

void writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

bool splitHostPort(const std::string& address, std::string& host, int& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string p = address.substr(colon + 1);
  if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5) return false;
  port = std::stoi(p);
  return port <= 65535;
}

void Server::handle(std::string path, Handler handler) { handlers_[std::move(path)] = std::move(handler); }

Status Server::start(const std::string& address) {
  std::string host;
  int port = 0;
  if (!splitHostPort(address, host, port)) {
    return Error::local("InvalidConfig", "listen address \"" + address + "\" must be host:port or :port");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &res); rc != 0) {
    return Error::local("InvalidConfig", "listen address \"" + address + "\": " + gai_strerror(rc));
  }
  // For ":port" prefer IPv6 (dual stack) and fall back to the other addresses, so a host without
  // IPv6 still listens on IPv4.
  std::vector<addrinfo*> candidates;
  for (addrinfo* a = res; a; a = a->ai_next) {
    if (host.empty() && a->ai_family == AF_INET6) candidates.insert(candidates.begin(), a);
    else candidates.push_back(a);
  }
  int fd = -1;
  std::string why = "no address";
  for (addrinfo* pick : candidates) {
    fd = ::socket(pick->ai_family, pick->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (pick->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(fd, pick->ai_addr, pick->ai_addrlen) == 0 && ::listen(fd, 64) == 0) break;
    why = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) {
    freeaddrinfo(res);
    return Error::local("ListenFailed", "cannot listen on " + address + ": " + why);
  }
  freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    std::string e = std::strerror(errno);
    ::close(fd);
    return Error::local("ListenFailed", "pipe: " + e);
  }
  listen_fd_ = fd;
  thread_ = std::thread([this] { serve(); });
  return Ok{};
}

void Server::stop() {
  if (!thread_.joinable()) return;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  listen_fd_ = wake_[0] = wake_[1] = -1;
}

void Server::serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        answer(fd);
        ::close(fd);
      }
    }
  }
}

void Server::answer(int fd) {
  // One slow client must not hold the only serving thread: the request head must arrive within
  // 2 s in all (at most 8 KiB), and each write of the reply may block for at most 2 s.
  timeval send_timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::string head;
  char buf[2048];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 8192) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  auto sp1 = head.find(' ');
  auto sp2 = head.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) return;
  std::string method = head.substr(0, sp1);
  std::string path = head.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);

  Reply reply;
  auto it = handlers_.find(path);
  if (method != "GET" && method != "HEAD") {
    reply = {405, "text/plain; charset=utf-8", "method not allowed\n"};
  } else if (it == handlers_.end()) {
    reply = {404, "text/plain; charset=utf-8", "not found\n"};
  } else {
    try {
      reply = it->second();
    } catch (const std::exception& e) {
      reply = {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
    }
  }
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + statusText(reply.status) +
                    "\r\nContent-Type: " + reply.content_type +
                    "\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : reply.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (method != "HEAD") out += reply.body;
  writeAll(fd, out);
}

}  // namespace paddock::http
