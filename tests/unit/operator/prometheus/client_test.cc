#include "operator/prometheus/client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>

namespace paddock::promapi {
namespace {

TEST(ParseQueryResponse, ReadsAVectorWithLabelsAndValues) {
  auto r = parseQueryResponse(200, R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"agentrun":"a","namespace":"team"},"value":[1700000000.5,"1234"]},
      {"metric":{"agentrun":"b","namespace":"team"},"value":[1700000000.5,"0.25"]}]}})");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->samples.size(), 2u);
  EXPECT_EQ(r->samples[0].labels.at("agentrun"), "a");
  EXPECT_DOUBLE_EQ(r->samples[0].value, 1234);
  EXPECT_DOUBLE_EQ(r->samples[0].timestamp, 1700000000.5);
  EXPECT_DOUBLE_EQ(r->samples[1].value, 0.25);
  EXPECT_TRUE(r->warnings.empty());
}

TEST(ParseQueryResponse, KeepsWarningsOfAPartialResultAndDropsNonFiniteValues) {
  auto r = parseQueryResponse(200, R"({"status":"success","warnings":["store eu-1 unreachable: partial result"],
      "data":{"resultType":"vector","result":[
      {"metric":{"agentrun":"a"},"value":[1,"NaN"]},{"metric":{"agentrun":"b"},"value":[1,"+Inf"]},
      {"metric":{"agentrun":"c"},"value":[1,"7"]},{"metric":{"agentrun":"d"},"value":"broken"}]}})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->samples.size(), 1u);
  EXPECT_EQ(r->samples[0].labels.at("agentrun"), "c");
  EXPECT_EQ(r->dropped, 3);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("partial"), std::string::npos);
}

TEST(ParseQueryResponse, ErrorsCarryPrometheussTypeAndMessage) {
  auto bad = parseQueryResponse(400, R"({"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, 400);
  EXPECT_EQ(bad.error().reason, "Prometheus:bad_data");
  EXPECT_NE(bad.error().message.find("parse error"), std::string::npos);

  auto timeout = parseQueryResponse(503, R"({"status":"error","errorType":"timeout","error":"query timed out"})");
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(timeout.error().reason, "Prometheus:timeout");

  auto html = parseQueryResponse(502, "<html>Bad Gateway</html>");
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.error().reason, "BadResponse");
  EXPECT_NE(html.error().message.find("502"), std::string::npos);

  auto scalar = parseQueryResponse(200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"2"]}})");
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.error().reason, "BadResultType");
  EXPECT_NE(scalar.error().message.find("scalar"), std::string::npos);
}

// The transport, recording what it was asked.
class RecordingHttp : public http::Client {
 public:
  explicit RecordingHttp(http::Response r, std::vector<http::Request>* seen) : response_(std::move(r)), seen_(seen) {}
  Result<http::Response> send(const http::Request& req, const CancelToken&) override {
    seen_->push_back(req);
    return response_;
  }
  Result<http::Response> stream(const http::Request& req, const http::LineHandler&, const CancelToken&) override {
    return send(req, {});
  }

 private:
  http::Response response_;
  std::vector<http::Request>* seen_;
};

TEST(PrometheusClient, EncodesTheQueryAndSendsTheTokenReadAtEachQuery) {
  std::string token_file = testing::TempDir() + "/prom-token";
  std::ofstream(token_file) << "first\n";
  std::vector<http::Request> seen;
  PrometheusConfig config{"https://prom.example:9090/prefix", token_file, "", std::chrono::milliseconds(2000)};
  PrometheusClient c(std::make_unique<RecordingHttp>(
                         http::Response{200, {}, R"({"status":"success","data":{"resultType":"vector","result":[]}})"}, &seen),
                     config, "/prefix");
  ASSERT_TRUE(c.query("sum by (agentrun, namespace) (x{a=\"b\"})").ok());
  std::ofstream(token_file) << "second\n";
  ASSERT_TRUE(c.query("up").ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target,
            "/prefix/api/v1/query?query=sum%20by%20%28agentrun%2C%20namespace%29%20%28x%7Ba%3D%22b%22%7D%29&timeout=1800ms");
  EXPECT_EQ(seen[0].timeout, std::chrono::milliseconds(2000));
  auto auth = [](const http::Request& r) {
    for (const auto& [k, v] : r.headers) {
      if (k == "Authorization") return v;
    }
    return std::string();
  };
  EXPECT_EQ(auth(seen[0]), "Bearer first");
  EXPECT_EQ(auth(seen[1]), "Bearer second");
  // A check of a query evaluates it at a time before any data.
  ASSERT_TRUE(c.query("up", {}, 1.0).ok());
  EXPECT_EQ(seen[2].target, "/prefix/api/v1/query?query=up&timeout=1800ms&time=1.000");
  std::remove(token_file.c_str());
}

TEST(PrometheusClient, RefusesBadURLsAndATokenOverPlainHTTP) {
  EXPECT_EQ(PrometheusClient::create({"prom:9090", "", "", {}}).error().reason, "InvalidConfig");
  EXPECT_EQ(PrometheusClient::create({"http://", "", "", {}}).error().reason, "InvalidConfig");
  std::string token_file = testing::TempDir() + "/prom-token2";
  std::ofstream(token_file) << "t";
  auto plain = PrometheusClient::create({"http://prom:9090", token_file, "", {}});
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().message.find("in the clear"), std::string::npos);
  EXPECT_FALSE(PrometheusClient::create({"https://prom:9090", "", "/nonexistent/ca.pem", {}}).ok());
  auto ok = PrometheusClient::create({"http://127.0.0.1:9090/", "", "", {}});
  EXPECT_TRUE(ok.ok()) << ok.error().describe();
  std::remove(token_file.c_str());
}

// Found by the fuzz target prometheus_response (tests/fuzz/corpus/prometheus_response/
// crash-result-type-array): fields of the wrong type threw out of the parser, which ended the
// operator from the usage poller's thread. They are errors, and no byte of the body that is not
// printable ASCII reaches a message (a condition's text must be valid UTF-8).
TEST(ParseQueryResponse, FieldsOfTheWrongTypeAreErrorsNotExceptions) {
  for (const char* body : {R"({"status":"success","data":{"resultType":[{"metric":{}}],"result":[]}})",
                           R"({"status":1,"data":{}})", R"({"status":"error","errorType":["x"],"error":{"a":1}})",
                           R"({"status":"success","data":{"resultType":7}})"}) {
    Result<QueryResult> r = Error::local("none", "");
    EXPECT_NO_THROW(r = parseQueryResponse(200, body)) << body;
    EXPECT_FALSE(r.ok()) << body;
  }
  auto r = parseQueryResponse(502, std::string("<html>\xc3") + "\x1b[31m");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find('\x1b'), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\xc3'), std::string::npos) << r.error().message;
  EXPECT_NO_THROW(nlohmann::json(r.error().message).dump());
}

}  // namespace
}  // namespace paddock::promapi
