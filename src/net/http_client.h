// A small blocking HTTP/1.1 client for talking to providers (embeddings, chat
// completions) and to a running `cnx serve` from the command line.
//
//   auto res = net::Fetch({.method = "POST", .url = "http://127.0.0.1:8080/v1/search",
//                          .headers = {{"Authorization", "Bearer " + token}}, .body = json});
//
// Fetch() uses a fresh connection per request ("Connection: close");
// HttpSession keeps one open between requests to the same server. http:// only
// (a TLS-terminating proxy or a local gateway serves https providers).
// Timeouts: `timeout` bounds resolve + connect + send + the response head (and
// the whole body for Fetch()); a streamed body may take as long as it wants but
// no gap between two pieces may exceed `idle_timeout`.
// Errors: kInvalidArgument (bad URL), kTimeout, kUnavailable (connection
// refused/reset, malformed response), kResourceExhausted (response bigger than
// `max_response_bytes`), kCancelled (the sink asked to stop). An HTTP error
// status is not an error here: it is a response with that status.
//
// Thread safety: the functions are reentrant; each call owns its connection.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace cnx::net {

struct Url {
  std::string host;  // without IPv6 brackets
  std::string port;  // "80" when absent
  std::string path;  // "/..." (at least "/"), query included
};

// Parses an absolute http:// URL.
Result<Url> ParseHttpUrl(std::string_view url);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute http:// URL
  Headers headers;  // Host, Content-Length and Connection are set by the client
  std::string body;
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};  // streamed bodies only
  size_t max_response_bytes = 64u << 20;
};

struct HttpResponse {
  unsigned status = 0;
  Headers headers;
  std::string body;  // empty when the body was streamed to a sink
  // The first header of that name (case-insensitive).
  std::optional<std::string> Header(std::string_view name) const;
};

Result<HttpResponse> Fetch(const HttpRequest& request);

// One connection kept open between requests (HTTP/1.1 keep-alive), for a
// client that sends many requests to one server (`cnx ingest`): no connect,
// accept and close per request. A request goes on the open connection when it
// is for the same host and port and the server kept the connection open after
// the previous response; otherwise on a new one. When a kept connection turns
// out closed by the server (an idle timeout) before the first byte of the
// response, the request is sent once more on a new connection — the server
// closed it without answering. A failure on a new connection is returned as by
// Fetch(), and closes the session's connection. Responses are read whole.
//
// Thread safety: none; one session per thread.
class HttpSession {
 public:
  HttpSession();
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  Result<HttpResponse> Fetch(const HttpRequest& request);
  // Connections opened so far (the first, and every reconnection).
  int connections_opened() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Streams the body. `on_head` sees the status and headers first; when it
// returns false the body is read into HttpResponse::body as by Fetch() (for
// example an error answer), otherwise every piece of body goes to `on_data` as
// it arrives (true: keep reading; false: stop with kCancelled).
struct StreamHandlers {
  std::function<bool(const HttpResponse& head)> on_head;
  std::function<bool(std::string_view piece)> on_data;
};
Result<HttpResponse> FetchStreaming(const HttpRequest& request, const StreamHandlers& handlers);

// Retry policy for providers: attempt n (1-based) that failed with a retryable
// outcome waits min(max_backoff, initial_backoff * 2^(n-1)), "equal jitter"
// (a uniformly random 50-100% of it), or exactly the server's Retry-After
// capped at max_retry_after.
struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{20'000};
  std::chrono::milliseconds max_retry_after{60'000};
};

// 429, 5xx (and 408) are worth retrying; other statuses are final.
bool RetryableStatus(unsigned status);
std::chrono::milliseconds Backoff(const RetryPolicy& policy, int attempt);
// Retry-After as a delay: delta-seconds or an IMF-fixdate; nullopt if absent or malformed.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value);
// The delay before the next attempt after a response with this Retry-After value (may be empty).
std::chrono::milliseconds RetryDelay(const RetryPolicy& policy, int attempt, std::string_view retry_after);

}  // namespace cnx::net
