#include "operator/common/timestamp.h"

#include <cstdio>
#include <ctime>

namespace paddock {

std::string formatMicroTime(std::chrono::system_clock::time_point t) {
  auto micros = std::chrono::floor<std::chrono::microseconds>(t);
  auto secs = std::chrono::floor<std::chrono::seconds>(micros);
  std::time_t whole = std::chrono::system_clock::to_time_t(secs);
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>((micros - secs).count()));
  return buffer;
}

}  // namespace paddock
