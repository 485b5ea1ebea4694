// The grammar of what a run or a policy points at: repository URLs, branch names, image
// references and the policy's image patterns, protected-path patterns, and the task's text. The
// CRDs refuse the same values when they are applied (CEL rules of the same shape); these are the
// operator's own check, so a value that got past an older schema never reaches a pod, an
// annotation, a status message or an audit record. Messages say what is wrong without repeating
// the value (it may hold a token).
#pragma once

#include <optional>
#include <string>

namespace paddock::controllers {

// https://HOST[:PORT]/PATH, ssh://git@HOST[:PORT]/PATH or git@HOST:PATH. HOST is a lower-case DNS
// name whose last label starts with a letter (so never an IP address), not localhost or a cloud
// metadata name; PATH segments are letters, digits, '.', '_' and '-', none starting with '-' and
// none '.' or '..'; no user but ssh's git, no query or fragment.
struct RepositoryUrl {
  std::string host;          // without the port
  std::string organization;  // the first path segment
};
// The parsed URL, or why it is refused (a phrase to follow the field's name).
struct RepositoryUrlCheck {
  std::optional<RepositoryUrl> url;
  std::string problem;
};
RepositoryUrlCheck parseRepositoryUrl(const std::string& text);

// git check-ref-format --branch for a short branch name: "" when valid, else why not.
std::string branchNameProblem(const std::string& name);

// An image reference by the OCI distribution grammar, with its registry named:
// REGISTRY/PATH[:TAG][@sha256:<64 hex>|@sha512:<128 hex>].
struct ImageReference {
  std::string registry;    // host[:port]
  std::string repository;  // path components joined by '/'
  std::string tag;         // "" when none
  std::string digest;      // "" when none, else "sha256:<hex>"
};
std::optional<ImageReference> parseImageReference(const std::string& text);

// An entry of spec.images.allowed: "*" or "**" (every image), REGISTRY/PATHGLOB[:TAGGLOB], or
// REGISTRY/PATH@DIGEST. The registry is literal; in the path `*` matches within one component,
// `**` across components, `?` one character; a tag glob, when given, must match the image's tag
// (none: any tag or digest); a digest must equal the image's.
struct ImagePattern {
  bool any = false;
  std::string registry;
  std::string repository;  // a glob
  std::string tag;         // a glob, "" for any
  std::string digest;      // "" for any
};
std::optional<ImagePattern> parseImagePattern(const std::string& text);
bool imageMatches(const ImagePattern& pattern, const ImageReference& image);

// A protected-path glob: relative, no '.' or '..' segment, no empty segment, no backslash, no
// control character, at most 512 bytes. "" when valid, else why not.
std::string protectedPathProblem(const std::string& pattern);

// The task: no control characters but newline and tab, no bidirectional override or isolate
// characters (U+202A..U+202E, U+2066..U+2069). "" when valid, else why not.
std::string taskTextProblem(const std::string& text);

}  // namespace paddock::controllers
