#include "gateway/json_schema.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace paddock::gateway {
namespace {

using nlohmann::json;

// Every violation, formatted and joined by newlines ("" when valid).
std::string check(const json& schema, const json& instance, size_t limit = 10) {
  std::string out;
  for (const auto& v : validateJson(schema, instance, limit)) out += (out.empty() ? "" : "\n") + formatViolation(v);
  return out;
}

struct Case {
  const char* schema;
  const char* instance;
  std::string want;  // the violations, formatted; "" when valid
};

void runTable(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    const json schema = json::parse(c.schema), instance = json::parse(c.instance);
    EXPECT_EQ(unsupportedSchemaFeature(schema), "") << c.schema;
    EXPECT_EQ(check(schema, instance), c.want) << c.schema << " against " << c.instance;
  }
}

TEST(JsonSchema, BooleanSchemasAndType) {
  runTable({
      {R"(true)", R"({"a":1})", ""},
      {R"(false)", R"(1)", "(root): no value is allowed here"},
      {R"({})", R"([1,"x",null])", ""},
      {R"({"type":"string"})", R"("x")", ""},
      {R"({"type":"string"})", R"(1)", "(root): must be a string, got integer"},
      {R"({"type":"integer"})", R"(3)", ""},
      {R"({"type":"integer"})", R"(3.0)", ""},
      {R"({"type":"integer"})", R"(-9223372036854775808)", ""},
      {R"({"type":"integer"})", R"(18446744073709551615)", ""},
      {R"({"type":"integer"})", R"(3.5)", "(root): must be an integer, got number"},
      {R"({"type":"integer"})", R"("3")", "(root): must be an integer, got string"},
      {R"({"type":"number"})", R"(3)", ""},
      {R"({"type":"number"})", R"(3.5)", ""},
      {R"({"type":"number"})", R"(true)", "(root): must be a number, got boolean"},
      {R"({"type":"null"})", R"(null)", ""},
      {R"({"type":"null"})", R"(0)", "(root): must be null, got integer"},
      {R"({"type":"boolean"})", R"(false)", ""},
      {R"({"type":"boolean"})", R"("false")", "(root): must be a boolean, got string"},
      {R"({"type":"object"})", R"({})", ""},
      {R"({"type":"object"})", R"([])", "(root): must be an object, got array"},
      {R"({"type":"array"})", R"([])", ""},
      {R"({"type":"array"})", R"({})", "(root): must be an array, got object"},
      {R"({"type":["string","null"]})", R"(null)", ""},
      {R"({"type":["string","null"]})", R"(1.5)", "(root): must be a string or null, got number"},
      {R"({"type":["string","integer","boolean"]})",
       R"({})", "(root): must be a string, an integer or a boolean, got object"},
  });
}

TEST(JsonSchema, EnumAndConst) {
  runTable({
      {R"({"enum":["red","blue"]})", R"("red")", ""},
      {R"({"properties":{"color":{"enum":["red","blue"]}}})",
       R"({"color":"green"})", R"(/color: must be one of "red", "blue")"},
      {R"({"enum":[1,null,{"a":[1]}]})", R"({"a":[1.0]})", ""},  // equal as JSON values: 1 == 1.0
      {R"({"enum":[1,null]})", R"("1")", R"((root): must be one of 1, null)"},
      {R"({"const":"x"})", R"("x")", ""},
      {R"({"const":{"a":1}})", R"({"a":2})", R"((root): must be {"a":1})"},
      {R"({"const":null})", R"(false)", "(root): must be null"},
  });
}

