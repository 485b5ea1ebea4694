// Structured logs: one JSON object per line on stderr, with a level, a message and fields.
// Controllers pass the object's key ("namespace/name") as the "key" field on every line.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace paddock::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Parses "debug", "info", "warn" or "error".
bool parseLevel(std::string_view text, Level& out);
void setLevel(Level level);
bool enabled(Level level);
// Sets fields added to every line (for example {"component": "operator"}).
void setBaseFields(nlohmann::json fields);

void write(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());
inline void log(Level l, std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(l, m, f); }
inline void debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::Debug, m, f); }
inline void info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::Info, m, f); }
inline void warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::Warn, m, f); }
inline void error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::Error, m, f); }

}  // namespace paddock::log
