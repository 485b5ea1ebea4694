#include "gateway/gateway.h"

#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include "operator/audit/blob.h"
#include "operator/audit/store.h"
#include "operator/common/log.h"

namespace paddock::gateway {
namespace {

prometheus::Labels runLabels(const RunConfig& run) { return {{"namespace", run.ns}, {"agentrun", run.name}}; }

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
                   .Help("Model calls refused per run and reason (budget, model, invalid)").Register(r);
  overshoot_ = &prometheus::BuildCounter().Name("paddock_gateway_overshoot_tokens_total")
                    .Help("Tokens a call used beyond its reservation (an estimate was wrong)").Register(r);
  unauthenticated_ = &prometheus::BuildCounter().Name("paddock_gateway_unauthenticated_total")
                          .Help("Requests without a credential of a run this gateway serves").Register(r);
  egress_ = &prometheus::BuildCounter().Name("paddock_gateway_egress_total")
                 .Help("Egress proxy connections by result").Register(r);
  reserved_ = &prometheus::BuildGauge().Name("paddock_gateway_reserved_usd")
                   .Help("What the run's calls in flight hold reserved, in USD").Register(r);
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
void Metrics::overshoot(const RunConfig& run, int64_t tokens) {
  overshoot_->Add(runLabels(run)).Increment(static_cast<double>(tokens));
}
void Metrics::unauthenticated() { unauthenticated_->Add({}).Increment(); }
void Metrics::egress(const std::string& result) { egress_->Add({{"result", result}}).Increment(); }
void Metrics::reserved(const RunConfig& run, int64_t nano) { reserved_->Add(runLabels(run)).Set(nano / 1e9); }
std::string Metrics::text() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

Gateway::Gateway(Config config, std::string api_key, std::unique_ptr<audit::AuditLog> audit)
    : config_(std::move(config)), api_key_(std::move(api_key)), audit_(std::move(audit)) {
  secrets_.push_back(api_key_);
  for (const auto& run : config_.runs) {
    by_hash_[run.token_sha256] = &run;
    ledger_.setLimits(run.key(), run.limits);
  }
  for (int i = 0; audit_ && i < kTranscriptWriters; ++i) writers_.emplace_back([this] { writeTranscripts(); });
}

const RunConfig* Gateway::authenticate(const std::string& token) const {
  if (token.empty()) return nullptr;
  auto it = by_hash_.find(tokenHash(token));
  return it == by_hash_.end() ? nullptr : it->second;
}

void Gateway::record(CallFacts facts) {
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
    std::vector<CallFacts> batch;
    {
      std::unique_lock l(queue_mu_);
      queue_cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is written
      batch.swap(queue_);
    }
    std::vector<audit::Entry> entries;
    for (const auto& facts : batch) {
      TranscriptRecord t = buildTranscript(facts, secrets_, config_.blob_threshold_bytes);
      Status written = Ok{};
      for (const auto& blob : t.blobs) {
        if (written) written = audit::putBlob(config_.audit_dir, blob);
      }
      if (!written) {
        log::error("a transcript blob could not be written; the call's record is left out",
                   {{"run", facts.ns + "/" + facts.name}, {"error", written.error().describe()}});
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
