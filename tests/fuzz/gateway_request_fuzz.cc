// A Messages API request body as an agent sends it to paddock-gateway: the checks of
// POST /v1/messages and count_tokens, the input bound, and the body rewritten for upstream (the
// clamped max_tokens and the checkpoint instruction) of every request the checks accept.
#include <variant>

#include "gateway/messages.h"
#include "tests/fuzz/fuzz.h"

namespace {
paddock::gateway::Config config() {
  paddock::gateway::Config c;
  c.pinned_model = "claude-sonnet-4-5";
  c.prices["claude-sonnet-4-5"] = {3000, 15000, 300, 3750};
  c.max_request_bytes = 1 << 20;
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace paddock::gateway;
  static const Config c = config();
  auto body = paddock::fuzz::text(data, size);
  (void)checkCountTokensRequest(body, c);
  auto parsed = parseMessagesRequest(body, c);
  if (auto* request = std::get_if<MessagesRequest>(&parsed)) {
    // What the checks promise of an accepted request.
    if (request->model != c.pinned_model || request->max_tokens <= 0) __builtin_trap();
    if (inputBound(body, c) < static_cast<int64_t>(size)) __builtin_trap();
    auto upstream = rewriteForUpstream(request->body, 1 + request->max_tokens / 2, checkpointInstruction(70, 60));
    auto reparsed = nlohmann::json::parse(upstream, nullptr, false);
    if (!reparsed.is_object() || reparsed.value("max_tokens", int64_t{0}) != 1 + request->max_tokens / 2) __builtin_trap();
  } else {
    const auto& error = std::get<ApiError>(parsed);
    if (error.status < 400 || error.message.empty()) __builtin_trap();
    if (!nlohmann::json::parse(errorBody(error), nullptr, false).is_object()) __builtin_trap();
  }
  return 0;
}
