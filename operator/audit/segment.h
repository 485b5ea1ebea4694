// The segment-file layout, as pure functions: file names, header lines, and finding a torn tail.
//
// A store is a directory of segment files named segment-<first seq, 20 digits>.jsonl. Each holds one
// JSON line per record (record.h's encodeLine), after a header line that carries the previous
// segment's head, so the chain runs on across files:
//   {"first_seq":N,"header":"paddock-audit-segment","prev_hash":"sha256:...","prev_seq":N-1}
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "operator/audit/record.h"

namespace paddock::audit {

std::string segmentName(uint64_t first_seq);
// The first seq in a segment's file name, or nullopt when the name is not a segment's.
std::optional<uint64_t> parseSegmentName(std::string_view file_name);

struct SegmentHeader {
  uint64_t first_seq = 1;
  Head prev;  // the head of the chain before this segment
};
// The header line of a segment that follows `prev`, newline included.
std::string segmentHeaderLine(const Head& prev);
std::optional<SegmentHeader> parseSegmentHeader(const nlohmann::json& line);

// What opening the last segment finds at its end.
struct Tail {
  // Bytes from the start that hold whole, parsable lines; the rest is torn.
  size_t valid_bytes = 0;
  size_t torn_bytes = 0;
  std::string torn_reason;  // empty when nothing is torn
  // The chain's head as the last valid line gives it: a record's seq and hash, or a lone header's
  // prev. nullopt with valid_bytes 0 when no line is left (the segment lost even its header);
  // nullopt with valid_bytes > 0 when the line before the torn one is damaged too (not a torn
  // write: the store needs a person, and verify says where).
  std::optional<Head> head;
};

// Looks at the end of a segment's contents. The last line is torn when it has no newline (a write
// cut short), or when it is not a JSON record or header (garbage after a power cut): at most that
// one line and any partial bytes after it. Damage further up is not a torn tail; verify reports it.
Tail scanTail(std::string_view contents);

}  // namespace paddock::audit
