// A small HTTP/1.1 server for the operator's own endpoints (/healthz, /readyz, /metrics).
// One thread, one request per connection: these endpoints are probed, not browsed.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "operator/common/result.h"

namespace paddock::http {

struct Reply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

class Server {
 public:
  using Handler = std::function<Reply()>;

  ~Server() { stop(); }

  // Registers a handler for GET on an exact path. Register before start().
  void handle(std::string path, Handler handler);
  // Listens on "host:port" (":8080" means every address) and serves until stop().
  Status start(const std::string& address);
  void stop();
  int port() const { return port_; }

 private:
  void serve();
  void answer(int fd);

  std::map<std::string, Handler> handlers_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

// Splits "host:port", "[::1]:port" or ":port"; false when malformed.
bool splitHostPort(const std::string& address, std::string& host, int& port);

}  // namespace paddock::http
