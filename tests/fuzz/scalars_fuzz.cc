// Durations (budgets, deadlines, flags) and dollar amounts, as written in a run or a policy.
#include <chrono>

#include "controllers/api.h"
#include "operator/common/duration.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = paddock::fuzz::text(data, size);
  if (auto d = paddock::parseDuration(in); d && d->count() < 0) __builtin_trap();  // never negative
  if (auto c = paddock::controllers::parseCostCents(std::string(in)); c && *c < 0) __builtin_trap();
  return 0;
}
