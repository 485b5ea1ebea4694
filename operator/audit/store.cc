#include "operator/audit/store.h"

#include "operator/audit/file_store.h"
#include "operator/audit/mongo_store.h"

namespace paddock::audit {

bool isMongoUri(const std::string& target) {
  return target.starts_with("mongodb://") || target.starts_with("mongodb+srv://");
}

std::unique_ptr<Backend> makeBackend(const std::string& target, const StoreOptions& options) {
  if (isMongoUri(target)) return std::make_unique<MongoStore>(target, options.collection);
  return std::make_unique<FileStore>(target, options.max_segment_bytes);
}

Status readStore(const std::string& target, const ItemSink& sink, const StoreOptions& options) {
  if (isMongoUri(target)) return readMongo(target, options.collection, sink);
  return readDirectory(target, sink);
}

Result<VerifyReport> verifyStore(const std::string& target, const StoreOptions& options, uint64_t expect_seq) {
  ChainVerifier verifier;
  Status s = readStore(
      target,
      [&](const StoredItem& item) {
        switch (item.kind) {
          case StoredItem::Kind::Record: return !verifier.record(item.json, item.where);
          case StoredItem::Kind::SegmentHeader:
            return !verifier.segmentHeader(item.json, item.named_first_seq, item.where);
          case StoredItem::Kind::Invalid: return !verifier.invalid(item.where, item.problem);
        }
        return false;
      },
      options);
  if (!s) return s.error();
  verifier.reaches(expect_seq);
  return VerifyReport{verifier.records(), verifier.head(), verifier.failure()};
}

}  // namespace paddock::audit
