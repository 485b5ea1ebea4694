#include "operator/audit/mongo_store.h"

#include <mongoc/mongoc.h>

// bson_t is over-aligned; holding its pointer in std containers only drops that attribute.
#pragma GCC diagnostic ignored "-Wignored-attributes"

#include <mutex>

#include "operator/common/log.h"

namespace paddock::audit {
namespace {

constexpr int kDuplicateKey = 11000;

// libbson and libmongoc objects, freed with their own functions.
struct BsonDeleter {
  void operator()(bson_t* b) const { bson_destroy(b); }
};
using BsonPtr = std::unique_ptr<bson_t, BsonDeleter>;

Error mongoError(const std::string& what, const bson_error_t& e) {
  return Error::local(e.code == kDuplicateKey ? "DuplicateKey" : "Unavailable", what + ": " + e.message);
}

nlohmann::json fromBson(const bson_t* doc) {
  size_t len = 0;
  char* text = bson_as_relaxed_extended_json(doc, &len);
  auto j = nlohmann::json::parse(text, text + len, nullptr, /*allow_exceptions=*/false);
  bson_free(text);
  if (j.is_object()) j.erase("_id");
  return j;
}

Result<BsonPtr> toBson(const nlohmann::json& j) {
  std::string text = canonical(j);
  bson_error_t e;
  bson_t* b = bson_new_from_json(reinterpret_cast<const uint8_t*>(text.data()), static_cast<ssize_t>(text.size()), &e);
  if (!b) return Error::local("InvalidArgument", std::string("record to BSON: ") + e.message);
  return BsonPtr(b);
}

// The credentials in a URI, hidden.
std::string redact(const std::string& uri) {
  size_t scheme = uri.find("://"), at = uri.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return uri;
  return uri.substr(0, scheme + 3) + "***" + uri.substr(at);
}

}  // namespace

struct MongoStore::Connection {
  mongoc_uri_t* uri = nullptr;
  mongoc_client_t* client = nullptr;
  mongoc_database_t* db = nullptr;
  mongoc_collection_t* coll = nullptr;
  ~Connection() {
    if (coll) mongoc_collection_destroy(coll);
    if (db) mongoc_database_destroy(db);
    if (client) mongoc_client_destroy(client);
    if (uri) mongoc_uri_destroy(uri);
  }

