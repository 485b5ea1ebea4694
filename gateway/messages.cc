#include "gateway/messages.h"

namespace paddock::gateway {
namespace {

using nlohmann::json;

ApiError invalid(std::string message) { return ApiError{400, "invalid_request_error", std::move(message)}; }

std::optional<ApiError> checkModel(const json& body, const Config& config) {
  if (!body.contains("model") || !body["model"].is_string()) return invalid("model: field required (a string)");
  std::string model = body["model"].get<std::string>();
  if (!config.pinned_model.empty() && model != config.pinned_model) {
    return ApiError{403, "permission_error",
                    "model: this run may use only " + config.pinned_model + " (pinned by its AgentPolicy), not " +
                        model + "; set the model to " + config.pinned_model};
  }
  if (!config.prices.count(model)) {
    return ApiError{403, "permission_error",
                    "model: " + model + " has no price in the gateway's configuration, so its spend cannot be "
                                        "capped; ask the platform team to add it"};
  }
  return std::nullopt;
}

std::variant<json, ApiError> parseObject(std::string_view body, const Config& config) {
  if (static_cast<int64_t>(body.size()) > config.max_request_bytes) {
    return ApiError{413, "request_too_large",
                    "request body is " + std::to_string(body.size()) + " bytes; the gateway accepts at most " +
                        std::to_string(config.max_request_bytes)};
  }
  if (jsonNestingDepth(body) > kMaxJsonDepth) {
    return invalid("the request body nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid("the request body is not a JSON object");
  return j;
}

}  // namespace

size_t jsonNestingDepth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string errorBody(const ApiError& e) {
  return json{{"type", "error"}, {"error", {{"type", e.type}, {"message", e.message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

std::string errorEvent(const ApiError& e) { return "event: error\ndata: " + errorBody(e) + "\n\n"; }

std::variant<MessagesRequest, ApiError> parseMessagesRequest(std::string_view body, const Config& config) {
  auto parsed = parseObject(body, config);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  MessagesRequest r;
  r.body = std::move(std::get<json>(parsed));
  if (auto e = checkModel(r.body, config)) return *e;
  r.model = r.body["model"].get<std::string>();
  const json& mt = r.body.contains("max_tokens") ? r.body["max_tokens"] : json();
  if (!mt.is_number_integer() || mt.get<int64_t>() < 1) return invalid("max_tokens: field required (an integer >= 1)");
  r.max_tokens = mt.get<int64_t>();
  if (r.body.contains("stream")) {
    if (!r.body["stream"].is_boolean()) return invalid("stream: must be a boolean");
    r.stream = r.body["stream"].get<bool>();
  }
  const json& msgs = r.body.contains("messages") ? r.body["messages"] : json();
  if (!msgs.is_array() || msgs.empty()) return invalid("messages: field required (a non-empty list)");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    std::string at = "messages." + std::to_string(i);
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) return invalid(at + ".role: field required");
    if (!m.contains("content") || !(m["content"].is_string() || m["content"].is_array())) {
      return invalid(at + ".content: field required (a string or a list of blocks)");
    }
  }
  return r;
}

std::optional<ApiError> checkCountTokensRequest(std::string_view body, const Config& config) {
  auto parsed = parseObject(body, config);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  return checkModel(std::get<json>(parsed), config);
}

int64_t inputBound(std::string_view body, const Config& config) {
  return static_cast<int64_t>(body.size()) + config.input_overhead_tokens;
}

std::string rewriteForUpstream(json body, int64_t max_tokens, const std::string& instruction) {
  body["max_tokens"] = max_tokens;
  if (body.contains("thinking") && body["thinking"].is_object() && body["thinking"].contains("budget_tokens") &&
      body["thinking"]["budget_tokens"].is_number_integer() &&
      body["thinking"]["budget_tokens"].get<int64_t>() >= max_tokens) {
    // The API wants budget_tokens < max_tokens and at least 1024.
    if (max_tokens > 1024) {
      body["thinking"]["budget_tokens"] = max_tokens - 1;
    } else {
      body["thinking"] = {{"type", "disabled"}};
    }
  }
  if (!instruction.empty()) {
    json& msgs = body["messages"];
    for (size_t i = msgs.size(); i-- > 0;) {
      json& m = msgs[i];
      if (m["role"] != "user") continue;
      json block = {{"type", "text"}, {"text", instruction}};
      if (m["content"].is_string()) {
        m["content"] = json::array({{{"type", "text"}, {"text", m["content"]}}, block});
      } else {
        m["content"].push_back(block);
      }
      break;
    }
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string checkpointInstruction(int percent_used, int checkpoint_percent) {
  return "<system-reminder>\nPaddock budget checkpoint: this run has used " + std::to_string(percent_used) +
         "% of its budget (the checkpoint is at " + std::to_string(checkpoint_percent) +
         "%). Before anything else: commit your work in progress now with git (git add -A && git commit -m "
         "\"WIP: <what is done>\"), then write a short summary of your progress and what remains to "
         "PROGRESS.md and commit it too. At 100% further model calls are refused and the run ends; what is "
         "committed is proposed as a draft pull request.\n</system-reminder>";
}

namespace {

// A tool result's text: its string content, or its text blocks joined.
std::string resultText(const nlohmann::json& block) {
  const auto& c = block.contains("content") ? block["content"] : nlohmann::json();
  if (c.is_string()) return c.get<std::string>();
  std::string out;
  for (const auto& part : c.is_array() ? c : nlohmann::json::array()) {
    if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") && part["text"].is_string()) {
      out += part["text"].get<std::string>() + "\n";
    }
  }
  return out;
}

bool mentions(const std::string& text, std::initializer_list<const char*> phrases) {
  for (const char* p : phrases) {
    if (text.find(p) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> toolRefusals(const nlohmann::json& new_messages) {
  std::vector<std::string> out;
  for (const auto& m : new_messages.is_array() ? new_messages : nlohmann::json::array()) {
    if (!m.is_object() || !m.contains("role") || m["role"] != "user" || !m.contains("content") || !m["content"].is_array()) continue;
    for (const auto& b : m["content"]) {
      if (!b.is_object() || !b.contains("type") || b["type"] != "tool_result" || !b.contains("is_error") || b["is_error"] != true) {
        continue;
      }
      std::string text = resultText(b);
      // Claude Code's words when its permission rules refuse a call (2.1.x).
      if (mentions(text, {"haven't granted it yet", "Permission to use", "has been denied", "was blocked",
                          "denied by your permission settings"})) {
        out.push_back("tool");
      } else if (mentions(text, {"Permission denied", "permission denied", "Read-only file system", "read-only file system",
                                 "Operation not permitted", "EACCES", "EROFS", "EPERM"})) {
        out.push_back("sandbox");
      }
    }
  }
  return out;
}

}  // namespace paddock::gateway
