// Helpers shared by the libFuzzer targets of this folder (tests/fuzz/README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace paddock::fuzz {

inline std::string_view text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// The input cut at its first newline: {before, after}; {input, ""} when there is none.
inline std::pair<std::string, std::string> splitFirstLine(std::string_view in) {
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return {std::string(in), ""};
  return {std::string(in.substr(0, nl)), std::string(in.substr(nl + 1))};
}

}  // namespace paddock::fuzz
