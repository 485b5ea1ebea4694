// Reading JSON that came from outside (the API server, a file) without trusting its shape.
#pragma once

#include <cstdint>
#include <map>
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

// metadata.labels with string values (others are left out); empty when there are none.
inline std::map<std::string, std::string> labelsOf(const nlohmann::json& object) {
  std::map<std::string, std::string> out;
  nlohmann::json::json_pointer p("/metadata/labels");
  if (!object.is_object() || !object.contains(p) || !object[p].is_object()) return out;
  const nlohmann::json& labels = object[p];
  for (const auto& [k, v] : labels.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace paddock
