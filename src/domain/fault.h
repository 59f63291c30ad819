// Fault: why a domain operation was refused, in terms the HTTP layer maps to a
// problem+json response without knowing the domain (code -> status, `type`
// slug -> problem type URI, field issues -> `errors`, `current` -> the body of
// a 412 or 409 response).
#pragma once

#include <nlohmann/json.hpp>

#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace cnx::domain {

struct FieldIssue {
  std::string field;  // JSON pointer into the request body ("/name") or a parameter name
  std::string message;
};

struct Fault {
  ErrorCode code = ErrorCode::kInternal;
  std::string type;  // stable slug: "validation", "not-found", "stale-version", "lock-conflict", ...
  std::string detail;
  std::vector<FieldIssue> fields;
  std::optional<nlohmann::json> current;  // the current representation (412) or the conflicting holder (409)
  std::optional<int64_t> current_version;
};

template <typename T>
using Outcome = std::expected<T, Fault>;

inline std::unexpected<Fault> Refuse(ErrorCode code, std::string type, std::string detail) {
  Fault f;
  f.code = code;
  f.type = std::move(type);
  f.detail = std::move(detail);
  return std::unexpected<Fault>(std::move(f));
}
inline std::unexpected<Fault> Invalid(std::vector<FieldIssue> fields, std::string detail = "the request is invalid") {
  Fault f;
  f.code = ErrorCode::kInvalidArgument;
  f.type = "validation";
  f.detail = std::move(detail);
  f.fields = std::move(fields);
  return std::unexpected<Fault>(std::move(f));
}
inline std::unexpected<Fault> NotFound(std::string detail = "no such resource") {
  return Refuse(ErrorCode::kNotFound, "not-found", std::move(detail));
}
// A database or internal error: 5xx details are not shown to clients, but
// constraint violations (bad input the validator let through) are 400/409.
inline Fault FromError(const Error& e) {
  Fault f;
  f.code = e.code();
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
      f.type = "validation";
      f.detail = "the request violates a constraint";
      break;
    case ErrorCode::kConflict:
      f.type = "conflict";
      f.detail = "a resource with these values already exists";
      break;
    case ErrorCode::kFailedPrecondition:
      f.code = ErrorCode::kInvalidArgument;
      f.type = "validation";
      f.detail = "a referenced resource does not exist";
      break;
    case ErrorCode::kRetryable:
    case ErrorCode::kUnavailable:
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kTimeout:
      f.code = ErrorCode::kUnavailable;
      f.type = "unavailable";
      f.detail = "the database is busy, retry later";
      break;
    case ErrorCode::kUnauthenticated:
      if (e.message().starts_with("[28")) {  // a statement refused the caller's credential (a guard)
        f.type = "unauthenticated";
        f.detail = "the token is unknown, expired or revoked";
        break;
      }
      [[fallthrough]];  // the server refused our own login: not the client's fault
    default:
      f.code = ErrorCode::kInternal;
      f.type = "internal";
      f.detail = e.ToString();
  }
  return f;
}

#define CNX_DO(...)                                                                                     \
  ({                                                                                                    \
    auto cnx_do_result_ = (__VA_ARGS__);                                                                \
    if (!cnx_do_result_.has_value()) [[unlikely]]                                                       \
      return ::std::unexpected<::cnx::domain::Fault>(::cnx::domain::FromError(cnx_do_result_.error())); \
    ::cnx::internal::TakeValue(std::move(cnx_do_result_));                                              \
  })

#define CNX_DO_F(...)                                                                    \
  ({                                                                                     \
    auto cnx_do_result_ = (__VA_ARGS__);                                                 \
    if (!cnx_do_result_.has_value()) [[unlikely]]                                        \
      return ::std::unexpected<::cnx::domain::Fault>(std::move(cnx_do_result_).error()); \
    ::cnx::domain::internal_take(std::move(cnx_do_result_));                             \
  })

template <typename T>
T internal_take(std::expected<T, Fault>&& r) {
  return std::move(*r);
}
inline void internal_take(std::expected<void, Fault>&&) {}

}  // namespace cnx::domain
