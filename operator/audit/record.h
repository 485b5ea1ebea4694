// Audit records and the hash chain that makes them tamper-evident. Pure logic: no I/O.
//
// A record is {seq, time, actor, run{namespace,name,uid}, action, details, prev, hash}. Records are
// numbered from 1 without gaps; `prev` is the hash of the record before (kGenesisHash for seq 1).
//
// Canonical encoding: the record as a JSON object *without* its "hash" member, serialised by
// nlohmann::json::dump() with no indentation, keys sorted by their UTF-8 bytes (nlohmann's object is
// a std::map), and ensure_ascii (every non-ASCII character as a \uXXXX escape, so the bytes do not
// depend on how a store keeps Unicode). Integers print in decimal; a floating-point value prints in
// nlohmann's shortest round-trip form, so details should prefer integers and strings.
//
//   hash = "sha256:" + lowercase hex( SHA-256( prev || canonical(record without hash) ) )
//
// where `prev` is the bytes of the previous hash string ("sha256:..."). A stored line (segment
// files) is the canonical encoding of the whole record, hash included.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"

namespace paddock::audit {

enum class Action {
  RunAdmitted,          // the policy admitted a run: details say what was asked (task, agent, budget)
  RunRefused,           // the policy refused it, and why
  RunCancelled,         // someone asked to stop the run
  ChildCreated,         // a pod, ConfigMap, NetworkPolicy... created for the run (kind, name)
  ChildDeleted,
  SecretMounted,        // secret name and key only, never a value (see validateEntry)
  CheckpointRequested,
  BudgetExceeded,       // what was spent against which limit
  ApprovalCounted,      // the actor is the approving user
  ApprovalRefused,      // an approval that did not count (not allowed, duplicate...), and why
  StageStarted,
  StageFinished,
  RunFinished,          // the outcome and what was spent
  StoreRepaired,        // the store cut a torn tail on open (segment, offset, bytes, reason)
  WriterStarted,        // a new writer (leader) continues the chain from the store's head
  ChildNotAdopted,      // an object under a child's name that is not the run's (kind, name, uid, why): left alone
  ChildTampered,        // a child that no longer matches its plan (kind, name, the fields that differ)
  ChildRestored,        // a shared child put back to its plan (kind, name, the fields that differed, why)
  ModelCall,            // paddock-gateway: one model call of the run (new request messages, the response, usage)
  ToolCall,             // paddock-gateway: one MCP tool call of the run (server, tool, arguments, verdict, result hash)
};

std::string_view actionName(Action action);
std::optional<Action> parseAction(std::string_view name);

struct RunRef {
  std::string ns;  // "namespace" in JSON
  std::string name;
  std::string uid;
};

// What a caller asks to record. The writer adds seq, time, prev and hash.
struct Entry {
  std::string actor;  // the operator's identity, or the user behind an approval
  RunRef run;         // empty for store-level records (StoreRepaired, WriterStarted)
  Action action = Action::RunAdmitted;
  nlohmann::json details = nlohmann::json::object();
};

// The keys a SecretMounted record's details may carry: names, never values.
inline const std::vector<std::string> kSecretMountedKeys = {"secret", "key", "stage", "env", "path", "container"};

// An entry the store accepts: details is an object; SecretMounted details hold only strings under
// kSecretMountedKeys and name both "secret" and "key". Errors have reason InvalidArgument.
Status validateEntry(const Entry& entry);

// The chain's position: the last record's seq and hash (seq 0 and kGenesisHash when empty).
inline constexpr std::string_view kGenesisHash =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
struct Head {
  uint64_t seq = 0;
  std::string hash = std::string(kGenesisHash);
  bool operator==(const Head&) const = default;
};

struct Record {
  uint64_t seq = 0;
  std::string time;  // RFC 3339, UTC, microseconds
  Entry entry;
  std::string prev;
  std::string hash;
};

// The record as JSON, with "hash" when it is set.
nlohmann::json toJson(const Record& record);
// The canonical encoding of a JSON value (see the top of this file).
std::string canonical(const nlohmann::json& value);
// "sha256:" + hex(SHA-256(prev || canonical)).
std::string chainHash(std::string_view prev, std::string_view canonical_record);
// The record that follows `head`: seq head.seq+1, prev head.hash, and its hash.
Record seal(Entry entry, const Head& head, std::string time);
// The canonical encoding of the whole record, hash included, and a newline: one segment line.
std::string encodeLine(const Record& record);

// The first record of a stored chain that is not what it should be.
struct Failure {
  uint64_t seq = 0;   // where the chain breaks: the seq expected at that position
  std::string where;  // file:line or collection/_id
  std::string reason;
};

// Checks records in chain order, one at a time: each must be well formed, carry the next seq,
// link to the previous hash and hash to its own. Segment headers (segment.h) are checked against
// the chain's head so far. Stops at the first failure; later calls return it again.
class ChainVerifier {
 public:
  std::optional<Failure> record(const nlohmann::json& record, std::string_view where);
  // A segment's first line; `named_first_seq` is the seq in the segment's file name.
  std::optional<Failure> segmentHeader(const nlohmann::json& header, uint64_t named_first_seq,
                                       std::string_view where);
  // Something that is not a record where one should be (an unparsable line, a torn tail).
  std::optional<Failure> invalid(std::string_view where, std::string reason);
  // After the last record: the chain must reach `seq`, a head known from elsewhere (a log line, a
  // metric, an earlier export). A hash chain alone cannot see records cut from its end.
  std::optional<Failure> reaches(uint64_t seq);

  const Head& head() const { return head_; }
  uint64_t records() const { return records_; }
  const std::optional<Failure>& failure() const { return failure_; }

 private:
  std::optional<Failure> fail(std::string_view where, std::string reason);
  Head head_;
  uint64_t records_ = 0;
  std::optional<Failure> failure_;
};

}  // namespace paddock::audit
