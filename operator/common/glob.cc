#include "operator/common/glob.h"

#include <utility>
#include <vector>

namespace paddock {

bool globMatch(const std::string& pattern, const std::string& text) {
  // The pattern's tokens, read left to right: '*' followed by '*' is one `**`.
  enum Kind : char { Literal, One, Star, Stars };
  struct Token {
    Kind kind;
    char c;
  };
  std::vector<Token> tokens;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') tokens.push_back({Stars, '*'}), ++i;
    else if (pattern[i] == '*') tokens.push_back({Star, '*'});
    else if (pattern[i] == '?') tokens.push_back({One, '?'});
    else tokens.push_back({Literal, pattern[i]});
  }
  // Dynamic programming, text from its end: here[k] says whether tokens[k..] match text[j..],
  // after[k] the same for text[j+1..]. O(tokens * text), with no backtracking to get wrong (a
  // `**` before a `*`, as in "**/*.tf", needs both stars to give back what they took).
  const size_t K = tokens.size(), T = text.size();
  std::vector<char> here(K + 1), after(K + 1);
  for (size_t j = T + 1; j-- > 0;) {
    here[K] = j == T;
    for (size_t k = K; k-- > 0;) {
      const Token& t = tokens[k];
      bool can_take = j < T && (t.kind == Stars || text[j] != '/');
      switch (t.kind) {
        case Star:
        case Stars: here[k] = here[k + 1] || (can_take && after[k]); break;  // nothing, or one more character
        case One: here[k] = can_take && after[k + 1]; break;
        case Literal: here[k] = j < T && text[j] == t.c && after[k + 1]; break;
      }
    }
    std::swap(here, after);
  }
  return after[0];
}

std::string repositoryGlob(std::string glob) {
  while (glob.starts_with("/")) glob.erase(0, 1);
  if (glob.ends_with("/")) glob += "**";
  return glob;
}

bool repositoryRelative(const std::string& path) {
  if (path.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t end = path.find('/', start);
    std::string part = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

std::string literalPath(const std::string& glob) {
  std::string g = repositoryGlob(glob);
  if (g.ends_with("/**")) g.resize(g.size() - 3);
  if (g.find_first_of("*?") != std::string::npos || !repositoryRelative(g)) return "";
  return g;
}

}  // namespace paddock
