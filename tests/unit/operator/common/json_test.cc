#include "operator/common/json.h"

#include <gtest/gtest.h>

namespace paddock {
namespace {

TEST(JsonAt, ReadsFieldsWithoutTrustingTheirShape) {
  auto j = nlohmann::json::parse(R"({"metadata": {"name": "r", "generation": 3, "uid": 7}, "items": []})");
  EXPECT_EQ(stringAt(j, "/metadata/name"), "r");
  EXPECT_EQ(stringAt(j, "/metadata/uid"), "") << "a number is not a string";
  EXPECT_EQ(stringAt(j, "/metadata/missing"), "");
  EXPECT_EQ(stringAt(j, "/metadata/name/deeper"), "");
  EXPECT_EQ(intAt(j, "/metadata/generation"), 3);
  EXPECT_EQ(intAt(j, "/metadata/name", -1), -1) << "a string is not an integer";
  EXPECT_EQ(stringAt(nlohmann::json::array(), "/metadata/name"), "") << "not an object";
  EXPECT_EQ(intAt(nullptr, "/code", 5), 5);
}

}  // namespace
}  // namespace paddock
