// Go-style durations ("45m", "1h30m", "250ms", "10s"), the format Kubernetes APIs use.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace paddock {

// Parses a non-negative duration made of one or more <number><unit> parts, where unit is one of
// ms, s, m, h and the number may have a fraction ("1.5h"). Returns nullopt on anything else.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

// Formats the shortest Go-style text that parses back to `d` ("1h30m", "250ms", "0s").
std::string formatDuration(std::chrono::milliseconds d);

}  // namespace paddock
