// The in-line hard budget: before a model call is forwarded its worst case is reserved (input
// bounded by the request's size, output by max_tokens, both at the model's prices), max_tokens is
// clamped to what the run has left, or the call is refused; when the call ends the reservation is
// settled to the usage the response reported. Reservations count against the budget while their
// calls run, so concurrent calls of one run can never spend more than it has together.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include "gateway/config.h"

namespace paddock::gateway {

// How every budget refusal's message begins. Claude Code prints the refusal as it exits, so it is
// in the agent container's termination message (FallbackToLogsOnError), where the operator looks
// for it (controllers/lifecycle.cc, decideLifecycle).
inline constexpr const char* kBudgetSpentMarker = "paddock-gateway: the run's budget is spent";

struct Usage {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cache_read = 0;
  int64_t cache_write = 0;
  int64_t tokens() const { return input + output + cache_read + cache_write; }
  bool operator==(const Usage&) const = default;
};

int64_t costNano(const Price& price, const Usage& usage);

// What a run has spent (settled) and holds (reserved by calls in flight).
struct Account {
  Limits limits;
  int64_t spent_tokens = 0, spent_nano = 0;
  int64_t reserved_tokens = 0, reserved_nano = 0;
};

struct Grant {
  int64_t max_tokens = 0;       // what the call may produce: the request's, or clamped
  bool clamped = false;
  int64_t input_bound = 0;      // tokens reserved for input
  int64_t reserved_tokens = 0;  // input_bound + max_tokens
  int64_t reserved_nano = 0;
};
struct Refusal {
  std::string message;  // says what was spent of what, and what to do
};

// The pure decision: reserve the call's worst case from what `account` has left, or refuse.
// `input_bound` is in tokens; `requested_max_tokens` as the request asked.
std::variant<Grant, Refusal> decideReservation(const Account& account, const Price& price, int64_t input_bound,
                                               int64_t requested_max_tokens);

// What settling charged.
struct Settlement {
  int64_t tokens = 0, nano = 0;
  int64_t over_tokens = 0;  // usage beyond the reservation (the estimate was wrong): still charged
};

// Percent of the tightest cap used (settled spend only), 0 when the run has no caps.
int percentUsed(const Account& account);

// The accounts of every run, guarded by one mutex (reserve and settle are a few additions).
class Ledger {
 public:
  void setLimits(const std::string& run, Limits limits);
  std::variant<Grant, Refusal> reserve(const std::string& run, const Price& price, int64_t input_bound,
                                       int64_t requested_max_tokens);
  // Releases `grant` and charges `usage` (zero when the call failed before anything was billed).
  Settlement settle(const std::string& run, const Grant& grant, const Price& price, const Usage& usage);
  Account account(const std::string& run) const;
  // Sets a run's settled spend (totals read back after a restart).
  void restore(const std::string& run, int64_t spent_tokens, int64_t spent_nano);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Account> accounts_;  // guarded by mu_
};

}  // namespace paddock::gateway
