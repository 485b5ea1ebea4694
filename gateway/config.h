// paddock-gateway's configuration: one YAML (or JSON) file, parsed by a pure function. Prices,
// the pinned model, the runs it serves with their credentials' hashes and budgets, the egress
// allow-list, the upstream and where the model key is. Every error names the field and the fix.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/egress.h"
#include "operator/common/result.h"

namespace paddock::gateway {

// USD per token, in nano-dollars (10^-9 USD), so that the ledger is exact integer arithmetic.
// Configured as USD per million tokens ("3", "0.30"): one nano-dollar per token is $0.001/MTok.
struct Price {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cache_read = 0;
  int64_t cache_write = 0;
  bool operator==(const Price&) const = default;
};

// A run's caps; 0 means no cap on that dimension.
struct Limits {
  int64_t tokens = 0;
  int64_t cost_nano = 0;
  bool operator==(const Limits&) const = default;
};

struct RunConfig {
  std::string ns;
  std::string name;
  std::string token_sha256;  // lowercase hex of SHA-256 of the run's credential
  Limits limits;
  std::string key() const { return ns + "/" + name; }
};

// An MCP server the runs reach through the gateway (mcp.h).
struct McpServer {
  std::string name;                // the gateway serves it at /mcp/<name>
  std::string url;                 // http(s)://host[:port]/path: the server's streamable HTTP endpoint
  std::vector<std::string> tools;  // the tools runs may call
  std::string credential_file;     // "" when the server takes no credential
  // The header that carries the credential: "Authorization" sends "Bearer <credential>"; any
  // other header sends the credential as it is.
  std::string credential_header = "Authorization";
  bool operator==(const McpServer&) const = default;
};

// A DNS-label name ([a-z0-9-], at most 63), as the gateway's path and Claude Code's tool names use it.
bool validMcpServerName(std::string_view name);

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string upstream = "https://api.anthropic.com";  // http:// or https://, no path
  std::string api_key_file;                            // the real model key, read at start
  std::string pinned_model;                            // empty: any model that has a price
  std::map<std::string, Price> prices;                 // by model name
  std::vector<RunConfig> runs;
  int checkpoint_percent = 60;
  int64_t max_request_bytes = 32 << 20;
  // Tokens added to the byte count of a request for what the API adds itself (tool-use prompt).
  int64_t input_overhead_tokens = 1024;
  int upstream_timeout_seconds = 600;      // no byte from upstream for this long: the call fails
  int client_write_timeout_seconds = 30;   // a client that reads nothing for this long is dropped
  std::vector<EgressRule> egress;
  std::vector<McpServer> mcp_servers;
  std::string audit_dir;                   // empty: no transcript
  int64_t blob_threshold_bytes = 4096;     // larger message bodies go to content-addressed blobs
};

// Parses the configuration text. Errors have reason InvalidConfig and name the field.
Result<Config> parseConfig(std::string_view text);

// "1.5" (USD) as nano-dollars; nullopt when it is not a non-negative decimal with at most 9
// fractional digits.
std::optional<int64_t> parseUsdNano(std::string_view text);
// USD per million tokens as nano-dollars per token (a price with more precision is refused).
std::optional<int64_t> parsePerMillionNano(std::string_view text);
// nano-dollars as a decimal USD string ("1.5", "0.000003").
std::string formatUsd(int64_t nano);

}  // namespace paddock::gateway