TEST(JsonSchema, Objects) {
  runTable({
      {R"({"required":["a","b"]})", R"({"a":1,"b":2})", ""},
      {R"({"required":["a","b"]})", R"({"a":1})", R"((root): "b" is required)"},
      {R"({"required":["a"]})", R"("not an object")", ""},  // required applies to objects only
      {R"({"properties":{"x":{"required":["y"]}}})", R"({"x":{}})", R"(/x: "y" is required)"},
      {R"({"properties":{"a":{"type":"string"}},"additionalProperties":false})", R"({"a":"x"})", ""},
      {R"({"properties":{"a":{"type":"string"}},"additionalProperties":false})", R"({"a":"x","extra":1})",
       R"((root): property "extra" is not allowed (allowed: "a"))"},
      {R"({"additionalProperties":false})", R"({"extra":1})", R"((root): property "extra" is not allowed)"},
      {R"({"properties":{"a":{}},"additionalProperties":{"type":"integer"}})", R"({"a":"s","b":1,"c":"s"})",
       "/c: must be an integer, got string"},
      {R"({"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false})",
       R"({"x-a":"1","x-b":2,"y":3})",
       "(root): property \"y\" is not allowed\n/x-b: must be a string, got integer"},
      {R"({"propertyNames":{"pattern":"^[a-z]+$"}})", R"({"abc":1})", ""},
      {R"({"propertyNames":{"pattern":"^[a-z]+$"}})", R"({"aBc":1})",
       R"((root): property name "aBc" is invalid: must match the pattern "^[a-z]+$")"},
      {R"({"propertyNames":{"maxLength":2}})",
       R"({"abc":1})", R"((root): property name "abc" is invalid: must be at most 2 characters, got 3)"},
      {R"({"minProperties":1,"maxProperties":2})", R"({"a":1})", ""},
      {R"({"minProperties":1})", R"({})", "(root): must have at least 1 properties, got 0"},
      {R"({"maxProperties":2})", R"({"a":1,"b":2,"c":3})", "(root): must have at most 2 properties, got 3"},
      {R"({"dependentRequired":{"card":["cvv","expiry"]}})", R"({"name":"x"})", ""},
      {R"({"dependentRequired":{"card":["cvv","expiry"]}})",
       R"({"card":"1","cvv":"2"})", R"((root): "expiry" is required when "card" is present)"},
      {R"({"dependencies":{"card":["cvv"]}})",
       R"({"card":"1"})", R"((root): "cvv" is required when "card" is present)"},
      {R"({"dependencies":{"card":{"required":["cvv"]}}})", R"({"card":"1"})", R"((root): "cvv" is required)"},
      {R"({"dependentSchemas":{"card":{"properties":{"cvv":{"type":"string"}}}}})",
       R"({"card":1,"cvv":1})", "/cvv: must be a string, got integer"},
      {R"({"dependentSchemas":{"card":false}})", R"({"name":1})", ""},
  });
}

TEST(JsonSchema, Arrays) {
  runTable({
      {R"({"items":{"type":"integer"}})", R"([1,2,3])", ""},
      {R"({"items":{"type":"integer"}})",
       R"([1,"2",3,"4"])", "/1: must be an integer, got string\n/3: must be an integer, got string"},
      {R"({"items":[{"type":"string"},{"type":"integer"}]})", R"(["a",1,{}])", ""},  // draft-07 tuple, rest open
      {R"({"items":[{"type":"string"},{"type":"integer"}]})",
       R"([1,"a"])", "/0: must be a string, got integer\n/1: must be an integer, got string"},
      {R"({"items":[{"type":"string"}],"additionalItems":false})",
       R"(["a","b"])", "(root): must have at most 1 items, got 2"},
      {R"({"items":[{"type":"string"}],"additionalItems":{"type":"integer"}})",
       R"(["a",1,"b"])", "/2: must be an integer, got string"},
      {R"({"prefixItems":[{"type":"string"}],"items":{"type":"integer"}})", R"(["a",1,2])", ""},
      {R"({"prefixItems":[{"type":"string"}],"items":{"type":"integer"}})",
       R"([1,"b"])", "/0: must be a string, got integer\n/1: must be an integer, got string"},
      {R"({"prefixItems":[{}],"items":false})", R"([1,2,3])", "(root): must have at most 1 items, got 3"},
      {R"({"minItems":1,"maxItems":2})", R"([1])", ""},
      {R"({"minItems":2})", R"([1])", "(root): must have at least 2 items, got 1"},
      {R"({"maxItems":2})", R"([1,2,3])", "(root): must have at most 2 items, got 3"},
      {R"({"uniqueItems":true})", R"([1,"1",[1],{"a":1}])", ""},
      {R"({"uniqueItems":true})",
       R"([{"a":[1]},2,{"a":[1.0]}])", "(root): items 0 and 2 are equal; items must be unique"},
      {R"({"uniqueItems":false})", R"([1,1])", ""},
      {R"({"contains":{"type":"string"}})", R"([1,"a"])", ""},
      {R"({"contains":{"type":"string"}})",
       R"([1,2])", R"((root): must contain at least 1 item matching the "contains" schema, found 0)"},
      {R"({"contains":{"type":"string"},"minContains":2,"maxContains":3})", R"(["a",1,"b"])", ""},
      {R"({"contains":{"type":"string"},"minContains":2})",
       R"(["a",1])", R"((root): must contain at least 2 items matching the "contains" schema, found 1)"},
      {R"({"contains":{"type":"string"},"maxContains":1})",
       R"(["a","b"])", R"((root): must contain at most 1 items matching the "contains" schema, found 2)"},
      {R"({"contains":{"type":"string"},"minContains":0})", R"([])", ""},
  });
}

