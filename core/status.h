// Status and StatusOr: every error a user can cause is a value carrying a message that names
// the file, field, layer or rank, never an abort. assert() guards only convoy's own invariants.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace convoy {

enum class StatusCode {
  kOk = 0,
  kInvalidInput,  // a bad file, config, flag or shape: exit code 2
  kNotFound,      // a file or name that does not exist: exit code 2
  kDataError,     // a dataset or checkpoint that is corrupt or disagrees with its manifest: 2
  kUnavailable,   // a device or peer that is not there: exit code 2
  kInternal,      // training failed for a reason the user did not cause: exit code 1
  kPreempted,     // stopped by SIGTERM/SIGUSR1 after writing a checkpoint: exit code 75
};

// The exit code of a run that was preempted and checkpointed: EX_TEMPFAIL, "try again later",
// which a batch script can tell from success (0) and failure (1, 2) and requeue on.
inline constexpr int kPreemptedExitCode = 75;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Adds context in front, e.g. the file or layer a lower-level error happened in.
  Status Prefixed(const std::string& context) const { return ok() ? *this : Status(code_, context + ": " + message_); }
  // The process exit code this error should end in (see STYLE: 1 training failed, 2 bad input).
  int ExitCode() const {
    if (ok()) return 0;
    if (code_ == StatusCode::kPreempted) return kPreemptedExitCode;
    return code_ == StatusCode::kInternal ? 1 : 2;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidInput(std::string m) { return Status(StatusCode::kInvalidInput, std::move(m)); }
inline Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status DataError(std::string m) { return Status(StatusCode::kDataError, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
inline Status Internal(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : value_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(value_);
  }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<Status, T> value_;
};

}  // namespace convoy

#define CONVOY_CONCAT_INNER(a, b) a##b
#define CONVOY_CONCAT(a, b) CONVOY_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)          \
  do {                                 \
    ::convoy::Status status_ = (expr); \
    if (!status_.ok()) return status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(CONVOY_CONCAT(status_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
