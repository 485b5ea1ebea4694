// Content-addressed blobs beside a segment-file store: large bodies (a model call's messages) are
// kept once under <store>/blobs/<first two hex digits>/<hex of their SHA-256>, and a record holds
// only {"blob": "sha256:<hex>", "bytes": N}. The chain covers the blob through that hash, so
// verify proves a blob by hashing it again.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"

namespace paddock::audit {

// "sha256:<hex>" of `bytes`.
std::string blobHash(std::string_view bytes);
// A blob reference as a record holds it.
nlohmann::json blobRef(std::string_view bytes);
// Whether `value` is a blob reference; its hash when it is.
std::optional<std::string> blobRefHash(const nlohmann::json& value);
// Every blob hash referenced anywhere in `details`.
void collectBlobRefs(const nlohmann::json& details, std::vector<std::string>& out);

// Writes a blob durably (a temporary file, fsync, rename, fsync of the directory) unless it is
// there already. Errors have reason IO.
Status putBlob(const std::string& store_dir, std::string_view bytes);
// A blob's bytes, checked against its hash. Errors: NotFound, DataLoss (the bytes do not hash to
// the name).
Result<std::string> readBlob(const std::string& store_dir, const std::string& hash);

}  // namespace paddock::audit
