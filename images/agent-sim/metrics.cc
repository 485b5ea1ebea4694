#include "images/agent-sim/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace paddock::agentsim {
namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexDigit(s[i + 1]) >= 0 && hexDigit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexDigit(s[i + 1]) * 16 + hexDigit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The shortest text that reads back as the same double ("0.5", "12", "1e-06").
std::string number(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

Usage usageAt(const Rates& rates, double elapsed_seconds) {
  Usage u;
  double t = std::max(0.0, elapsed_seconds);
  if (rates.reset_after_seconds > 0 && t >= rates.reset_after_seconds) {
    t -= rates.reset_after_seconds;
    u.reset = true;
  }
  auto total = static_cast<int64_t>(std::floor(rates.tokens_per_second * t));
  u.output_tokens = total / 4;
  u.input_tokens = total - u.output_tokens;
  u.cost_usd = rates.usd_per_second * t;
  return u;
}

std::map<std::string, std::string> parseResourceAttributes(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view pair = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key = trim(pair.substr(0, eq));
    if (key.empty()) continue;
    out[percentDecode(key)] = percentDecode(trim(pair.substr(eq + 1)));
  }
  return out;
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string renderMetrics(const Identity& id, const Usage& usage, int64_t checkpoints) {
  std::string run = "agentrun=\"" + escapeLabelValue(id.agentrun) + "\",namespace=\"" + escapeLabelValue(id.ns) + "\"";
  std::string model = run + ",model=\"" + escapeLabelValue(id.model) + "\"";
  std::string out;
  out += "# HELP claude_code_token_usage_tokens_total Number of tokens used\n";
  out += "# TYPE claude_code_token_usage_tokens_total counter\n";
  out += "claude_code_token_usage_tokens_total{" + model + ",type=\"input\"} " + std::to_string(usage.input_tokens) + "\n";
  out += "claude_code_token_usage_tokens_total{" + model + ",type=\"output\"} " + std::to_string(usage.output_tokens) + "\n";
  out += "# HELP claude_code_cost_usage_USD_total Cost of the Claude Code session\n";
  out += "# TYPE claude_code_cost_usage_USD_total counter\n";
  out += "claude_code_cost_usage_USD_total{" + model + "} " + number(usage.cost_usd) + "\n";
  out += "# HELP paddock_agent_checkpoints_total Checkpoints written because the pod asked for one\n";
  out += "# TYPE paddock_agent_checkpoints_total counter\n";
  out += "paddock_agent_checkpoints_total{" + run + "} " + std::to_string(checkpoints) + "\n";
  return out;
}

}  // namespace paddock::agentsim
