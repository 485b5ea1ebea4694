#include "operator/kube/rest.h"

#include <strings.h>

#include <algorithm>

#include "operator/common/json.h"

namespace paddock::kube {

Result<std::unique_ptr<RestClient>> RestClient::create(const ClusterConfig& config, std::string user_agent) {
  if (config.server.rfind("http://", 0) == 0 &&
      (!config.token.empty() || !config.token_file.empty() || !config.tls.cert_pem.empty())) {
    return Error::local("InvalidConfig", "server " + config.server +
                                             " is plain http: credentials are only sent over https; use an https:// server");
  }
  auto http = http::makeClient(config.server, config.tls);
  if (!http) return http.error();
  return std::make_unique<RestClient>(std::move(http.value()), config, std::move(user_agent));
}

void RestClient::decorate(http::Request& request) {
  // JSON unless the caller asks for another representation (a Table, for printer columns).
  bool accept = std::any_of(request.headers.begin(), request.headers.end(), [](const auto& h) {
    return strcasecmp(h.first.c_str(), "Accept") == 0;
  });
  if (!accept) request.headers.emplace_back("Accept", "application/json");
  request.headers.emplace_back("User-Agent", user_agent_);
  if (auto token = token_.current(); !token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
}

Result<http::Response> RestClient::send(http::Request request, const CancelToken& cancel) {
  decorate(request);
  return http_->send(request, cancel);
}

Result<http::Response> RestClient::stream(http::Request request, const http::LineHandler& on_line,
                                          const CancelToken& cancel) {
  decorate(request);
  return http_->stream(request, on_line, cancel);
}

Result<nlohmann::json> RestClient::getJson(const std::string& path, const CancelToken& cancel) {
  auto resp = send(http::Request{http::Method::Get, path, {}, "", std::chrono::seconds(30)}, cancel);
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return errorFromResponse(*resp);
  auto body = nlohmann::json::parse(resp->body, nullptr, false);
  if (!body.is_object()) return Error{resp->status, "InvalidResponse", "response to GET " + path + " is not a JSON object", {}};
  return body;
}

Error errorFromResponse(const http::Response& response) {
  Error e;
  e.code = response.status;
  auto body = nlohmann::json::parse(response.body, nullptr, false);
  if (stringAt(body, "/kind") == "Status") {
    e.reason = stringAt(body, "/reason");
    e.message = stringAt(body, "/message");
  }
  if (e.reason.empty()) {
    switch (response.status) {
      case 400: e.reason = "BadRequest"; break;
      case 401: e.reason = "Unauthorized"; break;
      case 403: e.reason = "Forbidden"; break;
      case 404: e.reason = "NotFound"; break;
      case 409: e.reason = "Conflict"; break;
      case 410: e.reason = "Expired"; break;
      case 422: e.reason = "Invalid"; break;
      case 429: e.reason = "TooManyRequests"; break;
      default: e.reason = response.status >= 500 ? "InternalError" : "Unknown";
    }
  }
  if (e.message.empty()) e.message = response.body.substr(0, 512);
  // Retry-After in whole seconds (the form the API server sends), capped at an hour.
  if (auto ra = response.header("Retry-After"); !ra.empty() && ra.size() <= 6 &&
                                                ra.find_first_not_of("0123456789") == std::string::npos) {
    e.retry_after = std::chrono::seconds(std::min(std::stol(ra), 3600L));
  }
  return e;
}

}  // namespace paddock::kube
