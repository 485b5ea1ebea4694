// JSON Schema checks for the MCP proxy, as pure functions: every tools/call's `arguments` is
// checked against the tool's `inputSchema` (as tools/list returns it, draft 2020-12 or draft-07
// style) before the call reaches the server, and a failing call goes back to the model with
// what to fix.
//
// Supported: boolean schemas, type, enum, const, properties, required, additionalProperties,
// patternProperties, propertyNames, min/maxProperties, dependentRequired, dependentSchemas,
// dependencies, items (a schema, or draft-07's array form as a tuple), prefixItems,
// additionalItems, min/maxItems, uniqueItems, contains, min/maxContains, min/maxLength (in code
// points), pattern, minimum, maximum, exclusiveMinimum/Maximum (numeric, and draft-04's boolean),
// multipleOf, allOf, anyOf, oneOf, not, if/then/else, and $ref to "#..." pointers inside the
// schema. Annotations (format, title, description, default, examples...) and unknown keywords
// are ignored.
//
// Caveats:
// - Not supported (unsupportedSchemaFeature names them, and the gateway refuses the tool):
//   unevaluatedProperties/Items, $dynamicRef, $recursiveRef, a $ref to another document or to
//   an anchor, a nested $id, and a pattern that does not compile.
// - Patterns are ECMAScript (std::wregex over code points) matched in linear time: a pattern
//   with a back-reference, \p{...} or a named group does not compile, so it is unsupported.
// - Bounded work on hostile input: a $ref chain is at most 64 deep, subschemas nest at most 512
//   deep (1024 JSON levels), the arguments 512, and one check takes at most a million steps
//   (about a second); past a bound the check fails with one violation at the root saying so.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::gateway {

struct SchemaViolation {
  std::string path;     // a JSON Pointer into the instance, "" for the root, e.g. "/items/2/name"
  std::string message;  // what is wrong, e.g. "must be an integer, got string"
};

// The violations of `instance` against `schema`: at most `limit` (0 counts as 1), in document
// order; empty when valid. Never throws; a schema it cannot check yields one violation at the
// root saying why.
std::vector<SchemaViolation> validateJson(const nlohmann::json& schema, const nlohmann::json& instance,
                                          size_t limit = 10);

// "" when validateJson can check against `schema`, else which keyword or construct (and where in
// the schema) it cannot, e.g. "\"unevaluatedProperties\" at /properties/a is not supported".
std::string unsupportedSchemaFeature(const nlohmann::json& schema);

// "/items/2/name: must be a string, got number", or "(root): ..." for the root.
std::string formatViolation(const SchemaViolation& v);

}  // namespace paddock::gateway
