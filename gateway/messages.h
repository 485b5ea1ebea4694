// The Messages API requests the gateway relays, as pure functions: validating a request body,
// enforcing the pinned model, bounding its input, rewriting it for upstream (max_tokens clamped,
// the checkpoint instruction appended), and Anthropic-style error bodies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/config.h"

namespace paddock::gateway {

// An error as the Messages API answers it: HTTP status, and the body
// {"type":"error","error":{"type":<type>,"message":<message>}}.
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
};
std::string errorBody(const ApiError& e);
// The same error as one SSE event (for a stream that already started).
std::string errorEvent(const ApiError& e);

struct MessagesRequest {
  nlohmann::json body;
  std::string model;
  int64_t max_tokens = 0;
  bool stream = false;
};

// Checks a POST /v1/messages body: its size, that it is a JSON object, model (the pinned one when
// a pin is configured, and one with a price), max_tokens (a positive integer), messages (a
// non-empty list of {role, content}), stream (a boolean when present).
std::variant<MessagesRequest, ApiError> parseMessagesRequest(std::string_view body, const Config& config);
// POST /v1/messages/count_tokens: the same size and model checks (it costs nothing).
std::optional<ApiError> checkCountTokensRequest(std::string_view body, const Config& config);

// The most input tokens `body` can be billed for: one per byte (no tokenizer packs less than a
// byte into a token) plus the configured overhead for what the API adds.
int64_t inputBound(std::string_view body, const Config& config);

// The body sent upstream: max_tokens set to `max_tokens` (thinking.budget_tokens kept below it,
// or thinking turned off when no room is left for it), and `instruction` (when given) appended as
// a text block to the last user turn.
std::string rewriteForUpstream(nlohmann::json body, int64_t max_tokens, const std::string& instruction);

// The refusals the agent's new messages report back to the model, one reason per refused tool
// call (a tool_result with is_error): "tool" when Claude Code's permission rules refused it (the
// policy's tools.deny, a tool not allowed, bypass mode off), "sandbox" when the kernel did
// (paddock-sandbox's Landlock rules, a protected path's read-only mount: EACCES, EPERM, EROFS as
// a tool reports them). Other tool errors are no refusal.
std::vector<std::string> toolRefusals(const nlohmann::json& new_messages);

// The deepest nesting of arrays and objects in JSON text, counted without parsing (brackets inside
// strings are not counted). Bodies deeper than kMaxJsonDepth are refused before they are parsed:
// copying or printing a parsed value recurses, so a deep one would exhaust the stack.
size_t jsonNestingDepth(std::string_view text);
inline constexpr size_t kMaxJsonDepth = 256;

// What the agent is told once the run passed its checkpoint percentage.
std::string checkpointInstruction(int percent_used, int checkpoint_percent);

}  // namespace paddock::gateway
