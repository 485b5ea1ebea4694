// An informer: a cache of one resource kept current by list-then-watch, as client-go's
// reflector and kube-rs's watcher do.
//
// Guarantees
// - The cache starts from a full (paged) list and then follows a watch from the list's
//   resourceVersion, with bookmarks, so no change between the two is missed.
// - When the server answers 410 Gone (the resourceVersion was compacted away), the informer
//   relists and swaps the new contents in at once; handlers see the difference as upserts and
//   deletes, so after a relist the cache equals a fresh list.
// - A watch that goes silent for longer than `timeout_seconds + idle_margin` is treated as
//   dead and re-established; transport failures reconnect with exponential backoff.
// - Handlers run on the informer's thread, in event order, after the cache has been updated.
//
// Caveats
// - Objects pass through `transform` before they are stored, so the cache holds only what the
//   controllers read. Keep transforms cheap: they run for every event.
// - The cache keeps each object as compact CBOR bytes (about a tenth of a parsed JSON tree's
//   memory) and decodes it on get() and list(): each read returns a fresh immutable copy.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/cancel.h"
#include "operator/kube/client.h"

namespace paddock::kube {

using ObjectPtr = std::shared_ptr<const json>;

// "namespace/name", or "name" for cluster-scoped objects.
std::string objectKey(const json& object);

// The default transform: drops metadata.managedFields and the kubectl last-applied annotation,
// which controllers never read and which are often most of an object's size.
json stripBookkeeping(json object);

struct InformerOptions {
  std::string namespace_;  // "" watches every namespace
  std::string label_selector;
  std::string field_selector;
  int page_size = 500;
  // The server ends each watch after this long; the informer then resumes from the last
  // resourceVersion. Also bounds how long a dead connection can go unnoticed.
  std::chrono::seconds timeout_seconds{300};
  std::chrono::seconds idle_margin{30};
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::function<json(json)> transform = stripBookkeeping;
};

struct InformerEvent {
  enum class Type { Upsert, Delete };
  Type type;
  std::string key;
  ObjectPtr object;  // the new object (Upsert) or the last known one (Delete)
  ObjectPtr old;     // the previous object for an Upsert of a known key, else null
};

struct InformerStats {
  std::atomic<uint64_t> lists{0};          // full lists, the first included
  std::atomic<uint64_t> relists_gone{0};   // relists forced by 410 Gone
  std::atomic<uint64_t> watch_restarts{0}; // watches re-established after an error or silence
  std::atomic<uint64_t> silent_restarts{0};
  std::atomic<uint64_t> events{0};         // watch events applied (bookmarks not counted)
};

class Informer {
 public:
  using Handler = std::function<void(const InformerEvent&)>;

  Informer(Client& client, Resource resource, InformerOptions options = {});

  // Registers a handler; call before run().
  void addHandler(Handler handler) { handlers_.push_back(std::move(handler)); }

  // Lists and watches until `stop` is cancelled. Blocks; run it on a thread of its own.
  void run(const CancelToken& stop);

  // True once the first list has been stored.
  bool synced() const { return synced_.load(); }
  // Waits until synced or until `timeout`; true when synced.
  bool waitForSync(std::chrono::milliseconds timeout) const;

  ObjectPtr get(const std::string& key) const;
  std::vector<ObjectPtr> list() const;
  size_t size() const;
  // The resourceVersion the informer will resume its watch from.
  std::string resourceVersion() const;

  const InformerStats& stats() const { return stats_; }
  const Resource& resource() const { return resource_; }

 private:
  enum class WatchEnd { Expired, Closed, Failed, Silent, Stopped };
  bool relist(const CancelToken& stop);
  WatchEnd watch(const CancelToken& stop);
  void upsert(ObjectPtr object);
  void erase(const std::string& key, ObjectPtr last);
  void notify(const InformerEvent& event);
  std::string watchPath() const;

  Client& client_;
  Resource resource_;
  InformerOptions options_;
  std::vector<Handler> handlers_;

  // An object as cached: its resourceVersion, for cheap comparisons, and its CBOR encoding.
  struct Stored {
    std::string resource_version;
    std::vector<std::uint8_t> cbor;
  };
  static std::shared_ptr<const Stored> encode(const json& object);
  static ObjectPtr decode(const std::shared_ptr<const Stored>& stored);

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Stored>> store_;
  std::string resource_version_;

  std::atomic<bool> synced_{false};
  bool got_events = false;  // the last watch delivered events; informer thread only
  mutable std::mutex sync_mu_;
  mutable std::condition_variable sync_cv_;
  InformerStats stats_;
};

}  // namespace paddock::kube
