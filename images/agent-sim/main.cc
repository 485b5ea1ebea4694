// paddock-agent-sim: stands in for a Claude Code agent in e2e tests and demos. It spends tokens
// and dollars at a steady rate and serves them as Claude Code's own Prometheus metrics, labelled
// with its run; it checkpoints when its pod's annotations ask for it; on SIGTERM it writes its
// work in progress and exits 0.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "images/agent-sim/downward.h"
#include "images/agent-sim/metrics.h"
#include "operator/common/flags.h"
#include "operator/common/log.h"
#include "operator/common/signals.h"
#include "operator/common/timestamp.h"
#include "operator/http/server.h"

using namespace paddock;
using namespace paddock::agentsim;
using nlohmann::json;

namespace {

struct Options {
  std::string listen = "127.0.0.1:9464";
  std::string agentrun;
  std::string ns;
  std::string model = "claude-sonnet-4-5";
  double tokens_per_second = 100;
  double usd_per_second = 0.001;
  double reset_after = 0;
  double duration = 0;
  int exit_code = 0;
  std::string control_dir;
  std::string workspace = "/workspace";
  std::chrono::milliseconds poll_interval{200};
  std::string log_level = "info";
};

// Writes `doc` to `path` through a temporary file and a rename, so a reader sees all or nothing.
bool writeJson(const std::filesystem::path& path, const json& doc) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(2) << "\n";
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

std::map<std::string, std::string> readAnnotations(const std::string& control_dir) {
  std::ifstream in(std::filesystem::path(control_dir) / "annotations");
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return parseDownwardMap(text.str());
}

}  // namespace