TEST(JsonSchema, Strings) {
  runTable({
      {R"({"minLength":2,"maxLength":5})", R"("abcde")", ""},
      {R"({"properties":{"name":{"maxLength":5}}})",
       R"({"name":"abcdef"})", "/name: must be at most 5 characters, got 6"},
      {R"({"minLength":2})", R"("a")", "(root): must be at least 2 characters, got 1"},
      // Lengths count code points: "héllo" is 6 bytes, "日本語" 9, "🙂🙂" 8 (two code points each 4 bytes).
      {R"({"maxLength":5})", R"("héllo")", ""},
      {R"({"maxLength":3,"minLength":3})", R"("日本語")", ""},
      {R"({"maxLength":2})", R"("🙂🙂")", ""},
      {R"({"maxLength":1})", R"("🙂🙂")", "(root): must be at most 1 characters, got 2"},
      {R"({"minLength":3})", R"("é")", "(root): must be at least 3 characters, got 1"},
      {R"({"minLength":3})", R"(12)", ""},  // string keywords apply to strings only
      // pattern searches (not anchored unless the pattern is), over code points.
      {R"({"pattern":"b+"})", R"("abbbc")", ""},
      {R"({"pattern":"^b+$"})", R"("abbbc")", R"((root): must match the pattern "^b+$")"},
      {R"({"pattern":"^.{1,5}$"})", R"("héllo")", ""},
      {R"({"pattern":"^[a-zé]+$"})", R"("héllo")", ""},
      {R"({"pattern":"^\\d{4}-\\d{2}$"})", R"("2024-05")", ""},
      {R"({"pattern":"^\\d{4}-\\d{2}$"})", R"("2024-5")", R"((root): must match the pattern "^\\d{4}-\\d{2}$")"},
      {R"({"pattern":"^(?=.*[0-9])[a-z0-9]+$"})", R"("abc1")", ""},
      {R"({"pattern":"^(?=.*[0-9])[a-z0-9]+$"})",
       R"("abc")", R"((root): must match the pattern "^(?=.*[0-9])[a-z0-9]+$")"},
      {R"({"pattern":"x"})", R"("line1\nx")", ""},
      {R"({"format":"email"})", R"("not an email")", ""},  // format is an annotation
  });
}

