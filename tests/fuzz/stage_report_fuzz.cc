// The stage container's termination message, as the operator reads it from the pod's status.
// The first byte picks the stage the operator expects; the rest is the message.
#include "controllers/stage_report.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kStages[] = {"clone", "pr", "deploy", "promote"};
  if (size == 0) return 0;
  auto message = paddock::fuzz::text(data + 1, size - 1);
  auto report = paddock::controllers::parseStageReport(message, kStages[data[0] % 4]);
  if (report) {
    // What it kept obeys its own bounds.
    if (report->message.size() > 1024 || report->refused_paths.size() > paddock::controllers::kReportListLimit) __builtin_trap();
    if (!report->commit.empty() && !paddock::controllers::isCommitId(report->commit)) __builtin_trap();
    if (!report->release_id.empty() && !paddock::controllers::isReleaseId(report->release_id)) __builtin_trap();
  }
  return 0;
}
