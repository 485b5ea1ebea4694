// Which Paddock this is: the release (CMake's project version) and the git commit it was built
// from (`git describe --always --dirty`, "unknown" outside a git checkout). Every binary prints
// them for --version; the operator also exports paddock_build_info.
#pragma once

#include <string>

namespace paddock {

const char* version();
const char* gitCommit();
// "<program> <version> (commit <commit>)"
std::string versionLine(const std::string& program);

}  // namespace paddock
