// kubectl-paddock's machine-readable and shell-facing output, pure: YAML for -o yaml, the API
// server's Table (the CRD's printer columns) as text for `list`, a run's phase line and exit code
// for `watch`, and shell completion (the scripts, and the candidates for the words typed so far).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::plugin {

// A JSON value as a YAML document (block style; strings quoted where YAML would misread them).
std::string toYaml(const nlohmann::json& value);

// A meta.k8s.io/v1 Table (the API server renders a CRD's additionalPrinterColumns) as aligned
// columns: the columns of priority 0, with NAMESPACE first when `with_namespace`.
std::string renderTable(const nlohmann::json& table, bool with_namespace);

// One line for `watch`: "<phase> (<reason>): <message>" of the run's condition that explains the
// phase best, or the phase alone; "(not yet reconciled)" before the first status.
std::string phaseLine(const nlohmann::json& run);
// True once the run's phase is terminal; `code` is then the exit code: 0 Succeeded, 3 otherwise.
bool finished(const nlohmann::json& run, int& code);

// The completion script for `shell` (bash, zsh, or kubectl: the `kubectl_complete-paddock`
// program kubectl runs to complete `kubectl paddock ...`). Each calls `kubectl-paddock __complete`.
std::string completionScript(const std::string& shell);

// What to offer for the last word of `words` (the words after the program name; the last may be
// ""): commands, flags, values, or, when `wants_runs`, the run names of `ns` ("" = the context's).
struct Completion {
  std::vector<std::string> candidates;
  bool wants_runs = false;
  std::string ns;
};
Completion complete(const std::vector<std::string>& words);
// Cobra's __complete output, which kubectl expects of a plugin: the candidates starting with
// `prefix`, one per line, then ":4" (no file completion).
std::string completionOutput(const std::vector<std::string>& candidates, const std::string& prefix);

}  // namespace paddock::plugin
