// Fuzzes the server's request path end to end: each input is written to a real
// connection of an in-process Server (then the write side is shut), and every
// byte the server sends back must parse as a sequence of well-formed HTTP/1.1
// responses (up to a 101 switch). A crash, sanitizer report, malformed output
// or a connection the server does not close is a finding.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "api/server.h"

namespace {

using namespace cnx::api;
using namespace std::chrono_literals;

struct Harness {
  cnx::MetricsRegistry metrics;
  std::unique_ptr<Server> server;
  uint16_t port = 0;

  Harness() {
    spdlog::set_level(spdlog::level::off);
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.io_threads = 2;
    config.blocking_threads = 1;
    config.header_limit = 2048;
    config.body_limit = 4096;
    config.read_timeout = 1s;
    config.idle_timeout = 1s;
    config.write_timeout = 1s;
    config.access_log = false;
    Router router;
    (void)router.Add(http::verb::post, "/echo",
                     SyncHandler([](Request& req) { return TextResponse(http::status::ok, req.body()); }));
    (void)router.Add(
        http::verb::get, "/v1/projects/{id}", SyncHandler([](Request& req) {
          return JsonResponse(http::status::ok, {{"id", req.PathParam("id")}, {"q", req.QueryParam("q").value_or("")}});
        }));
    (void)router.Add(http::verb::get, "/blocking", Handler([](Request& req) -> asio::awaitable<Response> {
                       auto n = co_await req.RunBlocking([] { return 1; });
                       co_return JsonResponse(http::status::ok, {{"n", n}});
                     }));
    (void)router.AddWebSocket("/ws", [](Request&, WebSocket ws) -> asio::awaitable<void> {
      beast::flat_buffer buffer;
      boost::system::error_code ec;
      co_await ws.stream().async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    });
    server = std::make_unique<Server>(config, std::move(router), metrics);
    auto ep = server->Start();
    if (!ep) std::abort();
    port = ep->port();
  }
};

std::string Exchange(uint16_t port, const uint8_t* data, size_t size) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (e.g. after a 400)
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) __builtin_trap();  // the server kept a half-closed connection open
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    char buf[8192];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  linger lg{1, 0};  // reset on close: no TIME_WAIT pile-up over millions of runs
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
  return out;
}

// Parses one response at `pos`; a response to HEAD has no body although it
// carries a Content-Length, so `bodiless` parses the header only.
size_t ParseOne(const std::string& bytes, size_t pos, bool bodiless, unsigned* status) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.skip(bodiless);
  boost::system::error_code ec;
  size_t used = parser.put(asio::buffer(bytes.data() + pos, bytes.size() - pos), ec);
  if (ec || !parser.is_done()) return 0;
  *status = parser.get().result_int();
  return used;
}

void CheckResponses(const std::string& bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    unsigned status = 0;
    size_t used = ParseOne(bytes, pos, false, &status);
    if (used == 0) used = ParseOne(bytes, pos, true, &status);
    if (used == 0) __builtin_trap();  // malformed or truncated response
    pos += used;
    if (status == 101) return;  // WebSocket frames follow
    if (status < 100 || status > 599) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* harness = new Harness();  // lives for the whole process
  CheckResponses(Exchange(harness->port, data, size));
  return 0;
}
