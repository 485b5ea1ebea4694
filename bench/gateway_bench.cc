// paddock-gateway benchmark (issue 17): what the gateway adds to a model call on loopback, how
// many streams it holds at once, and how far 50 concurrent calls racing for a run's last dollar
// overshoot the cap, beside the anchors measured in the same run: the same calls sent directly to
// the Messages API stand-in, and the same race without an in-line gateway (the Prometheus-polling
// path cannot stop calls in flight; its overshoot is what those calls spend past the cap). Not a
// test.
//
//   paddock-bench-gateway [--calls 300] [--events 50] [--event-gap-ms 1] [--streams 1000] [--out results.json]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "e2e/gateway/harness.h"
#include "e2e/gateway/model_standin.h"
#include "operator/common/flags.h"

using namespace paddock;
using namespace paddock::gateway::testing;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

const std::string kToken = "bench-run-token";
const std::string kModel = "claude-sonnet-4-5";

int64_t nowNs() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch()).count(); }

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

std::string request(const json& body) {
  std::string b = body.dump();
  return "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nx-api-key: " + kToken +
         "\r\ncontent-type: application/json\r\nContent-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
}

json streamingBody(int64_t max_tokens = 1000) {
  return {{"model", kModel}, {"max_tokens", max_tokens}, {"stream", true},
          {"messages", {{{"role", "user"}, {"content", "benchmark"}}}}};
}

// One streaming call: time to the first response byte, and each stamped event's latency (ms).
struct CallTiming {
  double ttfb_ms = -1;
  std::vector<double> event_ms;
  bool complete = false;
};

CallTiming timedCall(int port, const std::string& raw) {
  CallTiming t;
  int64_t start = nowNs();
  int fd = connectLoopback(port);
  if (fd < 0) return t;
  ::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
  std::string seen;
  char buf[65536];
  size_t scanned = 0;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    int64_t now = nowNs();
    if (t.ttfb_ms < 0) t.ttfb_ms = (now - start) / 1e6;
    seen.append(buf, static_cast<size_t>(n));
    for (size_t at = seen.find('T', scanned); at != std::string::npos && at + 21 <= seen.size();
         at = seen.find('T', at + 1)) {
      if (seen[at + 20] != ';' || !std::all_of(seen.begin() + at + 1, seen.begin() + at + 20, ::isdigit)) continue;
      t.event_ms.push_back((now - std::stoll(seen.substr(at + 1, 19))) / 1e6);
      scanned = at + 21;
    }
  }
  ::close(fd);
  t.complete = seen.find("message_stop") != std::string::npos;
  return t;
}

struct Latency {
  double ttfb_p50 = 0, ttfb_p99 = 0, event_p50 = 0, event_p99 = 0;
  int incomplete = 0;
};

Latency measureLatency(int port, int calls) {
  std::vector<double> ttfb, events;
  Latency l;
  std::string raw = request(streamingBody());
  for (int i = 0; i < calls; ++i) {
    CallTiming t = timedCall(port, raw);
    if (!t.complete) ++l.incomplete;
    ttfb.push_back(t.ttfb_ms);
    events.insert(events.end(), t.event_ms.begin(), t.event_ms.end());
  }
  l.ttfb_p50 = pct(ttfb, 0.5);
  l.ttfb_p99 = pct(ttfb, 0.99);
  l.event_p50 = pct(events, 0.5);
  l.event_p99 = pct(events, 0.99);
  return l;
}

// `n` streams at once, each held open by the stand-in after message_start: how many got their
// first byte while all were open, and how many then finished.
std::pair<int, int> holdStreams(int port, int n) {
  std::atomic<int> started{0}, finished{0}, started_before_first_finish{-1};
  std::vector<std::thread> clients;
  std::string raw = request(streamingBody());
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&] {
      int fd = connectLoopback(port);
      if (fd < 0) return;
      ::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
      std::string seen;
      char buf[16384];
      bool first = true;
      for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        if (first && (first = false, true)) ++started;
        seen.append(buf, static_cast<size_t>(r));
      }
      ::close(fd);
      if (seen.find("message_stop") != std::string::npos) {
        int expected = -1;
        started_before_first_finish.compare_exchange_strong(expected, started.load());
        ++finished;
      }
    });
  }
  for (auto& c : clients) c.join();
  return {std::max(0, started_before_first_finish.load()), finished.load()};
}