TEST(JsonSchema, Numbers) {
  runTable({
      {R"({"minimum":1,"maximum":3})", R"(1)", ""},
      {R"({"minimum":1,"maximum":3})", R"(3)", ""},
      {R"({"minimum":1})", R"(0.5)", "(root): must be >= 1, got 0.5"},
      {R"({"maximum":3})", R"(4)", "(root): must be <= 3, got 4"},
      {R"({"exclusiveMinimum":1})", R"(1)", "(root): must be > 1, got 1"},
      {R"({"exclusiveMaximum":3})", R"(3.0)", "(root): must be < 3, got 3.0"},
      {R"({"exclusiveMinimum":1,"exclusiveMaximum":3})", R"(2)", ""},
      {R"({"minimum":1,"exclusiveMinimum":true})", R"(1)", "(root): must be > 1, got 1"},  // draft-04
      {R"({"maximum":3,"exclusiveMaximum":true})", R"(2.999)", ""},
      {R"({"maximum":3,"exclusiveMaximum":false})", R"(3)", ""},
      // Exact at 64 bits: 2^63 + 1 is past 2^63 and 2^53 + 1 past 2^53.
      {R"({"maximum":9223372036854775808})",
       R"(9223372036854775809)", "(root): must be <= 9223372036854775808, got 9223372036854775809"},
      {R"({"maximum":9007199254740992})",
       R"(9007199254740993)", "(root): must be <= 9007199254740992, got 9007199254740993"},
      {R"({"minimum":-5})", R"(-9223372036854775808)", "(root): must be >= -5, got -9223372036854775808"},
      {R"({"multipleOf":3})", R"(9)", ""},
      {R"({"multipleOf":3})", R"(-9)", ""},
      {R"({"multipleOf":3})", R"(10)", "(root): must be a multiple of 3, got 10"},
      {R"({"multipleOf":0.1})", R"(0.3)", ""},
      {R"({"multipleOf":0.5})", R"(2)", ""},
      {R"({"multipleOf":0.5})", R"(2.25)", "(root): must be a multiple of 0.5, got 2.25"},
      {R"({"multipleOf":3})", R"(18446744073709551615)", ""},
      {R"({"minimum":10})", R"("5")", ""},  // numeric keywords apply to numbers only
  });
}

TEST(JsonSchema, Combinators) {
  runTable({
      {R"({"allOf":[{"type":"integer"},{"minimum":2}]})", R"(3)", ""},
      {R"({"allOf":[{"type":"integer"},{"minimum":2}]})",
       R"(1.5)", "(root): must be an integer, got number\n(root): must be >= 2, got 1.5"},
      {R"({"anyOf":[{"type":"string"},{"type":"null"}]})", R"(null)", ""},
      {R"({"properties":{"x":{"anyOf":[{"type":"string"},{"minimum":5}]}}})", R"({"x":1})",
       "/x: must match at least one of the anyOf alternatives: [0] /x: must be a string, got integer; "
       "[1] /x: must be >= 5, got 1"},
      {R"({"oneOf":[{"type":"integer"},{"minimum":5}]})", R"(3)", ""},
      {R"({"oneOf":[{"type":"integer"},{"minimum":5}]})", R"(7)",
       "(root): must match exactly one of the oneOf alternatives, but matches [0] and [1]"},
      {R"({"oneOf":[{"type":"integer"},{"type":"string"}]})", R"(null)",
       "(root): must match at least one of the oneOf alternatives: [0] (root): must be an integer, got null; "
       "[1] (root): must be a string, got null"},
      {R"({"not":{"type":"string"}})", R"(1)", ""},
      {R"({"not":{"type":"string"}})", R"("s")", R"((root): must not match the schema under "not": {"type":"string"})"},
      {R"({"if":{"properties":{"kind":{"const":"file"}}},"then":{"required":["path"]},"else":{"required":["url"]}})",
       R"({"kind":"file","path":"/a"})", ""},
      {R"({"if":{"properties":{"kind":{"const":"file"}}},"then":{"required":["path"]},"else":{"required":["url"]}})",
       R"({"kind":"file"})",
       R"((root): "path" is required)"},
      {R"({"if":{"properties":{"kind":{"const":"file"}}},"then":{"required":["path"]},"else":{"required":["url"]}})",
       R"({"kind":"web"})",
       R"((root): "url" is required)"},
      {R"({"if":{"type":"string"},"then":{"minLength":2}})", R"(5)", ""},
  });
}

