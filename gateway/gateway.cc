#include "gateway/gateway.h"

#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include "operator/audit/blob.h"
#include "operator/audit/store.h"
#include "operator/common/log.h"

namespace paddock::gateway {
namespace {

// `credential` (the first 12 hex digits of the credential's SHA-256, as the run's status.gateway
// records it whole) tells a run from a namesake before it: the operator charges a series to the run
// only when it matches (controllers/usage.h).
prometheus::Labels runLabels(const RunConfig& run) {
  return {{"namespace", run.ns}, {"agentrun", run.name}, {"credential", run.token_sha256.substr(0, 12)}};
}

}  // namespace

std::string tokenHash(const std::string& token) { return audit::blobHash(token).substr(7); }

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  tokens_ = &prometheus::BuildCounter().Name("paddock_gateway_tokens_total")
                 .Help("Tokens the model API reported per run and type (input, output, cache_read, cache_write)")
                 .Register(r);
  cost_ = &prometheus::BuildCounter().Name("paddock_gateway_cost_usd_total")
               .Help("What the run's model calls cost at the configured prices, in USD").Register(r);
  requests_ = &prometheus::BuildCounter().Name("paddock_gateway_requests_total")
                   .Help("Model calls per run and the status the agent got").Register(r);
  refusals_ = &prometheus::BuildCounter().Name("paddock_gateway_refusals_total")
                   .Help("Refusals per run and reason: model calls (budget, model, invalid), MCP messages "
                         "(mcp_tool, mcp_arguments, mcp_schema, mcp_method, mcp_invalid), and tool calls the agent "
                         "reports refused (tool: its permission rules; sandbox: the kernel)").Register(r);
  tool_calls_ = &prometheus::BuildCounter().Name("paddock_gateway_tool_calls_total")
                     .Help("MCP tool calls per run, server, tool and verdict (forwarded, refused)").Register(r);
  overshoot_ = &prometheus::BuildCounter().Name("paddock_gateway_overshoot_tokens_total")
                    .Help("Tokens a call used beyond its reservation (an estimate was wrong)").Register(r);
  unauthenticated_ = &prometheus::BuildCounter().Name("paddock_gateway_unauthenticated_total")
                          .Help("Requests without a credential of a run this gateway serves").Register(r);
  egress_ = &prometheus::BuildCounter().Name("paddock_gateway_egress_total")
                 .Help("Egress proxy connections by result").Register(r);
  reserved_ = &prometheus::BuildGauge().Name("paddock_gateway_reserved_usd")
                   .Help("What the run's calls in flight hold reserved, in USD").Register(r);
  overhead_ = &prometheus::BuildHistogram().Name("paddock_gateway_overhead_seconds")
                   .Help("Time from an agent's model call to its forwarding upstream, per namespace").Register(r);
  first_byte_ = &prometheus::BuildHistogram().Name("paddock_gateway_first_byte_seconds")
                     .Help("Time from an agent's model call to the answer's first byte reaching it, per namespace")
                     .Register(r);
}

void Metrics::declare(const RunConfig& run) {
  for (const char* type : {"input", "output", "cache_read", "cache_write"}) {
    auto labels = runLabels(run);
    labels["type"] = type;
    tokens_->Add(labels);
  }
  cost_->Add(runLabels(run));
}

void Metrics::tokens(const RunConfig& run, const Usage& u) {
  auto add = [&](const char* type, int64_t n) {
    auto labels = runLabels(run);
    labels["type"] = type;
    tokens_->Add(labels).Increment(static_cast<double>(n));
  };
  add("input", u.input);
  add("output", u.output);
  add("cache_read", u.cache_read);
  add("cache_write", u.cache_write);
}
void Metrics::cost(const RunConfig& run, int64_t nano) { cost_->Add(runLabels(run)).Increment(nano / 1e9); }
void Metrics::request(const RunConfig& run, int status) {
  auto labels = runLabels(run);
  labels["code"] = std::to_string(status);
  requests_->Add(labels).Increment();
}
void Metrics::refusal(const RunConfig& run, const std::string& reason) {
  auto labels = runLabels(run);
  labels["reason"] = reason;
  refusals_->Add(labels).Increment();
}
void Metrics::toolCall(const RunConfig& run, const std::string& server, const std::string& tool, const std::string& verdict) {
  auto labels = runLabels(run);
  labels["server"] = server;
  labels["tool"] = tool;
  labels["verdict"] = verdict;
  tool_calls_->Add(labels).Increment();
}
void Metrics::overshoot(const RunConfig& run, int64_t tokens) {
  overshoot_->Add(runLabels(run)).Increment(static_cast<double>(tokens));
}
void Metrics::unauthenticated() { unauthenticated_->Add({}).Increment(); }
void Metrics::egress(const std::string& result) { egress_->Add({{"result", result}}).Increment(); }
void Metrics::reserved(const RunConfig& run, int64_t nano) { reserved_->Add(runLabels(run)).Set(nano / 1e9); }
namespace {
double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }
const prometheus::Histogram::BucketBoundaries& overheadBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1};
  return b;
}
const prometheus::Histogram::BucketBoundaries& firstByteBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return b;
}
}  // namespace
void Metrics::overhead(const RunConfig& run, std::chrono::steady_clock::duration d) {
  overhead_->Add({{"namespace", run.ns}}, overheadBuckets()).Observe(seconds(d));
}
void Metrics::firstByte(const RunConfig& run, std::chrono::steady_clock::duration d) {
  first_byte_->Add({{"namespace", run.ns}}, firstByteBuckets()).Observe(seconds(d));
}
std::string Metrics::text() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

