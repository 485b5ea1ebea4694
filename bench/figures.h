// What the benchmarks share: the nearest-rank percentile, a figure formatted for the report, and
// the cache folder the clusters live in. Header-only; bench/ only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace paddock::bench {

// The p-th percentile (0..1) of v by nearest rank; NaN for no samples.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(i == 0 ? 0 : i - 1, v.size() - 1)];
}

// One figure through a printf format ("%.1f").
inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// $PADDOCK_CACHE, else ~/.cache/paddock.
inline std::string homeCache() {
  if (const char* c = std::getenv("PADDOCK_CACHE"); c && *c) return c;
  return std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/.cache/paddock";
}

}  // namespace paddock::bench
