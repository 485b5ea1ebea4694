// Reading and writing the conditions and timestamps of a status object (AgentRun, AgentPolicy).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace paddock::controllers {

// Sets a condition in a status object, keeping lastTransitionTime unless the status flips.
void setCondition(nlohmann::json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, const std::string& now);
// The condition of that type, or an empty object.
nlohmann::json conditionOf(const nlohmann::json& status, const std::string& type);
bool hasCondition(const nlohmann::json& status, const std::string& type);
bool conditionTrue(const nlohmann::json& status, const std::string& type);

// An RFC 3339 timestamp ("2026-11-23T10:00:00Z"), to the second.
std::optional<std::chrono::system_clock::time_point> parseTime(const std::string& stamp);
// Seconds since an RFC 3339 timestamp, or 0.
std::chrono::seconds since(const std::string& stamp, std::chrono::system_clock::time_point now);
// A number or a numeric string under `key`, else 0.
double numberAt(const nlohmann::json& object, const char* key);

}  // namespace paddock::controllers
