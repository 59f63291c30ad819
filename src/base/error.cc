#include <cstdio>
#include <cstdlib>

#include "base/assert.h"
#include "base/result.h"

namespace cnx {

std::string_view ModuleName(Module m) {
  switch (m) {
    case Module::kBase:
      return "base";
    case Module::kPg:
      return "pg";
    case Module::kSchema:
      return "schema";
    case Module::kDomain:
      return "domain";
    case Module::kApi:
      return "api";
    case Module::kCdc:
      return "cdc";
    case Module::kBus:
      return "bus";
    case Module::kSync:
      return "sync";
    case Module::kGraph:
      return "graph";
    case Module::kText:
      return "text";
    case Module::kEmbed:
      return "embed";
    case Module::kVector:
      return "vector";
    case Module::kSearch:
      return "search";
    case Module::kCrdt:
      return "crdt";
    case Module::kCollab:
      return "collab";
    case Module::kCli:
      return "cli";
    case Module::kNet:
      return "net";
    case Module::kContext:
      return "context";
  }
  return "unknown";
}

std::string_view ErrorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kRetryable:
      return "retryable";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kDataLoss:
      return "data_loss";
    case ErrorCode::kUnimplemented:
      return "unimplemented";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

Error Error::WithContext(std::string_view context) const {
  std::string m;
  m.reserve(context.size() + 2 + message_.size());
  m.append(context).append(": ").append(message_);
  return Error(module_, code_, std::move(m));
}

std::string Error::ToString() const {
  std::string s;
  s.append(ModuleName(module_)).append(".").append(ErrorCodeName(code_)).append(": ").append(message_);
  return s;
}

namespace internal {
void AssertFail(const char* cond, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "CNX_ASSERT failed: %s at %s:%d%s%s\n", cond, file, line, *msg ? ": " : "", msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

}  // namespace cnx
