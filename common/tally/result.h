// The project's one error style.
//
// Expected failures (a missing file, a full disk, a refused connection, a bad
// config value) are returned as Result<T> holding an Error whose message says
// what was being done, on what, and why it failed:
//     "append to outbox /var/lib/tally/outbox.db: database or disk is full"
// Callers add their own context with Error::context() as the error travels up.
// Exceptions are used only at start-up (argument and config parsing), where the
// process prints one line and exits. Impossible states abort.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace tally {

class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}

  template <typename... Args>
  static Error format(fmt::format_string<Args...> f, Args&&... args) {
    return Error(fmt::format(f, std::forward<Args>(args)...));
  }

  // Prefixes what the caller was doing: "open outbox: " + message.
  Error context(std::string_view what) const {
    return Error(fmt::format("{}: {}", what, message_));
  }

  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// Builds an Error from errno (or an explicit error number): "<what>: <strerror>".
Error errno_error(std::string_view what, int err);
Error errno_error(std::string_view what);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(failed_);
    return error_;
  }

 private:
  Error error_{""};
  bool failed_ = false;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace tally

// Early return, as absl's RETURN_IF_ERROR: propagates a failed Result or
// Status out of the current function unchanged. The one macro of its kind.
#define TALLY_TRY(expr)                 \
  do {                                  \
    auto&& tally_try_result_ = (expr);  \
    if (!tally_try_result_.ok()) {      \
      return tally_try_result_.error(); \
    }                                   \
  } while (0)

// The same, adding context to the error.
#define TALLY_TRY_CTX(expr, ctx)                     \
  do {                                               \
    auto&& tally_try_result_ = (expr);               \
    if (!tally_try_result_.ok()) {                   \
      return tally_try_result_.error().context(ctx); \
    }                                                \
  } while (0)
