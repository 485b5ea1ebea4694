#include "operator/plugin/status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>

#include "operator/common/duration.h"
#include "operator/common/json.h"

namespace paddock::plugin {
namespace {

using nlohmann::json;
using Time = std::chrono::system_clock::time_point;

// An RFC 3339 timestamp ("2026-11-23T10:00:00Z" or with microseconds), to the second.
std::optional<Time> parseTime(const std::string& stamp) {
  std::tm tm{};
  if (stamp.size() < 19 || !strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string text(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  return "";
}

// A number in a JSON value that may be a number or a decimal string ("3.12"); NaN when neither.
double number(const json& v) {
  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return kNone;
  const std::string s = v.get<std::string>();
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  return s.empty() || *end ? kNone : d;
}

// The number at `key` of `j`, or NaN.
double numberAt(const json& j, const char* key) {
  return j.is_object() && j.contains(key) ? number(j[key]) : std::numeric_limits<double>::quiet_NaN();
}

std::string percent(double used, double limit) {
  if (std::isnan(used) || std::isnan(limit) || limit <= 0) return "-";
  return std::to_string(static_cast<int64_t>(std::floor(used / limit * 100))) + "%";
}

std::string whole(double d) { return std::isnan(d) ? "-" : std::to_string(static_cast<int64_t>(d)); }

std::string dollars(double d) {
  if (std::isnan(d)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.2f", d);
  return buf;
}

// When the Event was last seen: the series' last observation, else its time, else its creation.
std::string lastSeen(const json& e) {
  for (const char* p : {"/series/lastObservedTime", "/eventTime", "/deprecatedLastTimestamp", "/metadata/creationTimestamp"}) {
    if (auto s = stringAt(e, p); !s.empty()) return s;
  }
  return "";
}

// Conditions whose True is the normal course of a run; any other True, and every False, is news.
bool interesting(const json& c) {
  static const char* kNormal[] = {"Admitted", "Running", "Succeeded", "BudgetMetricsAvailable", "HostEgressEnforced"};
  std::string type = text(c, "type"), status = text(c, "status");
  if (status != "True") return true;
  return std::none_of(std::begin(kNormal), std::end(kNormal), [&](const char* n) { return type == n; });
}

void section(std::string& out, const std::string& title, const std::vector<std::vector<std::string>>& rows) {
  out += "\n" + title + "\n";
  out += rows.size() > 1 ? formatTable(rows) : "  (none)\n";
}

}  // namespace

std::string formatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string age(const std::string& stamp, Time now) {
  auto t = parseTime(stamp);
  if (!t) return "?";
  auto s = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(now - *t).count());
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "m";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::vector<json> eventsAbout(const json& run, std::vector<json> events) {
  const std::string uid = run.value(json::json_pointer("/metadata/uid"), std::string());
  std::erase_if(events, [&](const json& e) {
    return e.value(json::json_pointer("/regarding/kind"), std::string()) != "AgentRun" ||
           e.value(json::json_pointer("/regarding/uid"), std::string()) != uid;
  });
  return events;
}

namespace {

// What a gated stage reported (status.stages[]): its exit code and outcome, and the pull request,
// commit or release it made; "-" when it has not finished.
std::string stageResult(const json& stage) {
  std::vector<std::string> parts;
  if (stage.contains("exitCode")) parts.push_back("exit " + text(stage, "exitCode"));
  if (auto o = text(stage, "outcome"); !o.empty()) parts.push_back(o);
  if (auto url = text(stage.value("pullRequest", json::object()), "url"); !url.empty()) parts.push_back(url);
  if (auto id = text(stage.value("release", json::object()), "id"); !id.empty()) parts.push_back("release " + id);
  if (auto commit = text(stage, "baseCommit"); !commit.empty() && text(stage, "name") == "agent") {
    parts.push_back("from " + commit.substr(0, 12));
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "-" : out;
}

}  // namespace

std::string renderStatus(const json& run, std::vector<json> events, Time now, size_t max_events) {
  const json meta = run.value("metadata", json::object());
  const json spec = run.value("spec", json::object());
  const json status = run.value("status", json::object());
  std::string out = "AgentRun " + text(meta, "namespace") + "/" + text(meta, "name") + "\n";

  std::vector<std::vector<std::string>> facts;
  std::string phase = text(status, "phase");
  std::string current = text(status, "currentStage");
  facts.push_back({"Phase:", phase.empty() ? "(not yet reconciled)" : phase + (current.empty() ? "" : " (stage " + current + ")")});
  if (spec.value("cancel", false)) facts.push_back({"Cancel:", "requested (spec.cancel: true)"});
  if (auto who = text(spec, "requestedBy"); !who.empty()) facts.push_back({"Requested by:", who});
  if (auto policy = text(status, "policy"); !policy.empty()) facts.push_back({"Policy:", policy});
  if (auto pr = text(status, "pullRequestURL"); !pr.empty()) facts.push_back({"Pull request:", pr});
  if (auto task = text(spec, "task"); !task.empty()) facts.push_back({"Task:", task});
  std::string started = text(status, "startTime"), finished = text(status, "completionTime");
  if (!started.empty()) facts.push_back({"Started:", started + " (" + age(started, now) + " ago)"});
  if (!finished.empty()) facts.push_back({"Finished:", finished + " (" + age(finished, now) + " ago)"});
  if (status.contains("audit")) {
    facts.push_back({"Audit:", "sequence " + text(status["audit"], "sequence") + ", head " + text(status["audit"], "head")});
  }
  for (auto& f : facts) f[0] = "  " + f[0];
  out += formatTable(facts);

  // Usage against spec.budget; the wall clock runs from startTime to completionTime (or now),
  // as status.usage is written only when the spend moves.
  const json usage = status.value("usage", json::object());
  const json budget = spec.value("budget", json::object());
  std::vector<std::vector<std::string>> use = {{"  BUDGET", "USED", "LIMIT", "USED %"}};
  double tokens_used = numberAt(usage, "tokens"), tokens_limit = numberAt(budget, "tokens");
  use.push_back({"  tokens", whole(tokens_used), std::isnan(tokens_limit) ? "policy default" : whole(tokens_limit),
                 percent(tokens_used, tokens_limit)});
  double cost_used = numberAt(usage, "costUSD"), cost_limit = numberAt(budget, "costUSD");
  use.push_back({"  cost", dollars(cost_used), std::isnan(cost_limit) ? "policy default" : dollars(cost_limit),
                 percent(cost_used, cost_limit)});
  double wall_used = numberAt(usage, "wallClockSeconds");
  if (auto from = parseTime(started)) {
    Time to = parseTime(finished).value_or(now);
    wall_used = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(to - *from).count());
  }
  double wall_limit = std::numeric_limits<double>::quiet_NaN();
  if (auto d = parseDuration(text(budget, "wallClock"))) wall_limit = static_cast<double>(d->count()) / 1000;
  std::string wall_text = std::isnan(wall_used) ? "-" : formatDuration(std::chrono::seconds(static_cast<int64_t>(std::max(0.0, wall_used))));
  use.push_back({"  wall clock", wall_text, std::isnan(wall_limit) ? "policy default" : text(budget, "wallClock"),
                 percent(wall_used, wall_limit)});
  out += "\n" + formatTable(use);

  // What the gateway refused the run, by reason (status.usage.refusals, on the gateway path).
  std::vector<std::vector<std::string>> refusals = {{"  REFUSED", "COUNT", "BY"}};
  const json refused = usage.value("refusals", json::object());
  for (const auto& [reason, n] : refused.items()) {
    std::string by = reason.starts_with("mcp_") ? "gateway (MCP)"
                     : reason == "tool"       ? "Claude Code's permission rules"
                     : reason == "sandbox"    ? "the kernel (Landlock, read-only paths)"
                                              : "gateway (model call)";
    refusals.push_back({"  " + reason, n.is_number() ? whole(n.get<double>()) : "-", by});
  }
  section(out, "Refusals:", refusals);

  std::vector<std::vector<std::string>> stages = {{"  STAGE", "PHASE", "POD", "RESULT", "MESSAGE"}};
  std::vector<std::vector<std::string>> approvals = {{"  STAGE", "APPROVER", "DECISION", "COUNTED", "WHY NOT", "APPROVAL"}};
  for (const auto& s : status.value("stages", json::array())) {
    std::string name = text(s, "name");
    std::string p = text(s, "phase");
    stages.push_back({"  " + name, p.empty() ? "Waiting" : p, text(s, "pod").empty() ? "-" : text(s, "pod"), stageResult(s),
                      text(s, "message")});
    for (const auto& a : s.value("approvals", json::array())) {
      bool counted = a.value("counted", false);
      approvals.push_back({"  " + name, text(a, "approver"), text(a, "decision"), counted ? "yes" : "no",
                           counted ? "" : text(a, "reason"), text(a, "name")});
    }
  }
  section(out, "Stages:", stages);
  section(out, "Approvals:", approvals);

  std::vector<std::vector<std::string>> conditions = {{"  TYPE", "STATUS", "REASON", "MESSAGE"}};
  for (const auto& c : status.value("conditions", json::array())) {
    if (interesting(c)) conditions.push_back({"  " + text(c, "type"), text(c, "status"), text(c, "reason"), text(c, "message")});
  }
  section(out, "Conditions (False, or True but out of the ordinary):", conditions);

  std::stable_sort(events.begin(), events.end(), [](const json& a, const json& b) {
    return parseTime(lastSeen(a)).value_or(Time{}) < parseTime(lastSeen(b)).value_or(Time{});
  });
  size_t total = events.size();
  if (events.size() > max_events) events.erase(events.begin(), events.end() - static_cast<std::ptrdiff_t>(max_events));
  std::vector<std::vector<std::string>> rows = {{"  LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE"}};
  for (const auto& e : events) {
    int64_t count = std::max<int64_t>(1, intAt(e, "/series/count", intAt(e, "/deprecatedCount", 1)));
    rows.push_back({"  " + age(lastSeen(e), now) + " ago", text(e, "type"), text(e, "reason"), std::to_string(count),
                    text(e, "note")});
  }
  std::string title = "Events";
  if (total > events.size()) title += " (latest " + std::to_string(events.size()) + " of " + std::to_string(total) + ")";
  section(out, title + ":", rows);
  return out;
}

}  // namespace paddock::plugin
