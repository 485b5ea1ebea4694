#include "operator/prometheus/client.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "operator/common/json.h"

namespace paddock::promapi {
namespace {

using nlohmann::json;

Result<std::string> readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::local("InvalidConfig", std::string("cannot read the Prometheus ") + what + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Text from the response as it may go into a condition or a log: printable ASCII only (a byte
// outside it, which may be half of a UTF-8 character after a cut, becomes '?').
std::string printable(std::string s) {
  for (char& c : s) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

Result<QueryResult> parseQueryResponse(int status, const std::string& body) {
  auto doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) {
    return Error{status, "BadResponse",
                 "Prometheus answered HTTP " + std::to_string(status) + " with a body that is not its API's JSON: " +
                     printable(body.substr(0, 200)),
                 std::nullopt};
  }
  QueryResult out;
  if (auto w = doc.find("warnings"); w != doc.end() && w->is_array()) {
    for (const auto& s : *w) {
      if (s.is_string()) out.warnings.push_back(s.get<std::string>());
    }
  }
  // Every field is read by its type: a body of the wrong shape is an error, never an exception.
  if (stringAt(doc, "/status") != "success" || status / 100 != 2) {
    std::string type = printable(stringAt(doc, "/errorType").substr(0, 64));
    std::string message = printable(stringAt(doc, "/error").substr(0, 1024));
    return Error{status, type.empty() ? "QueryFailed" : "Prometheus:" + type,
                 "the query failed" + (message.empty() ? std::string() : ": " + message), std::nullopt};
  }
  const auto& data = doc.contains("data") && doc["data"].is_object() ? doc["data"] : json::object();
  std::string type = printable(stringAt(data, "/resultType").substr(0, 64));
  if (type != "vector") {
    return Error::local("BadResultType", "the query returned a " + (type.empty() ? std::string("result of no type") : type) +
                                             ", not an instant vector grouped by agentrun and namespace");
  }
  if (!data.contains("result") || !data["result"].is_array()) return Error::local("BadResponse", "data.result is not a list");
  for (const auto& r : data["result"]) {
    if (!r.is_object()) continue;
    const auto& v = r.contains("value") ? r["value"] : json();
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_string()) {
      ++out.dropped;
      continue;
    }
    Sample s;
    s.timestamp = v[0].get<double>();
    try {
      size_t used = 0;
      s.value = std::stod(v[1].get<std::string>(), &used);
    } catch (...) {
      s.value = NAN;
    }
    if (!std::isfinite(s.value)) {
      ++out.dropped;
      continue;
    }
    if (r.contains("metric") && r["metric"].is_object()) {
      for (const auto& [k, val] : r["metric"].items()) {
        if (val.is_string()) s.labels[k] = val.get<std::string>();
      }
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

Result<std::unique_ptr<PrometheusClient>> PrometheusClient::create(const PrometheusConfig& config) {
  auto scheme_end = config.url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : config.url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return Error::local("InvalidConfig", "--prometheus-url must start with http:// or https://, got " + config.url);
  }
  auto path_start = config.url.find('/', scheme_end + 3);
  std::string base = config.url.substr(0, path_start);
  std::string prefix = path_start == std::string::npos ? "" : config.url.substr(path_start);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (base.size() <= scheme.size() + 3) return Error::local("InvalidConfig", "--prometheus-url has no host: " + config.url);
  if (!config.bearer_token_file.empty() && scheme != "https") {
    return Error::local("InvalidConfig",
                        "--prometheus-bearer-token-file is set but --prometheus-url is not https: the token would "
                        "cross the network in the clear");
  }
  http::TlsOptions tls;
  if (!config.ca_file.empty()) {
    auto ca = readFile(config.ca_file, "CA file");
    if (!ca) return ca.error();
    tls.ca_pem = *ca;
  }
  if (!config.bearer_token_file.empty()) {
    if (auto t = readFile(config.bearer_token_file, "bearer token file"); !t) return t.error();
  }
  auto http = http::makeClient(base, tls);
  if (!http) return http.error();
  return std::make_unique<PrometheusClient>(std::move(http.value()), config, prefix);
}

PrometheusClient::PrometheusClient(std::unique_ptr<http::Client> http, PrometheusConfig config, std::string prefix)
    : http_(std::move(http)), config_(std::move(config)), prefix_(std::move(prefix)) {}

Result<QueryResult> PrometheusClient::query(const std::string& promql, const CancelToken& cancel, std::optional<double> at) {
  http::Request req;
  // Prometheus stops evaluating at its own timeout, a little before ours gives up on the answer.
  auto server_timeout = std::max<int64_t>(1, config_.timeout.count() * 9 / 10);
  req.target = prefix_ + "/api/v1/query?query=" + http::urlEncode(promql) +
               "&timeout=" + std::to_string(server_timeout) + "ms";
  if (at) {
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%.3f", *at);
    req.target += std::string("&time=") + stamp;
  }
  req.timeout = config_.timeout;
  req.headers.push_back({"Accept", "application/json"});
  if (!config_.bearer_token_file.empty()) {
    auto token = readFile(config_.bearer_token_file, "bearer token file");
    if (!token) return token.error();
    req.headers.push_back({"Authorization", "Bearer " + trim(*token)});
  }
  auto res = http_->send(req, cancel);
  if (!res) return res.error();
  return parseQueryResponse(res->status, res->body);
}

}  // namespace paddock::promapi
