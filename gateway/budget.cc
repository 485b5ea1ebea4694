#include "gateway/budget.h"

#include <algorithm>
#include <limits>

namespace paddock::gateway {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 4;

int64_t leftOf(int64_t limit, int64_t used) { return limit == 0 ? kMax : std::max<int64_t>(0, limit - used); }

std::string describeUse(const Account& a) {
  std::string out;
  if (a.limits.tokens) {
    out += std::to_string(a.spent_tokens) + " of " + std::to_string(a.limits.tokens) + " tokens";
  }
  if (a.limits.cost_nano) {
    if (!out.empty()) out += " and ";
    out += "$" + formatUsd(a.spent_nano) + " of $" + formatUsd(a.limits.cost_nano);
  }
  int64_t in_flight = a.reserved_tokens;
  if (in_flight) out += " (" + std::to_string(in_flight) + " tokens reserved by calls in flight)";
  return out;
}

}  // namespace

int64_t costNano(const Price& p, const Usage& u) {
  return u.input * p.input + u.output * p.output + u.cache_read * p.cache_read + u.cache_write * p.cache_write;
}

std::variant<Grant, Refusal> decideReservation(const Account& a, const Price& price, int64_t input_bound,
                                               int64_t requested_max_tokens) {
  int64_t tokens_left = leftOf(a.limits.tokens, a.spent_tokens + a.reserved_tokens);
  int64_t nano_left = leftOf(a.limits.cost_nano, a.spent_nano + a.reserved_nano);
  // The dearest way the input could be billed (a cache write costs more than plain input).
  int64_t input_price = std::max({price.input, price.cache_write, price.cache_read});
  int64_t input_nano = input_bound * input_price;
  int64_t out_by_tokens = tokens_left - input_bound;
  int64_t out_by_cost = price.output == 0 ? kMax : (nano_left - input_nano) / price.output;
  if (input_nano > nano_left) out_by_cost = -1;
  int64_t allowed = std::min({requested_max_tokens, out_by_tokens, out_by_cost});
  if (allowed < 1) {
    return Refusal{std::string(kBudgetSpentMarker) + ": it has used " + describeUse(a) + ", and this request needs room for " +
                   std::to_string(input_bound) + " input tokens and at least 1 output token. Summarise and end; "
                   "a person can raise the run's budget"};
  }
  Grant g;
  g.max_tokens = allowed;
  g.clamped = allowed < requested_max_tokens;
  g.input_bound = input_bound;
  g.reserved_tokens = input_bound + allowed;
  g.reserved_nano = input_nano + allowed * price.output;
  return g;
}

int percentUsed(const Account& a) {
  int p = 0;
  if (a.limits.tokens) p = std::max<int>(p, static_cast<int>(a.spent_tokens * 100 / a.limits.tokens));
  if (a.limits.cost_nano) {
    p = std::max<int>(p, static_cast<int>(static_cast<__int128>(a.spent_nano) * 100 / a.limits.cost_nano));
  }
  return p;
}

void Ledger::setLimits(const std::string& run, Limits limits) {
  std::lock_guard l(mu_);
  accounts_[run].limits = limits;
}

std::variant<Grant, Refusal> Ledger::reserve(const std::string& run, const Price& price, int64_t input_bound,
                                             int64_t requested_max_tokens) {
  std::lock_guard l(mu_);
  Account& a = accounts_[run];
  auto d = decideReservation(a, price, input_bound, requested_max_tokens);
  if (auto* g = std::get_if<Grant>(&d)) {
    a.reserved_tokens += g->reserved_tokens;
    a.reserved_nano += g->reserved_nano;
  }
  return d;
}

Settlement Ledger::settle(const std::string& run, const Grant& grant, const Price& price, const Usage& usage) {
  std::lock_guard l(mu_);
  Account& a = accounts_[run];
  a.reserved_tokens -= grant.reserved_tokens;
  a.reserved_nano -= grant.reserved_nano;
  Settlement s{usage.tokens(), costNano(price, usage), std::max<int64_t>(0, usage.tokens() - grant.reserved_tokens)};
  a.spent_tokens += s.tokens;
  a.spent_nano += s.nano;
  return s;
}

void Ledger::restore(const std::string& run, int64_t spent_tokens, int64_t spent_nano) {
  std::lock_guard l(mu_);
  accounts_[run].spent_tokens = spent_tokens;
  accounts_[run].spent_nano = spent_nano;
}

Account Ledger::account(const std::string& run) const {
  std::lock_guard l(mu_);
  auto it = accounts_.find(run);
  return it == accounts_.end() ? Account{} : it->second;
}

}  // namespace paddock::gateway
