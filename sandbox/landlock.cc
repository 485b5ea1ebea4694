#include "sandbox/landlock.h"

#include <sys/syscall.h>
#include <unistd.h>

// The system call numbers are the same on every architecture (asm-generic), since Linux 5.13.
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

namespace paddock::sandbox::landlock {

uint64_t fsRights(int abi) {
  if (abi < 1) return 0;
  uint64_t rights = (kMakeSym << 1) - 1;  // ABI 1: execute .. make_sym
  if (abi >= 2) rights |= kRefer;
  if (abi >= 3) rights |= kTruncate;
  if (abi >= 5) rights |= kIoctlDev;
  return rights;
}

int abiVersion() {
  return static_cast<int>(syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion));
}

int createRuleset(const RulesetAttr& attr) {
  return static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0));
}

int addRule(int ruleset_fd, int type, const void* attr) {
  return static_cast<int>(syscall(SYS_landlock_add_rule, ruleset_fd, type, attr, 0));
}

int restrictSelf(int ruleset_fd) { return static_cast<int>(syscall(SYS_landlock_restrict_self, ruleset_fd, 0)); }

}  // namespace paddock::sandbox::landlock
