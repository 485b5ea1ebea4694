// Shell-style globs, as the policy writes image references (spec.images.allowed) and protected
// paths (spec.protectedPaths): `*` matches any run of characters except '/', `**` any run
// including '/', `?` one character other than '/'; everything else is literal. Pure, and free of
// any dependency beyond the standard library, so the static paddock-sandbox uses it too.
#pragma once

#include <string>

namespace paddock {

// "registry.example.com/team/*" matches "registry.example.com/team/agent:1.2" but not
// "registry.example.com/team/x/agent:1.2".
bool globMatch(const std::string& pattern, const std::string& text);

// A protected-path glob as written in the policy, rooted at the repository either way: leading
// '/' dropped, and a trailing '/' meaning everything below that folder ("docs/" -> "docs/**").
std::string repositoryGlob(std::string glob);

// A path inside the repository: relative, with no empty, "." or ".." component.
bool repositoryRelative(const std::string& path);

// The literal path a protected-path glob names even before it exists: the glob itself when it
// has no wildcard ("CODEOWNERS"), its prefix when it is "<literal>/**" (".github/workflows");
// empty otherwise. Globs are taken through repositoryGlob first.
std::string literalPath(const std::string& glob);

}  // namespace paddock
