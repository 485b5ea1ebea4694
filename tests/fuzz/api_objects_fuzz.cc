// AgentRun, AgentPolicy and AgentApproval objects as the API server hands them over (an older
// schema, or a field the schema does not constrain), and a run's recorded terms: JSON in, the
// operator's typed view or an error out.
#include <nlohmann/json.hpp>

#include "controllers/api.h"
#include "controllers/approval.h"
#include "controllers/terms.h"
#include "tests/fuzz/fuzz.h"

using namespace paddock::controllers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto object = nlohmann::json::parse(paddock::fuzz::text(data, size), nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return 0;
  (void)parseAgentRun(object);
  (void)parseAgentPolicy(object);
  (void)parseAgentApproval(object);
  if (object.is_object() && object.contains("status")) (void)parseTerms(object["status"]);
  return 0;
}