TEST(JsonSchema, Refs) {
  runTable({
      {R"({"$defs":{"name":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/name"}}})", R"({"a":"x"})", ""},
      {R"({"$defs":{"name":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/name"}}})",
       R"({"a":1})", "/a: must be a string, got integer"},
      {R"({"definitions":{"n":{"minimum":1}},"items":{"$ref":"#/definitions/n"}})",
       R"([1,0])", "/1: must be >= 1, got 0"},
      {R"({"$defs":{"a/b":{"type":"string"},"c~d":{"type":"integer"}},)"
       R"("properties":{"x":{"$ref":"#/$defs/a~1b"},"y":{"$ref":"#/$defs/c~0d"}}})",
       R"({"x":1,"y":"s"})", "/x: must be a string, got integer\n/y: must be an integer, got string"},
      {R"({"$defs":{"a b":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a%20b"}}})",
       R"({"x":1})", "/x: must be a string, got integer"},
      {R"({"x-list":[{"type":"string"}],"properties":{"x":{"$ref":"#/x-list/0"}}})",
       R"({"x":1})", "/x: must be a string, got integer"},
      // $ref with siblings: both apply.
      {R"({"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","maxLength":2})",
       R"("abc")", "(root): must be at most 2 characters, got 3"},
      // A recursive tree, checked to the depth it has.
      {R"({"$defs":{"node":{"type":"object","required":["name"],)"
       R"("properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"})",
       R"({"name":"a","children":[{"name":"b","children":[{"children":[]}]}]})",
       R"(/children/0/children/0: "name" is required)"},
      {R"({"properties":{"next":{"$ref":"#"}},"type":"object"})",
       R"({"next":{"next":{"next":1}}})", "/next/next/next: must be an object, got integer"},
  });
}

TEST(JsonSchema, RefRecursionIsCapped) {
  // A $ref cycle that never descends into the instance stops at the cap instead of looping.
  for (const char* schema : {R"({"$ref":"#"})",
                             R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})",
                             R"({"not":{"$ref":"#"}})", R"({"anyOf":[{"$ref":"#"}, {"$ref":"#"}]})"}) {
    auto v = validateJson(json::parse(schema), json::parse("1"));
    ASSERT_EQ(v.size(), 1u) << schema;
    EXPECT_EQ(v[0].path, "");
    EXPECT_NE(v[0].message.find("$ref chain is deeper than 64"), std::string::npos) << v[0].message;
  }
  // A recursive schema checks an instance nested 30 deep, and refuses one nested 100 deep.
  json schema = json::parse(R"({"type":"object","properties":{"next":{"$ref":"#"}}})");
  json deep = json::object();
  for (int i = 0; i < 100; ++i) {
    deep = json{{"next", deep}};
    if (i == 29) {
      EXPECT_EQ(check(schema, deep), "");
    }
  }
  EXPECT_NE(check(schema, deep).find("$ref chain is deeper than 64"), std::string::npos);
}

TEST(JsonSchema, ExponentialSchemaRunsOutOfSteps) {
  // Each of 40 levels tries the next twice: 2^40 evaluations unless the step budget stops it.
  json schema = {{"$ref", "#/$defs/d0"}, {"$defs", {{"d40", {{"type", "string"}}}}}};
  for (int i = 0; i < 40; ++i) {
    const std::string next = "#/$defs/d" + std::to_string(i + 1);
    schema["$defs"]["d" + std::to_string(i)] = {{"anyOf", {{{"$ref", next}}, {{"$ref", next}}}}};
  }
  ASSERT_EQ(unsupportedSchemaFeature(schema), "");
  const auto start = std::chrono::steady_clock::now();
  auto v = validateJson(schema, json(1));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].message, "the arguments are too large or the schema too complex to check");
  EXPECT_LT(seconds, 10.0);
  std::cout << "the step budget took " << seconds << " s\n";
}

