// The model API's answer as paddock-gateway reads it beside the relay: the SSE stream cut into
// chunks where the input says (the first byte picks the chunk size), every event fed to the
// response accumulator; and the same bytes as a whole non-streaming response body.
#include <algorithm>

#include "gateway/sse.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace paddock::gateway;
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  auto stream = paddock::fuzz::text(data + 1, size - 1);
  SseParser parser;
  ResponseAccumulator streamed;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    for (const auto& event : parser.feed(stream.substr(at, std::min(chunk, stream.size() - at)))) streamed.onEvent(event);
  }
  const auto& usage = streamed.usage();
  if (usage.input < 0 || usage.output < 0 || usage.cache_read < 0 || usage.cache_write < 0) __builtin_trap();
  if (!streamed.content().is_array()) __builtin_trap();

  auto message = nlohmann::json::parse(stream, nullptr, false);
  if (!message.is_discarded()) {
    ResponseAccumulator whole;
    whole.onMessage(message);
    if (!whole.content().is_array()) __builtin_trap();
  }
  return 0;
}
