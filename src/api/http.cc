#include "api/http.h"

namespace cnx::api {

std::string_view Request::path() const {
  std::string_view t = target();
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t = target();
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  std::string_view q = query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    auto eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

std::string_view Request::PathParam(std::string_view name) const {
  for (const auto& [k, v] : params_) {
    if (k == name) return v;
  }
  return {};
}

Response JsonResponse(http::status status, const nlohmann::json& body) {
  Response r(status);
  r.SetBody(body.dump(), kJsonType);
  return r;
}

Response TextResponse(http::status status, std::string body, std::string_view content_type) {
  Response r(status);
  r.SetBody(std::move(body), content_type);
  return r;
}

std::string ProblemJson(const Problem& p) {
  nlohmann::json j;
  j["type"] = p.type.empty() ? "about:blank" : p.type;
  j["title"] = p.title.empty() ? std::string(http::obsolete_reason(p.status)) : p.title;
  j["status"] = static_cast<int>(p.status);
  if (!p.detail.empty()) j["detail"] = p.detail;
  if (!p.errors.empty()) {
    auto& errors = j["errors"] = nlohmann::json::array();
    for (const auto& e : p.errors) errors.push_back({{"field", e.field}, {"message", e.message}});
  }
  // Replace invalid UTF-8 rather than throw: details may quote client input.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response ProblemResponse(const Problem& problem) {
  Response r(problem.status);
  r.SetBody(ProblemJson(problem), kProblemType);
  return r;
}

Response ProblemResponse(http::status status, std::string detail) {
  Problem p;
  p.status = status;
  p.detail = std::move(detail);
  return ProblemResponse(p);
}

http::status StatusForError(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return http::status::bad_request;
    case ErrorCode::kNotFound:
      return http::status::not_found;
    case ErrorCode::kConflict:
      return http::status::conflict;
    case ErrorCode::kFailedPrecondition:
      return http::status::precondition_failed;
    case ErrorCode::kRetryable:
    case ErrorCode::kUnavailable:
      return http::status::service_unavailable;
    case ErrorCode::kTimeout:
      return http::status::gateway_timeout;
    case ErrorCode::kResourceExhausted:
      return http::status::too_many_requests;
    case ErrorCode::kPermissionDenied:
      return http::status::forbidden;
    case ErrorCode::kUnauthenticated:
      return http::status::unauthorized;
    case ErrorCode::kUnimplemented:
      return http::status::not_implemented;
    case ErrorCode::kCancelled:
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

Response ErrorResponse(const Error& error) {
  Problem p;
  p.status = StatusForError(error);
  if (static_cast<int>(p.status) < 500) p.detail = error.message();
  return ProblemResponse(p);
}

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace cnx::api
