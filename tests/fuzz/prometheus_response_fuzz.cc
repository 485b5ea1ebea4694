// A Prometheus /api/v1/query response body (the budget reads): the first byte picks the HTTP
// status, the rest is the body.
#include "operator/prometheus/client.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int kStatus[] = {200, 400, 422, 503};
  if (size == 0) return 0;
  (void)paddock::promapi::parseQueryResponse(kStatus[data[0] % 4], std::string(paddock::fuzz::text(data + 1, size - 1)));
  return 0;
}
