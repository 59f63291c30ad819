#include "api/router.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace cnx::api {
namespace {

bool IsParam(std::string_view seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// "/a/b" -> {"a","b"}; "/" -> {}; "/a/" -> {"a",""}. `path` must start with '/'.
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (path == "/") return out;
  size_t start = 1;
  for (;;) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

Router::Route MakeRoute(http::verb method, std::string_view pattern) {
  Router::Route r;
  r.method = method;
  r.pattern = std::string(pattern);
  return r;
}

bool ValidEscapes(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      return false;
    }
  }
  return true;
}

// Walks `path` segment by segment against the route without allocating; with
// `params` set, also collects the decoded parameter values.
bool Matches(const Router::Route& r, std::string_view path, std::vector<std::pair<std::string, std::string>>* params) {
  if (r.segments.empty()) return path == "/";
  size_t pos = 1;
  for (const std::string& p : r.segments) {
    if (pos > path.size()) return false;
    size_t slash = path.find('/', pos);
    std::string_view seg = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    pos = slash == std::string_view::npos ? path.size() + 1 : slash + 1;
    if (IsParam(p)) {
      if (seg.empty() || !ValidEscapes(seg)) return false;
      if (params != nullptr) params->emplace_back(p.substr(1, p.size() - 2), *PercentDecode(seg, false));
    } else if (p != seg) {
      return false;
    }
  }
  return pos == path.size() + 1;  // every segment of the path consumed
}

}  // namespace

Status Router::Add(http::verb method, std::string_view pattern, Handler handler, RouteOptions options) {
  if (!handler) return Err(Module::kApi, ErrorCode::kInvalidArgument, "route handler is empty");
  Route r = MakeRoute(method, pattern);
  r.handler = std::move(handler);
  r.options = options;
  return AddRoute(std::move(r));
}

Status Router::Add(http::verb method, std::string_view pattern, SyncHandler handler, RouteOptions options) {
  if (!handler) return Err(Module::kApi, ErrorCode::kInvalidArgument, "route handler is empty");
  return Add(method, pattern,
             Handler([h = std::move(handler)](Request& req) -> asio::awaitable<Response> { co_return h(req); }),
             options);
}

Status Router::AddWebSocket(std::string_view pattern, WebSocketHandler handler, WebSocketOptions options) {
  if (!handler) return Err(Module::kApi, ErrorCode::kInvalidArgument, "websocket handler is empty");
  Route r = MakeRoute(http::verb::get, pattern);
  r.websocket = std::move(handler);
  r.websocket_options = options;
  return AddRoute(std::move(r));
}

Status Router::AddRoute(Route route) {
  const std::string& pattern = route.pattern;
  if (pattern.empty() || pattern.front() != '/') {
    return Err(Module::kApi, ErrorCode::kInvalidArgument, "route pattern must start with '/': " + pattern);
  }
  if (route.method == http::verb::unknown || static_cast<unsigned>(route.method) >= 64) {
    return Err(Module::kApi, ErrorCode::kInvalidArgument, "route method is unknown: " + pattern);
  }
  std::set<std::string_view> names;
  for (std::string_view seg : Split(pattern)) {
    if (seg.empty()) return Err(Module::kApi, ErrorCode::kInvalidArgument, "empty segment in route: " + pattern);
    if (IsParam(seg)) {
      std::string_view name = seg.substr(1, seg.size() - 2);
      if (!IsIdentifier(name) || !names.insert(name).second) {
        return Err(Module::kApi, ErrorCode::kInvalidArgument, "bad or repeated parameter in route: " + pattern);
      }
    } else if (seg.find_first_of("{}?#%") != std::string_view::npos) {
      return Err(Module::kApi, ErrorCode::kInvalidArgument, "bad literal segment in route: " + pattern);
    }
    if (route.segments.size() == 64) {
      return Err(Module::kApi, ErrorCode::kInvalidArgument, "route has more than 64 segments: " + pattern);
    }
    if (IsParam(seg)) route.shape |= uint64_t{1} << (63 - route.segments.size());
    route.segments.emplace_back(seg);
  }
  for (const auto& r : routes_) {
    if (r.method != route.method || r.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < r.segments.size() && same; ++i) {
      bool pa = IsParam(r.segments[i]);
      bool pb = IsParam(route.segments[i]);
      same = pa == pb && (pa || r.segments[i] == route.segments[i]);
    }
    if (same) {
      return Err(Module::kApi, ErrorCode::kConflict,
                 std::string(http::to_string(route.method)) + " " + pattern + " clashes with " + r.pattern);
    }
  }
  routes_.push_back(std::move(route));
  return Ok();
}

Status Router::Wrap(http::verb method, std::string_view pattern, const std::function<Handler(Handler)>& wrap) {
  for (auto& r : routes_) {
    if (r.method == method && r.pattern == pattern && !r.websocket) {
      Handler wrapped = wrap(r.handler);
      if (!wrapped) return Err(Module::kApi, ErrorCode::kInvalidArgument, "wrapped handler is empty: " + r.pattern);
      r.handler = std::move(wrapped);
      return Ok();
    }
  }
  return Err(Module::kApi, ErrorCode::kNotFound, "no route to wrap: " + std::string(pattern));
}

bool Router::Has(http::verb method, std::string_view pattern) const {
  return std::any_of(routes_.begin(), routes_.end(),
                     [&](const Route& r) { return r.method == method && r.pattern == pattern; });
}

Router::Match Router::Find(http::verb method, std::string_view path) const {
  Match m;
  if (path.empty() || path.front() != '/') return m;
  uint64_t allowed = 0;  // bit per http::verb
  const Route* best = nullptr;
  const Route* head_get = nullptr;  // a GET route that can answer HEAD
  // A route of k segments can only match a path with exactly k slashes.
  const auto slashes = static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
  for (const auto& r : routes_) {
    if (!r.segments.empty() && r.segments.size() != slashes) continue;
    if (!Matches(r, path, nullptr)) continue;
    allowed |= uint64_t{1} << static_cast<unsigned>(r.method);
    if (r.method == http::verb::get && !r.websocket) allowed |= uint64_t{1} << static_cast<unsigned>(http::verb::head);
    // A smaller shape has its first parameter later: literals win.
    if (r.method == method) {
      if (best == nullptr || r.shape < best->shape) best = &r;
    } else if (method == http::verb::head && r.method == http::verb::get && !r.websocket) {
      if (head_get == nullptr || r.shape < head_get->shape) head_get = &r;
    }
  }
  if (best == nullptr && head_get != nullptr) {
    best = head_get;
    m.head_from_get = true;
  }
  if (best != nullptr) {
    m.kind = Match::Kind::kFound;
    m.route = best;
    Matches(*best, path, &m.params);
    return m;
  }
  if (allowed != 0) {
    m.kind = Match::Kind::kMethodNotAllowed;
    std::vector<std::string_view> names;
    for (unsigned v = 0; v < 64; ++v) {
      if (allowed & (uint64_t{1} << v)) names.push_back(http::to_string(static_cast<http::verb>(v)));
    }
    std::sort(names.begin(), names.end());
    for (auto n : names) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += n;
    }
  }
  return m;
}

}  // namespace cnx::api