TEST(JsonSchema, DocumentOrderAndLimit) {
  const json schema = json::parse(R"({
    "type":"object","required":["id"],
    "properties":{"items":{"type":"array",
                           "items":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}},
                  "b":{"type":"string"},"a":{"type":"string"}}})");
  json instance = json::parse(R"({"a":1,"b":2,"items":[]})");
  for (int i = 0; i < 12; ++i) instance["items"].push_back(i % 2 ? json{{"name", i}} : json::object());
  // Document order: the root first, then properties in key order, array items by index (2 before 10).
  const std::string all = check(schema, instance, 100);
  EXPECT_EQ(all.substr(0, all.find("/items/3")),
            "(root): \"id\" is required\n/a: must be a string, got integer\n/b: must be a string, got integer\n"
            "/items/0: \"name\" is required\n/items/1/name: must be a string, got integer\n"
            "/items/2: \"name\" is required\n");
  const std::string tail =
      "/items/9/name: must be a string, got integer\n/items/10: \"name\" is required\n/items/11/name";
  EXPECT_NE(all.find(tail), std::string::npos) << all;
  EXPECT_EQ(validateJson(schema, instance, 100).size(), 15u);
  auto limited = validateJson(schema, instance, 2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[0].path, "");
  EXPECT_EQ(limited[1].path, "/a");
  EXPECT_EQ(validateJson(schema, instance, 0).size(), 1u);  // 0 never makes an invalid call look valid
  EXPECT_TRUE(validateJson(schema, json::parse(R"({"id":1})"), 0).empty());
}

TEST(JsonSchema, PathsEscapeTokens) {
  const json schema = json::parse(R"({"additionalProperties":{"type":"string"}})");
  auto v = validateJson(schema, json::parse(R"({"a/b":1,"c~d":2})"));
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].path, "/a~1b");
  EXPECT_EQ(v[1].path, "/c~0d");
}

