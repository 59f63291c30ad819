#include "net/http_client.h"

#include <strings.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <optional>
#include <random>

namespace cnx::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

std::unexpected<Error> Failure(ErrorCode code, std::string msg) {
  return Err(Module::kNet, code, std::move(msg));
}

// Runs one asynchronous operation to completion on `ioc` and returns its error.
template <class Start>
beast::error_code RunOne(asio::io_context& ioc, Start&& start) {
  beast::error_code result = asio::error::operation_aborted;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

std::unexpected<Error> TransportError(const beast::error_code& ec, const HttpRequest& req, std::string_view stage) {
  std::string where = req.method + " " + req.url + ": ";
  if (ec == beast::error::timeout) {
    return Failure(ErrorCode::kTimeout, where + std::string(stage) + " timed out");
  }
  if (ec == http::error::body_limit) {
    return Failure(ErrorCode::kResourceExhausted,
                   where + "response larger than " + std::to_string(req.max_response_bytes) + " bytes");
  }
  return Failure(ErrorCode::kUnavailable, where + std::string(stage) + ": " + ec.message());
}

struct Connection {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
};

// Resolves and connects.
Status Connect(Connection& c, const HttpRequest& req, const Url& url) {
  tcp::resolver resolver(c.ioc);
  tcp::resolver::results_type endpoints;
  beast::error_code ec = asio::error::timed_out;
  resolver.async_resolve(url.host, url.port, [&](beast::error_code e, tcp::resolver::results_type r) {
    ec = e;
    endpoints = std::move(r);
  });
  c.ioc.run_for(req.timeout);  // the resolver has no timer of its own
  if (!c.ioc.stopped()) {
    resolver.cancel();
    return Failure(ErrorCode::kTimeout, req.method + " " + req.url + ": name resolution timed out");
  }
  if (ec) return TransportError(ec, req, "resolve");

  c.stream.expires_after(req.timeout);
  ec = RunOne(c.ioc, [&](auto handler) { c.stream.async_connect(endpoints, std::move(handler)); });
  if (ec) return TransportError(ec, req, "connect");
  return Ok();
}

// Sends the request; the response is read by the caller.
Status Send(Connection& c, const HttpRequest& req, const Url& url, bool keep_alive) {
  http::verb verb = http::string_to_verb(req.method);
  if (verb == http::verb::unknown) return Failure(ErrorCode::kInvalidArgument, "unknown HTTP method " + req.method);
  http::request<http::string_body> out{verb, url.path, 11};
  bool ipv6 = url.host.find(':') != std::string::npos;
  out.set(http::field::host, (ipv6 ? "[" + url.host + "]" : url.host) + ":" + url.port);
  out.set(http::field::user_agent, "cnx/1");
  for (const auto& [name, value] : req.headers) out.set(name, value);
  if (!keep_alive) out.set(http::field::connection, "close");
  out.body() = req.body;
  out.prepare_payload();
  beast::error_code ec = RunOne(c.ioc, [&](auto handler) { http::async_write(c.stream, out, std::move(handler)); });
  if (ec) return TransportError(ec, req, "send");
  return Ok();
}

// Resolves, connects and sends with "Connection: close".
Status Open(Connection& c, const HttpRequest& req, const Url& url) {
  CNX_TRY(Connect(c, req, url));
  return Send(c, req, url, /*keep_alive=*/false);
}

template <class Body>
void CopyHead(const http::response<Body>& res, HttpResponse& out) {
  out.status = res.result_int();
  for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
}

}  // namespace

Result<Url> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return Failure(ErrorCode::kInvalidArgument, "only http:// URLs are supported, got '" + std::string(url) + "'");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  Url out;
  out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.path.front() == '?') out.path.insert(out.path.begin(), '/');
  if (authority.find('@') != std::string_view::npos) {
    return Failure(ErrorCode::kInvalidArgument, "credentials in URLs are not supported: " + std::string(url));
  }
  size_t colon = authority.rfind(':');
  size_t bracket = authority.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    out.host = std::string(authority.substr(0, colon));
    out.port = std::string(authority.substr(colon + 1));
  } else {
    out.host = std::string(authority);
    out.port = "80";
  }
  if (out.host.starts_with('[') && out.host.ends_with(']')) out.host = out.host.substr(1, out.host.size() - 2);
  int port = 0;
  auto [p, ec] = std::from_chars(out.port.data(), out.port.data() + out.port.size(), port);
  if (out.host.empty() || ec != std::errc() || p != out.port.data() + out.port.size() || port < 1 || port > 65535) {
    return Failure(ErrorCode::kInvalidArgument, "malformed URL '" + std::string(url) + "'");
  }
  return out;
}

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  }
  return std::nullopt;
}

