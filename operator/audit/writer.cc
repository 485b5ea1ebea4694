// The AuditLog behind openAuditLog: appenders queue their entries; one writer thread seals each
// batch into the chain, writes it with one backend write (one fsync), retries with backoff while
// the backend fails, and then wakes the appenders.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "operator/audit/audit.h"
#include "operator/audit/store.h"
#include "operator/common/log.h"
#include "operator/common/timestamp.h"

namespace paddock::audit {
namespace {

using Seconds = std::chrono::duration<double>;

// paddock_audit_* metrics; every member is null without a registry.
struct Metrics {
  explicit Metrics(prometheus::Registry* r) {
    if (!r) return;
    const prometheus::Histogram::BucketBoundaries latency = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    queued = &prometheus::BuildGauge().Name("paddock_audit_queued_records")
                  .Help("Records waiting for the audit writer (the lag behind appenders)").Register(*r).Add({});
    head = &prometheus::BuildGauge().Name("paddock_audit_head_seq").Help("Seq of the last durable audit record")
                .Register(*r).Add({});
    records = &prometheus::BuildCounter().Name("paddock_audit_records_total").Help("Audit records made durable")
                   .Register(*r).Add({});
    errors = &prometheus::BuildCounter().Name("paddock_audit_write_errors_total")
                  .Help("Failed audit store writes (each is retried)").Register(*r).Add({});
    write = &prometheus::BuildHistogram().Name("paddock_audit_write_seconds")
                 .Help("One batch's write and fsync (or journaled insert)").Register(*r).Add({}, latency);
    append = &prometheus::BuildHistogram().Name("paddock_audit_append_seconds")
                  .Help("From append() to durable, queueing included").Register(*r).Add({}, latency);
  }
  prometheus::Gauge* queued = nullptr;
  prometheus::Gauge* head = nullptr;
  prometheus::Counter* records = nullptr;
  prometheus::Counter* errors = nullptr;
  prometheus::Histogram* write = nullptr;
  prometheus::Histogram* append = nullptr;
};

std::optional<uint64_t> onceKeyOf(const Entry& e) {
  return onceKey(e.run.uid, actionName(e.action), e.actor, e.details);
}

class GroupCommitLog final : public AuditLog {
 public:
  GroupCommitLog(std::unique_ptr<Backend> backend, AuditLogOptions options, Head head, prometheus::Registry* registry,
                 std::unordered_set<uint64_t> once)
      : backend_(std::move(backend)), options_(std::move(options)), metrics_(registry), once_(std::move(once)),
        head_(std::move(head)) {
    if (metrics_.head) metrics_.head->Set(static_cast<double>(head_.seq));
    writer_ = std::thread([this] { run(); });
  }

  // Callers must have returned from append() first.
  ~GroupCommitLog() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    stop_.cancel();
    work_cv_.notify_all();
    writer_.join();
  }

  Result<AppendResult> append(std::vector<Entry> entries, const CancelToken& cancel) override;

  Head head() const override {
    std::lock_guard lock(mu_);
    return head_;
  }

 private:
  struct Request {
    std::vector<Entry> entries;
    size_t count = 0;
    bool taken = false;  // in a batch being written: no longer withdrawable
    bool done = false;
    std::optional<Result<AppendResult>> result;
  };

  void run();
  // Writes `records` until durable; an error when the log closes or another writer holds the chain.
  std::optional<Error> writeUntilDurable(const std::vector<Record>& records);
  void finish(std::vector<std::shared_ptr<Request>>& batch, const std::vector<Record>& records,
              const std::optional<Error>& error);  // requires mu_

  std::unique_ptr<Backend> backend_;
  const AuditLogOptions options_;
  Metrics metrics_;
  CancelToken stop_;  // cuts the writer's backoff short on close

