#include "stage/checks.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <regex>

#include "operator/common/glob.h"

namespace paddock::stage {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Rule {
  const char* name;
  std::regex re;
};

// Token formats with a fixed shape: a match is a finding.
const std::vector<Rule>& tokenRules() {
  static const std::vector<Rule> rules = [] {
    auto r = [](const char* name, const char* re, bool icase = false) {
      auto flags = std::regex::ECMAScript | std::regex::optimize;
      if (icase) flags |= std::regex::icase;
      return Rule{name, std::regex(re, flags)};
    };
    return std::vector<Rule>{
        r("github-token", R"(\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b)"),
        r("github-fine-grained-pat", R"(\bgithub_pat_[A-Za-z0-9_]{50,})"),
        r("gitlab-token", R"(\bglpat-[A-Za-z0-9_-]{20,})"),
        r("aws-access-key-id", R"(\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b)"),
        r("slack-token", R"(\bxox[abposr]-[A-Za-z0-9-]{10,})"),
        r("slack-webhook", R"(hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+)"),
        r("anthropic-api-key", R"(\bsk-ant-[A-Za-z0-9_-]{20,})"),
        r("openai-api-key", R"(\bsk-(?!ant-)(?:proj-|svcacct-)?[A-Za-z0-9_-]{40,})"),
        r("google-api-key", R"(\bAIza[0-9A-Za-z_-]{35})"),
        r("private-key", R"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"),
    };
  }();
  return rules;
}

// A value assigned to a secret-sounding name: a finding only when the value looks random.
const std::regex& assignmentRule() {
  static const std::regex re(
      R"((?:api[_-]?key|apikey|secret|token|passw(?:or)?d|access[_-]?key|private[_-]?key|credentials?|auth)[A-Za-z0-9_.-]*["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9+/_.=~-]{20,}))",
      std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
  return re;
}

bool looksRandom(std::string_view value) {
  std::string low = lower(value);
  for (const char* placeholder : {"example", "changeme", "placeholder", "xxxxxxxx", "your", "dummy", "redacted"}) {
    if (low.find(placeholder) != std::string::npos) return false;
  }
  bool digit = std::any_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  bool alpha = std::any_of(value.begin(), value.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
  return digit && alpha && entropy(value) >= 3.5;
}

// AWS's documentation key (AKIAIOSFODNN7EXAMPLE) and its kin are not credentials.
bool isDocumentationValue(const std::smatch& m) { return m.str().ends_with("EXAMPLE"); }

// The non-empty pieces of `text` between any of `delimiters`, trimmed.
std::vector<std::string> splitTrimmed(std::string_view text, const char* delimiters) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(delimiters, start);
    if (end == std::string_view::npos) end = text.size();
    auto piece = trim(text.substr(start, end - start));
    if (!piece.empty()) out.emplace_back(piece);
    start = end + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> parseGlobList(std::string_view text) {
  std::vector<std::string> out;
  for (auto& line : splitTrimmed(text, "\n")) {
    if (line.front() != '#') out.push_back(std::move(line));
  }
  return out;
}

std::vector<std::string> protectedPaths(const std::vector<std::string>& changed, const std::vector<std::string>& globs) {
  std::vector<std::string> out;
  for (const auto& path : changed) {
    bool hit = std::any_of(globs.begin(), globs.end(),
                           [&](const std::string& glob) { return globMatch(repositoryGlob(glob), path); });
    if (hit) out.push_back(path);
  }
  return out;
}

std::vector<AddedLine> addedLines(std::string_view diff) {
  std::vector<AddedLine> out;
  std::string file;
  int next = 0;  // the new file's number for the next added line
  bool header = false;  // between "diff --git" and the first hunk, where "+++ " names the file
  size_t start = 0;
  while (start < diff.size()) {
    size_t end = diff.find('\n', start);
    if (end == std::string_view::npos) end = diff.size();
    std::string_view line = diff.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("diff --git ")) {
      file.clear();
      next = 0;
      header = true;
    } else if (header && line.starts_with("+++ ")) {
      std::string_view name = line.substr(4);
      if (name == "/dev/null") {
        file.clear();
      } else {
        if (name.starts_with("b/")) name.remove_prefix(2);
        file = std::string(name);
      }
    } else if (line.starts_with("@@ ")) {
      // @@ -a[,b] +c[,d] @@ (an added line "+++ x" inside a hunk is content, not a header)
      header = false;
      size_t plus = line.find(" +");
      next = plus == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(plus + 2)).c_str());
    } else if (line.starts_with("+") && !file.empty() && next > 0) {
      out.push_back({file, next++, std::string(line.substr(1))});
    } else if (line.starts_with(" ") && next > 0) {
      ++next;  // context line, when the diff has any
    }
  }
  return out;
}

std::vector<std::string> parseCanaries(std::string_view text) { return splitTrimmed(text, ",\n"); }

double entropy(std::string_view s) {
  if (s.empty()) return 0;
  std::array<int, 256> counts{};
  for (unsigned char c : s) ++counts[c];
  double h = 0;
  for (int n : counts) {
    if (n == 0) continue;
    double p = static_cast<double>(n) / static_cast<double>(s.size());
    h -= p * std::log2(p);
  }
  return h;
}

std::vector<Finding> findCredentials(const std::vector<AddedLine>& lines, const std::vector<std::string>& canaries) {
  std::vector<Finding> out;
  for (const auto& l : lines) {
    auto add = [&](const char* pattern) { out.push_back({l.file, l.line, pattern}); };
    for (const auto& canary : canaries) {
      if (!canary.empty() && l.text.find(canary) != std::string::npos) {
        add("canary");
        break;
      }
    }
    for (const auto& rule : tokenRules()) {
      std::smatch m;
      if (std::regex_search(l.text, m, rule.re) && !isDocumentationValue(m)) add(rule.name);
    }
    bool assignment = false;
    for (std::sregex_iterator it(l.text.begin(), l.text.end(), assignmentRule()), end; it != end && !assignment; ++it) {
      assignment = looksRandom((*it)[1].str());
    }
    if (assignment) add("secret-assignment");
  }
  return out;
}

}  // namespace paddock::stage
