// kill -9 of a writer under load, twenty times: after each, opening the store repairs it, the
// chain verifies, and every seq the writer acknowledged (printed) is there, as it was written.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "e2e/audit/mongo_testing.h"
#include "operator/audit/audit.h"
#include "operator/audit/segment.h"
#include "operator/audit/store.h"
#include "tests/unit/operator/audit/audit_testing.h"

namespace paddock::audit {
namespace {

using namespace std::chrono_literals;

// Runs `paddock-audit load` and returns its pid; its stdout is the read end in `out_fd`.
pid_t startLoad(const std::vector<std::string>& args, int& out_fd) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    std::vector<char*> argv;
    std::string bin = PADDOCK_AUDIT_BIN;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  out_fd = pipe_fds[0];
  return pid;
}

// Lets the writer run until it has acknowledged something and then for `run` more, kills it with
// SIGKILL, and returns every seq it printed.
std::set<uint64_t> runAndKill(const std::vector<std::string>& args, std::chrono::milliseconds run) {
  int fd = -1;
  pid_t pid = startLoad(args, fd);
  std::atomic<bool> acking{false};
  std::thread killer([&] {
    for (int i = 0; i < 2000 && !acking; ++i) std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(run);
    ::kill(pid, SIGKILL);
  });
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<size_t>(n));
    acking = true;
  }
  killer.join();
  ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer died of something else: " << status;
  std::set<uint64_t> acked;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    acked.insert(std::stoull(out.substr(start, nl - start)));
  }
  return acked;
}

// `tear`, when set, runs after every fifth kill: a torn write as a power cut would leave one.
void crashTwentyTimes(const std::string& target, const std::vector<std::string>& extra, const StoreOptions& options,
                      const std::function<void()>& tear = nullptr) {
  std::mt19937 random(42);
  std::set<uint64_t> acked;
  uint64_t repairs = 0;
  for (int round = 1; round <= 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::string> args = {"load", target, "--threads", "4"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto printed = runAndKill(args, std::chrono::milliseconds(50 + random() % 250));
    EXPECT_FALSE(printed.empty()) << "the writer acknowledged nothing before it was killed";
    acked.insert(printed.begin(), printed.end());
    if (tear && round % 5 == 0) tear();

    // Reopen as the next writer would (this repairs a torn tail), then verify and look up every
    // acknowledged seq, in one pass.
    auto log = openAuditLog(makeBackend(target, options));
    ASSERT_TRUE(log.ok()) << log.error().describe();
    log->reset();
    ChainVerifier verifier;
    std::map<uint64_t, std::string> actions;
    auto s = readStore(target, [&](const StoredItem& item) {
      std::optional<Failure> f;
      if (item.kind == StoredItem::Kind::SegmentHeader) f = verifier.segmentHeader(item.json, item.named_first_seq, item.where);
      if (item.kind == StoredItem::Kind::Invalid) f = verifier.invalid(item.where, item.problem);
      if (item.kind == StoredItem::Kind::Record) {
        f = verifier.record(item.json, item.where);
        if (!f) actions[item.json["seq"].get<uint64_t>()] = item.json["action"];
      }
      return !f;
    }, options);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    ASSERT_EQ(verifier.failure(), std::nullopt) << verifier.failure()->where << ": " << verifier.failure()->reason;
    for (uint64_t seq : acked) {
      ASSERT_EQ(actions.count(seq), 1u) << "acknowledged seq " << seq << " is missing";
      ASSERT_EQ(actions[seq], "ChildCreated") << "acknowledged seq " << seq << " was overwritten";
    }
    uint64_t before = repairs;
    repairs = 0;
    for (const auto& [seq, action] : actions) repairs += action == "StoreRepaired";
    // A kill in the middle of a write can tear the tail too, so repairs may outnumber the tears.
    if (tear && round % 5 == 0) {
      EXPECT_GT(repairs, before) << "the torn tail was cut and the repair recorded";
    }
  }
  if (tear) {
    EXPECT_GE(repairs, 4u) << "each torn tail was cut and the repair recorded";
  }
  std::printf("20 kills: %zu acknowledged records, all present; %llu torn tails repaired\n", acked.size(),
              static_cast<unsigned long long>(repairs));
}

TEST(AuditCrash, SegmentFilesSurviveKillNineUnderLoad) {
  testing::TempDir tmp;
  // Small segments, so kills also land around rotations; batches of many pages, so a kill can
  // cut a write short (the kernel checks for SIGKILL between pages) and leave a torn tail.
  std::string store = tmp.sub("store");
  crashTwentyTimes(store, {"--batch", "64", "--segment-bytes", "262144"}, StoreOptions{.max_segment_bytes = 262144},
                   [&] {
                     std::string last;
                     for (const auto& e : std::filesystem::directory_iterator(store)) {
                       if (parseSegmentName(e.path().filename().string())) last = std::max(last, e.path().string());
                     }
                     std::ofstream(last, std::ios::app) << R"({"action":"ChildCreated","actor":"paddock-au)";
                   });
}

TEST(AuditCrash, MongoSurvivesKillNineUnderLoad) {
  std::string collection = testing::freshCollection();
  // A gentle rate: FerretDB on SQLite reads the whole collection back slowly after each kill.
  crashTwentyTimes(testing::mongoUri(), {"--batch", "3", "--rate", "50", "--collection", collection},
                   StoreOptions{.collection = collection});
}

}  // namespace
}  // namespace paddock::audit
