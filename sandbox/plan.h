// The workspace half of paddock-sandbox's Landlock ruleset, as a pure function of a listing of
// the workspace and the policy's protected-path globs (operator/common/glob.h). No I/O: main.cc
// lists the workspace and turns the plan into landlock_add_rule calls.
//
// Landlock grants rights to a directory for everything beneath it, and a rule can only add
// rights, never take them back lower down. So a directory with a protected path beneath it (an
// "ancestor") gets no write right itself; each of its children gets a rule of its own: a
// maximal unprotected subtree all rights, an unprotected file the file rights, a protected child
// nothing (the global read-only rule). Caveats, by construction:
//   - no new entry can be made directly in an ancestor (the repository's root as soon as anything
//     is protected), and no ancestor's entries can be removed or renamed;
//   - a new file matching a wildcard glob ("**/*.tf") in a writable directory cannot be prevented
//     (the PR stage's check is the second line);
//   - symbolic links get no rule: a write through one is judged at its target.
#pragma once

#include <string>
#include <vector>

#include "operator/common/glob.h"

namespace paddock::sandbox {

enum class EntryType { Dir, File, Symlink, Other };

// One entry of the workspace, by its path relative to the workspace ("src/main.cc"), '/'
// separated, without "./". The listing does not follow symbolic links.
struct Entry {
  std::string path;
  EntryType type = EntryType::File;
};

enum class Grant {
  Tree,         // a directory: every right, for it and everything beneath
  File,         // a regular file: write, truncate and read it (no rights on its directory)
  KeepFolders,  // a directory above a holding read-only mount: every right but REMOVE_DIR
};

struct WorkspaceRule {
  std::string path;  // relative to the workspace; "" is the workspace itself
  Grant grant = Grant::Tree;
  bool operator==(const WorkspaceRule&) const = default;
};

struct WorkspacePlan {
  std::vector<WorkspaceRule> rules;          // sorted by path
  std::vector<std::string> protected_paths;  // the top-most protected paths, existing or not, sorted
  std::vector<std::string> ancestors;        // directories with a protected path beneath, sorted ("" first)
  std::vector<std::string> held;             // protected paths a read-only mount already holds, sorted
  std::vector<std::string> keeping;          // directories above such a mount (KeepFolders), sorted ("" first)
};


// The rules that make the workspace writable except the paths the globs protect. With no glob,
// or none that protects anything, one rule: the whole workspace, every right.
//
// `mounted`: the read-only mount points inside the workspace (relative paths). The operator
// mounts each protected literal path read-only over itself (a subPath of the workspace volume),
// so the kernel refuses every write, create, unlink and rename there and at the mount point
// (EROFS, EBUSY, EXDEV) whatever Landlock grants; a protected path at or under one is held
// already. The folders above the mount keep their folders (KeepFolders: no folder directly in
// them can be removed or renamed, so the mount cannot be moved aside with its parent) and take
// new files and folders: the repository's root stays writable.
WorkspacePlan planWorkspace(const std::vector<Entry>& listing, const std::vector<std::string>& globs,
                            const std::vector<std::string>& mounted = {});

// The read-only mount points strictly inside `workspace` (an absolute path without a trailing
// '/'), relative to it, from the text of /proc/self/mountinfo.
std::vector<std::string> readOnlyMountsUnder(const std::string& mountinfo, const std::string& workspace);

}  // namespace paddock::sandbox
