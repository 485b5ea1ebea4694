#include "operator/plugin/output.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include <yaml-cpp/yaml.h>

#include "operator/plugin/status.h"

namespace paddock::plugin {
namespace {

using nlohmann::json;

// Strings YAML would read as something else (a bool, null, a number) or as nothing.
bool ambiguous(const std::string& s) {
  if (s.empty()) return true;
  std::string lower;
  for (char c : s) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  static const std::set<std::string> kWords = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  if (kWords.count(lower)) return true;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

void emit(YAML::Emitter& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, item] : v.items()) {
        out << YAML::Key;
        if (ambiguous(k)) out << YAML::DoubleQuoted;
        out << k << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      break;
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (ambiguous(s)) out << YAML::DoubleQuoted;
      out << s;
      break;
    }
    case json::value_t::boolean: out << (v.get<bool>() ? "true" : "false"); break;
    case json::value_t::null: out << YAML::Null; break;
    default: out << v.dump(); break;  // numbers, as JSON writes them
  }
}

std::string text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

const char* kCommandNames[] = {"approve", "reject", "cancel", "status", "logs", "audit", "list", "watch", "completion"};
const std::set<std::string> kValueFlags = {"--kubeconfig", "--context", "--namespace", "-n", "--stage",
                                           "--message",    "-m",        "--store",     "--output", "-o"};

std::vector<std::string> flagsOf(const std::string& command) {
  std::vector<std::string> out = {"--kubeconfig", "--context", "--namespace", "--help"};
  if (command == "approve" || command == "reject") out.insert(out.end(), {"--stage", "--message"});
  if (command == "logs") out.push_back("--stage");
  if (command == "audit") out.push_back("--store");
  if (command == "list") out.push_back("--all-namespaces");
  if (command == "status" || command == "list" || command == "watch") out.push_back("--output");
  if (command.empty()) out.push_back("--version");
  return out;
}

}  // namespace

std::string toYaml(const json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

std::string renderTable(const json& table, bool with_namespace) {
  std::vector<size_t> shown;
  std::vector<std::string> header;
  if (with_namespace) header.push_back("NAMESPACE");
  const json columns = table.value("columnDefinitions", json::array());
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].value("priority", 0) != 0) continue;
    shown.push_back(i);
    std::string name = columns[i].value("name", "");
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    header.push_back(name);
  }
  std::vector<std::vector<std::string>> rows = {header};
  for (const auto& row : table.value("rows", json::array())) {
    std::vector<std::string> cells;
    if (with_namespace) cells.push_back(row.value(json::json_pointer("/object/metadata/namespace"), std::string()));
    const json values = row.value("cells", json::array());
    for (size_t i : shown) cells.push_back(i < values.size() ? text(values[i]) : "");
    rows.push_back(std::move(cells));
  }
  if (rows.size() == 1) return "No AgentRuns found.\n";
  return formatTable(rows);
}

std::string phaseLine(const json& run) {
  const json status = run.value("status", json::object());
  std::string phase = status.value("phase", "");
  if (phase.empty()) return "(not yet reconciled)";
  static const char* kExplaining[] = {"Succeeded", "BudgetExceeded", "AwaitingApproval", "Running", "Admitted"};
  const json conditions = status.value("conditions", json::array());
  for (const char* type : kExplaining) {
    for (const auto& c : conditions) {
      if (c.value("type", "") != type || c.value("message", "").empty()) continue;
      bool telling = std::string(type) == "Admitted" ? c.value("status", "") == "False" || phase == "Pending"
                                                     : c.value("status", "") == "True" || std::string(type) == "Succeeded";
      if (!telling) continue;
      return phase + " (" + c.value("reason", "") + "): " + c.value("message", "");
    }
  }
  return phase;
}

bool finished(const json& run, int& code) {
  std::string phase = run.value(json::json_pointer("/status/phase"), std::string());
  static const std::set<std::string> kTerminal = {"Succeeded", "Failed", "Cancelled", "BudgetExceeded", "TimedOut"};
  if (!kTerminal.count(phase)) return false;
  code = phase == "Succeeded" ? 0 : 3;
  return true;
}

std::string completionScript(const std::string& shell) {
  if (shell == "bash") {
    return R"(# bash completion for kubectl-paddock: source <(kubectl-paddock completion bash)
_kubectl_paddock() {
  local IFS=$'\n'
  COMPREPLY=($(kubectl-paddock __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null | grep -v '^:'))
}
complete -F _kubectl_paddock kubectl-paddock
)";
  }
  if (shell == "zsh") {
    return R"(#compdef kubectl-paddock
# zsh completion for kubectl-paddock: source <(kubectl-paddock completion zsh)
_kubectl_paddock() {
  local -a candidates
  candidates=("${(@f)$(kubectl-paddock __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=("${(@)candidates:#:*}")
  compadd -- "${(@)candidates}"
}
compdef _kubectl_paddock kubectl-paddock
)";
  }
  return R"(#!/bin/sh
# kubectl_complete-paddock: kubectl (1.26 and later) runs this to complete `kubectl paddock ...`.
# Put it on your PATH next to kubectl-paddock, executable:
#   kubectl paddock completion kubectl > ~/bin/kubectl_complete-paddock && chmod +x ~/bin/kubectl_complete-paddock
exec kubectl-paddock __complete "$@"
)";
}

Completion complete(const std::vector<std::string>& words) {
  Completion out;
  const std::string cur = words.empty() ? "" : words.back();
  const std::string prev = words.size() >= 2 ? words[words.size() - 2] : "";
  if (prev == "-o" || prev == "--output") {
    out.candidates = {"json", "yaml"};
    return out;
  }
  if (prev == "--stage") {
    out.candidates = {"pr", "deploy", "promote"};
    return out;
  }
  if (kValueFlags.count(prev)) return out;  // a value nobody can guess: a file, a name, a comment
  std::string command;
  size_t positional = 0;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& w = words[i];
    if (kValueFlags.count(w)) {
      if (i + 2 < words.size() && (w == "-n" || w == "--namespace")) out.ns = words[i + 1];
      ++i;
    } else if (w.rfind("--namespace=", 0) == 0) {
      out.ns = w.substr(12);
    } else if (w.rfind("-", 0) != 0) {
      if (command.empty()) command = w;
      else ++positional;
    }
  }
  if (cur.rfind("-", 0) == 0) {
    out.candidates = flagsOf(command);
    return out;
  }
  if (command.empty()) {
    out.candidates.assign(std::begin(kCommandNames), std::end(kCommandNames));
  } else if (command == "completion") {
    if (positional == 0) out.candidates = {"bash", "zsh", "kubectl"};
  } else if (command != "list" && positional == 0) {
    out.wants_runs = true;
  }
  return out;
}

std::string completionOutput(const std::vector<std::string>& candidates, const std::string& prefix) {
  std::string out;
  for (const auto& c : candidates) {
    if (c.rfind(prefix, 0) == 0) out += c + "\n";
  }
  return out + ":4\n";
}

}  // namespace paddock::plugin
