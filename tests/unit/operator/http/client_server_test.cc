// The cpprestsdk client against servers on loopback: Paddock's own Server, and a raw socket
// that streams a chunked body and then goes silent, as a dead watch connection does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "operator/http/client.h"
#include "operator/http/server.h"

namespace paddock::http {
namespace {

TEST(Server, ServesRegisteredPathsAndRefusesOthers) {
  Server server;
  server.handle("/healthz", [] { return Reply{200, "text/plain", "ok\n"}; });
  server.handle("/boom", []() -> Reply { throw std::runtime_error("kaput"); });
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  ASSERT_GT(server.port(), 0);
  auto client = makeClient("http://127.0.0.1:" + std::to_string(server.port()), {});
  ASSERT_TRUE(client.ok());
  auto ok = (*client)->send({Method::Get, "/healthz?verbose=1"});
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "ok\n");
  EXPECT_EQ(ok->header("content-type"), "text/plain");
  auto missing = (*client)->send({Method::Get, "/nope"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto post = (*client)->send({Method::Post, "/healthz", {}, "{}"});
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);
  auto boom = (*client)->send({Method::Get, "/boom"});
  ASSERT_TRUE(boom.ok());
  EXPECT_EQ(boom->status, 500);
  server.stop();
}

TEST(Server, ASlowClientDoesNotHoldTheServer) {
  Server server;
  server.handle("/healthz", [] { return Reply{200, "text/plain", "ok\n"}; });
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  // A client that sends one byte and then nothing.
  int slow = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  ASSERT_EQ(::connect(slow, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  (void)!::send(slow, "G", 1, 0);
  auto client = makeClient("http://127.0.0.1:" + std::to_string(server.port()), {});
  ASSERT_TRUE(client.ok());
  Request req{Method::Get, "/healthz"};
  req.timeout = std::chrono::seconds(10);
  auto start = std::chrono::steady_clock::now();
  auto r = (*client)->send(req);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "the slow client held the server";
  ::close(slow);
}

TEST(Server, RejectsMalformedAddress) {
  Server server;
  auto s = server.start("localhost");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("host:port"), std::string::npos);
}

// Accepts one connection, answers with a chunked body of `lines`, then holds the connection
// open without writing until `release` is set.
class SilentStreamServer {
 public:
  explicit SilentStreamServer(std::vector<std::string> lines) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, lines] {
      int c = ::accept(fd_, nullptr, nullptr);
      char buf[4096];
      (void)!::recv(c, buf, sizeof buf, 0);
      std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (const auto& l : lines) {
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", l.size() + 1);
        out += size + l + "\n\r\n";
      }
      (void)!::send(c, out.data(), out.size(), MSG_NOSIGNAL);
      while (!release_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ::close(c);
    });
  }
  ~SilentStreamServer() {
    release_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1, port_ = 0;
  std::atomic<bool> release_{false};
  std::thread thread_;
};

TEST(Client, StreamDeliversLinesThenTimesOutOnSilence) {
  SilentStreamServer server({R"({"type":"ADDED"})", R"({"type":"MODIFIED"})"});
  auto client = makeClient("http://127.0.0.1:" + std::to_string(server.port()), {});
  ASSERT_TRUE(client.ok());
  std::vector<std::string> got;
  Request req{Method::Get, "/watch"};
  req.timeout = std::chrono::milliseconds(700);
  auto start = std::chrono::steady_clock::now();
  auto result = (*client)->stream(req, [&](std::string_view line) {
    got.emplace_back(line);
    return true;
  });
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(got, (std::vector<std::string>{R"({"type":"ADDED"})", R"({"type":"MODIFIED"})"}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "Timeout") << result.error().describe();
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST(Client, StreamStopsWhenCancelled) {
  SilentStreamServer server({R"({"type":"ADDED"})"});
  auto client = makeClient("http://127.0.0.1:" + std::to_string(server.port()), {});
  ASSERT_TRUE(client.ok());
  CancelToken cancel;
  Request req{Method::Get, "/watch"};
  req.timeout = std::chrono::minutes(5);
  auto result = (*client)->stream(req, [&](std::string_view) {
    cancel.cancel();  // cancel from inside: the next read must not wait five minutes
    return true;
  }, cancel);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "Cancelled");
}

TEST(Client, ConnectionRefusedIsNotSent) {
  // Bind then close a socket to find a port nothing listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto client = makeClient("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), {});
  ASSERT_TRUE(client.ok());
  auto r = (*client)->send({Method::Get, "/"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "NotSent") << r.error().describe();
}

// A one-connection proxy on loopback: records the request's first line and answers `reply`.
class RecordingProxy {
 public:
  explicit RecordingProxy(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string seen;
      char buf[1024];
      while (seen.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        seen.append(buf, static_cast<size_t>(n));
      }
      first_line_ = seen.substr(0, seen.find("\r\n"));
      (void)!::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~RecordingProxy() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // What the proxy was sent ("" when nothing connected: the listening socket is shut first).
  std::string firstLine() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    return first_line_;
  }

 private:
  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::string first_line_;
  std::thread thread_;
};

TEST(Client, GoesThroughItsProxy) {
  // Plain http: the request in absolute form, to the proxy (forge.test is never looked up).
  RecordingProxy plain("HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  TlsOptions via;
  via.proxy = plain.url();
  auto client = makeClient("http://forge.test:8080", via);
  ASSERT_TRUE(client.ok()) << client.error().describe();
  auto r = (*client)->send({Method::Post, "/repos/acme/shop/pulls", {}, "{}"});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(plain.firstLine(), "POST http://forge.test:8080/repos/acme/shop/pulls HTTP/1.1");
  // https: a CONNECT tunnel to the host; the proxy's refusal is the client's error.
  RecordingProxy tunnel("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  via.proxy = tunnel.url();
  client = makeClient("https://forge.test", via);
  ASSERT_TRUE(client.ok());
  Request req{Method::Get, "/"};
  req.timeout = std::chrono::seconds(10);
  EXPECT_FALSE((*client)->send(req).ok());
  EXPECT_EQ(tunnel.firstLine().rfind("CONNECT forge.test:443 HTTP/1.1", 0), 0u);
  via.proxy = "socks5://127.0.0.1:1080";
  EXPECT_FALSE(makeClient("https://forge.test", via).ok());
}

TEST(Client, ProxyFromTheEnvironmentAsCurlAndGitReadIt) {
  std::map<std::string, std::string> env;
  auto get = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_EQ(proxyFor("https://api.github.com", get), "");
  env = {{"HTTPS_PROXY", "http://paddock-gateway:8080"}, {"http_proxy", "http://plain:3128"}, {"NO_PROXY", "paddock-gateway, .internal.example"}};
  EXPECT_EQ(proxyFor("https://api.github.com/repos", get), "http://paddock-gateway:8080");
  EXPECT_EQ(proxyFor("http://forge.test:8080/x", get), "http://plain:3128");
  EXPECT_EQ(proxyFor("http://paddock-gateway:8080/v1", get), "") << "NO_PROXY names the host";
  EXPECT_EQ(proxyFor("https://git.internal.example", get), "") << "and its subdomains";
  EXPECT_EQ(proxyFor("https://internal.example.com", get), "http://paddock-gateway:8080") << "a suffix is not a subdomain";
  EXPECT_EQ(proxyFor("https://user@PADDOCK-GATEWAY:8443", get), "");
  EXPECT_EQ(proxyFor("file:///tmp/remote.git", get), "");
  env["no_proxy"] = "*";
  EXPECT_EQ(proxyFor("https://api.github.com", get), "");
}

TEST(Client, RejectsBadConfiguration) {
  auto r = makeClient("ftp://example", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("https://"), std::string::npos);
  TlsOptions tls;
  tls.ca_pem = "not a certificate";
  r = makeClient("https://127.0.0.1:1", tls);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("certificate-authority"), std::string::npos);
}

}  // namespace
}  // namespace paddock::http
