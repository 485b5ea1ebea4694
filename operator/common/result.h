// Result<T>: a value or an Error, never both. The boundary to the outside world (HTTP, files,
// the API server) returns these instead of throwing, so every failure is handled where it is seen.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace paddock {

struct Error {
  // HTTP status of the response that failed, or 0 when no response was received.
  int code = 0;
  // A short CamelCase category: a Kubernetes Status reason (NotFound, Conflict, ...) or a local
  // one (Transport, Timeout, Cancelled, InvalidConfig, ...).
  std::string reason;
  // What happened, in words a person can act on.
  std::string message;
  // A server's Retry-After hint, when it gave one.
  std::optional<std::chrono::seconds> retry_after;

  static Error local(std::string reason, std::string message) {
    return Error{0, std::move(reason), std::move(message), std::nullopt};
  }
  std::string describe() const {
    std::string out = reason.empty() ? "Error" : reason;
    if (code != 0) out += " (" + std::to_string(code) + ")";
    return out + ": " + message;
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation that yields nothing but success.
struct Ok {};
using Status = Result<Ok>;

}  // namespace paddock
