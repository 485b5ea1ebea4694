// What the agent simulator has spent, and its metrics in Prometheus' text format under the names
// Claude Code exports through its OpenTelemetry Prometheus exporter: claude_code.token.usage
// (attributes type, model) becomes claude_code_token_usage_tokens_total, claude_code.cost.usage
// (attribute model) becomes claude_code_cost_usage_USD_total. Pure: no clock, no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace paddock::agentsim {

struct Rates {
  double tokens_per_second = 0;
  double usd_per_second = 0;
  // When above 0, the counters start again from zero this many seconds after the start, once
  // (as after an agent restart).
  double reset_after_seconds = 0;
};

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  bool reset = false;  // the counters have been reset

  int64_t tokens() const { return input_tokens + output_tokens; }
};

// What the agent has spent `elapsed_seconds` after it started. Tokens are whole: a quarter of
// them (rounded down) are output, the rest input, so their sum is floor(rate * seconds).
Usage usageAt(const Rates& rates, double elapsed_seconds);

// The labels that name the run on every series.
struct Identity {
  std::string agentrun;
  std::string ns;
  std::string model;
};

// OTEL_RESOURCE_ATTRIBUTES ("agentrun=fix-1,namespace=payments"): comma-separated key=value
// pairs, trimmed, with the spec's percent-encoding undone. Malformed pairs are skipped.
std::map<std::string, std::string> parseResourceAttributes(std::string_view text);

// A label value escaped for the text format (backslash, double quote, newline).
std::string escapeLabelValue(std::string_view value);

// The simulator's /metrics body (text exposition format 0.0.4).
std::string renderMetrics(const Identity& id, const Usage& usage, int64_t checkpoints);

}  // namespace paddock::agentsim