  mutable std::mutex mu_;
  std::unordered_set<uint64_t> once_;          // guarded by mu_: the one-time records in the chain (onceKey)
  std::condition_variable cv_;       // appenders: room in the queue, or their request done
  std::condition_variable work_cv_;  // the writer: requests queued, or stopping
  std::deque<std::shared_ptr<Request>> queue_;  // guarded by mu_
  size_t queued_records_ = 0;                   // guarded by mu_
  Head head_;                                   // guarded by mu_
  std::optional<Error> failed_;                 // guarded by mu_: Conflict, for good
  bool stopping_ = false;                       // guarded by mu_
  std::thread writer_;
};

Result<AppendResult> GroupCommitLog::append(std::vector<Entry> entries, const CancelToken& cancel) {
  if (entries.empty()) return Error::local("InvalidArgument", "nothing to append");
  for (const auto& e : entries) {
    if (auto s = validateEntry(e); !s) return s.error();
  }
  size_t duplicates = 0;
  {
    std::lock_guard lock(mu_);
    std::erase_if(entries, [&](const Entry& e) {
      auto key = onceKeyOf(e);
      return key && once_.count(*key) && ++duplicates;
    });
  }
  if (entries.empty()) return AppendResult{0, 0, "", duplicates};
  auto start = options_.clock->now();
  auto req = std::make_shared<Request>();
  req->count = entries.size();
  req->entries = std::move(entries);
  // Registered before the lock is taken (the callback takes it) and dropped after it is released.
  auto wake = cancel.onCancel([this] {
    std::lock_guard l(mu_);
    cv_.notify_all();
  });
  std::unique_lock lock(mu_);
  const size_t n = req->count;
  cv_.wait(lock, [&] {
    return stopping_ || failed_ || cancel.cancelled() || queued_records_ == 0 ||
           queued_records_ + n <= options_.max_queued_records;
  });
  if (failed_) return *failed_;
  if (stopping_) return Error::local("Closed", "the audit log is closed");
  if (cancel.cancelled()) return Error::local("Cancelled", "cancelled while waiting for room in the audit queue");
  queue_.push_back(req);
  queued_records_ += n;
  if (metrics_.queued) metrics_.queued->Set(static_cast<double>(queued_records_));
  work_cv_.notify_one();

  cv_.wait(lock, [&] { return req->done || cancel.cancelled(); });
  if (!req->done) {
    if (req->taken) {
      return Error::local("Cancelled", "cancelled while the records were being written: they were not acknowledged "
                                       "and may still become durable");
    }
    queue_.erase(std::find(queue_.begin(), queue_.end(), req));
    queued_records_ -= n;
    cv_.notify_all();
    return Error::local("Cancelled", "cancelled before the records were written");
  }
  if (metrics_.append && req->result->ok()) metrics_.append->Observe(Seconds(options_.clock->now() - start).count());
  Result<AppendResult> result = *req->result;
  if (result) result->duplicates = duplicates;
  return result;
}

void GroupCommitLog::run() {
  while (true) {
    std::vector<std::shared_ptr<Request>> batch;
    Head head;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      size_t n = 0;
      while (!queue_.empty() && (batch.empty() || n + queue_.front()->count <= options_.max_batch_records)) {
        auto req = std::move(queue_.front());
        queue_.pop_front();
        req->taken = true;
        n += req->count;
        queued_records_ -= req->count;
        batch.push_back(std::move(req));
      }
      if (metrics_.queued) metrics_.queued->Set(static_cast<double>(queued_records_));
      cv_.notify_all();
      head = head_;
    }
    std::vector<Record> records;
    std::string time = formatMicroTime(options_.wall_clock());
    for (auto& req : batch) {
      for (auto& entry : req->entries) {
        records.push_back(seal(std::move(entry), head, time));
        head = Head{records.back().seq, records.back().hash};
      }
      req->entries.clear();
    }
    auto error = writeUntilDurable(records);
    std::lock_guard lock(mu_);
    finish(batch, records, error);
  }
  // Closing: whoever still waits in the queue gets Closed.
  std::lock_guard lock(mu_);
  for (auto& req : queue_) {
    req->result = Error::local("Closed", "the audit log closed before the records were written");
    req->done = true;
  }
  queue_.clear();
  queued_records_ = 0;
  cv_.notify_all();
}

std::optional<Error> GroupCommitLog::writeUntilDurable(const std::vector<Record>& records) {
  auto backoff = std::chrono::duration_cast<Clock::Duration>(options_.backoff_initial);
  while (true) {
    auto start = options_.clock->now();
    Status s = backend_->write(records);
    if (metrics_.write) metrics_.write->Observe(Seconds(options_.clock->now() - start).count());
    if (s) return std::nullopt;
    if (metrics_.errors) metrics_.errors->Increment();
    if (s.error().reason == "Conflict") {
      log::error("another writer holds the audit chain; this log stops",
                 {{"store", backend_->describe()}, {"error", s.error().describe()}});
      return s.error();
    }
    log::warn("audit store write failed; retrying",
              {{"store", backend_->describe()}, {"error", s.error().describe()}, {"seq", records.front().seq},
               {"records", records.size()},
               {"backoff_ms", std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count()}});
    if (!options_.clock->sleepFor(backoff, stop_)) {
      return Error::local("Closed", "the audit log closed before the records were durable");
    }
    backoff = std::min<Clock::Duration>(backoff * 2, options_.backoff_max);
  }
}

