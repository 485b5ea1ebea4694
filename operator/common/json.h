// Reading JSON that came from outside (the API server, a file) without trusting its shape.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace paddock {

// The string at a JSON pointer ("/metadata/name"), or "" when it is missing or not a string.
inline std::string stringAt(const nlohmann::json& j, const char* pointer) {
  nlohmann::json::json_pointer p(pointer);
  if (!j.is_object() || !j.contains(p)) return "";
  const auto& v = j[p];
  return v.is_string() ? v.get<std::string>() : "";
}

// The integer at a JSON pointer, or `otherwise` when it is missing or not an integer.
inline int64_t intAt(const nlohmann::json& j, const char* pointer, int64_t otherwise = 0) {
  nlohmann::json::json_pointer p(pointer);
  if (!j.is_object() || !j.contains(p)) return otherwise;
  const auto& v = j[p];
  return v.is_number_integer() ? v.get<int64_t>() : otherwise;
}

}  // namespace paddock
