// The shared backend: a MongoDB collection, insert-only, with a unique index on seq. A batch is one
// ordered insert_many with write concern {w: majority, j: true}. Only the leader writes; a new
// leader continues from the highest seq. A duplicate seq that is not this writer's own earlier
// attempt means another writer: reason Conflict.
//
// Documents are the records themselves ({seq, time, actor, run, action, details, prev, hash} plus
// MongoDB's _id), converted from their canonical JSON by libbson.
#pragma once

#include <memory>
#include <string>

#include "operator/audit/store.h"

namespace paddock::audit {

Status readMongo(const std::string& uri, const std::string& collection, const ItemSink& sink);

class MongoStore final : public Backend {
 public:
  MongoStore(std::string uri, std::string collection);
  ~MongoStore() override;

  // Connects, ensures the unique index on seq, and reads the head (the highest seq).
  Result<Opened> open() override;
  Status write(const std::vector<Record>& records) override;
  Status read(const ItemSink& sink) override { return readMongo(uri_, collection_, sink); }
  std::string describe() const override;

 private:
  friend Status readMongo(const std::string& uri, const std::string& collection, const ItemSink& sink);
  struct Connection;
  Status insert(const std::vector<Record>& records, size_t from);
  std::string uri_, collection_;
  std::unique_ptr<Connection> conn_;
};

// Reads the collection in seq order.
Status readMongo(const std::string& uri, const std::string& collection, const ItemSink& sink);

}  // namespace paddock::audit
