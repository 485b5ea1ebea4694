// A model call as the run's audit trail keeps it, as pure functions: the request's new messages
// (what the agent added since its previous call: tool results, user turns) and the response
// (text, tool calls, stop reason, usage, what it cost), with known secrets and credential-shaped
// strings masked and long strings moved to content-addressed blobs.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/budget.h"
#include "operator/audit/record.h"

namespace paddock::gateway {

// Replaces each `known` value (the model key, run credentials) with "[masked:known-secret]" and
// every credential-shaped token (sk-ant-..., ghp_..., github_pat_..., glpat-..., AKIA...,
// xox?-..., AIza..., PEM private keys, JWTs, "Bearer <token>") with "[masked:<kind>]". Linear in
// the text's size.
std::string maskCredentials(std::string_view text, const std::vector<std::string>& known);

// Which of a conversation's messages were already recorded: keyed by the run and the hash of the
// conversation's first message (Claude Code runs several conversations: the main loop, sub-agents,
// title and summary calls). Thread-safe.
class ConversationIndex {
 public:
  // The index of the first message not recorded yet (messages before it were sent in an earlier
  // call), and records that `count` messages plus the response now are.
  size_t advance(const std::string& run, const nlohmann::json& messages);

 private:
  std::mutex mu_;
  std::map<std::string, size_t> seen_;  // guarded by mu_
};

struct CallFacts {
  std::string ns, name;
  std::string model;
  bool stream = false;
  int status = 200;            // what the agent was answered
  std::string error;           // why the call failed, when it did
  nlohmann::json new_messages = nlohmann::json::array();
  nlohmann::json response_content = nlohmann::json::array();
  std::string stop_reason;
  Usage usage;
  int64_t requested_max_tokens = 0, granted_max_tokens = 0;
  bool checkpoint_sent = false;
  int64_t charged_nano = 0;
  int64_t spent_tokens = 0, spent_nano = 0;  // the run's totals after this call
};

struct TranscriptRecord {
  audit::Entry entry;
  std::vector<std::string> blobs;  // to write (putBlob) before the entry is appended
};

// The ModelCall entry for one call: masked, and every string longer than `blob_threshold` bytes
// replaced by a blob reference.
TranscriptRecord buildTranscript(const CallFacts& facts, const std::vector<std::string>& known_secrets,
                                 int64_t blob_threshold);

}  // namespace paddock::gateway