int main(int argc, char** argv) {
  CancelToken shutdown = shutdownOnSignal();

  Options opt;
  const char* resource = std::getenv("OTEL_RESOURCE_ATTRIBUTES");
  auto attributes = parseResourceAttributes(resource ? resource : "");
  opt.agentrun = attributes["agentrun"];
  opt.ns = attributes["namespace"];
  if (const char* model = std::getenv("ANTHROPIC_MODEL"); model && *model) opt.model = model;

  Flags flags("paddock-agent-sim",
              "stands in for a Claude Code agent: spends tokens and dollars at a steady rate, serves them as "
              "Claude Code's Prometheus metrics (claude_code_token_usage_tokens_total, "
              "claude_code_cost_usage_USD_total) labelled with its run, checkpoints when its pod's "
              "paddock.dev/checkpoint annotation appears, and on SIGTERM writes its work in progress and exits 0.");
  flags.add("listen", &opt.listen, "host:port for /metrics; port 0 picks a free one (the log line \"serving metrics\" names it).");
  flags.add("agentrun", &opt.agentrun, "The run's name, the agentrun label. Default: agentrun= in $OTEL_RESOURCE_ATTRIBUTES.");
  flags.add("namespace", &opt.ns, "The run's namespace, the namespace label. Default: namespace= in $OTEL_RESOURCE_ATTRIBUTES.");
  flags.add("model", &opt.model, "The model label. Default: $ANTHROPIC_MODEL when set.");
  flags.add("tokens-per-second", &opt.tokens_per_second, "Tokens spent per second (a quarter output, the rest input).");
  flags.add("usd-per-second", &opt.usd_per_second, "US dollars spent per second.");
  flags.add("reset-after", &opt.reset_after,
            "Seconds after which every counter starts again from zero, once, as after an agent restart; 0: never.");
  flags.add("duration", &opt.duration, "Seconds after which the agent finishes and exits with --exit-code; 0: run until SIGTERM.");
  flags.add("exit-code", &opt.exit_code, "Exit status when --duration passes.");
  flags.add("control-dir", &opt.control_dir,
            "The downward-API volume: its file `annotations` is read for paddock.dev/checkpoint. Empty: none.");
  flags.add("workspace", &opt.workspace, "Where checkpoint.json and wip.json are written.");
  flags.add("poll-interval", &opt.poll_interval, "How often the annotations are read.");
  flags.add("log-level", &opt.log_level, "Least severe log level written: debug, info, warn or error.");
  flags.setEpilog(
      "Environment:\n"
      "  OTEL_RESOURCE_ATTRIBUTES  agentrun=<name>,namespace=<ns> (as Paddock sets it for Claude Code)\n"
      "  ANTHROPIC_MODEL           the model label\n"
      "Files in --workspace:\n"
      "  checkpoint.json  written at each new value of paddock.dev/checkpoint\n"
      "  wip.json         written on SIGTERM, before exiting 0\n");
  flags.parseOrExit(argc, argv);

  log::Level level;
  if (!log::parseLevel(opt.log_level, level)) {
    log::error("invalid --log-level", {{"value", opt.log_level}});
    return 2;
  }
  log::setLevel(level);
  log::setBaseFields({{"component", "agent-sim"}, {"agentrun", opt.agentrun}, {"namespace", opt.ns}});
  if (opt.tokens_per_second < 0 || opt.usd_per_second < 0 || opt.reset_after < 0 || opt.duration < 0) {
    log::error("rates, --reset-after and --duration must not be negative");
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(opt.workspace, ec);
  if (ec) {
    log::error("cannot create the workspace", {{"workspace", opt.workspace}, {"error", ec.message()}});
    return 1;
  }

  const Identity id{opt.agentrun, opt.ns, opt.model};
  const Rates rates{opt.tokens_per_second, opt.usd_per_second, opt.reset_after};
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::atomic<int64_t> checkpoints{0};
  auto summary = [&](const Usage& u) {
    return json{{"agentrun", opt.agentrun},   {"namespace", opt.ns},
                {"tokens", u.tokens()},       {"costUSD", u.cost_usd},
                {"checkpoints", checkpoints.load()}, {"time", formatMicroTime(std::chrono::system_clock::now())}};
  };

  http::Server server;
  server.handle("/metrics", [&] {
    return http::Reply{200, "text/plain; version=0.0.4; charset=utf-8",
                       renderMetrics(id, usageAt(rates, elapsed()), checkpoints.load()), {}};
  });
  server.handle("/healthz", [] { return http::Reply{200, "text/plain; charset=utf-8", "ok\n", {}}; });
  if (auto st = server.start(opt.listen); !st) {
    log::error("cannot serve metrics", {{"listen", opt.listen}, {"error", st.error().describe()}});
    return 1;
  }
  std::string host;
  int port = 0;
  http::splitHostPort(opt.listen, host, port);
  if (host.empty()) host = "0.0.0.0";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string address = host + ":" + std::to_string(server.port());
  log::info("serving metrics", {{"address", address},
                                {"tokensPerSecond", opt.tokens_per_second},
                                {"usdPerSecond", opt.usd_per_second},
                                {"model", opt.model}});

  std::optional<std::string> last_request;
  bool reset_logged = false;
  while (!shutdown.waitFor(opt.poll_interval)) {
    double t = elapsed();
    Usage usage = usageAt(rates, t);
    if (usage.reset && !reset_logged) {
      reset_logged = true;
      log::info("counters reset to zero, as after a restart");
    }
    if (!opt.control_dir.empty()) {
      auto annotations = readAnnotations(opt.control_dir);
      auto it = annotations.find(kCheckpointAnnotation);
      if (it != annotations.end() && it->second != last_request) {
        last_request = it->second;
        ++checkpoints;
        json doc = summary(usage);
        doc["request"] = it->second;
        auto path = std::filesystem::path(opt.workspace) / "checkpoint.json";
        if (writeJson(path, doc)) log::info("checkpointed", {{"request", it->second}, {"file", path.string()}, {"tokens", usage.tokens()}});
        else log::error("cannot write the checkpoint", {{"file", path.string()}});
      }
    }
    if (opt.duration > 0 && t >= opt.duration) {
      log::info("finished", {{"exitCode", opt.exit_code}, {"tokens", usage.tokens()}, {"costUSD", usage.cost_usd}});
      server.stop();
      return opt.exit_code;
    }
  }
  Usage usage = usageAt(rates, elapsed());
  json doc = summary(usage);
  doc["reason"] = "SIGTERM";
  auto path = std::filesystem::path(opt.workspace) / "wip.json";
  if (!writeJson(path, doc)) {
    log::error("cannot write the work in progress", {{"file", path.string()}});
    server.stop();
    return 1;
  }
  log::info("wrote work in progress", {{"file", path.string()}, {"tokens", usage.tokens()}, {"costUSD", usage.cost_usd}});
  server.stop();
  return 0;
}
