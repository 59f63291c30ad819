// Handlers of the search API.
#include "search/routes.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <variant>

#include "api/rest.h"
#include "search/request.h"

namespace cnx::search {
namespace {

using api::Request;
using api::Response;
using nlohmann::json;
namespace http = api::http;
namespace asio = api::asio;

Response Problem(int status, std::string_view slug, std::string detail,
                 const std::vector<domain::FieldIssue>& fields = {}) {
  Response r = api::Problem(status, slug, std::move(detail), fields);
  if (status == 401) r.SetHeader(http::field::www_authenticate, "Bearer");
  return r;
}

Response Validation(const std::string& field, const std::string& message) {
  return Problem(400, "validation", (field.empty() ? "body" : field) + " " + message, {{field, message}});
}

Response JsonOk(const json& body) {
  Response r(http::status::ok);
  r.SetBody(body.dump(-1, ' ', false, json::error_handler_t::replace), api::kJsonType);
  return r;
}

Response FaultResponse(const domain::Fault& f) {
  switch (f.code) {
    case ErrorCode::kNotFound:
    case ErrorCode::kPermissionDenied:  // a project the caller cannot read does not exist for them
      return Problem(404, "not-found", "no such project");
    case ErrorCode::kUnauthenticated:
      return Problem(401, f.type.empty() ? "unauthenticated" : f.type, f.detail);
    case ErrorCode::kUnavailable:
    case ErrorCode::kRetryable:
    case ErrorCode::kTimeout:
    case ErrorCode::kResourceExhausted:
      return Problem(503, "unavailable", "the service is busy, retry later");
    default:
      spdlog::error("search api: {}", f.detail);
      return Problem(500, "internal", "internal error");
  }
}

Response SearchFailure(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
      return Problem(400, "validation", e.message());
    case ErrorCode::kNotFound:
      return Problem(404, "not-found", e.message());
    case ErrorCode::kUnavailable:
    case ErrorCode::kRetryable:
    case ErrorCode::kTimeout:
    case ErrorCode::kResourceExhausted:
      return Problem(503, "unavailable", "search is busy, retry later");
    default:
      spdlog::error("search api: {}", e.ToString());
      return Problem(500, "internal", "internal error");
  }
}

std::optional<Response> CheckQueryParams(const Request& req, std::initializer_list<std::string_view> allowed) {
  std::string_view q = req.query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto key = api::PercentDecode(pair.substr(0, pair.find('=')), true);
    if (!key) return Validation("query", "bad percent-encoding");
    bool ok = false;
    for (auto a : allowed) ok = ok || a == *key;
    if (!ok) return Validation(key->substr(0, 100), "unknown query parameter");
  }
  return std::nullopt;
}

struct State {
  domain::Store& store;
  HybridSearcher& searcher;
};

enum class Kind { kSearch, kRelated };

std::variant<domain::Principal, Response> Authenticate(State& s, const Request& req) {
  std::string_view auth = req.Header(http::field::authorization);
  if (auth.size() < 7 || !(auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    return Problem(401, "unauthenticated", "send Authorization: Bearer <token>");
  }
  auto principal = s.store.Authenticate(auth.substr(7));
  if (!principal) return FaultResponse(principal.error());
  return *principal;
}

Response HandleSearch(State& s, const domain::Principal& p, const Request& req) {
  if (auto bad = CheckQueryParams(req, {})) return *bad;
  std::string_view ct = req.Header(http::field::content_type);
  std::string type(ct.substr(0, ct.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type != "application/json") return Problem(415, "unsupported-media-type", "send the body as application/json");
  auto decoded = DecodeSearchRequest(req.body());
  if (!decoded) {
    const auto& issue = decoded.error();
    if (issue.malformed) return Problem(400, "malformed-json", issue.message);
    return Validation(issue.field, issue.message);
  }
  // The project must be readable by the caller (404 otherwise).
  const domain::ResourceSpec* project_spec = domain::FindResource("project");
  if (project_spec == nullptr) return Problem(500, "internal", "internal error");
  auto project = s.store.Get(*project_spec, p, decoded->project_id);
  if (!project) return FaultResponse(project.error());

  auto start = std::chrono::steady_clock::now();
  Query q;
  q.tenant_id = p.tenant_id;
  q.project_id = decoded->project_id;
  q.text = std::move(decoded->query);
  q.k = decoded->k;
  q.mode = decoded->mode;
  q.filters = std::move(decoded->filters);
  q.boost_node_ids = std::move(decoded->boost_node_ids);
  auto hits = s.searcher.Search(q);
  if (!hits) return SearchFailure(hits.error());
  double took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  json results = json::array();
  for (const auto& h : *hits) results.push_back(HitToJson(h));
  return JsonOk({{"results", std::move(results)},
                 {"mode", std::string(ModeName(q.mode))},
                 {"projectId", q.project_id->ToString()},
                 {"took_ms", std::round(took * 1000) / 1000}});
}

Response HandleRelated(State& s, const domain::Principal& p, const Request& req) {
  if (auto bad = CheckQueryParams(req, {"k"})) return *bad;
  auto id = Uuid::Parse(req.PathParam("id"));
  if (!id) return Validation("id", "must be a UUID");
  size_t k = 10;
  if (auto v = req.QueryParam("k")) {
    int64_t x = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || ptr != v->data() + v->size() || x < 1 || x > static_cast<int64_t>(kMaxK)) {
      return Validation("k", "must be an integer in 1.." + std::to_string(kMaxK));
    }
    k = static_cast<size_t>(x);
  }
  auto access = s.store.ContentItemAccess(p, *id);
  if (!access) {
    if (access.error().code == ErrorCode::kNotFound) return Problem(404, "not-found", "no such content item");
    return FaultResponse(access.error());
  }
  auto items = s.searcher.Related({.tenant_id = p.tenant_id, .content_id = *id, .k = k});
  if (!items) return SearchFailure(items.error());
  json out = json::array();
  for (const auto& it : *items) out.push_back(RelatedToJson(it));
  return JsonOk({{"contentId", id->ToString()}, {"items", std::move(out)}});
}

Response Handle(State& s, Kind kind, Request& req) {
  auto auth = Authenticate(s, req);
  if (auto* r = std::get_if<Response>(&auth)) return std::move(*r);
  const auto& p = std::get<domain::Principal>(auth);
  return kind == Kind::kSearch ? HandleSearch(s, p, req) : HandleRelated(s, p, req);
}

}  // namespace

Status RegisterSearchRoutes(api::Router& router, SearchRouteDeps deps) {
  auto state = std::make_shared<State>(State{deps.store, deps.searcher});
  auto add = [&](http::verb method, std::string_view pattern, Kind kind) -> Status {
    return router.Add(method, pattern, api::Handler([state, kind](Request& req) -> asio::awaitable<Response> {
                        State* s = state.get();
                        co_return co_await req.RunBlocking([s, kind, &req]() -> Response {
                          try {
                            return Handle(*s, kind, req);
                          } catch (const std::exception& e) {
                            spdlog::error("search api: {}: {}", req.target(), e.what());
                            return Problem(500, "internal", "internal error");
                          }
                        });
                      }));
  };
  CNX_TRY(add(http::verb::post, "/v1/search", Kind::kSearch));
  CNX_TRY(add(http::verb::get, "/v1/content/{id}/related", Kind::kRelated));
  return Ok();
}

}  // namespace cnx::search
