#include "operator/audit/segment.h"

#include <cstdio>

namespace paddock::audit {
namespace {

constexpr std::string_view kPrefix = "segment-";
constexpr std::string_view kSuffix = ".jsonl";
constexpr size_t kDigits = 20;
constexpr std::string_view kHeaderTag = "paddock-audit-segment";

// The head a line gives the chain, when the line is a whole record or header.
std::optional<Head> headOf(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  if (auto header = parseSegmentHeader(j)) return header->prev;
  if (j.contains("seq") && j["seq"].is_number_unsigned() && j.contains("hash") && j["hash"].is_string()) {
    return Head{j["seq"].get<uint64_t>(), j["hash"].get<std::string>()};
  }
  return std::nullopt;
}

}  // namespace

std::string segmentName(uint64_t first_seq) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(first_seq));
  return std::string(kPrefix) + digits + std::string(kSuffix);
}

std::optional<uint64_t> parseSegmentName(std::string_view name) {
  if (name.size() != kPrefix.size() + kDigits + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return std::nullopt;
  }
  uint64_t seq = 0;
  for (char c : name.substr(kPrefix.size(), kDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + static_cast<uint64_t>(c - '0');
  }
  return seq;
}

std::string segmentHeaderLine(const Head& prev) {
  nlohmann::json j = {{"header", kHeaderTag}, {"first_seq", prev.seq + 1}, {"prev_seq", prev.seq},
                      {"prev_hash", prev.hash}};
  return canonical(j) + "\n";
}

std::optional<SegmentHeader> parseSegmentHeader(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("header") || j["header"] != kHeaderTag) return std::nullopt;
  for (const char* key : {"first_seq", "prev_seq"}) {
    if (!j.contains(key) || !j[key].is_number_unsigned()) return std::nullopt;
  }
  if (!j.contains("prev_hash") || !j["prev_hash"].is_string()) return std::nullopt;
  return SegmentHeader{j["first_seq"].get<uint64_t>(),
                       Head{j["prev_seq"].get<uint64_t>(), j["prev_hash"].get<std::string>()}};
}

Tail scanTail(std::string_view contents) {
  // Where the line that ends just before `end` (a newline at end - 1) starts.
  auto lineStart = [&](size_t end) {
    size_t nl = end >= 2 ? contents.rfind('\n', end - 2) : std::string_view::npos;
    return nl == std::string_view::npos ? size_t{0} : nl + 1;
  };
  Tail tail;
  size_t last_newline = contents.rfind('\n');
  size_t whole = last_newline == std::string_view::npos ? 0 : last_newline + 1;
  if (whole < contents.size()) tail.torn_reason = "the last line has no newline (a write cut short)";
  for (int cut = 0; whole > 0 && !tail.head && cut < 2; ++cut) {
    size_t start = lineStart(whole);
    tail.head = headOf(contents.substr(start, whole - 1 - start));
    if (tail.head || cut == 1) break;
    // The last whole line is not a record: garbage after a crash. Cut it, and only it.
    tail.torn_reason = tail.torn_reason.empty() ? "the last line is not a JSON record (garbage after a crash)"
                                                : tail.torn_reason + ", after a line that is not a JSON record";
    whole = start;
  }
  tail.valid_bytes = whole;
  tail.torn_bytes = contents.size() - whole;
  return tail;
}

}  // namespace paddock::audit
