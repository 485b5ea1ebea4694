// A run's conversation with its model, told from the gateway's ModelCall records as a reviewer
// reads it: per call, what the agent sent that was new (its task, tool results, user turns) and
// what the model answered (text, tool calls), with usage and cost. Pure: records and a blob
// reader come in, the text goes out.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"

namespace paddock::audit {

// Reads a blob's bytes by its hash (blob.h's readBlob on the store).
using BlobReader = std::function<Result<std::string>(const std::string& hash)>;

std::string tellTranscript(std::string_view ns, std::string_view name, const std::vector<nlohmann::json>& records,
                           const BlobReader& blobs);

}  // namespace paddock::audit
