// What the stages write: the CHANGELOG entry and pull request text, the result the operator reads
// from the pod's termination message, and the exit codes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "stage/checks.h"

namespace paddock::stage {

// Exit codes of paddock-stage, one per kind of outcome, so the operator can tell them apart
// without reading the result.
enum ExitCode : int {
  kSuccess = 0,
  kFailed = 1,       // the workspace or git failed (not the agent's fault, not the forge's)
  kUsage = 2,        // flags, files or configuration are wrong
  kRefused = 3,      // a protected path or a credential: the change is not proposed
  kForgeError = 4,   // pushing the branch or opening the pull request failed
  kDeployError = 5,  // the deploy endpoint refused or could not be reached
  kNoChanges = 6,    // the workspace does not differ from the base branch
  kConflict = 7,     // the base moved and the agent's change does not merge onto it
};

struct RunInfo {
  std::string run;
  std::string ns;
};

// The branch the PR stage pushes: paddock/<run>.
std::string branchName(const RunInfo& run);

// The first non-empty line of `summary` without Markdown heading marks, at most 72 characters;
// `fallback` when there is none.
std::string titleOf(std::string_view summary, std::string_view fallback);

// A CHANGELOG.md entry: a "## <title>" heading, the summary and the run it came from.
// `date` is YYYY-MM-DD.
std::string renderChangelogEntry(const RunInfo& run, std::string_view summary, std::string_view date);

// `changelog` with `entry` inserted as the newest: before the first "## " section, else after
// the "# " title and its introduction, else under a new "# Changelog" title.
std::string insertChangelogEntry(std::string_view changelog, std::string_view entry);

// The pull request's body: the summary, then what Paddock checked and where the run is.
std::string renderPullRequestBody(const RunInfo& run, std::string_view summary, size_t files_changed);

// The stage's result, written as JSON for the operator (the termination message, 4096 bytes
// at most: lists are cut and `truncated` counts what was left out).
struct StageResult {
  std::string stage;    // pr | deploy
  std::string outcome;  // Cloned | PullRequestOpened | Pushed | Refused | NoChanges | Conflict | ForgeError | Failed |
                        // UsageError | Staged | Promoted | DeployError
  std::string reason;   // CamelCase: ProtectedPath, Credential, PushFailed, ...
  std::string message;  // in words a person can act on
  std::string branch;
  std::string commit;
  std::string base_commit;   // clone: the commit cloned; pr: the base branch's tip the change sits on
  std::string start_commit;  // pr: the commit the agent started from (--base-commit)
  std::string pull_request_url;
  int pull_request_number = 0;
  std::vector<std::string> refused_paths;
  std::vector<std::string> conflicts;  // pr: paths the agent and the moved base both changed
  std::vector<Finding> findings;
  nlohmann::json extra = nlohmann::json::object();  // stage-specific fields (deploy: release)
};

nlohmann::json resultJson(const StageResult& result);
// resultJson, dumped, cut to fit `limit` bytes by dropping list entries from the end.
std::string renderResult(const StageResult& result, size_t limit = 4096);

}  // namespace paddock::stage
