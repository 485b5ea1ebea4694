#include "operator/audit/record.h"

#include <algorithm>
#include <array>

#include <openssl/evp.h>

#include "operator/audit/segment.h"

namespace paddock::audit {
namespace {

constexpr std::array<std::string_view, 20> kActionNames = {
    "RunAdmitted",    "RunRefused",      "RunCancelled",  "ChildCreated",  "ChildDeleted",
    "SecretMounted",  "CheckpointRequested", "BudgetExceeded", "ApprovalCounted", "ApprovalRefused",
    "StageStarted",   "StageFinished",   "RunFinished",   "StoreRepaired", "WriterStarted",
    "ChildNotAdopted", "ChildTampered", "ChildRestored", "ModelCall", "ToolCall",
};

std::string hex(const unsigned char* bytes, unsigned int n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 0xf]);
  }
  return out;
}

// Why `record` is not a well-formed record, or "" when it is one.
std::string malformed(const nlohmann::json& r) {
  if (!r.is_object()) return "not a JSON object";
  if (!r.contains("seq") || !r["seq"].is_number_unsigned()) return "seq is missing or not a positive integer";
  for (const char* key : {"time", "actor", "action", "prev", "hash"}) {
    if (!r.contains(key) || !r[key].is_string()) return std::string(key) + " is missing or not a string";
  }
  if (!r.contains("run") || !r["run"].is_object()) return "run is missing or not an object";
  if (!r.contains("details") || !r["details"].is_object()) return "details is missing or not an object";
  if (!parseAction(r["action"].get<std::string>())) return "unknown action " + r["action"].dump();
  return "";
}

}  // namespace

std::string_view actionName(Action action) { return kActionNames.at(static_cast<size_t>(action)); }

std::optional<Action> parseAction(std::string_view name) {
  auto it = std::find(kActionNames.begin(), kActionNames.end(), name);
  if (it == kActionNames.end()) return std::nullopt;
  return static_cast<Action>(it - kActionNames.begin());
}

Status validateEntry(const Entry& entry) {
  if (!entry.details.is_object()) return Error::local("InvalidArgument", "details must be a JSON object");
  if (entry.action != Action::SecretMounted) return Ok{};
  for (const auto& [key, value] : entry.details.items()) {
    bool allowed = std::find(kSecretMountedKeys.begin(), kSecretMountedKeys.end(), key) != kSecretMountedKeys.end();
    if (!allowed || !value.is_string()) {
      return Error::local("InvalidArgument", "SecretMounted details may carry only the secret's name and key (and "
                                             "where it is mounted) as strings; refused key \"" + key + "\"");
    }
  }
  if (!entry.details.contains("secret") || !entry.details.contains("key")) {
    return Error::local("InvalidArgument", "SecretMounted details must name the secret and the key");
  }
  return Ok{};
}

nlohmann::json toJson(const Record& r) {
  nlohmann::json j = {
      {"seq", r.seq},
      {"time", r.time},
      {"actor", r.entry.actor},
      {"run", {{"namespace", r.entry.run.ns}, {"name", r.entry.run.name}, {"uid", r.entry.run.uid}}},
      {"action", actionName(r.entry.action)},
      {"details", r.entry.details},
      {"prev", r.prev},
  };
  if (!r.hash.empty()) j["hash"] = r.hash;
  return j;
}

std::string canonical(const nlohmann::json& value) { return value.dump(-1, ' ', /*ensure_ascii=*/true); }

std::string chainHash(std::string_view prev, std::string_view canonical_record) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, prev.data(), prev.size()) == 1 &&
            EVP_DigestUpdate(ctx, canonical_record.data(), canonical_record.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, digest, &n) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) std::abort();  // cannot happen: SHA-256 is always available
  return "sha256:" + hex(digest, n);
}

Record seal(Entry entry, const Head& head, std::string time) {
  Record r{head.seq + 1, std::move(time), std::move(entry), head.hash, ""};
  r.hash = chainHash(r.prev, canonical(toJson(r)));
  return r;
}

std::string encodeLine(const Record& record) { return canonical(toJson(record)) + "\n"; }

std::optional<Failure> ChainVerifier::fail(std::string_view where, std::string reason) {
  failure_ = Failure{head_.seq + 1, std::string(where), std::move(reason)};
  return failure_;
}

std::optional<Failure> ChainVerifier::invalid(std::string_view where, std::string reason) {
  if (failure_) return failure_;
  return fail(where, std::move(reason));
}

std::optional<Failure> ChainVerifier::reaches(uint64_t seq) {
  if (failure_ || head_.seq >= seq) return failure_;
  return fail("end of store", "the chain ends at seq " + std::to_string(head_.seq) + " but seq " + std::to_string(seq) +
                                  " was known to be durable: records missing from the end");
}

std::optional<Failure> ChainVerifier::record(const nlohmann::json& r, std::string_view where) {
  if (failure_) return failure_;
  if (std::string why = malformed(r); !why.empty()) return fail(where, "malformed record: " + why);
  uint64_t seq = r["seq"].get<uint64_t>();
  if (seq != head_.seq + 1) {
    return fail(where, "expected seq " + std::to_string(head_.seq + 1) + ", found seq " + std::to_string(seq) +
                           (seq > head_.seq + 1 ? " (records missing)" : " (out of order or repeated)"));
  }
  const std::string& prev = r["prev"].get_ref<const std::string&>();
  if (prev != head_.hash) {
    return fail(where,
                "prev " + prev + " is not the hash of seq " + std::to_string(head_.seq) + " (" + head_.hash + ")");
  }
  nlohmann::json body = r;
  body.erase("hash");
  std::string expected = chainHash(prev, canonical(body));
  if (expected != r["hash"].get_ref<const std::string&>()) {
    return fail(where, "hash does not match the record's content (content was changed, or the hash): computed " +
                           expected);
  }
  head_ = Head{seq, r["hash"].get<std::string>()};
  ++records_;
  return std::nullopt;
}

std::optional<Failure> ChainVerifier::segmentHeader(const nlohmann::json& header, uint64_t named_first_seq,
                                                    std::string_view where) {
  if (failure_) return failure_;
  auto parsed = parseSegmentHeader(header);
  if (!parsed) return fail(where, "the segment does not open with a header line");
  if (parsed->first_seq != named_first_seq || parsed->prev.seq + 1 != parsed->first_seq) {
    return fail(where, "the header's first_seq " + std::to_string(parsed->first_seq) + " and prev_seq " +
                           std::to_string(parsed->prev.seq) + " do not match the segment's name (seq " +
                           std::to_string(named_first_seq) + ")");
  }
  if (parsed->prev.seq != head_.seq) {
    return fail(where, "the segment continues from seq " + std::to_string(parsed->prev.seq) +
                           " but the chain so far ends at seq " + std::to_string(head_.seq) +
                           (parsed->prev.seq > head_.seq ? " (records missing)" : " (records repeated)"));
  }
  if (parsed->prev.hash != head_.hash) {
    return fail(where, "the header's prev_hash " + parsed->prev.hash + " is not the hash of seq " +
                           std::to_string(head_.seq) + " (" + head_.hash + ")");
  }
  return std::nullopt;
}

}  // namespace paddock::audit