// 50 calls at once, each able to spend the whole budget: tokens spent beyond the cap.
struct Race {
  int granted = 0;
  int64_t spent_tokens = 0;
};

Race race(int port, int calls, int64_t max_tokens) {
  std::atomic<int> granted{0};
  std::atomic<int64_t> tokens{0};
  std::vector<std::thread> clients;
  json body = streamingBody(max_tokens);
  body["stream"] = false;
  for (int i = 0; i < calls; ++i) {
    clients.emplace_back([&] {
      HttpReply r = httpRequest(port, "POST", "/v1/messages", {{"x-api-key", kToken}}, body.dump());
      if (r.status != 200) return;
      json m = json::parse(r.body, nullptr, false);
      if (m.is_discarded()) return;
      ++granted;
      tokens += m["usage"].value("input_tokens", int64_t{0}) + m["usage"].value("output_tokens", int64_t{0});
    });
  }
  for (auto& c : clients) c.join();
  return Race{granted.load(), tokens.load()};
}

std::string gatewayConfig(const ModelStandin& standin, const std::string& run, const std::string& budget) {
  return "upstream: " + standin.url() + "\nmodel: {pin: " + kModel + "}\n" + "prices:\n  " + kModel +
         ": {input: \"3\", output: \"15\", cacheRead: \"0.30\", cacheWrite: \"3.75\"}\n" +
         "runs:\n  - {namespace: bench, name: " + run + ", tokenSHA256: " + sha256Hex(kToken) + ", budget: " + budget +
         "}\n";
}

json latencySection(ModelStandin& standin, const GatewayProcess& gateway, int calls, int events, int gap_ms) {
  Turn stamped;
  for (int i = 0; i < events; ++i) stamped.text += "@T@";
  stamped.delta_events = events;
  stamped.stamp_events = true;
  stamped.event_gap_ms = gap_ms;
  standin.setRepeat(stamped);
  measureLatency(standin.port(), 20);  // warm up
  Latency direct = measureLatency(standin.port(), calls);
  Latency via = measureLatency(gateway.port(), calls);
  std::printf("| path | TTFB p50 ms | TTFB p99 ms | event p50 ms | event p99 ms | incomplete |\n|---|---:|---:|---:|---:|---:|\n");
  std::printf("| direct to the stand-in (anchor) | %.3f | %.3f | %.3f | %.3f | %d |\n", direct.ttfb_p50, direct.ttfb_p99,
              direct.event_p50, direct.event_p99, direct.incomplete);
  std::printf("| through paddock-gateway | %.3f | %.3f | %.3f | %.3f | %d |\n", via.ttfb_p50, via.ttfb_p99, via.event_p50,
              via.event_p99, via.incomplete);
  std::printf("| added by the gateway | %.3f | %.3f | %.3f | %.3f | |\n\n", via.ttfb_p50 - direct.ttfb_p50,
              via.ttfb_p99 - direct.ttfb_p99, via.event_p50 - direct.event_p50, via.event_p99 - direct.event_p99);
  std::fflush(stdout);
  auto figures = [](const Latency& l) {
    return json{{"ttfbP50Ms", l.ttfb_p50}, {"ttfbP99Ms", l.ttfb_p99}, {"eventP50Ms", l.event_p50},
                {"eventP99Ms", l.event_p99}, {"incomplete", l.incomplete}};
  };
  return {{"calls", calls}, {"eventsPerCall", events}, {"eventGapMs", gap_ms}, {"direct", figures(direct)},
          {"gateway", figures(via)}};
}

json streamsSection(ModelStandin& standin, const GatewayProcess& gateway, int streams) {
  Turn held;
  held.text = "held";
  held.hold_ms = 3000;
  standin.setRepeat(held);
  auto [direct_held, direct_done] = holdStreams(standin.port(), streams);
  auto [via_held, via_done] = holdStreams(gateway.port(), streams);
  std::printf("| streams held at once (%d asked, 3 s each) | direct (anchor) | through paddock-gateway |\n|---|---:|---:|\n",
              streams);
  std::printf("| open together | %d | %d |\n| finished | %d | %d |\n\n", direct_held, via_held, direct_done, via_done);
  std::fflush(stdout);
  return {{"asked", streams}, {"directHeld", direct_held}, {"gatewayHeld", via_held}, {"gatewayFinished", via_done}};
}

