#include "api/router.h"

#include <algorithm>
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

// Literal segments before parameters: a smaller key is more specific.
std::vector<bool> Shape(const Router::Route& r) {
  std::vector<bool> shape;
  for (const auto& s : r.segments) shape.push_back(IsParam(s));
  return shape;
}

bool Matches(const Router::Route& r, const std::vector<std::string_view>& segs,
             std::vector<std::pair<std::string, std::string>>* params) {
  if (r.segments.size() != segs.size()) return false;
  params->clear();
  for (size_t i = 0; i < segs.size(); ++i) {
    const std::string& p = r.segments[i];
    if (IsParam(p)) {
      if (segs[i].empty()) return false;
      auto value = PercentDecode(segs[i], false);
      if (!value) return false;
      params->emplace_back(p.substr(1, p.size() - 2), std::move(*value));
    } else if (p != segs[i]) {
      return false;
    }
  }
  return true;
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
  if (route.method == http::verb::unknown) {
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

bool Router::Has(http::verb method, std::string_view pattern) const {
  return std::any_of(routes_.begin(), routes_.end(),
                     [&](const Route& r) { return r.method == method && r.pattern == pattern; });
}

Router::Match Router::Find(http::verb method, std::string_view path) const {
  Match m;
  if (path.empty() || path.front() != '/') return m;
  auto segs = Split(path);
  std::set<std::string_view> allowed;
  std::vector<std::pair<std::string, std::string>> params;
  const Route* best = nullptr;
  std::vector<bool> best_shape;
  const Route* head_get = nullptr;  // a GET route that can answer HEAD
  std::vector<bool> head_shape;
  std::vector<std::pair<std::string, std::string>> head_params;
  for (const auto& r : routes_) {
    if (!Matches(r, segs, &params)) continue;
    allowed.insert(http::to_string(r.method));
    if (r.method == http::verb::get && !r.websocket) allowed.insert("HEAD");
    if (r.method == method) {
      auto shape = Shape(r);
      if (best == nullptr || shape < best_shape) {
        best = &r;
        best_shape = std::move(shape);
        m.params = params;
      }
    } else if (method == http::verb::head && r.method == http::verb::get && !r.websocket) {
      auto shape = Shape(r);
      if (head_get == nullptr || shape < head_shape) {
        head_get = &r;
        head_shape = std::move(shape);
        head_params = params;
      }
    }
  }
  if (best != nullptr) {
    m.kind = Match::Kind::kFound;
    m.route = best;
    return m;
  }
  if (head_get != nullptr) {
    m.kind = Match::Kind::kFound;
    m.route = head_get;
    m.params = std::move(head_params);
    m.head_from_get = true;
    return m;
  }
  if (!allowed.empty()) {
    m.kind = Match::Kind::kMethodNotAllowed;
    for (auto a : allowed) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += a;
    }
  }
  return m;
}

}  // namespace cnx::api
