// The FerretDB instance the audit tests run against (e2e/ferretdb.sh, started by a CTest
// fixture), and direct access to its documents for tampering.
#pragma once

#include <mongoc/mongoc.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace paddock::audit::testing {

// The server's URI with a database of its own for these tests; $PADDOCK_AUDIT_MONGODB_URI wins.
inline std::string mongoUri() {
  const char* env = std::getenv("PADDOCK_AUDIT_MONGODB_URI");
  return std::string(env && *env ? env : PADDOCK_AUDIT_MONGODB_URI) + "paddock_audit_test";
}

// A collection name no other test (or earlier run) uses.
inline std::string freshCollection() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid());
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  return name;
}

// A raw libmongoc handle on one collection, to change documents behind the store's back.
class RawCollection {
 public:
  RawCollection(const std::string& uri, const std::string& name) {
    mongoc_init();
    client_ = mongoc_client_new(uri.c_str());
    coll_ = mongoc_client_get_collection(client_, "paddock_audit_test", name.c_str());
  }
  ~RawCollection() {
    mongoc_collection_destroy(coll_);
    mongoc_client_destroy(client_);
  }
  // Runs one update {q, u}, given as JSON; true when it matched.
  bool update(const std::string& filter, const std::string& update) {
    bson_t* q = bson_new_from_json(reinterpret_cast<const uint8_t*>(filter.data()), -1, nullptr);
    bson_t* u = bson_new_from_json(reinterpret_cast<const uint8_t*>(update.data()), -1, nullptr);
    bson_t reply;
    bool ok = mongoc_collection_update_one(coll_, q, u, nullptr, &reply, nullptr);
    bson_iter_t it;
    ok = ok && bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) > 0;
    bson_destroy(&reply);
    bson_destroy(q);
    bson_destroy(u);
    return ok;
  }
  bool remove(const std::string& filter) {
    bson_t* q = bson_new_from_json(reinterpret_cast<const uint8_t*>(filter.data()), -1, nullptr);
    bool ok = mongoc_collection_delete_one(coll_, q, nullptr, nullptr, nullptr);
    bson_destroy(q);
    return ok;
  }
  bool insert(const std::string& doc) {
    bson_t* d = bson_new_from_json(reinterpret_cast<const uint8_t*>(doc.data()), -1, nullptr);
    bool ok = mongoc_collection_insert_one(coll_, d, nullptr, nullptr, nullptr);
    bson_destroy(d);
    return ok;
  }

 private:
  mongoc_client_t* client_;
  mongoc_collection_t* coll_;
};

}  // namespace paddock::audit::testing
