// The audit log the reconciler writes to: an append-only, hash-chained, write-ahead record of what
// Paddock does (record.h has the record and the chain; store.h the backends).
//
// Guarantees:
// - append() returns Ok only once every record it was given is durable (fsync'd, or written with
//   a journaled majority write concern), so a caller takes the action a record describes only
//   after it. Records of one call are consecutive, in the order given.
// - Concurrent appends are committed together: one write and one fsync per batch (group commit).
// - Memory is bounded: when the queue is full, append() blocks until there is room (back-pressure).
// - When the store fails, the batch is retried with backoff until it is durable; nothing is dropped.
//   A caller that stops waiting (its cancel token fires) gets Cancelled: its records were not
//   acknowledged and may or may not be written later, so it must not take their actions.
//
// Caveats:
// - Another writer on the same chain (a MongoDB duplicate seq: this process is no longer the
//   leader) is not retried: append() and every later call fail with reason Conflict. Reopen the
//   log to continue from the store's new head.
// - Destroying the log stops the writer (a batch still failing is abandoned, unacknowledged);
//   every append() must have returned before.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "operator/audit/record.h"
#include "operator/common/cancel.h"
#include "operator/common/clock.h"
#include "operator/common/result.h"

namespace prometheus {
class Registry;
}

namespace paddock::audit {

class Backend;

// Where one append() landed in the chain. Entries the chain already holds (onceKey) are not
// appended again: `duplicates` counts them, and when every entry was one, the seqs are 0.
struct AppendResult {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string last_hash;
  size_t duplicates = 0;
};

// The identity of a one-time record: its run's uid, action, actor and details (a stable 64-bit
// hash of them). Such a record is appended at most once per chain, so a caller that crashed or
// failed after an append and before the write that remembers it can append it again safely
// (RunAdmitted is never in the chain twice). Nullopt for records without a run and for those
// that may truly recur with the same content: RunRefused (refused, admitted, refused again),
// ChildRestored (the same edit undone twice), ModelCall, ToolCall.
std::optional<uint64_t> onceKey(const std::string& run_uid, std::string_view action, const std::string& actor,
                                const nlohmann::json& details);

class AuditLog {
 public:
  virtual ~AuditLog() = default;

  // Appends `entries` (validateEntry must accept each) and returns once they are durable.
  // Errors: InvalidArgument (an entry refused, nothing written), Cancelled, Conflict (another
  // writer), Closed (the log is shutting down).
  virtual Result<AppendResult> append(std::vector<Entry> entries, const CancelToken& cancel) = 0;

  // The last durable record's seq and hash.
  virtual Head head() const = 0;
};

struct AuditLogOptions {
  // Records waiting to be written at the most; append() blocks beyond (one larger call still fits
  // when the queue is empty).
  size_t max_queued_records = 10000;
  // Records per write and fsync at the most.
  size_t max_batch_records = 1000;
  // Backoff between attempts while the store fails: doubles from initial up to max.
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{5000};
  // Details of a WriterStarted record the log appends once it is open (after a repair): a new
  // leader says, in the chain itself, that it continues it from here. None when unset.
  std::optional<nlohmann::json> writer_started;
  // Called with every record of the chain as the log opens, in order (for indexes built from the
  // chain, such as the operator's ledger of idempotency keys). None when unset.
  std::function<void(const nlohmann::json& record)> on_record;
  // The actor of the records the log writes itself (StoreRepaired, WriterStarted).
  std::string actor = "paddock-operator";
  const Clock* clock = &systemClock();
  // The wall clock that stamps records.
  std::chrono::system_clock::time_point (*wall_clock)() = &std::chrono::system_clock::now;
};

// Opens `backend` (repairing a torn tail, and recording that repair as a StoreRepaired record
// before anything else), reads the chain for its one-time records (onceKey; 8 bytes each in
// memory), and starts the writer thread. `registry` may be null (no metrics); when
// given, the log adds paddock_audit_* metrics to it, and it must outlive the log.
Result<std::unique_ptr<AuditLog>> openAuditLog(std::unique_ptr<Backend> backend, AuditLogOptions options = {},
                                               prometheus::Registry* registry = nullptr);

}  // namespace paddock::audit
