// Timestamps in the formats the Kubernetes API writes.
#pragma once

#include <chrono>
#include <string>

namespace paddock {

// A Kubernetes MicroTime: RFC 3339 in UTC with microseconds, "2006-01-02T15:04:05.000000Z".
std::string formatMicroTime(std::chrono::system_clock::time_point t);

}  // namespace paddock
