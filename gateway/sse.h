// Reading the Messages API's answers, as pure functions: an incremental server-sent-events
// parser (the stream is relayed byte for byte; this only watches it), and an accumulator that
// rebuilds the response from its events: content blocks (text, tool_use with its input JSON),
// stop reason, and usage (message_start's, updated by each message_delta's cumulative counts).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/budget.h"

namespace paddock::gateway {

struct SseEvent {
  std::string event;
  std::string data;
};

class SseParser {
 public:
  // Feeds bytes; returns the events they complete (an event ends at a blank line).
  std::vector<SseEvent> feed(std::string_view bytes);

 private:
  std::string line_;
  SseEvent current_;
  bool has_data_ = false;
};

class ResponseAccumulator {
 public:
  void onEvent(const SseEvent& event);
  // A whole non-streaming response body.
  void onMessage(const nlohmann::json& message);

  const Usage& usage() const { return usage_; }
  bool sawUsage() const { return saw_usage_; }
  bool complete() const { return complete_; }  // message_stop (or a whole message) seen
  const std::string& stopReason() const { return stop_reason_; }
  const std::string& errorType() const { return error_type_; }  // an error event's type
  // The content blocks as the API would have returned them in one message.
  nlohmann::json content() const;

 private:
  void readUsage(const nlohmann::json& usage);
  Usage usage_;
  bool saw_usage_ = false;
  bool complete_ = false;
  std::string stop_reason_, error_type_;
  nlohmann::json blocks_ = nlohmann::json::array();
  std::vector<std::string> partial_json_;  // tool_use input being streamed, per block
};

}  // namespace paddock::gateway
