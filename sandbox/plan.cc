#include "sandbox/plan.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "operator/common/glob.h"

namespace paddock::sandbox {
namespace {

// "a/b/c" -> "a/b"; "a" -> "".
std::string parentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// Is `path` or one of its parents in `set`?
bool underAny(const std::string& path, const std::set<std::string>& set) {
  for (std::string p = path; !p.empty(); p = parentOf(p)) {
    if (set.count(p)) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> readOnlyMountsUnder(const std::string& mountinfo, const std::string& workspace) {
  // "36 35 98:0 /sub /workspace/.github/workflows ro,relatime shared:1 - ext4 /dev/vda rw": the
  // fifth field is the mount point (space, tab, newline and backslash written as \ooo), the
  // sixth the mount's own options.
  auto unescape = [](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
        i += 3;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::set<std::string> out;
  const std::string prefix = workspace + "/";
  size_t start = 0;
  while (start < mountinfo.size()) {
    size_t end = mountinfo.find('\n', start);
    if (end == std::string::npos) end = mountinfo.size();
    std::vector<std::string> fields;
    size_t f = start;
    while (f < end && fields.size() < 6) {
      size_t space = mountinfo.find(' ', f);
      if (space == std::string::npos || space > end) space = end;
      fields.push_back(mountinfo.substr(f, space - f));
      f = space + 1;
    }
    start = end + 1;
    if (fields.size() < 6) continue;
    std::string point = unescape(fields[4]);
    if (!point.starts_with(prefix) || !repositoryRelative(point.substr(prefix.size()))) continue;
    bool ro = false;
    for (size_t o = 0; o <= fields[5].size();) {
      size_t comma = fields[5].find(',', o);
      if (comma == std::string::npos) comma = fields[5].size();
      ro |= fields[5].substr(o, comma - o) == "ro";
      o = comma + 1;
    }
    if (ro) out.insert(point.substr(prefix.size()));
  }
  return {out.begin(), out.end()};
}

WorkspacePlan planWorkspace(const std::vector<Entry>& listing, const std::vector<std::string>& globs,
                            const std::vector<std::string>& mounted) {
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
  // What a read-only mount holds needs no rule of Landlock's. Its mount point must stay where it
  // is, though: the kernel refuses to move a mount point (EBUSY) but not a folder above it
  // (".github" renamed aside with "workflows" in it, and a new ".github/workflows" made in its
  // place). So the folders above a holding mount are "keeping" ancestors: every right but
  // REMOVE_DIR, so no folder directly in them can be removed or renamed (files can: a mount point
  // that is a file cannot be unlinked or renamed, EBUSY).
  const std::set<std::string> ro(mounted.begin(), mounted.end());
  std::set<std::string> holding;  // the outermost read-only mounts that hold a protected path
  for (auto it = hit.begin(); it != hit.end();) {
    std::string mount;
    for (std::string a = *it; !a.empty(); a = parentOf(a)) {
      if (ro.count(a)) mount = a;
    }
    if (mount.empty()) {
      ++it;
      continue;
    }
    holding.insert(mount);
    plan.held.push_back(*it);
    it = hit.erase(it);
  }
  // The top-most protected paths Landlock holds (a path under another protected path adds nothing).
  for (const auto& p : hit) {
    if (!underAny(parentOf(p), hit)) plan.protected_paths.push_back(p);
  }
  if (plan.protected_paths.empty() && holding.empty()) {
    plan.rules.push_back({"", Grant::Tree});
    return plan;
  }
  std::set<std::string> top(plan.protected_paths.begin(), plan.protected_paths.end());

  // Ancestors of a path Landlock holds get no right at all; ancestors of a holding mount only
  // (none of the former beneath them) keep their folders.
  std::set<std::string> ancestors, keeping;
  for (const auto& p : plan.protected_paths) {
    ancestors.insert("");
    for (std::string a = parentOf(p); !a.empty(); a = parentOf(a)) ancestors.insert(a);
  }
  for (const auto& m : holding) {
    for (std::string a = parentOf(m);; a = parentOf(a)) {
      if (!ancestors.count(a)) keeping.insert(a);
      if (a.empty()) break;
    }
  }
  plan.ancestors.assign(ancestors.begin(), ancestors.end());
  plan.keeping.assign(keeping.begin(), keeping.end());
  for (const auto& k : keeping) plan.rules.push_back({k, Grant::KeepFolders});

  // Each child of an ancestor (of either kind) that is neither protected, held nor an ancestor
  // itself gets its own rule. Children of an ancestor that is not a directory in the listing
  // (missing, a symlink, a file) are never listed, so they get none.
  auto isAncestor = [&](const std::string& p) { return ancestors.count(p) || keeping.count(p); };
  std::map<std::string, EntryType> types;
  for (const auto& e : listing) types[e.path] = e.type;
  for (const auto& e : listing) {
    if (!isAncestor(parentOf(e.path)) || isAncestor(e.path) || top.count(e.path) || holding.count(e.path)) continue;
    if (underAny(e.path, holding)) continue;
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
