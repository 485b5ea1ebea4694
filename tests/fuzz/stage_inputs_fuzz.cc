// What paddock-stage reads from its environment and the policy: the protected-path and canary
// lists, and the forge's URL.
#include "stage/checks.h"
#include "stage/forge.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = paddock::fuzz::text(data, size);
  (void)paddock::stage::parseGlobList(in);
  (void)paddock::stage::parseCanaries(in);
  (void)paddock::stage::splitUrl(std::string(in));
  return 0;
}
