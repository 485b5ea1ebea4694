#include "operator/kube/rest.h"

#include <gtest/gtest.h>

namespace paddock::kube {
namespace {

TEST(ErrorFromResponse, UsesTheStatusObject) {
  http::Response r;
  r.status = 409;
  r.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"a\" already exists","reason":"AlreadyExists","code":409})";
  auto e = errorFromResponse(r);
  EXPECT_EQ(e.code, 409);
  EXPECT_EQ(e.reason, "AlreadyExists");
  EXPECT_EQ(e.message, "pods \"a\" already exists");
}

TEST(ErrorFromResponse, FallsBackToTheCodeAndReadsRetryAfter) {
  http::Response r;
  r.status = 429;
  r.headers = {{"Retry-After", "3"}};
  r.body = "slow down";
  auto e = errorFromResponse(r);
  EXPECT_EQ(e.reason, "TooManyRequests");
  EXPECT_EQ(e.message, "slow down");
  ASSERT_TRUE(e.retry_after.has_value());
  EXPECT_EQ(e.retry_after->count(), 3);
  r.status = 503;
  r.headers.clear();
  EXPECT_EQ(errorFromResponse(r).reason, "InternalError");
  EXPECT_FALSE(errorFromResponse(r).retry_after.has_value());
}

}  // namespace
}  // namespace paddock::kube