  static Result<std::unique_ptr<Connection>> open(const std::string& text, const std::string& collection) {
    static std::once_flag init;
    std::call_once(init, [] {
      mongoc_init();
      // libmongoc's own lines go to our JSON log. Its warnings are about the driver's housekeeping
      // (e.g. a server without endSessions); failures reach us as bson_error_t anyway.
      mongoc_log_set_handler(
          [](mongoc_log_level_t level, const char* domain, const char* message, void*) {
            auto l = level <= MONGOC_LOG_LEVEL_ERROR ? log::Level::Error : log::Level::Debug;
            log::write(l, message, {{"component", "libmongoc"}, {"domain", domain}});
          },
          nullptr);
    });
    auto c = std::make_unique<Connection>();
    bson_error_t e;
    c->uri = mongoc_uri_new_with_error(text.c_str(), &e);
    if (!c->uri) return Error::local("InvalidConfig", std::string("MongoDB URI: ") + e.message);
    // Fail fast when the server is away: the writer retries with its own backoff.
    if (mongoc_uri_get_option_as_int32(c->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0) == 0) {
      mongoc_uri_set_option_as_int32(c->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
    }
    c->client = mongoc_client_new_from_uri_with_error(c->uri, &e);
    if (!c->client) return Error::local("InvalidConfig", std::string("MongoDB client: ") + e.message);
    mongoc_client_set_error_api(c->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(c->client, "paddock-audit");
    const char* db = mongoc_uri_get_database(c->uri);
    c->db = mongoc_client_get_database(c->client, db && *db ? db : "paddock");
    c->coll = mongoc_database_get_collection(c->db, collection.c_str());
    return c;
  }

  // Calls `fn` with each document matching `filter`, in seq order (descending when `limit` is 1).
  Status find(const bson_t* filter, int direction, int64_t limit, const std::function<bool(nlohmann::json)>& fn) {
    BsonPtr opts(BCON_NEW("sort", "{", "seq", BCON_INT32(direction), "}"));
    if (limit > 0) BSON_APPEND_INT64(opts.get(), "limit", limit);
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, filter, opts.get(), nullptr);
    const bson_t* doc;
    while (mongoc_cursor_next(cursor, &doc)) {
      if (!fn(fromBson(doc))) break;
    }
    bson_error_t e;
    bool failed = mongoc_cursor_error(cursor, &e);
    mongoc_cursor_destroy(cursor);
    if (failed) return mongoError("reading the audit collection", e);
    return Ok{};
  }
};

MongoStore::MongoStore(std::string uri, std::string collection)
    : uri_(std::move(uri)), collection_(std::move(collection)) {}
MongoStore::~MongoStore() = default;

std::string MongoStore::describe() const { return redact(uri_) + " collection " + collection_; }

Result<Opened> MongoStore::open() {
  auto conn = Connection::open(uri_, collection_);
  if (!conn) return conn.error();
  conn_ = std::move(*conn);
  BsonPtr cmd(BCON_NEW("createIndexes", BCON_UTF8(collection_.c_str()), "indexes", "[", "{", "key", "{", "seq",
                       BCON_INT32(1), "}", "name", BCON_UTF8("seq_unique"), "unique", BCON_BOOL(true), "}", "]"));
  bson_t reply;
  bson_error_t e;
  bool ok = mongoc_database_write_command_with_opts(conn_->db, cmd.get(), nullptr, &reply, &e);
  bson_destroy(&reply);
  if (!ok) return mongoError("creating the unique index on seq", e);

  Opened opened;
  bson_t all = BSON_INITIALIZER;
  std::optional<Error> bad;
  auto s = conn_->find(&all, -1, 1, [&](nlohmann::json doc) {
    if (!doc.contains("seq") || !doc["seq"].is_number_unsigned() || !doc.contains("hash") || !doc["hash"].is_string()) {
      bad = Error::local("DataLoss", "the record with the highest seq is malformed; run paddock-audit verify");
    } else {
      opened.head = Head{doc["seq"].get<uint64_t>(), doc["hash"].get<std::string>()};
    }
    return false;
  });
  if (!s) return s.error();
  if (bad) return *bad;
  return opened;
}

Status MongoStore::insert(const std::vector<Record>& records, size_t from) {
  std::vector<BsonPtr> docs;
  std::vector<const bson_t*> ptrs;
  for (size_t i = from; i < records.size(); ++i) {
    auto doc = toBson(toJson(records[i]));
    if (!doc) return doc.error();
    ptrs.push_back(doc->get());
    docs.push_back(std::move(*doc));
  }
  BsonPtr opts(BCON_NEW("ordered", BCON_BOOL(true)));
  mongoc_write_concern_t* wc = mongoc_write_concern_new();
  mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
  mongoc_write_concern_set_journal(wc, true);
  mongoc_write_concern_append(wc, opts.get());
  mongoc_write_concern_destroy(wc);
  bson_t reply;
  bson_error_t e;
  bool ok = mongoc_collection_insert_many(conn_->coll, ptrs.data(), ptrs.size(), opts.get(), &reply, &e);
  bson_iter_t it;
  if (!ok && bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "writeErrors.0.code", &it) &&
      bson_iter_as_int64(&it) == kDuplicateKey) {
    e.code = kDuplicateKey;
  }
  bson_destroy(&reply);
  if (!ok) return mongoError("inserting seq " + std::to_string(records[from].seq) + "..", e);
  return Ok{};
}

Status MongoStore::write(const std::vector<Record>& records) {
  if (!conn_) return Error::local("Unavailable", "the store is not open");
  if (records.empty()) return Ok{};
  Status s = insert(records, 0);
  if (s || s.error().reason != "DuplicateKey") return s;
  // A seq is taken: either an earlier attempt of this batch got through in part (its reply was
  // lost), or another writer holds the chain. Only the first is safe to continue.
  BsonPtr filter(BCON_NEW("seq", "{", "$gte", BCON_INT64(static_cast<int64_t>(records.front().seq)), "$lte",
                          BCON_INT64(static_cast<int64_t>(records.back().seq)), "}"));
  size_t written = 0;
  std::optional<Error> conflict;
  auto found = conn_->find(filter.get(), 1, 0, [&](nlohmann::json doc) {
    if (written < records.size() && doc.value("seq", nlohmann::json()) == records[written].seq &&
        doc.value("hash", "") == records[written].hash) {
      ++written;
      return true;
    }
    conflict = Error::local("Conflict", "seq " + doc.value("seq", nlohmann::json()).dump() +
                                            " is already in the store with another hash: another writer extended the "
                                            "chain (this process is not the leader)");
    return false;
  });
  if (!found) return found;
  if (conflict) return *conflict;
  if (written == records.size()) return Ok{};
  s = insert(records, written);
  if (!s && s.error().reason == "DuplicateKey") return Error::local("Conflict", s.error().message);
  return s;
}

Status readMongo(const std::string& uri, const std::string& collection, const ItemSink& sink) {
  auto conn = MongoStore::Connection::open(uri, collection);
  if (!conn) return conn.error();
  bson_t all = BSON_INITIALIZER;
  return (*conn)->find(&all, 1, 0, [&](nlohmann::json doc) {
    StoredItem item;
    item.where = collection + " seq " + doc.value("seq", nlohmann::json()).dump();
    item.json = std::move(doc);
    return sink(item);
  });
}

}  // namespace paddock::audit