// A budget of $1; each call's max_tokens may spend all of it. Without the gateway (the operator's
// Prometheus-polling path cannot stop calls in flight) every call runs to its end.
json raceSection(ModelStandin& standin, const GatewayProcess& race_gateway, int racers) {
  Turn all;
  all.text = "spent";
  all.spend_all = true;
  all.input_tokens = 100;
  standin.setRepeat(all);
  const int64_t max_tokens = 66000;  // $0.99 of output at $15 per million tokens
  Race direct_race = race(standin.port(), racers, max_tokens);
  Race gw_race = race(race_gateway.port(), racers, max_tokens);
  // Spend in USD from the stand-in's reports: input $3/MTok (100 per call), output $15/MTok.
  double polling_usd = direct_race.granted * 100 * 3e-6 + (direct_race.spent_tokens - direct_race.granted * 100) * 15e-6;
  double gw_usd = race_gateway.metric("paddock_gateway_cost_usd_total{agentrun=\"race\"");
  auto over_tokens = [](double spent) { return spent > 1.0 ? static_cast<long long>((spent - 1.0) / 15e-6) : 0LL; };
  std::printf("| %d calls racing for a $1 budget | calls answered | spent $ | over the cap $ | tokens over the cap |\n"
              "|---|---:|---:|---:|---:|\n", racers);
  std::printf("| without an in-line gateway (the Prometheus-polling path: calls in flight run to the end) | %d | %.4f | "
              "%.4f | %lld |\n", direct_race.granted, polling_usd, std::max(0.0, polling_usd - 1.0), over_tokens(polling_usd));
  std::printf("| paddock-gateway (reserve, clamp, settle) | %d | %.4f | %.4f | %lld |\n", gw_race.granted, gw_usd,
              std::max(0.0, gw_usd - 1.0), over_tokens(gw_usd));
  return {{"racers", racers}, {"capUSD", 1}, {"pollingSpentUSD", polling_usd}, {"gatewaySpentUSD", gw_usd},
          {"gatewayAnswered", gw_race.granted}, {"gatewayTokensOver", over_tokens(gw_usd)}};
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 300, events = 50, gap_ms = 1, streams = 1000, racers = 50;
  std::string out_file, gateway_bin = PADDOCK_GATEWAY_BIN;
  Flags flags("paddock-bench-gateway", "Measures what paddock-gateway adds to model calls, the streams it holds, "
                                       "and budget overshoot under a race, beside anchors measured in the same run.");
  flags.add("calls", &calls, "sequential streaming calls per latency measurement");
  flags.add("events", &events, "stamped text events per call");
  flags.add("event-gap-ms", &gap_ms, "pause between events (0: back to back, which measures throughput, not latency)");
  flags.add("streams", &streams, "streams held at once");
  flags.add("racers", &racers, "concurrent calls racing for the last dollar");
  flags.add("gateway", &gateway_bin, "the paddock-gateway binary");
  flags.add("out", &out_file, "also write the results as JSON to this file");
  flags.parseOrExit(argc, argv);
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);

  ModelStandin standin;
  if (!standin.start(2)) return 1;
  auto dir = std::filesystem::temp_directory_path() / ("paddock-bench-gateway-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  GatewayProcess gateway(gateway_bin, dir / "latency", "sk-bench-key",
                         gatewayConfig(standin, "latency", "{tokens: 10000000000}"));
  GatewayProcess race_gateway(gateway_bin, dir / "race", "sk-bench-key", gatewayConfig(standin, "race", "{costUSD: \"1\"}"));
  if (!gateway.ready() || !race_gateway.ready()) {
    std::fprintf(stderr, "the gateway did not start:\n%s\n", gateway.log().c_str());
    return 1;
  }
  json results = {{"latency", latencySection(standin, gateway, calls, events, gap_ms)},
                  {"streams", streamsSection(standin, gateway, streams)},
                  {"race", raceSection(standin, race_gateway, racers)}};
  std::filesystem::remove_all(dir);
  if (!out_file.empty()) std::ofstream(out_file) << results.dump(2) << "\n";
  return 0;
}
