#include "stage/report.h"

#include <cctype>

namespace paddock::stage {

using nlohmann::json;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Where the line that starts at `pos` ends (the position after its newline).
size_t lineEnd(std::string_view text, size_t pos) {
  size_t nl = text.find('\n', pos);
  return nl == std::string_view::npos ? text.size() : nl + 1;
}

}  // namespace

std::string branchName(const RunInfo& run) { return "paddock/" + run.run; }

std::string titleOf(std::string_view summary, std::string_view fallback) {
  for (size_t pos = 0; pos < summary.size(); pos = lineEnd(summary, pos)) {
    std::string_view line = trim(summary.substr(pos, lineEnd(summary, pos) - pos));
    while (!line.empty() && line.front() == '#') line.remove_prefix(1);
    line = trim(line);
    if (line.empty()) continue;
    std::string out(line);
    if (out.size() > 72) out = out.substr(0, 71) + "…";
    return out;
  }
  return std::string(fallback);
}

std::string renderChangelogEntry(const RunInfo& run, std::string_view summary, std::string_view date) {
  std::string title = titleOf(summary, "Changes by Paddock run " + run.run);
  std::string body(trim(summary));
  // The summary's own first heading is the entry's title; keep what follows it.
  if (!body.empty() && body.front() == '#') body = std::string(trim(std::string_view(body).substr(lineEnd(body, 0))));
  // Headings inside the summary must not open sections of the changelog.
  std::string demoted;
  for (size_t pos = 0; pos < body.size(); pos = lineEnd(body, pos)) {
    std::string_view line = std::string_view(body).substr(pos, lineEnd(body, pos) - pos);
    if (line.starts_with("#")) demoted += "###";
    demoted += line;
  }
  std::string out = "## " + std::string(date) + " " + title + "\n\n";
  if (!demoted.empty()) out += demoted + (demoted.ends_with("\n") ? "\n" : "\n\n");
  out += "Proposed by Paddock run `" + run.ns + "/" + run.run + "` on branch `" + branchName(run) + "`.\n";
  return out;
}

std::string insertChangelogEntry(std::string_view changelog, std::string_view entry) {
  std::string e(entry);
  if (!e.ends_with("\n")) e += "\n";
  if (trim(changelog).empty()) return "# Changelog\n\n" + e;
  // Before the first section.
  for (size_t pos = 0; pos < changelog.size(); pos = lineEnd(changelog, pos)) {
    if (changelog.substr(pos).starts_with("## ")) {
      return std::string(changelog.substr(0, pos)) + e + "\n" + std::string(changelog.substr(pos));
    }
  }
  // No section yet: after the whole file (the title and its introduction).
  std::string out(changelog);
  if (!out.ends_with("\n")) out += "\n";
  return out + "\n" + e;
}

std::string renderPullRequestBody(const RunInfo& run, std::string_view summary, size_t files_changed) {
  std::string out;
  std::string s(trim(summary));
  if (!s.empty()) out += s + "\n\n";
  out += "---\n";
  out += "Proposed by Paddock run `" + run.ns + "/" + run.run + "` after its approvals. ";
  out += "The stage computed the diff itself (" + std::to_string(files_changed) + " file" +
         (files_changed == 1 ? "" : "s") + "), found no protected path and nothing that looks like a credential, ";
  out += "and added the CHANGELOG entry. Paddock never merges: review and merge as usual.\n";
  return out;
}

json resultJson(const StageResult& r) {
  json j = {{"stage", r.stage}, {"outcome", r.outcome}};
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.message.empty()) j["message"] = r.message;
  if (!r.branch.empty()) j["branch"] = r.branch;
  if (!r.commit.empty()) j["commit"] = r.commit;
  if (!r.base_commit.empty()) j["baseCommit"] = r.base_commit;
  if (!r.start_commit.empty()) j["startCommit"] = r.start_commit;
  if (!r.pull_request_url.empty() || r.pull_request_number) {
    j["pullRequest"] = {{"url", r.pull_request_url}, {"number", r.pull_request_number}};
  }
  if (!r.refused_paths.empty()) j["refusedPaths"] = r.refused_paths;
  if (!r.conflicts.empty()) j["conflicts"] = r.conflicts;
  if (!r.findings.empty()) {
    json findings = json::array();
    for (const auto& f : r.findings) findings.push_back({{"file", f.file}, {"line", f.line}, {"pattern", f.pattern}});
    j["findings"] = findings;
  }
  for (const auto& [k, v] : r.extra.items()) j[k] = v;
  return j;
}

std::string renderResult(const StageResult& result, size_t limit) {
  StageResult r = result;
  size_t dropped = 0;
  std::string out = resultJson(r).dump(-1, ' ', false, json::error_handler_t::replace);
  while (out.size() > limit && (!r.findings.empty() || !r.refused_paths.empty() || !r.conflicts.empty())) {
    // The longest list gives up its last entry.
    auto* longest = &r.refused_paths;
    if (r.conflicts.size() > longest->size()) longest = &r.conflicts;
    if (r.findings.size() >= longest->size()) {
      r.findings.pop_back();
    } else {
      longest->pop_back();
    }
    ++dropped;
    json j = resultJson(r);
    j["truncated"] = dropped;
    out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (out.size() > limit && r.message.size() > 200) {
    r.message = r.message.substr(0, 200) + "…";
    json j = resultJson(r);
    if (dropped) j["truncated"] = dropped;
    out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return out;
}

}  // namespace paddock::stage