TEST(JsonSchema, UnsupportedFeatures) {
  struct Unsupported {
    const char* schema;
    const char* why;  // a substring of unsupportedSchemaFeature's answer
  };
  const std::vector<Unsupported> cases = {
      {R"(1)", "the schema at (root) is an integer, not an object or boolean"},
      {R"("string")", "not an object or boolean"},
      {R"(null)", "not an object or boolean"},
      {R"({"properties":{"a":[]}})", "the schema at /properties/a is an array, not an object or boolean"},
      {R"({"properties":{"a":{"unevaluatedProperties":false}}})",
       R"("unevaluatedProperties" at /properties/a is not supported)"},
      {R"({"unevaluatedItems":false})", R"("unevaluatedItems" at (root) is not supported)"},
      {R"({"$dynamicRef":"#meta"})", R"("$dynamicRef" at (root) is not supported)"},
      {R"({"$recursiveRef":"#"})", "not supported"},
      {R"({"$ref":"https://example.com/schema.json"})",
       R"("$ref" at (root) ("https://example.com/schema.json") is not supported)"},
      {R"({"$ref":"other.json#/a"})", "only \"#/...\" pointers"},
      {R"({"$ref":"#anchor"})", "only \"#/...\" pointers"},
      {R"({"$ref":"#/$defs/missing"})", "resolve inside this schema"},
      {R"({"$ref":5})", "not supported"},
      {R"({"properties":{"a":{"$id":"https://example.com/a","type":"string"}}})",
       R"("$id" at /properties/a (a nested schema resource))"},
      {R"({"pattern":"(unclosed"})", R"(the pattern "(unclosed" at (root) does not compile)"},
      {R"({"pattern":"(a)\\1"})", "does not compile"},  // a back-reference: no linear-time match
      {R"({"pattern":"\\p{L}"})", "does not compile"},
      {R"({"pattern":"((a{100}){100}){100}"})", "repeats too much"},
      {R"({"patternProperties":{"[":{}}})", R"(the pattern "[" in "patternProperties" at (root) does not compile)"},
      {R"({"pattern":5})", R"("pattern" at (root) must be a string)"},
      {R"({"type":"int"})", R"("type" at (root) must name types among)"},
      {R"({"type":[]})", "must name types"},
      {R"({"minLength":-1})", R"("minLength" at (root) must be a non-negative integer)"},
      {R"({"maxItems":1.5})", "must be a non-negative integer"},
      {R"({"minimum":"5"})", R"("minimum" at (root) must be a number)"},
      {R"({"exclusiveMaximum":"x"})", "must be a number"},
      {R"({"multipleOf":0})", R"("multipleOf" at (root) must be a number greater than 0)"},
      {R"({"required":"a"})", "must be an array of property names"},
      {R"({"enum":"a"})", R"("enum" at (root) must be an array)"},
      {R"({"uniqueItems":"yes"})", "must be true or false"},
      {R"({"anyOf":[]})", R"("anyOf" at (root) must be a non-empty array of schemas)"},
      {R"({"allOf":{}})", "must be a non-empty array of schemas"},
      {R"({"properties":[]})", R"("properties" at (root) must be an object)"},
      {R"({"dependentRequired":{"a":"b"}})", "must map property names to arrays of names"},
      {R"({"dependencies":{"a":[1]}})", "must list property names"},
      {R"({"prefixItems":[{}],"items":[{}]})", "cannot be an array next to \"prefixItems\""},
      // Found behind a $ref into a place the walk would not otherwise visit.
      {R"({"x-private":{"s":{"pattern":"("}},"$ref":"#/x-private/s"})", "does not compile"},
  };
  for (const auto& c : cases) {
    const json schema = json::parse(c.schema);
    const std::string why = unsupportedSchemaFeature(schema);
    EXPECT_NE(why.find(c.why), std::string::npos) << c.schema << ": " << why;
    // validateJson refuses the same schema with one violation at the root, whatever the instance.
    auto v = validateJson(schema, json::object());
    ASSERT_EQ(v.size(), 1u) << c.schema;
    EXPECT_EQ(v[0].path, "");
    EXPECT_EQ(v[0].message, "the tool's input schema cannot be checked: " + why);
  }
  // Supported and ignored: annotations, unknown keywords, a root $id, draft markers.
  for (const char* ok : {R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://x/y",
                            "title":"t","description":"d",
                            "default":1,"examples":[1],"$comment":"c","readOnly":true,"writeOnly":false,
                            "deprecated":true,"contentMediaType":"text/plain","contentEncoding":"base64",
                            "format":"uri","x-vendor":{"a":1},
                            "$anchor":"a","properties":{"$id":{"type":"string"},"pattern":{"type":"string"}}})",
                         R"({"$ref":"#","properties":{"a":{"$ref":"#/properties/a"}}})"})
    EXPECT_EQ(unsupportedSchemaFeature(json::parse(ok)), "") << ok;
}

TEST(JsonSchema, DeeplyNestedSchemaIsRefusedNotCrashed) {
  json schema = true;
  for (int i = 0; i < 100000; ++i) schema = json{{"not", std::move(schema)}};
  EXPECT_EQ(unsupportedSchemaFeature(schema), "the schema nests deeper than 1024 JSON levels");
  ASSERT_EQ(validateJson(schema, json(1)).size(), 1u);
  // 600 nested "not"s are 600 JSON levels (under 1024) but 600 subschemas (over 512).
  schema = true;
  std::string where;
  for (int i = 0; i < 600; ++i) schema = json{{"not", std::move(schema)}}, where += i < 513 ? "/not" : "";
  EXPECT_EQ(unsupportedSchemaFeature(schema), "the schema nests deeper than 512 levels at " + where);
  // Deep arguments are refused before anything compares them recursively (uniqueItems here).
  json pair = json::array();
  for (int k = 0; k < 2; ++k) {
    json deep = 1;
    for (int i = 0; i < 100000; ++i) deep = json::array({std::move(deep)});
    pair.push_back(std::move(deep));
  }
  auto v = validateJson(json::parse(R"({"uniqueItems":true})"), pair);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].message, "the arguments nest deeper than 512 levels");
}

TEST(JsonSchema, HostileInputsNeverThrow) {
  // Invalid UTF-8 in a string (possible in a json built in code) is shown, not thrown on.
  json schema = json::parse(R"({"enum":["a"],"pattern":"^a","maxLength":1})");
  auto v = validateJson(schema, json(std::string("\xff\xfe\x80")));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1].message.find("must be at most 1 characters, got "), 0u) << v[1].message;
  // Long text against a nested repetition matches in linear time.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(check(json::parse(R"({"pattern":"(x+x+)+y"})"), json(std::string(200000, 'x'))),
            R"((root): must match the pattern "(x+x+)+y")");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  // A lookahead costs the square of the text: past 1000 characters the check says so.
  v = validateJson(json::parse(R"j({"pattern":"(?=.*1)"})j"), json(std::string(1001, 'x')));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].message.find("is 1001 characters, too long to check against the pattern"), std::string::npos)
      << v[0].message;
  // Nested alternatives explain themselves in bounded text: 5^8 failing branches, one short message.
  json alternatives = {{"$ref", "#/$defs/d0"}, {"$defs", {{"d8", {{"type", "string"}}}}}};
  for (int i = 0; i < 8; ++i) {
    const json next = {{"$ref", "#/$defs/d" + std::to_string(i + 1)}};
    alternatives["$defs"]["d" + std::to_string(i)] = {{"anyOf", {next, next, next, next, next}}};
  }
  v = validateJson(alternatives, json(1));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].message.find("must match at least one of the anyOf alternatives: [0] (root): must match"), 0u)
      << v[0].message;
  EXPECT_LT(v[0].message.size(), 1500u);
  // A large array is checked in full; a larger one runs out of steps.
  json big = json::array();
  for (int i = 0; i < 100000; ++i) big.push_back(i);
  const json unique = json::parse(R"({"uniqueItems":true,"items":{"type":"integer","minimum":0}})");
  EXPECT_EQ(check(unique, big), "");
  big.push_back(5);
  EXPECT_EQ(check(unique, big), "(root): items 5 and 100000 are equal; items must be unique");
  for (int i = 0; i < 1000000; ++i) big.push_back(i);
  EXPECT_EQ(check(unique, big), "(root): the arguments are too large or the schema too complex to check");
}

TEST(JsonSchema, McpInputSchemas) {
  // As zod-to-json-schema emits a tool's input schema.
  const json echo = json::parse(R"({"type":"object",
    "properties":{"message":{"type":"string","description":"Message to echo"}},
    "required":["message"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"})");
  EXPECT_EQ(unsupportedSchemaFeature(echo), "");
  EXPECT_EQ(check(echo, json::parse(R"({"message":"hi"})")), "");
  EXPECT_EQ(check(echo, json::parse(R"({})")), R"((root): "message" is required)");
  EXPECT_EQ(check(echo, json::parse(R"({"message":42,"verbose":true})")),
            "(root): property \"verbose\" is not allowed (allowed: \"message\")\n"
            "/message: must be a string, got integer");
  EXPECT_EQ(check(echo, json::parse(R"(null)")), "(root): must be an object, got null");

  // A filesystem server's edit tool: nested arrays of objects, defaults, a $ref'd definition.
  const json edit = json::parse(R"({
    "$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
    "properties":{
      "path":{"type":"string","minLength":1},
      "edits":{"type":"array","minItems":1,"items":{"$ref":"#/$defs/edit"}},
      "dryRun":{"type":"boolean","default":false},
      "mode":{"type":"string","enum":["replace","append"]},
      "timeoutMs":{"type":"integer","minimum":1,"maximum":60000}},
    "required":["path","edits"],"additionalProperties":false,
    "$defs":{"edit":{"type":"object","properties":{"oldText":{"type":"string"},"newText":{"type":"string"}},
                     "required":["oldText","newText"],"additionalProperties":false}}})");
  EXPECT_EQ(unsupportedSchemaFeature(edit), "");
  const json good = json::parse(R"({"path":"a.txt","edits":[{"oldText":"a","newText":"b"}],"timeoutMs":1e3})");
  EXPECT_EQ(check(edit, good), "");
  const json bad = json::parse(
      R"({"path":"","edits":[{"oldText":"a"},{"oldText":"a","newText":1}],"mode":"delete","timeoutMs":0})");
  EXPECT_EQ(check(edit, bad),
            "/edits/0: \"newText\" is required\n/edits/1/newText: must be a string, got integer\n"
            "/mode: must be one of \"replace\", \"append\"\n/path: must be at least 1 characters, got 0\n"
            "/timeoutMs: must be >= 1, got 0");
}

}  // namespace
}  // namespace paddock::gateway
