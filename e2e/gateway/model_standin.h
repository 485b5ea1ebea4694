// A scripted stand-in for the Anthropic Messages API on loopback, for the gateway tests and
// benchmark: POST /v1/messages answers each call with the next turn of its script, streamed as
// the real API streams (message_start, ping, content_block_start/delta/stop, message_delta with
// the usage, message_stop) or as one JSON message; a turn may instead be an error body (429 with
// retry-after, 500, 529 overloaded) or a stream cut after some events. POST
// /v1/messages/count_tokens answers {"input_tokens": N}. Every request is recorded with its
// headers and body, for the tests to assert on. No test reaches a real model.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::gateway::testing {

struct Turn {
  enum class Kind { Text, ToolUse, Error } kind = Kind::Text;
  std::string text;                 // Text: the answer (also before a tool call)
  std::string tool;                 // ToolUse: Write, Edit, Bash...
  nlohmann::json input;             // ToolUse: the tool's input
  int64_t output_tokens = 20;       // reported output, at most the request's max_tokens
  bool spend_all = false;           // report the request's max_tokens as output
  int64_t input_tokens = -1;        // reported input; -1: the request body's bytes / 4
  int status = 200;                 // Error: 429, 500, 529
  int cut_after_events = -1;        // close the connection after this many events (-1: never)
  int delta_events = 1;             // text deltas to split the text into
  int event_gap_ms = 0;             // pause between events
  int hold_ms = 0;                  // pause after message_start (streams held open)
  // Each "@T@" in the text becomes "T<19-digit steady-clock nanoseconds>;" as the event is sent
  // (the benchmark measures each event's latency).
  bool stamp_events = false;
};

struct Received {
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  nlohmann::json json;
  std::string header(const std::string& name) const;
};

class ModelStandin {
 public:
  ModelStandin();
  ~ModelStandin();
  // Listens on `address` (loopback, or an address the test itself made: the node's veth), a free
  // port. `threads` I/O threads.
  bool start(int threads = 1, const std::string& address = "127.0.0.1");
  void stop();
  int port() const { return port_; }
  std::string url() const { return "http://" + address_ + ":" + std::to_string(port_); }

  // The turns answered in order; past the end every call gets `Text "Done."` end_turn.
  void setScript(std::vector<Turn> turns);
  // Every call gets `turn` (the benchmark).
  void setRepeat(Turn turn);
  std::vector<Received> received() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::string address_ = "127.0.0.1";
};

// The SSE bytes of `turn` answering `request` (also for tests that check the stream's shape).
std::vector<std::string> sseEvents(const Turn& turn, const nlohmann::json& request, size_t request_bytes);

}  // namespace paddock::gateway::testing
