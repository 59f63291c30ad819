// cnx::Result<T>: a value or an Error, built on std::expected.
//
// Errors are values across module lines: functions that can fail return
// Result<T>; exceptions from third-party code are caught at the call site and
// converted at once. CNX_TRY propagates an error to the caller.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace cnx {

// The module an error comes from; lets logs and metrics say where it started.
enum class Module : uint8_t {
  kBase,
  kPg,
  kSchema,
  kDomain,
  kApi,
  kCdc,
  kBus,
  kSync,
  kGraph,
  kText,
  kEmbed,
  kVector,
  kSearch,
  kCrdt,
  kCollab,
  kCli,
  kNet,
  kContext,
};

// What went wrong, in terms a caller can act on (modelled on absl::StatusCode).
enum class ErrorCode : uint8_t {
  kInvalidArgument,  // bad input from the caller; retrying will not help
  kNotFound,
  kConflict,            // unique violation, stale version, already exists
  kFailedPrecondition,  // the system is not in a state that allows this
  kRetryable,           // transient: serialization failure, deadlock, lost race
  kUnavailable,         // a dependency (database, broker) cannot be reached
  kTimeout,
  kResourceExhausted,  // limits, quotas, full queues
  kPermissionDenied,
  kUnauthenticated,
  kDataLoss,  // corrupt or truncated data
  kUnimplemented,
  kCancelled,
  kInternal,  // a bug: an invariant did not hold
};

std::string_view ModuleName(Module m);
std::string_view ErrorCodeName(ErrorCode c);

class Error {
 public:
  Error(Module module, ErrorCode code, std::string message)
      : module_(module), code_(code), message_(std::move(message)) {}

  Module module() const { return module_; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // True for errors that may succeed when the same operation is tried again.
  bool retryable() const {
    return code_ == ErrorCode::kRetryable || code_ == ErrorCode::kUnavailable || code_ == ErrorCode::kTimeout;
  }

  // Returns a copy whose message is prefixed with `context: `.
  Error WithContext(std::string_view context) const;

  // "pg.unavailable: connection refused"
  std::string ToString() const;

 private:
  Module module_;
  ErrorCode code_;
  std::string message_;
};

template <typename T>
using Result = std::expected<T, Error>;

using Status = Result<void>;

inline std::unexpected<Error> Err(Module module, ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error(module, code, std::move(message)));
}
inline std::unexpected<Error> Err(Error error) {
  return std::unexpected<Error>(std::move(error));
}

inline Status Ok() {
  return {};
}

namespace internal {
template <typename T>
T TakeValue(std::expected<T, Error>&& r) {
  return std::move(*r);
}
inline void TakeValue(std::expected<void, Error>&&) {}
}  // namespace internal

}  // namespace cnx

// Evaluates a Result expression; on error returns it from the enclosing
// function, otherwise yields the value (or nothing for Status).
#define CNX_TRY(...)                                                              \
  ({                                                                              \
    auto cnx_try_result_ = (__VA_ARGS__);                                         \
    if (!cnx_try_result_.has_value()) [[unlikely]]                                \
      return ::std::unexpected<::cnx::Error>(std::move(cnx_try_result_).error()); \
    ::cnx::internal::TakeValue(std::move(cnx_try_result_));                       \
  })

// Same for coroutines returning a Result-valued awaitable.
#define CNX_CO_TRY(...)                                                              \
  ({                                                                                 \
    auto cnx_try_result_ = (__VA_ARGS__);                                            \
    if (!cnx_try_result_.has_value()) [[unlikely]]                                   \
      co_return ::std::unexpected<::cnx::Error>(std::move(cnx_try_result_).error()); \
    ::cnx::internal::TakeValue(std::move(cnx_try_result_));                          \
  })
