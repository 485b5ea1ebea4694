#include "operator/common/glob.h"

namespace paddock {

bool globMatch(const std::string& pattern, const std::string& text) {
  // Iterative matcher with backtracking to the last star.
  size_t p = 0, t = 0, star_p = std::string::npos, star_t = 0;
  bool star_crosses = false;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_crosses = p + 1 < pattern.size() && pattern[p + 1] == '*';
      p += star_crosses ? 2 : 1;
      star_p = p;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == text[t] || (pattern[p] == '?' && text[t] != '/'))) {
      ++p;
      ++t;
    } else if (star_p != std::string::npos && (star_crosses || text[star_t] != '/')) {
      p = star_p;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string repositoryGlob(std::string glob) {
  while (glob.starts_with("/")) glob.erase(0, 1);
  if (glob.ends_with("/")) glob += "**";
  return glob;
}

}  // namespace paddock
