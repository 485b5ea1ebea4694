#include "operator/common/version.h"

#include "paddock_commit.h"  // generated at every build by operator/common/commit.cmake

namespace paddock {

const char* version() { return PADDOCK_VERSION; }
const char* gitCommit() { return PADDOCK_GIT_COMMIT; }
std::string versionLine(const std::string& program) {
  return program + " " + version() + " (commit " + gitCommit() + ")";
}

}  // namespace paddock