Gateway::Gateway(Config config, std::string api_key, std::unique_ptr<audit::AuditLog> audit)
    : state_(makeState(std::move(config))), audit_dir_(state_->config.audit_dir),
      blob_threshold_bytes_(state_->config.blob_threshold_bytes), api_key_(std::move(api_key)), audit_(std::move(audit)) {
  secrets_.push_back(api_key_);
  for (const auto& run : state_->config.runs) {
    ledger_.setLimits(run.key(), run.limits);
    metrics_.declare(run);
  }
  for (int i = 0; audit_ && i < kTranscriptWriters; ++i) writers_.emplace_back([this] { writeTranscripts(); });
}

std::shared_ptr<const Gateway::State> Gateway::makeState(Config config) {
  auto s = std::make_shared<State>();
  s->config = std::move(config);
  for (const auto& run : s->config.runs) s->by_hash[run.token_sha256] = &run;
  return s;
}

std::shared_ptr<const Gateway::State> Gateway::state() const {
  std::lock_guard l(state_mu_);
  return state_;
}

std::shared_ptr<const Config> Gateway::config() const {
  auto s = state();
  return {s, &s->config};
}

std::shared_ptr<const RunConfig> Gateway::authenticate(const std::string& token) const {
  if (token.empty()) return nullptr;
  auto s = state();
  auto it = s->by_hash.find(tokenHash(token));
  if (it == s->by_hash.end()) return nullptr;
  return {s, it->second};
}

std::vector<std::string> Gateway::reload(Config next) {
  auto now = state();
  std::vector<std::string> kept;
  if (next.listen != now->config.listen) kept.push_back("listen");
  if (next.api_key_file != now->config.api_key_file) kept.push_back("apiKeyFile");
  if (next.audit_dir != now->config.audit_dir) kept.push_back("auditDir");
  next.listen = now->config.listen;
  next.api_key_file = now->config.api_key_file;
  next.audit_dir = now->config.audit_dir;
  next.blob_threshold_bytes = now->config.blob_threshold_bytes;
  // Limits first: a run is authenticated only once its account has its caps.
  for (const auto& run : next.runs) {
    ledger_.setLimits(run.key(), run.limits);
    metrics_.declare(run);
  }
  auto fresh = makeState(std::move(next));
  std::lock_guard l(state_mu_);
  state_ = std::move(fresh);
  return kept;
}

void Gateway::record(CallFacts facts) { enqueue(std::move(facts)); }
void Gateway::record(ToolCallFacts facts) { enqueue(std::move(facts)); }

void Gateway::enqueue(Pending facts) {
  if (!audit_) return;
  std::lock_guard l(queue_mu_);
  queue_.push_back(std::move(facts));
  queue_cv_.notify_one();
}

Gateway::~Gateway() {
  {
    std::lock_guard l(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  for (auto& w : writers_) w.join();
}

void Gateway::writeTranscripts() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock l(queue_mu_);
      queue_cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is written
      batch.swap(queue_);
    }
    std::vector<audit::Entry> entries;
    for (const auto& pending : batch) {
      TranscriptRecord t = std::visit(
          [&](const auto& facts) {
            if constexpr (std::is_same_v<std::decay_t<decltype(facts)>, CallFacts>) {
              return buildTranscript(facts, secrets_, blob_threshold_bytes_);
            } else {
              return buildToolCallRecord(facts, secrets_, blob_threshold_bytes_);
            }
          },
          pending);
      Status written = Ok{};
      for (const auto& blob : t.blobs) {
        if (written) written = audit::putBlob(audit_dir_, blob);
      }
      if (!written) {
        log::error("a transcript blob could not be written; the call's record is left out",
                   {{"run", t.entry.run.ns + "/" + t.entry.run.name}, {"error", written.error().describe()}});
        continue;
      }
      entries.push_back(std::move(t.entry));
    }
    if (entries.empty()) continue;
    CancelToken never;
    if (auto r = audit_->append(std::move(entries), never); !r) {
      log::error("transcript records could not be appended", {{"records", batch.size()}, {"error", r.error().describe()}});
    }
  }
}

void Gateway::restoreSpend(const std::string& dir) {
  std::map<std::string, std::pair<int64_t, int64_t>> spent;
  Status s = audit::readStore(dir, [&](const audit::StoredItem& item) {
    const auto& r = item.json;
    if (item.kind != audit::StoredItem::Kind::Record || r.value("action", "") != "ModelCall") return true;
    const auto& sp = r["details"].value("spent", nlohmann::json::object());
    auto nano = parseUsdNano(sp.value("costUSD", "0"));
    spent[r["run"].value("namespace", "") + "/" + r["run"].value("name", "")] = {sp.value("tokens", int64_t{0}),
                                                                                 nano.value_or(0)};
    return true;
  });
  if (!s) return;
  for (const auto& [run, figures] : spent) {
    ledger_.restore(run, figures.first, figures.second);
    log::info("run spend restored from the audit store",
              {{"run", run}, {"tokens", figures.first}, {"costUSD", formatUsd(figures.second)}});
  }
}

}  // namespace paddock::gateway
