// kubectl-paddock's pure parts: its command line, the names and objects it creates. The I/O
// (the user's kubeconfig, the API server, paddock-audit) lives in main.cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::plugin {

// What one invocation asks for.
struct Invocation {
  std::string command;     // approve, reject, cancel, status, logs, audit, transcript, list, watch or completion
  std::string kubeconfig;  // --kubeconfig: "" means $KUBECONFIG, else ~/.kube/config
  std::string context;     // --context: "" means the kubeconfig's current-context
  std::string ns;          // -n/--namespace: "" means the context's namespace
  std::string run;         // RUN
  std::string stage;       // --stage (approve, reject, logs)
  std::string message;     // -m/--message (approve, reject)
  std::string store;       // --store (audit, transcript): "" means $PADDOCK_AUDIT_STORE
  std::string output;      // -o/--output (status, list, watch): "", "json" or "yaml"
  bool all_namespaces = false;  // -A/--all-namespaces (list)
  std::string shell;       // completion: bash, zsh or kubectl
  std::vector<std::string> complete_args;  // __complete (the completion scripts' callback): the words so far
  // --help (or no command at all): print `text` to stdout and exit 0.
  bool help = false;
  std::string text;
  // Set when the command line is wrong: what is wrong, and where to look (exit 2).
  std::string error;
};

// Parses the arguments after the program name. Global flags may stand before or after the
// command; -n and -m are short for --namespace and --message.
Invocation parseArgs(const std::vector<std::string>& args);

// The plugin's own --help: every command and the global flags.
std::string usage();

// `text` as part of an object name: lower case letters and digits, any run of other characters
// one '-', no '-' at either end, at most `max` characters; "user" when nothing is left.
std::string sanitizeName(std::string_view text, size_t max = 40);

// The AgentApproval's name: <run>-<stage>-<user>-<suffix>, where `suffix` is short and random so
// that a person may decide again (approvals are immutable).
std::string approvalName(const std::string& run, const std::string& stage, const std::string& username,
                         const std::string& suffix);

// Five random lower-case letters and digits.
std::string randomSuffix();

// The AgentApproval the user creates: `decision` is "Approve" or "Reject"; the approver is the user
// the API server says they are (a SelfSubjectReview), so the admission policy agrees.
nlohmann::json approvalObject(const std::string& name, const std::string& run, const std::string& stage,
                              const std::string& decision, const std::string& username,
                              const std::vector<std::string>& groups, const std::string& comment);

}  // namespace paddock::plugin
