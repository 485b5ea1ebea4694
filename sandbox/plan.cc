#include "sandbox/plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "operator/common/glob.h"

namespace paddock::sandbox {
namespace {

bool hasWildcard(const std::string& s) { return s.find_first_of("*?") != std::string::npos; }

// "a/b/c" -> "a/b"; "a" -> "".
std::string parentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// No empty, "." or ".." component: a path that names something inside the workspace.
bool inside(const std::string& path) {
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

// Is `path` or one of its parents in `set`?
bool underAny(const std::string& path, const std::set<std::string>& set) {
  for (std::string p = path; !p.empty(); p = parentOf(p)) {
    if (set.count(p)) return true;
  }
  return false;
}

}  // namespace

std::string literalPath(const std::string& glob) {
  std::string g = repositoryGlob(glob);
  if (g.ends_with("/**")) g.resize(g.size() - 3);
  if (hasWildcard(g) || !inside(g)) return "";
  return g;
}

WorkspacePlan planWorkspace(const std::vector<Entry>& listing, const std::vector<std::string>& globs) {
  std::vector<std::string> patterns;
  for (const auto& g : globs) patterns.push_back(repositoryGlob(g));

  // What the globs hit: existing entries that match, and the literal paths whether they exist or not.
  std::set<std::string> hit;
  for (const auto& e : listing) {
    if (std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return globMatch(p, e.path); })) {
      hit.insert(e.path);
    }
  }
  for (const auto& g : globs) {
    if (auto literal = literalPath(g); !literal.empty()) hit.insert(literal);
  }

  WorkspacePlan plan;
  // The top-most protected paths (a path under another protected path adds nothing).
  for (const auto& p : hit) {
    if (!underAny(parentOf(p), hit)) plan.protected_paths.push_back(p);
  }
  if (plan.protected_paths.empty()) {
    plan.rules.push_back({"", Grant::Tree});
    return plan;
  }
  std::set<std::string> top(plan.protected_paths.begin(), plan.protected_paths.end());

  std::set<std::string> ancestors{""};
  for (const auto& p : plan.protected_paths) {
    for (std::string a = parentOf(p); !a.empty(); a = parentOf(a)) ancestors.insert(a);
  }
  plan.ancestors.assign(ancestors.begin(), ancestors.end());

  // Each child of an ancestor that is neither protected nor an ancestor itself gets its own rule.
  // Children of an ancestor that is not a directory in the listing (missing, a symlink, a file)
  // are never listed, so they get none.
  std::map<std::string, EntryType> types;
  for (const auto& e : listing) types[e.path] = e.type;
  for (const auto& e : listing) {
    if (!ancestors.count(parentOf(e.path)) || ancestors.count(e.path) || top.count(e.path)) continue;
    std::string parent = parentOf(e.path);
    if (!parent.empty()) {
      auto it = types.find(parent);
      if (it == types.end() || it->second != EntryType::Dir) continue;
    }
    if (e.type == EntryType::Dir) plan.rules.push_back({e.path, Grant::Tree});
    else if (e.type == EntryType::File) plan.rules.push_back({e.path, Grant::File});
    // Symbolic links and other entries (sockets, fifos, devices): no rule.
  }
  std::sort(plan.rules.begin(), plan.rules.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return plan;
}

}  // namespace paddock::sandbox
