// Where audit records are kept: the Backend interface the writer drives, the two backends behind
// it (segment files in a directory, file_store.h; MongoDB, mongo_store.h), and reading a store
// back to verify, show or export it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/audit/record.h"
#include "operator/common/result.h"

namespace paddock::audit {

struct Opened {
  Head head;
  // What opening cut off the store, as the details of a StoreRepaired record (nullopt: nothing).
  std::optional<nlohmann::json> repair;
};

struct StoredItem;
// Calls `sink` with each item in order until it returns false.
using ItemSink = std::function<bool(const StoredItem&)>;

// Driven by one writer thread at a time.
class Backend {
 public:
  virtual ~Backend() = default;
  // Opens the store for writing, repairs a torn tail, and returns the chain's head.
  virtual Result<Opened> open() = 0;
  // Writes sealed records that follow the head durably, in order. On an error nothing of them is
  // acknowledged, and writing the same records again is safe (the retry after a failure).
  // Reason Conflict: another writer extended the chain; retrying cannot help.
  virtual Status write(const std::vector<Record>& records) = 0;
  // Reads the whole chain after open(), in order (the writer learns which one-time records it
  // holds, onceKey).
  virtual Status read(const ItemSink& sink) = 0;
  // For logs: "dir /var/lib/paddock/audit" or the MongoDB URI without its password.
  virtual std::string describe() const = 0;
};

struct StoreOptions {
  // Segment files: a new segment starts once the current one holds this many bytes.
  int64_t max_segment_bytes = 64 << 20;
  // MongoDB: the collection (the database comes from the URI's path, "paddock" when it has none).
  std::string collection = "audit";
};

bool isMongoUri(const std::string& target);
// A backend for a directory or a mongodb:// URI; nothing is opened yet.
std::unique_ptr<Backend> makeBackend(const std::string& target, const StoreOptions& options = {});

// One line or document of a store, read back in chain order.
struct StoredItem {
  enum class Kind { Record, SegmentHeader, Invalid };
  Kind kind = Kind::Record;
  nlohmann::json json;           // Record, SegmentHeader
  uint64_t named_first_seq = 0;  // SegmentHeader: the seq in the file name
  std::string where;             // file:line, or collection seq N
  std::string problem;           // Invalid: why it is not JSON
};
Status readStore(const std::string& target, const ItemSink& sink, const StoreOptions& options = {});

struct VerifyReport {
  uint64_t records = 0;
  Head head;
  std::optional<Failure> failure;
};
// Reads the whole store through a ChainVerifier, which must reach `expect_seq` at least. An error
// means the store could not be read at all.
Result<VerifyReport> verifyStore(const std::string& target, const StoreOptions& options = {}, uint64_t expect_seq = 0);

}  // namespace paddock::audit
