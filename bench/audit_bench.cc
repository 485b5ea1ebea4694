// Audit store benchmark: records per second and p99 append latency, with fsync (segment files) or
// a journaled majority insert (MongoDB), for appends of 1, 10 and 100 records, by one appender and
// by several at once (group commit batches concurrent appends into one write). Not a test.
//
//   paddock-bench-audit --dir /var/tmp/audit-bench [--mongodb-uri mongodb://127.0.0.1:27218/] [--out results.json]
//
// The directory must be on a real disk (on tmpfs an fsync costs nothing). Each measurement starts
// on an empty store: a fresh subdirectory, or a fresh collection.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "gateway/gateway.h"
#include "operator/audit/audit.h"
#include "operator/audit/store.h"
#include "operator/common/flags.h"
#include "operator/common/log.h"

using namespace paddock;
using namespace paddock::audit;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

struct Measurement {
  double records_per_second = 0;
  double p50_ms = 0, p99_ms = 0;
};

// `threads` appenders, each appending `batch` records per call, until `records` are durable.
Result<Measurement> measure(const std::string& target, const StoreOptions& options, int batch, int threads,
                            int records) {
  auto log = openAuditLog(makeBackend(target, options));
  if (!log) return log.error();
  int calls_per_thread = std::max(1, records / batch / threads);
  std::vector<std::vector<double>> latencies(threads);
  std::vector<std::string> errors(threads);
  auto start = Steady::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      CancelToken never;
      for (int i = 0; i < calls_per_thread && errors[t].empty(); ++i) {
        std::vector<Entry> entries;
        for (int b = 0; b < batch; ++b) {
          entries.push_back(Entry{"paddock-operator", RunRef{"bench", "run-" + std::to_string(t), "uid"},
                                  Action::ChildCreated, {{"kind", "Pod"}, {"name", "pod-" + std::to_string(i)}}});
        }
        auto begin = Steady::now();
        auto r = (*log)->append(std::move(entries), never);
        if (!r) errors[t] = r.error().describe();
        latencies[t].push_back(std::chrono::duration<double, std::milli>(Steady::now() - begin).count());
      }
    });
  }
  for (auto& w : workers) w.join();
  double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  for (const auto& e : errors) {
    if (!e.empty()) return Error::local("Bench", e);
  }
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto at = [&](double q) { return all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))]; };
  return Measurement{static_cast<double>(calls_per_thread) * batch * threads / seconds, at(0.50), at(0.99)};
}

// paddock-gateway's transcript path: `threads` callers hand a model call's facts to
// Gateway::record (which returns at once); its writers mask them and append whatever is queued
// in one append (one fsync). Records per second from the first call until all are durable.
Result<double> measureGateway(const std::string& dir, int threads, int records) {
  auto log = openAuditLog(makeBackend(dir), AuditLogOptions{.actor = "paddock-gateway"});
  if (!log) return log.error();
  gateway::Config config;
  config.audit_dir = dir;
  int per_thread = std::max(1, records / threads);
  auto start = Steady::now();
  {
    gateway::Gateway g(config, "sk-ant-bench-key-0000000000000000000000", std::move(*log));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          gateway::CallFacts f;
          f.ns = "bench";
          f.name = "run-" + std::to_string(t);
          f.model = "claude-sonnet-4-5";
          f.new_messages = json::array({{{"role", "user"}, {"content", std::string(1500, 'x')}}});
          f.response_content = json::array({{{"type", "text"}, {"text", "Editing the file now."}}});
          f.usage = {1200, 80, 0, 0};
          g.record(std::move(f));
        }
      });
    }
    for (auto& w : workers) w.join();
  }  // destroying the gateway drains its queue: every record is durable here
  return static_cast<double>(per_thread) * threads / std::chrono::duration<double>(Steady::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, mongo_uri, out_file;
  int records = 20000, mongo_records = 5000, concurrent = 8;
  Flags flags("paddock-bench-audit", "Measures audit appends per second and their p99 latency, fsync included.");
  flags.add("dir", &dir, "Directory for the segment-file stores (on a real disk; emptied first). Required.");
  flags.add("mongodb-uri", &mongo_uri, "MongoDB URI to measure too (e.g. FerretDB from e2e/ferretdb.sh); empty: skip.");
  flags.add("records", &records, "Records per measurement, segment files.");
  flags.add("mongo-records", &mongo_records, "Records per measurement, MongoDB.");
  flags.add("threads", &concurrent, "Concurrent appenders in the group-commit rows.");
  flags.add("out", &out_file, "Also write the results as JSON to this file.");
  flags.parseOrExit(argc, argv);
  if (dir.empty()) {
    std::fprintf(stderr, "--dir is required\n");
    return 2;
  }
  log::setLevel(log::Level::Warn);
  std::filesystem::remove_all(dir);

  struct Backend {
    std::string name, target;
    int records;
  };
  std::vector<Backend> backends = {{"segment files", dir, records}};
  if (!mongo_uri.empty()) backends.push_back({"MongoDB", mongo_uri + "paddock_bench", mongo_records});

  json results = json::array();
  std::printf("| backend | records per append | appenders | records/s | p50 append ms | p99 append ms |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  int run = 0;
  for (const auto& b : backends) {
    for (int batch : {1, 10, 100}) {
      for (int threads : {1, concurrent}) {
        StoreOptions options;
        std::string target = b.target;
        options.collection = "bench_" + std::to_string(::getpid()) + "_" + std::to_string(++run);
        if (!isMongoUri(target)) target = dir + "/" + std::to_string(run);
        auto m = measure(target, options, batch, threads, b.records);
        if (!m) {
          std::fprintf(stderr, "%s: %s\n", b.name.c_str(), m.error().describe().c_str());
          return 1;
        }
        std::printf("| %s | %d | %d | %.0f | %.2f | %.2f |\n", b.name.c_str(), batch, threads, m->records_per_second,
                    m->p50_ms, m->p99_ms);
        std::fflush(stdout);
        results.push_back({{"backend", b.name}, {"batch", batch}, {"appenders", threads},
                           {"recordsPerSecond", m->records_per_second}, {"p50Ms", m->p50_ms}, {"p99Ms", m->p99_ms}});
      }
    }
  }
  auto gw = measureGateway(dir + "/gateway", concurrent, records);
  if (!gw) {
    std::fprintf(stderr, "gateway transcript: %s\n", gw.error().describe().c_str());
    return 1;
  }
  std::printf("| paddock-gateway transcript (Gateway::record: queued, a batch per append) | 1 | %d | %.0f | | |\n",
              concurrent, *gw);
  results.push_back({{"backend", "gateway transcript"}, {"appenders", concurrent}, {"recordsPerSecond", *gw}});
  std::filesystem::remove_all(dir);
  if (!out_file.empty()) std::ofstream(out_file) << results.dump(2) << "\n";
  return 0;
}