Result<HttpResponse> Fetch(const HttpRequest& request) {
  return FetchStreaming(request, {});
}

Result<HttpResponse> FetchStreaming(const HttpRequest& req, const StreamHandlers& handlers) {
  Url url = CNX_TRY(ParseHttpUrl(req.url));
  Connection c;
  CNX_TRY(Open(c, req, url));

  http::response_parser<http::buffer_body> parser;
  parser.body_limit(req.max_response_bytes);
  beast::error_code ec =
      RunOne(c.ioc, [&](auto handler) { http::async_read_header(c.stream, c.buffer, parser, std::move(handler)); });
  if (ec) return TransportError(ec, req, "reading the response");
  HttpResponse out;
  CopyHead(parser.get(), out);
  const bool stream = handlers.on_head && handlers.on_data && handlers.on_head(out);

  char piece[16 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    if (stream) c.stream.expires_after(req.idle_timeout);
    ec = RunOne(c.ioc, [&](auto handler) { http::async_read_some(c.stream, c.buffer, parser, std::move(handler)); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::end_of_stream && parser.is_done()) ec = {};
    if (ec) return TransportError(ec, req, "reading the response body");
    size_t n = sizeof piece - parser.get().body().size;
    if (n == 0) continue;
    if (stream) {
      if (!handlers.on_data(std::string_view(piece, n))) {
        return Failure(ErrorCode::kCancelled, req.method + " " + req.url + ": stopped by the reader");
      }
    } else {
      out.body.append(piece, n);
    }
  }
  beast::error_code ignored;
  c.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

struct HttpSession::State {
  std::optional<Connection> c;  // open while the server keeps it
  std::string host, port;
  int opened = 0;
};

HttpSession::HttpSession() : state_(std::make_unique<State>()) {}
HttpSession::~HttpSession() = default;
int HttpSession::connections_opened() const {
  return state_->opened;
}

Result<HttpResponse> HttpSession::Fetch(const HttpRequest& req) {
  Url url = CNX_TRY(ParseHttpUrl(req.url));
  State& s = *state_;
  if (s.c && (s.host != url.host || s.port != url.port)) s.c.reset();
  for (;;) {
    const bool reused = s.c.has_value();
    if (!reused) {
      s.c.emplace();
      s.host = url.host;
      s.port = url.port;
      ++s.opened;
      if (auto st = Connect(*s.c, req, url); !st) {
        s.c.reset();
        return std::unexpected(st.error());
      }
    }
    Connection& c = *s.c;
    c.stream.expires_after(req.timeout);
    auto sent = Send(c, req, url, /*keep_alive=*/true);
    http::response_parser<http::string_body> parser;
    parser.body_limit(req.max_response_bytes);
    beast::error_code ec;
    if (sent) {
      c.stream.expires_after(req.timeout);
      ec = RunOne(c.ioc, [&](auto handler) { http::async_read(c.stream, c.buffer, parser, std::move(handler)); });
    }
    if (!sent || ec) {
      // A kept connection the server closed before answering: once more on a new one.
      const bool unanswered =
          !sent ? sent.error().code() == ErrorCode::kUnavailable
                : !parser.got_some() && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                                         ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
      s.c.reset();
      if (reused && unanswered) continue;
      if (!sent) return std::unexpected(sent.error());
      return TransportError(ec, req, "reading the response");
    }
    HttpResponse out;
    CopyHead(parser.get(), out);
    out.body = std::move(parser.get().body());
    if (!parser.get().keep_alive()) s.c.reset();
    return out;
  }
}

bool RetryableStatus(unsigned status) {
  return status == 408 || status == 429 || status >= 500;
}

milliseconds Backoff(const RetryPolicy& policy, int attempt) {
  int shift = std::clamp(attempt - 1, 0, 30);
  auto full = std::min<int64_t>(policy.max_backoff.count(), policy.initial_backoff.count() << std::min(shift, 20));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> jitter(full / 2, full);
  return milliseconds(jitter(rng));
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value) {
  if (value.empty()) return std::nullopt;
  long long seconds = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && p == value.data() + value.size() && seconds >= 0) return milliseconds(seconds * 1000);
  std::string text(value);
  struct tm tm {};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<milliseconds>(when - std::chrono::system_clock::now());
  return std::max(delta, milliseconds(0));
}

milliseconds RetryDelay(const RetryPolicy& policy, int attempt, std::string_view retry_after) {
  if (auto asked = ParseRetryAfter(retry_after)) return std::min(*asked, policy.max_retry_after);
  return Backoff(policy, attempt);
}

}  // namespace cnx::net