void GroupCommitLog::finish(std::vector<std::shared_ptr<Request>>& batch, const std::vector<Record>& records,
                            const std::optional<Error>& error) {
  if (!error) {
    head_ = Head{records.back().seq, records.back().hash};
    for (const auto& r : records) {
      if (auto key = onceKeyOf(r.entry)) once_.insert(*key);
    }
    if (metrics_.records) metrics_.records->Increment(static_cast<double>(records.size()));
    if (metrics_.head) metrics_.head->Set(static_cast<double>(head_.seq));
  } else if (error->reason == "Conflict") {
    failed_ = error;
    for (auto& req : queue_) batch.push_back(req);
    queue_.clear();
    queued_records_ = 0;
  }
  size_t next = 0;
  for (auto& req : batch) {
    if (error || !req->taken || next + req->count > records.size()) {
      req->result = error ? *error : Error::local("Closed", "not written");
    } else {
      const Record& last = records[next + req->count - 1];
      req->result = AppendResult{records[next].seq, last.seq, last.hash};
      next += req->count;
    }
    req->done = true;
  }
  cv_.notify_all();
}

// The one-time records of the chain as stored (a record that cannot be read is verify's
// business, not the writer's).
Result<std::unordered_set<uint64_t>> readOnceKeys(Backend& backend, const AuditLogOptions& options) {
  std::unordered_set<uint64_t> once;
  auto s = backend.read([&](const StoredItem& item) {
    const auto& j = item.json;
    if (item.kind != StoredItem::Kind::Record || !j.is_object() || !j.contains("details")) return true;
    if (options.on_record) options.on_record(j);
    auto key = onceKey(j.value(nlohmann::json::json_pointer("/run/uid"), std::string()), j.value("action", ""),
                       j.value("actor", ""), j["details"]);
    if (key) once.insert(*key);
    return true;
  });
  if (!s) return s.error();
  return once;
}

// Seals and writes one record of the log's own (StoreRepaired, WriterStarted) after `head`.
Status writeOwn(Backend& backend, const AuditLogOptions& options, Action action, const nlohmann::json& details,
                Head& head) {
  Record r = seal(Entry{options.actor, {}, action, details}, head, formatMicroTime(options.wall_clock()));
  if (auto s = backend.write({r}); !s) return s.error();
  head = Head{r.seq, r.hash};
  return Ok{};
}

}  // namespace

std::optional<uint64_t> onceKey(const std::string& run_uid, std::string_view action, const std::string& actor,
                                const nlohmann::json& details) {
  if (run_uid.empty() || action == "RunRefused" || action == "ChildRestored" || action == "ModelCall" ||
      action == "ToolCall") return std::nullopt;
  // FNV-1a over the fields, each ended by a NUL: stable across processes and builds.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view part) {
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0) * 1099511628211ULL;
  };
  mix(run_uid), mix(action), mix(actor), mix(canonical(details));
  return h;
}

Result<std::unique_ptr<AuditLog>> openAuditLog(std::unique_ptr<Backend> backend, AuditLogOptions options,
                                               prometheus::Registry* registry) {
  auto opened = backend->open();
  if (!opened) return opened.error();
  Head head = opened->head;
  if (opened->repair) {
    // The repair is the first thing the chain says after the crash, before any other record.
    if (auto s = writeOwn(*backend, options, Action::StoreRepaired, *opened->repair, head); !s) return s.error();
    log::warn("audit store repaired: a torn tail was cut",
              {{"store", backend->describe()}, {"seq", head.seq}, {"details", *opened->repair}});
  }
  auto once = readOnceKeys(*backend, options);
  if (!once) return once.error();
  if (options.writer_started) {
    nlohmann::json details = *options.writer_started;
    details["continuesFrom"] = head.seq;
    if (auto s = writeOwn(*backend, options, Action::WriterStarted, details, head); !s) return s.error();
  }
  return std::unique_ptr<AuditLog>(std::make_unique<GroupCommitLog>(std::move(backend), std::move(options), std::move(head),
                                                                    registry, std::move(*once)));
}

}  // namespace paddock::audit
