// What the PR stage refuses to propose, as pure functions over the diff it computed itself
// (the agent's own report is not trusted): changes to the policy's protected paths, and added
// lines that look like credentials. Findings name the file, the line and the pattern, never the
// matched text, so a result or a log line cannot leak what it found.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace paddock::stage {

// The policy's protected-path globs, one per line ("#" comments and blank lines skipped).
std::vector<std::string> parseGlobList(std::string_view text);

// The paths (as git prints them, relative to the repository's root) that match any glob, in the
// order given. Globs follow operator/common/glob.h: `*` and `?` stop at `/`, `**`
// crosses it; a glob ending in `/` or `/**` covers everything below that folder.
std::vector<std::string> protectedPaths(const std::vector<std::string>& changed, const std::vector<std::string>& globs);

// One line a diff adds: the file, its line number in the new version, its text.
struct AddedLine {
  std::string file;
  int line = 0;
  std::string text;
};

// The added lines of a unified diff (`git diff -U0 --no-prefix` or with a/ b/ prefixes).
std::vector<AddedLine> addedLines(std::string_view unified_diff);

struct Finding {
  std::string file;
  int line = 0;
  std::string pattern;  // which rule matched: github-token, aws-access-key-id, canary, ...
  bool operator==(const Finding&) const = default;
};

// Canaries: planted values that must never leave the workspace, one per line or comma-separated.
std::vector<std::string> parseCanaries(std::string_view text);

// Every line that looks like it carries a credential: common token formats (GitHub, AWS, Slack,
// Anthropic, OpenAI, Google), private key PEM headers, high-entropy values assigned to names like
// api_key/secret/token/password, and the canaries. One finding per line and pattern.
std::vector<Finding> findCredentials(const std::vector<AddedLine>& lines, const std::vector<std::string>& canaries);

// Shannon entropy of `s` in bits per character.
double entropy(std::string_view s);

}  // namespace paddock::stage
