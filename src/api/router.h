// Router: maps a method and a path to a handler.
//
// Patterns are absolute paths whose segments are literals or `{name}`
// parameters: "/v1/projects/{id}/threads". A literal segment wins over a
// parameter at the same position, so "/v1/projects/search" and
// "/v1/projects/{id}" can coexist. Matching is exact: no trailing-slash or
// case folding. A GET route also answers HEAD (without the body) unless a HEAD
// route exists. A path matching only other methods yields 405 with `Allow`.
//
// Build the router on one thread, then hand it to the Server; after that it is
// only read, so concurrent Find() calls are safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http.h"
#include "api/net.h"
#include "api/websocket.h"
#include "base/result.h"

namespace cnx::api {

// A handler is a coroutine on the connection's io thread. It must not block: use
// co_await req.RunBlocking(fn) for blocking work. An exception escaping it
// becomes a 500 problem response (and an error log line).
using Handler = std::function<asio::awaitable<Response>(Request&)>;
// A plain function for handlers that neither block nor wait.
using SyncHandler = std::function<Response(Request&)>;
// Runs after a successful upgrade; the connection lives while it runs.
using WebSocketHandler = std::function<asio::awaitable<void>(Request&, WebSocket)>;

struct RouteOptions {
  std::optional<size_t> body_limit;  // overrides ServerConfig::body_limit (uploads)
};

class Router {
 public:
  struct Route {
    http::verb method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" for parameters
    uint64_t shape = 0;                 // bit 63-i set if segment i is a parameter
    Handler handler;
    RouteOptions options;
    WebSocketHandler websocket;  // set for WebSocket routes (method GET)
    WebSocketOptions websocket_options;
  };

  struct Match {
    enum class Kind { kFound, kNotFound, kMethodNotAllowed };
    Kind kind = Kind::kNotFound;
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::string allow;  // for kMethodNotAllowed: "GET, HEAD, POST"
    bool head_from_get = false;
  };

  // Errors: kInvalidArgument for a malformed pattern, kConflict if the same
  // method and pattern shape is already registered.
  Status Add(http::verb method, std::string_view pattern, Handler handler, RouteOptions options = {});
  Status Add(http::verb method, std::string_view pattern, SyncHandler handler, RouteOptions options = {});
  Status AddWebSocket(std::string_view pattern, WebSocketHandler handler, WebSocketOptions options = {});

  // Replaces the handler of the route with exactly this method and pattern by
  // `wrap(old handler)`, so a module can add behaviour around a generic route
  // (e.g. collab anchoring annotations before the generic create). Errors:
  // kNotFound when no such (non-WebSocket) route exists.
  Status Wrap(http::verb method, std::string_view pattern, const std::function<Handler(Handler)>& wrap);
  // True if some route has exactly this method and pattern.
  bool Has(http::verb method, std::string_view pattern) const;

  // `path` is the raw path of the target (no query), percent-encoded.
  Match Find(http::verb method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  Status AddRoute(Route route);
  std::vector<Route> routes_;
};

}  // namespace cnx::api
