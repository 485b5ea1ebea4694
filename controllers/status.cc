#include "controllers/status.h"

#include <ctime>

namespace paddock::controllers {

using json = nlohmann::json;

void setCondition(json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, const std::string& now) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) status["conditions"] = json::array();
  json c = {{"type", type}, {"status", value ? "True" : "False"}, {"reason", reason}, {"message", message},
            {"observedGeneration", generation}, {"lastTransitionTime", now}};
  for (auto& existing : status["conditions"]) {
    if (existing.value("type", "") != type) continue;
    if (existing.value("status", "") == c["status"]) c["lastTransitionTime"] = existing.value("lastTransitionTime", now);
    existing = c;
    return;
  }
  status["conditions"].push_back(c);
}

json conditionOf(const json& status, const std::string& type) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == type) return c;
  }
  return json::object();
}

bool hasCondition(const json& status, const std::string& type) { return !conditionOf(status, type).empty(); }

bool conditionTrue(const json& status, const std::string& type) {
  return conditionOf(status, type).value("status", "") == "True";
}

std::optional<std::chrono::system_clock::time_point> parseTime(const std::string& stamp) {
  std::tm tm{};
  if (stamp.size() < 19 || !strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::chrono::seconds since(const std::string& stamp, std::chrono::system_clock::time_point now) {
  auto t = parseTime(stamp);
  return t ? std::chrono::duration_cast<std::chrono::seconds>(now - *t) : std::chrono::seconds(0);
}

double numberAt(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return 0;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    try {
      return std::stod(it->get<std::string>());
    } catch (...) {
    }
  }
  return 0;
}

}  // namespace paddock::controllers
