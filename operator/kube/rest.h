// The connection to one API server: the HTTP client plus authentication and the headers every
// request carries. Typed operations build on this.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"
#include "operator/http/client.h"
#include "operator/kube/config.h"

namespace paddock::kube {

class RestClient {
 public:
  static Result<std::unique_ptr<RestClient>> create(const ClusterConfig& config, std::string user_agent);
  RestClient(std::unique_ptr<http::Client> http, const ClusterConfig& config, std::string user_agent)
      : http_(std::move(http)), token_(config), user_agent_(std::move(user_agent)), server_(config.server) {}

  // Sends a request with authentication, Accept and User-Agent added.
  Result<http::Response> send(http::Request request, const CancelToken& cancel = {});
  Result<http::Response> stream(http::Request request, const http::LineHandler& on_line, const CancelToken& cancel = {});

  // GET `path` and parse the JSON body; a non-2xx status becomes an Error from its Status object.
  Result<nlohmann::json> getJson(const std::string& path, const CancelToken& cancel = {});

  const std::string& server() const { return server_; }

 private:
  void decorate(http::Request& request);

  std::unique_ptr<http::Client> http_;
  BearerToken token_;
  std::string user_agent_;
  std::string server_;
};

// Turns a non-2xx response into an Error, using the Kubernetes Status object in its body when
// there is one (reason, message) and the Retry-After header.
Error errorFromResponse(const http::Response& response);

}  // namespace paddock::kube
