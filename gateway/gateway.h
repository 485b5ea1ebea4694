// What every connection of paddock-gateway shares: the configuration, the model key, the runs by
// the hash of their credential, the ledger, the conversation index, the metrics and the
// transcript sink. The I/O (listener.cc, relay.cc, proxy.cc) reads it; the decisions it needs are
// the pure functions of the other headers.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "gateway/budget.h"
#include "gateway/config.h"
#include "gateway/mcp.h"
#include "gateway/transcript.h"
#include "operator/audit/audit.h"

namespace paddock::gateway {

// paddock_gateway_* metrics. Labels namespace and agentrun are the run's, as the operator's
// budget queries group by (scrape with honor_labels so the scrape keeps them).
class Metrics {
 public:
  Metrics();
  // The run's token and cost counters at zero, so a run that has made no call yet reads as 0,
  // not as missing: a missing series then means the gateway is not scraped (controllers/budget.h).
  void declare(const RunConfig& run);
  void tokens(const RunConfig& run, const Usage& usage);
  void cost(const RunConfig& run, int64_t nano);
  void request(const RunConfig& run, int status);
  // budget, model, invalid (model calls); mcp_tool, mcp_arguments, mcp_schema, mcp_method,
  // mcp_invalid (MCP); tool, sandbox (tool calls the agent reports refused, toolRefusals)
  void refusal(const RunConfig& run, const std::string& reason);
  // An MCP tools/call by server, tool and verdict (forwarded, refused).
  void toolCall(const RunConfig& run, const std::string& server, const std::string& tool, const std::string& verdict);
  void overshoot(const RunConfig& run, int64_t tokens);
  void unauthenticated();
  void egress(const std::string& result);  // allowed, refused_host, refused_address, refused_sni, failed
  void reserved(const RunConfig& run, int64_t nano);  // gauge: what calls in flight hold
  // Per namespace (not per run: a histogram a run would be too many series): the time from the
  // agent's request to its forwarding upstream (the gateway's own work: authentication, checks,
  // reservation, rewrite), and to the answer's first byte reaching the agent.
  void overhead(const RunConfig& run, std::chrono::steady_clock::duration d);
  void firstByte(const RunConfig& run, std::chrono::steady_clock::duration d);
  std::string text() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* tokens_;
  prometheus::Family<prometheus::Counter>* cost_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* refusals_;
  prometheus::Family<prometheus::Counter>* tool_calls_;
  prometheus::Family<prometheus::Counter>* overshoot_;
  prometheus::Family<prometheus::Counter>* unauthenticated_;
  prometheus::Family<prometheus::Counter>* egress_;
  prometheus::Family<prometheus::Gauge>* reserved_;
  prometheus::Family<prometheus::Histogram>* overhead_;
  prometheus::Family<prometheus::Histogram>* first_byte_;
};

class Gateway {
 public:
  // `audit` may be null (no transcript).
  Gateway(Config config, std::string api_key, std::unique_ptr<audit::AuditLog> audit);

  // The configuration now. A call holds the one it started with to its end, whatever a reload
  // swaps in meanwhile.
  std::shared_ptr<const Config> config() const;
  const std::string& apiKey() const { return api_key_; }
  // The run whose credential `token` is, or null.
  std::shared_ptr<const RunConfig> authenticate(const std::string& token) const;
  // Swaps in a new configuration: its runs, budgets, prices, pin, checkpoint, egress and limits
  // apply to calls that start from now on. listen, apiKeyFile and auditDir stay as they were at
  // start (a change to them needs a restart: the answer names them). A run that left the
  // configuration is no longer authenticated; its spend stays in the ledger should it return.
  std::vector<std::string> reload(Config next);
  Ledger& ledger() { return ledger_; }
  ConversationIndex& conversations() { return conversations_; }
  McpCatalog& mcpCatalog() { return mcp_catalog_; }
  Metrics& metrics() { return metrics_; }
  // Queues the call's transcript record and returns at once. Writer threads (kTranscriptWriters)
  // each take every call queued, mask them, write their blobs, and append the batch with one
  // append; the audit log commits concurrent appends together (one fsync), so building one batch
  // overlaps the fsync of another. A failure is logged (the call happened).
  void record(CallFacts facts);
  void record(ToolCallFacts facts);
  // Secret values that must never reach a log or a record.
  const std::vector<std::string>& secrets() const { return secrets_; }
  // Seeds the ledger from the runs' last ModelCall records in the audit store (after a restart).
  void restoreSpend(const std::string& audit_dir);

 private:
  struct State {
    Config config;
    std::map<std::string, const RunConfig*> by_hash;  // into config.runs
  };
  static std::shared_ptr<const State> makeState(Config config);
  std::shared_ptr<const State> state() const;
  mutable std::mutex state_mu_;
  std::shared_ptr<const State> state_;  // guarded by state_mu_; swapped whole by reload
  const std::string audit_dir_;         // as at start
  const int64_t blob_threshold_bytes_;  // as at start
  std::string api_key_;
  std::vector<std::string> secrets_;
  Ledger ledger_;
  ConversationIndex conversations_;
  McpCatalog mcp_catalog_;
  Metrics metrics_;
  std::unique_ptr<audit::AuditLog> audit_;
  void writeTranscripts();
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  using Pending = std::variant<CallFacts, ToolCallFacts>;
  void enqueue(Pending facts);
  std::vector<Pending> queue_;  // guarded by queue_mu_
  bool stopping_ = false;         // guarded by queue_mu_
  std::vector<std::thread> writers_;  // last: started once everything above exists

 public:
  ~Gateway();
};

inline constexpr int kTranscriptWriters = 4;

// Lowercase hex SHA-256 of a credential.
std::string tokenHash(const std::string& token);

}  // namespace paddock::gateway
