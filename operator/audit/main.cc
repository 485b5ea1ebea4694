// paddock-audit: verify, show and export the audit store (a segment directory or a mongodb:// URI).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "operator/audit/audit.h"
#include "operator/audit/blob.h"
#include "operator/audit/conversation.h"
#include "operator/audit/store.h"
#include "operator/audit/story.h"
#include "operator/common/version.h"
#include "operator/common/flags.h"
#include "operator/common/log.h"

namespace {

using namespace paddock;
using namespace paddock::audit;

constexpr const char* kUsage = R"(paddock-audit: read Paddock's audit store (a segment directory or a mongodb:// URI)

Commands:
  verify STORE                    prove the hash chain, or name the first bad record and why (exit 1)
  show --run NAMESPACE/NAME STORE tell one run's story: what was asked, what happened, approvals, spend
                                  (--transcript: its conversation with the model, from the gateway's store)
  export STORE                    write every record as a JSON line to stdout

Run 'paddock-audit COMMAND --help' for a command's flags; 'paddock-audit --version' for the version.
)";

const std::string kStoreHelp =
    "STORE is a segment directory (e.g. /var/lib/paddock/audit) or a mongodb:// URI (the database in its path).\n";

// Parses a subcommand's flags and its one STORE argument, or exits 2.
std::string parseStore(Flags& flags, int argc, char** argv) {
  std::vector<std::string> positional;
  flags.parseOrExit(argc, argv, &positional);
  if (positional.size() != 1) {
    std::fprintf(stderr, "expected one STORE (a directory or a mongodb:// URI); see --help\n");
    std::exit(2);
  }
  return positional[0];
}

// --collection, and what STORE is (then `more_help`) after the flag list.
void addStoreFlags(Flags& flags, StoreOptions& options, const std::string& more_help = "") {
  flags.add("collection", &options.collection, "MongoDB collection that holds the records");
  flags.setEpilog(kStoreHelp + more_help);
}

int verify(int argc, char** argv) {
  StoreOptions options;
  int expect_seq = 0;
  Flags flags("paddock-audit verify", "Proves the audit chain of STORE, or names the first bad record and why.");
  flags.add("expect-seq", &expect_seq,
            "a seq known to be durable (from a log line, a metric, an earlier verify): the chain must reach it, "
            "as a hash chain alone cannot see records cut from its end");
  addStoreFlags(flags, options,
                "Exit status: 0 the chain holds, 1 a bad record (printed), 2 the store could not be read.\n");
  std::string store = parseStore(flags, argc, argv);
  auto report = verifyStore(store, options, static_cast<uint64_t>(std::max(expect_seq, 0)));
  if (!report) {
    std::fprintf(stderr, "cannot read %s: %s\n", store.c_str(), report.error().describe().c_str());
    return 2;
  }
  if (report->failure) {
    const Failure& f = *report->failure;
    std::printf("BAD at seq %llu (%s): %s\n%llu records before it verified\n", static_cast<unsigned long long>(f.seq),
                f.where.c_str(), f.reason.c_str(), static_cast<unsigned long long>(report->records));
    return 1;
  }
  // The blobs the records name (a segment directory's content-addressed bodies): each must be
  // there and hash to its name.
  size_t blobs = 0;
  std::string bad;
  if (!isMongoUri(store)) {
    Status s = readStore(store, [&](const StoredItem& item) {
      if (item.kind != StoredItem::Kind::Record) return true;
      std::vector<std::string> refs;
      collectBlobRefs(item.json.value("details", nlohmann::json::object()), refs);
      for (const auto& h : refs) {
        auto b = readBlob(store, h);
        if (!b) {
          bad = "BAD at seq " + std::to_string(item.json.value("seq", 0)) + " (" + item.where + "): " + b.error().message;
          return false;
        }
        ++blobs;
      }
      return true;
    }, options);
    if (!s) {
      std::fprintf(stderr, "cannot read %s: %s\n", store.c_str(), s.error().describe().c_str());
      return 2;
    }
  }
  if (!bad.empty()) {
    std::printf("%s\n", bad.c_str());
    return 1;
  }
  std::printf("OK: %llu records, head seq %llu %s%s\n", static_cast<unsigned long long>(report->records),
              static_cast<unsigned long long>(report->head.seq), report->head.hash.c_str(),
              blobs ? ("; " + std::to_string(blobs) + " blobs verified").c_str() : "");
  return 0;
}

// Calls `fn` with each record of the store (segment headers and unreadable lines left out).
int eachRecord(const std::string& store, const StoreOptions& options,
               const std::function<void(const nlohmann::json&)>& fn) {
  Status s = readStore(store, [&](const StoredItem& item) {
    if (item.kind == StoredItem::Kind::Record) fn(item.json);
    return true;
  }, options);
  if (!s) {
    std::fprintf(stderr, "cannot read %s: %s\n", store.c_str(), s.error().describe().c_str());
    return 2;
  }
  return 0;
}

// --run NAMESPACE/NAME: whose records to keep.
struct RunFilter {
  std::string flag, ns, name;

