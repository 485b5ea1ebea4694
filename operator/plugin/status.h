// `kubectl paddock status`: one AgentRun, its stages, approvals and latest Events as readable
// text. Pure: the caller reads the run and its Events and passes the time.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::plugin {

// Rows as aligned columns, two spaces apart; the first row is the header. Trailing blanks trimmed.
std::string formatTable(const std::vector<std::vector<std::string>>& rows);

// "45s", "12m", "3h", "2d": how long ago `stamp` (RFC 3339) was, for an Events table; "?" when
// the stamp does not parse.
std::string age(const std::string& stamp, std::chrono::system_clock::time_point now);

// The Events about this very run: those regarding an AgentRun with its UID. Events are found by
// the run's name, which a deleted run of the same name shared; its Events are not this run's.
std::vector<nlohmann::json> eventsAbout(const nlohmann::json& run, std::vector<nlohmann::json> events);

// The whole report of `run` (an AgentRun object) with `events` (events.k8s.io/v1 Events about
// it, in any order; the latest `max_events` are shown, oldest first). Usage is measured against
// spec.budget; a budget the run leaves to its policy shows no percentage.
std::string renderStatus(const nlohmann::json& run, std::vector<nlohmann::json> events,
                         std::chrono::system_clock::time_point now, size_t max_events = 10);

}  // namespace paddock::plugin
