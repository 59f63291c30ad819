// Server: the HTTP/1.1 + WebSocket server of `cnx serve`.
//
//   cnx::MetricsRegistry metrics;
//   cnx::api::Router router;            // add the application's routes
//   cnx::api::Server server(config, std::move(router), metrics, [&] { return db.CheckReady(); });
//   auto endpoint = server.Start();    // Result<tcp::endpoint>: listening now, with the bound port
//   ... wait for SIGTERM ...
//   server.Shutdown();                  // graceful, within config.shutdown_grace
//
// The server adds /healthz, /readyz and /metrics unless the router already has
// GET routes with those paths. Every request is bounded (header and body size,
// read/write timeouts), every connection has an idle timeout, and the number of
// open connections is capped: connections above the cap get a 503 and are closed.
//
// Threading: each of the `io_threads` threads runs its own io_context; a new
// connection is assigned to one of them (round robin) for life, and its I/O and
// handlers run there, one request at a time. Handlers
// must not block; they use co_await req.RunBlocking(fn), which runs `fn` on a
// separate pool of `blocking_threads` threads. The readiness callback also runs
// there.
//
// Thread safety: Start() and Shutdown() are called by the owner, from one
// thread (not an io thread). endpoint() is safe after Start() returned. The
// MetricsRegistry must outlive the Server.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/net.h"
#include "api/router.h"
#include "base/config.h"
#include "base/metrics.h"
#include "base/result.h"

namespace cnx::api {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // host:port, [v6]:port; port 0 picks a free port
  int io_threads = 2;
  int blocking_threads = 4;
  size_t header_limit = 16 * 1024;                  // request line + headers; larger -> 431 and close
  size_t body_limit = 1024 * 1024;                  // per-route override: RouteOptions::body_limit; larger -> 413
  std::chrono::milliseconds read_timeout{30'000};   // one request's header and body
  std::chrono::milliseconds write_timeout{30'000};  // one response
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait for the next request
  size_t max_connections = 10'000;
  std::chrono::milliseconds shutdown_grace{10'000};
  bool access_log = true;  // one info line per request on the default spdlog logger
};

// Reads a ServerConfig from layered settings, defaults as above for absent keys:
// listen, http.threads, http.blocking_threads, http.header_limit and
// http.body_limit (bytes), http.read_timeout, http.write_timeout,
// http.idle_timeout, http.shutdown_grace (durations such as "30s"),
// http.max_connections, http.access_log (bool). Errors: kInvalidArgument naming
// the key for malformed or non-positive values.
Result<ServerConfig> ServerConfigFromConfig(const Config& config);

// The request target as the access log writes it: the value of every query
// parameter that carries a credential (token, access_token, api_key,
// password, secret; names compared without case) replaced by "REDACTED".
// Browsers pass WebSocket tokens as `?token=` (docs/collab.md).
std::string RedactedTarget(std::string_view target);

// Says whether the service can take traffic (database reachable, schema
// migrated...). Runs on the blocking pool; an error's message is the 503 detail.
using ReadinessCheck = std::function<Status()>;

// "127.0.0.1:8080", "[::1]:0", "0.0.0.0:80" -> endpoint (numeric hosts only).
Result<tcp::endpoint> ParseListenAddress(std::string_view text);

class Server {
 public:
  Server(ServerConfig config, Router router, MetricsRegistry& metrics, ReadinessCheck readiness = nullptr);
  ~Server();  // Shutdown(0ms) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the threads. Errors: kInvalidArgument (bad
  // config or address), kUnavailable (bind/listen failed, e.g. port in use),
  // kFailedPrecondition (already started).
  Result<tcp::endpoint> Start();

  // Stops accepting (new connections are refused by the OS), closes idle
  // keep-alive and WebSocket connections, lets requests in flight finish and
  // answers them with `Connection: close`, then after `grace` (default
  // config.shutdown_grace) closes whatever is left, waits for blocking work
  // already started, and returns. Idempotent.
  void Shutdown(std::optional<std::chrono::milliseconds> grace = std::nullopt);

  tcp::endpoint endpoint() const;
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cnx::api
