// Paddock's HTTP client interface. Everything that talks HTTP (the Kubernetes client, the
// Prometheus client, the stage runner) goes through this, so the transport can be swapped
// without touching them. The one implementation today is cpprestsdk (cpprest_client.cc).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "operator/common/cancel.h"
#include "operator/common/result.h"

namespace paddock::http {

enum class Method { Get, Post, Put, Patch, Delete };
const char* methodName(Method m);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  Method method = Method::Get;
  // Path and query, for example "/api/v1/namespaces/default/pods?limit=500".
  std::string target;
  Headers headers;
  std::string body;
  // The longest silence allowed while sending or reading (not a limit on the whole exchange),
  // so a connection that died without closing is noticed.
  std::chrono::milliseconds timeout{30'000};
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;

  // The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

struct TlsOptions {
  std::string ca_pem;     // trusted CA bundle; empty means the system's store
  std::string cert_pem;   // client certificate chain, for mutual TLS
  std::string key_pem;    // its private key
  bool insecure_skip_verify = false;
  // An HTTP proxy, "http://host:port": https requests go through its CONNECT tunnel (TLS is still
  // end to end), http requests are sent to it in absolute form. Empty: direct.
  std::string proxy;
};

// Called with each line of a streamed body (without the newline). Return false to stop reading.
using LineHandler = std::function<bool(std::string_view line)>;

class Client {
 public:
  virtual ~Client() = default;

  // Sends a request and reads the whole response. Failures to get any response are errors with
  // reason "NotSent" (the request never reached the server: no connection, a failed write),
  // "Transport" (it may have), "Timeout" or "Cancelled"; every HTTP status is a Response.
  // The timeout is an inactivity limit: the longest wait for the next read or write.
  virtual Result<Response> send(const Request& request, const CancelToken& cancel = {}) = 0;

  // Sends a request and, for a 2xx status, hands each line of the body to `on_line` as it
  // arrives, until the server ends the body, `on_line` returns false, the request's timeout
  // passes with nothing read (an error with reason "Timeout") or `cancel` fires (reason
  // "Cancelled"). For other statuses the whole body is returned in the Response.
  virtual Result<Response> stream(const Request& request, const LineHandler& on_line,
                                  const CancelToken& cancel = {}) = 0;
};

// Percent-encodes everything but RFC 3986's unreserved characters, for a query parameter's value.
std::string urlEncode(const std::string& value);

// The proxy the environment names for `url` (as curl and git read it): https_proxy/HTTPS_PROXY for
// https, http_proxy/HTTP_PROXY for http, unless no_proxy/NO_PROXY (comma-separated host names,
// each also matching its subdomains; "*" for every host) names the URL's host. "" for none.
// `getenv` is the environment (std::getenv in production).
std::string proxyFor(const std::string& url, const std::function<const char*(const char*)>& getenv);

// A client for `base_url` ("https://127.0.0.1:6443") backed by cpprestsdk.
Result<std::unique_ptr<Client>> makeClient(const std::string& base_url, const TlsOptions& tls);

}  // namespace paddock::http
