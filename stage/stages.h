// The gated stages' I/O shells: `pr` (diff, checks, CHANGELOG, push, pull request) and `deploy`
// (stage a release at the deploy endpoint). Each returns its result and exit code; main.cc writes
// the result where the operator reads it.
#pragma once

#include <string>

#include "stage/report.h"

namespace paddock::stage {

struct PrOptions {
  RunInfo run;
  std::string workspace = "/workspace";
  std::string repository_file = "/etc/paddock/task/repository.json";
  std::string protected_paths_file;  // empty: no protected paths
  std::string token_file;            // the forge token (the policy's secret for stage pr)
  std::string canaries_file;         // empty: none (PADDOCK_CANARIES is read as well)
  std::string canaries;              // from the environment
  std::string summary_file = ".paddock/summary.md";  // below the workspace
  std::string task_file;             // the fallback summary
  std::string forge;                 // github | gitea | "" (github)
  std::string forge_api_url;
  std::string forge_repository;
  std::string git = "git";
  std::string scratch = "/tmp";      // where the stage's own git directory is made
  std::string date;                  // YYYY-MM-DD for the CHANGELOG; empty: today (UTC)
  // The commit the agent started from, as the clone recorded it (the operator passes it from the
  // agent pod's status). The agent's change is its workspace against this commit, merged onto
  // the base branch as it is now. Empty: the workspace against the base branch's tip.
  std::string base_commit;
  bool open_pull_request = true;
  // The agent was stopped before it finished (why, as the operator says it): the pull request is a
  // draft of its partial work, marked as such.
  std::string partial;
};

struct Outcome {
  StageResult result;
  int exit_code = kSuccess;
};

Outcome runPr(const PrOptions& options);

struct DeployOptions {
  RunInfo run;
  std::string deploy_url;
  std::string deploy_url_file;
  std::string token_file;
  std::string ref;      // deploy: default paddock/<run>
  std::string commit;   // deploy: optional
  std::string release;  // promote: the staged release's id, as the deploy stage reported it
};

// Stages a release at the deploy endpoint.
Outcome runDeploy(const DeployOptions& options);
// Promotes the release the deploy stage staged: POST {run, namespace, stage, release} to the
// promotion endpoint with the deploy token.
Outcome runPromote(const DeployOptions& options);

// The agent pod's workspace init container: the base branch of the run's repository, fetched
// shallow into the (empty) workspace, with `origin` pointing at the repository. A token, when
// given, is a read-only credential sent only as git's http.extraHeader.
struct CloneOptions {
  RunInfo run;
  std::string repository_file = "/etc/paddock/task/repository.json";
  std::string into = "/workspace";
  std::string token_file;  // empty: an anonymous clone
  std::string git = "git";
};

Outcome runClone(const CloneOptions& options);

// `text` with every occurrence of `secret` replaced by "[redacted]".
std::string redact(std::string text, const std::string& secret);

}  // namespace paddock::stage
