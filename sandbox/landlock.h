// The Landlock ABI, defined here because the build host's <linux/landlock.h> may predate the
// kernel the sandbox runs on (Debian 12's stops at ABI 2). Values are the kernel's UAPI
// (include/uapi/linux/landlock.h); each right is handled only when the running kernel's ABI
// knows it, as the kernel documentation's sample does.
#pragma once

#include <cstdint>
#include <vector>

namespace paddock::sandbox::landlock {

// landlock_create_ruleset(2) flags and landlock_add_rule(2) rule types.
inline constexpr uint32_t kCreateRulesetVersion = 1U << 0;
inline constexpr int kRulePathBeneath = 1;
inline constexpr int kRuleNetPort = 2;

// Filesystem rights.
inline constexpr uint64_t kExecute = 1ULL << 0;
inline constexpr uint64_t kWriteFile = 1ULL << 1;
inline constexpr uint64_t kReadFile = 1ULL << 2;
inline constexpr uint64_t kReadDir = 1ULL << 3;
inline constexpr uint64_t kRemoveDir = 1ULL << 4;
inline constexpr uint64_t kRemoveFile = 1ULL << 5;
inline constexpr uint64_t kMakeChar = 1ULL << 6;
inline constexpr uint64_t kMakeDir = 1ULL << 7;
inline constexpr uint64_t kMakeReg = 1ULL << 8;
inline constexpr uint64_t kMakeSock = 1ULL << 9;
inline constexpr uint64_t kMakeFifo = 1ULL << 10;
inline constexpr uint64_t kMakeBlock = 1ULL << 11;
inline constexpr uint64_t kMakeSym = 1ULL << 12;
inline constexpr uint64_t kRefer = 1ULL << 13;     // ABI 2
inline constexpr uint64_t kTruncate = 1ULL << 14;  // ABI 3
inline constexpr uint64_t kIoctlDev = 1ULL << 15;  // ABI 5

// Network rights (ABI 4).
inline constexpr uint64_t kNetBindTcp = 1ULL << 0;
inline constexpr uint64_t kNetConnectTcp = 1ULL << 1;

// Scopes (ABI 6).
inline constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
inline constexpr uint64_t kScopeSignal = 1ULL << 1;

struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;  // ABI 4
  uint64_t scoped = 0;              // ABI 6
};

struct PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};

// The filesystem rights an ABI version handles (0 for no Landlock).
uint64_t fsRights(int abi);
// The rights that apply to a regular file (the others only make sense on a directory).
inline constexpr uint64_t kFileRights = kExecute | kWriteFile | kReadFile | kTruncate | kIoctlDev;

// The running kernel's Landlock ABI version, or -1 with errno set (ENOSYS: not built in;
// EOPNOTSUPP: disabled at boot; EPERM: denied by a seccomp profile).
int abiVersion();
// Fields an older kernel does not know are zero, which it accepts.
int createRuleset(const RulesetAttr& attr);
int addRule(int ruleset_fd, int type, const void* attr);
int restrictSelf(int ruleset_fd);

}  // namespace paddock::sandbox::landlock
