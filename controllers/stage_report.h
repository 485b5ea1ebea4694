// What a Paddock pod's stage container says about its work: paddock-stage's result JSON, which
// it writes to its termination message (docs/stages.md has the schema). The operator reads it
// from the pod's status, where the container put it: untrusted input, parsed here with bounds
// on its size, every field's type and its characters. A field that fails its check is left out
// (and named in `dropped`); a message that is not a result for the expected stage is an error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"

namespace paddock::controllers {

// The kubelet keeps at most 4096 bytes of a container's termination message.
inline constexpr size_t kTerminationMessageLimit = 4096;
// Lists in a report (refused paths, conflicts, findings) keep at most this many entries.
inline constexpr size_t kReportListLimit = 20;

struct StageReport {
  std::string stage;    // clone | pr | deploy | promote
  std::string outcome;  // CamelCase: PullRequestOpened, Refused, Conflict, Staged, Promoted, ...
  std::string reason;   // CamelCase
  std::string message;  // at most 1024 characters, control characters replaced by spaces
  std::string branch;
  std::string commit;        // a commit id (40 or 64 hex digits)
  std::string base_commit;   // clone: the commit the agent starts from; pr: the base's tip it built on
  std::string start_commit;  // pr: the commit the agent started from
  std::string pull_request_url;
  int64_t pull_request_number = 0;
  std::string release_id;               // deploy and promote: the release at the deploy endpoint
  std::vector<std::string> refused_paths;
  std::vector<std::string> conflicts;
  std::vector<std::string> findings;    // "file:line:pattern", never the matched text
  std::vector<std::string> dropped;     // fields left out because they failed their checks
};

// Reads `message` as the result of stage `stage`.
Result<StageReport> parseStageReport(std::string_view message, const std::string& stage);

// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
bool isCommitId(std::string_view s);
// A release id as a deploy endpoint may give it: 1 to 128 of [A-Za-z0-9._:-], starting with a
// letter or digit.
bool isReleaseId(std::string_view s);

// The report as it goes into status.stages[] (only the fields it has).
nlohmann::json reportStatus(const StageReport& report);

}  // namespace paddock::controllers
