// A client for the Prometheus HTTP API's instant queries (GET /api/v1/query), the one call budget
// enforcement needs. It goes through http::Client like everything else that speaks HTTP.
//
// Guarantees: every failure is an Error naming what went wrong (Prometheus's own errorType and
// message when it answered, the transport's otherwise); a query never waits longer than its
// timeout; warnings (Prometheus's sign of a partial result) are returned with the samples, never
// dropped; samples whose value is not a finite number are left out and counted.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "operator/common/cancel.h"
#include "operator/common/result.h"
#include "operator/http/client.h"

namespace paddock::promapi {

struct PrometheusConfig {
  std::string url;                 // "http://127.0.0.1:9090" or "https://prometheus.monitoring:9090/prefix"
  std::string bearer_token_file;   // re-read on every query, so a rotated token is picked up
  std::string ca_file;             // PEM bundle trusted for https; empty: the system's store
  std::chrono::milliseconds timeout{10'000};
};

struct Sample {
  std::map<std::string, std::string> labels;
  double value = 0;
  double timestamp = 0;  // seconds since the epoch, as Prometheus evaluated it
};

struct QueryResult {
  std::vector<Sample> samples;
  std::vector<std::string> warnings;  // non-empty: the result may be partial
  int dropped = 0;                    // samples left out because their value was NaN or infinite
};

// Parses an /api/v1/query response (HTTP status and body). Only vector results are accepted:
// budget queries aggregate by label, so a scalar or matrix means the query is wrong.
Result<QueryResult> parseQueryResponse(int status, const std::string& body);

class PrometheusClient {
 public:
  // Checks the URL and reads the CA file; the bearer token is read at each query.
  static Result<std::unique_ptr<PrometheusClient>> create(const PrometheusConfig& config);
  // For tests and other transports: a client over `http` whose base URL path is `prefix`.
  PrometheusClient(std::unique_ptr<http::Client> http, PrometheusConfig config, std::string prefix);

  // An instant query, evaluated now or at `at` (seconds since the epoch). Evaluated at a time
  // before any data (1.0), it costs next to nothing and still reports parse and type errors
  // (Prometheus's errorType bad_data): how a policy's query is checked.
  Result<QueryResult> query(const std::string& promql, const CancelToken& cancel = {}, std::optional<double> at = std::nullopt);
  const PrometheusConfig& config() const { return config_; }

 private:
  std::unique_ptr<http::Client> http_;
  PrometheusConfig config_;
  std::string prefix_;
};

}  // namespace paddock::promapi
