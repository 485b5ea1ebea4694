#include "operator/audit/story.h"

#include "operator/common/json.h"

namespace paddock::audit {
namespace {

// details as "key=value, ...", strings unquoted and long values cut.
std::string summarize(const nlohmann::json& details) {
  std::string out;
  if (!details.is_object()) return out;
  for (const auto& [key, value] : details.items()) {
    std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    out += (out.empty() ? "" : ", ") + key + "=" + text;
  }
  return out;
}

}  // namespace

bool isForRun(const nlohmann::json& record, std::string_view ns, std::string_view name) {
  return stringAt(record, "/run/namespace") == ns && stringAt(record, "/run/name") == name;
}

std::string tellStory(std::string_view ns, std::string_view name, const std::vector<nlohmann::json>& records) {
  std::string run = std::string(ns) + "/" + std::string(name);
  if (records.empty()) return "No audit records for run " + run + ".\n";
  std::string out = "Run " + run + ": " + std::to_string(records.size()) + " audit records\n\n";
  std::string asked = "(no RunAdmitted or RunRefused record)", approvals, refusals, spent = "(not recorded)",
              outcome = "(not finished)";
  for (const auto& r : records) {
    std::string action = stringAt(r, "/action"), actor = stringAt(r, "/actor");
    const nlohmann::json& details = r.contains("details") ? r["details"] : nlohmann::json::object();
    std::string line = summarize(details);
    out += stringAt(r, "/time") + "  #" + std::to_string(intAt(r, "/seq")) + "  " + action + " by " + actor +
           (line.empty() ? "" : ": " + line) + "\n";
    if (action == "RunAdmitted" || action == "RunRefused") asked = action + ": " + line;
    std::string who = actor + (line.empty() ? "" : " (" + line + ")");
    if (action == "ApprovalCounted") approvals += (approvals.empty() ? "" : "; ") + who;
    if (action == "ApprovalRefused") refusals += (refusals.empty() ? "" : "; ") + who;
    if (details.is_object() && details.contains("spent")) {
      const auto& v = details["spent"];
      spent = v.is_string() ? v.get<std::string>() : v.dump();
    }
    if (action == "RunFinished") outcome = line.empty() ? "finished" : line;
  }
  out += "\nAsked:     " + asked + "\n";
  out += "Approved:  " + (approvals.empty() ? std::string("(no approvals)") : approvals) + "\n";
  if (!refusals.empty()) out += "Refused:   " + refusals + "\n";
  out += "Spent:     " + spent + "\n";
  out += "Outcome:   " + outcome + "\n";
  return out;
}

}  // namespace paddock::audit
