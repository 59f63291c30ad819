// Request and Response: thin wrappers over Beast's message types, plus the JSON
// and RFC 9457 problem+json helpers every handler uses.
//
// A Request is created by the server for one HTTP request and handed to one
// handler; it is not shared between threads. A Response is a value the handler
// returns; the server adds X-Request-Id, Connection and Content-Length.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/blocking.h"
#include "api/net.h"
#include "api/stream.h"
#include "base/result.h"

namespace cnx::api {

class Request {
 public:
  using Raw = http::request<http::string_body>;

  Request() = default;
  explicit Request(Raw raw) : raw_(std::move(raw)) {}

  http::verb method() const { return raw_.method(); }
  std::string_view method_string() const { return raw_.method_string(); }
  std::string_view target() const { return raw_.target(); }
  std::string_view path() const;   // target up to '?', not decoded
  std::string_view query() const;  // after '?', or empty
  // First value of a query parameter, percent-decoded ('+' is a space); nullopt
  // if absent or badly encoded.
  std::optional<std::string> QueryParam(std::string_view name) const;
  std::string_view Header(http::field f) const { return raw_[f]; }
  std::string_view Header(std::string_view name) const { return raw_[name]; }
  const std::string& body() const { return raw_.body(); }
  // A `{name}` segment of the matched route, percent-decoded; empty if none.
  std::string_view PathParam(std::string_view name) const;
  const std::string& request_id() const { return request_id_; }
  const tcp::endpoint& remote() const { return remote_; }
  const Raw& raw() const { return raw_; }
  Raw& raw() { return raw_; }

  // Where RunBlocking work goes; set by the server for every request.
  BlockingExecutor blocking_executor() const { return pool_->get_executor(); }
  template <typename F>
  asio::awaitable<std::invoke_result_t<F&>> RunBlocking(F fn) const {
    return api::RunBlocking(blocking_executor(), std::move(fn));
  }

  // Set by the server (and by tests that call handlers directly).
  void SetPathParams(std::vector<std::pair<std::string, std::string>> params) { params_ = std::move(params); }
  void SetRequestId(std::string id) { request_id_ = std::move(id); }
  void SetRemote(tcp::endpoint remote) { remote_ = remote; }
  void SetBlockingPool(asio::thread_pool* pool) { pool_ = pool; }

 private:
  Raw raw_;
  std::vector<std::pair<std::string, std::string>> params_;
  std::string request_id_;
  tcp::endpoint remote_;
  asio::thread_pool* pool_ = nullptr;
};

class Response {
 public:
  using Raw = http::response<http::string_body>;

  Response() : Response(http::status::ok) {}
  explicit Response(http::status status) { raw_.result(status); }

  http::status status() const { return raw_.result(); }
  Response& SetHeader(http::field f, std::string_view value) {
    raw_.set(f, value);
    return *this;
  }
  Response& SetHeader(std::string_view name, std::string_view value) {
    raw_.set(name, value);
    return *this;
  }
  Response& SetBody(std::string body, std::string_view content_type) {
    raw_.body() = std::move(body);
    raw_.set(http::field::content_type, content_type);
    return *this;
  }
  const std::string& body() const { return raw_.body(); }
  const Raw& raw() const { return raw_; }
  Raw& raw() { return raw_; }

  // A streamed body instead of body() (api/stream.h).
  Response& SetStream(StreamProducer producer, std::string_view content_type) {
    stream_ = std::move(producer);
    raw_.set(http::field::content_type, content_type);
    return *this;
  }
  const StreamProducer& stream() const { return stream_; }

 private:
  Raw raw_;
  StreamProducer stream_;
};

// One invalid input field, for the `errors` member of a problem.
struct FieldError {
  std::string field;  // JSON pointer or parameter name, e.g. "/name" or "limit"
  std::string message;
};

// RFC 9457 problem details.
struct Problem {
  http::status status = http::status::internal_server_error;
  std::string title;  // empty: the reason phrase of `status`
  std::string detail;
  std::string type = "about:blank";
  std::vector<FieldError> errors;
};

inline constexpr std::string_view kJsonType = "application/json";
inline constexpr std::string_view kProblemType = "application/problem+json";

Response JsonResponse(http::status status, const nlohmann::json& body);
Response TextResponse(http::status status, std::string body,
                      std::string_view content_type = "text/plain; charset=utf-8");
Response ProblemResponse(const Problem& problem);
Response ProblemResponse(http::status status, std::string detail);
std::string ProblemJson(const Problem& problem);

// The HTTP status for a cnx::Error (kNotFound -> 404, kConflict -> 409, ...).
http::status StatusForError(const Error& error);
// A problem response for an error; 5xx responses do not reveal the message.
Response ErrorResponse(const Error& error);

// X-Request-Id values we echo: 1..128 characters of [A-Za-z0-9._:-].
bool IsValidRequestId(std::string_view id);

// Percent-decodes `s`; '+' becomes a space when `plus_is_space`. nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space);

}  // namespace cnx::api