  void add(Flags& flags, const char* help) { flags.add("run", &flag, help); }
  // Splits the flag, or says what is wrong with it; an empty flag passes unless `required`.
  bool parse(bool required) {
    size_t slash = flag.find('/');
    if (flag.empty() && !required) return true;
    if (slash == std::string::npos || slash == 0 || slash + 1 == flag.size()) {
      std::fprintf(stderr, "--run must be NAMESPACE/NAME\n");
      return false;
    }
    ns = flag.substr(0, slash);
    name = flag.substr(slash + 1);
    return true;
  }
  bool matches(const nlohmann::json& record) const { return flag.empty() || isForRun(record, ns, name); }
};

int show(int argc, char** argv) {
  StoreOptions options;
  RunFilter run;
  Flags flags("paddock-audit show", "Tells one run's story from the audit store, in chain order.");
  bool transcript = false;
  run.add(flags, "the run, as NAMESPACE/NAME (required)");
  flags.add("transcript", &transcript,
            "print the run's conversation with the model (ModelCall records of paddock-gateway's store, blobs read "
            "back and checked)");
  addStoreFlags(flags, options);
  std::string store = parseStore(flags, argc, argv);
  if (!run.parse(/*required=*/true)) return 2;
  std::vector<nlohmann::json> records;
  int rc = eachRecord(store, options, [&](const nlohmann::json& r) {
    if (run.matches(r)) records.push_back(r);
  });
  if (rc != 0) return rc;
  if (transcript) {
    auto blobs = [&](const std::string& hash) { return readBlob(store, hash); };
    std::fputs(tellTranscript(run.ns, run.name, records, blobs).c_str(), stdout);
    return 0;
  }
  std::fputs(tellStory(run.ns, run.name, records).c_str(), stdout);
  return 0;
}

int exportRecords(int argc, char** argv) {
  StoreOptions options;
  RunFilter run;
  Flags flags("paddock-audit export", "Writes the audit records of STORE to stdout, one JSON object a line.");
  run.add(flags, "only this run's records, as NAMESPACE/NAME");
  addStoreFlags(flags, options);
  std::string store = parseStore(flags, argc, argv);
  if (!run.parse(/*required=*/false)) return 2;
  return eachRecord(store, options, [&](const nlohmann::json& r) {
    if (run.matches(r)) std::cout << canonical(r) << '\n';
  });
}

// Hidden: appends under load and prints each acknowledged seq (one write(2) per append), for the
// crash test, which kills it with SIGKILL and checks every printed seq is in the store.
int load(int argc, char** argv) {
  StoreOptions options;
  int rate = 0, batch = 1, threads = 1, count = 0, segment_bytes = 1 << 20;
  Flags flags("paddock-audit load", "Appends records as fast as asked and prints each acknowledged seq (testing).");
  flags.add("rate", &rate, "appends per second per thread (0: as fast as possible)");
  flags.add("batch", &batch, "records per append");
  flags.add("threads", &threads, "concurrent appenders");
  flags.add("count", &count, "appends per thread, then exit (0: until killed)");
  flags.add("segment-bytes", &segment_bytes, "start a new segment after this many bytes");
  addStoreFlags(flags, options);
  std::string store = parseStore(flags, argc, argv);
  options.max_segment_bytes = segment_bytes;
  auto log = openAuditLog(makeBackend(store, options), AuditLogOptions{.actor = "paddock-audit-load"});
  if (!log) {
    std::fprintf(stderr, "cannot open %s: %s\n", store.c_str(), log.error().describe().c_str());
    return 2;
  }
  CancelToken never;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; count == 0 || i < count; ++i) {
        std::vector<Entry> entries;
        for (int b = 0; b < batch; ++b) {
          entries.push_back(Entry{"paddock-audit-load", RunRef{"load", "run-" + std::to_string(t), "uid-load"},
                                  Action::ChildCreated, {{"thread", t}, {"append", i}, {"index", b}}});
        }
        auto r = (*log)->append(std::move(entries), never);
        if (!r) {
          std::fprintf(stderr, "append: %s\n", r.error().describe().c_str());
          std::exit(1);
        }
        std::string acked;
        for (uint64_t s = r->first_seq; s <= r->last_seq; ++s) acked += std::to_string(s) + "\n";
        if (::write(1, acked.data(), acked.size()) < 0) std::exit(1);
        if (rate > 0) std::this_thread::sleep_for(std::chrono::microseconds(1000000 / rate));
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  paddock::log::setBaseFields({{"component", "paddock-audit"}});
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "verify") return verify(argc - 1, argv + 1);
  if (command == "show") return show(argc - 1, argv + 1);
  if (command == "export") return exportRecords(argc - 1, argv + 1);
  if (command == "load") return load(argc - 1, argv + 1);
  if (command == "--version") {
    std::puts(paddock::versionLine("paddock-audit").c_str());
    return 0;
  }
  std::fputs(kUsage, command.empty() || command == "--help" || command == "help" ? stdout : stderr);
  return command.empty() || command == "--help" || command == "help" ? 0 : 2;
}
