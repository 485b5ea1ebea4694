// The downward API's files as the kubelet writes them: the agent simulator reads its pod's
// annotations from them, and e2e tests that play the kubelet write them.
//
// A downward-API volume item for metadata.annotations (or labels) is one file with a line per
// entry, `key="value"`, keys sorted, each value quoted as Go's %q does, no newline after the last
// (k8s.io/kubernetes pkg/fieldpath FormatMap). The kubelet updates a volume atomically
// (pkg/volume/util/atomic_writer.go): it writes every file into a fresh hidden directory
// `..<timestamp>`, points a new symlink `..data_tmp` at it, renames that over `..data`, and the
// visible names are symlinks `name -> ..data/name`. A reader never sees a half-written file.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "operator/common/result.h"

namespace paddock::agentsim {

// The annotation that asks the agent to checkpoint; its value (for example "60" or a time)
// tells one request from the next.
inline constexpr const char* kCheckpointAnnotation = "paddock.dev/checkpoint";

// A string quoted as Go's strconv.Quote does for the ASCII range: \a \b \f \n \r \t \v, \\ and \"
// escaped, other control bytes as \xNN; bytes from 0x80 (UTF-8) are kept as they are.
std::string goQuote(std::string_view s);
// The inverse, for everything Go's strconv.Unquote accepts in a double-quoted string
// (\xNN, \NNN octal, \uNNNN, \UNNNNNNNN as UTF-8); nullopt when `quoted` is not one.
std::optional<std::string> goUnquote(std::string_view quoted);

// Parses a downward-API map file. Lines that are not `key="value"` are skipped.
std::map<std::string, std::string> parseDownwardMap(std::string_view text);
// Formats a map as the kubelet does.
std::string formatDownwardMap(const std::map<std::string, std::string>& entries);

// Writes `files` (name -> content) into `dir` as the kubelet's atomic writer does, replacing what
// was projected before; names no longer given are removed. Creates `dir` when missing.
Status projectFiles(const std::string& dir, const std::map<std::string, std::string>& files);

}  // namespace paddock::agentsim
