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
  State(domain::Store& st, HybridSearcher& se, api::Gate* shared)
      : store(st), searcher(se), gate(api::SharedOrOwn(shared, st)) {}
  domain::Store& store;
  HybridSearcher& searcher;
  std::shared_ptr<api::Gate> gate;
};

enum class Kind { kSearch, kRelated };

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
                 {"tookMs", std::round(took * 1000) / 1000}});
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
  auto auth = s.gate->Admit(req);
  if (auto* r = std::get_if<Response>(&auth)) return std::move(*r);
  const auto& p = std::get<domain::Principal>(auth);
  return kind == Kind::kSearch ? HandleSearch(s, p, req) : HandleRelated(s, p, req);
}

}  // namespace

Status RegisterSearchRoutes(api::Router& router, SearchRouteDeps deps) {
  auto state = std::make_shared<State>(deps.store, deps.searcher, deps.gate);
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

std::vector<api::OperationDoc> SearchOperationDocs() {
  json uuid = {{"type", "string"}, {"format", "uuid"}};
  json uuids = {{"type", "array"}, {"items", uuid}, {"maxItems", kMaxListItems}};
  json names = {
      {"type", "array"}, {"items", {{"type", "string"}, {"maxLength", kMaxNameBytes}}}, {"maxItems", kMaxListItems}};
  json ranked = {{"type", "object"},
                 {"properties", {{"rank", {{"type", "integer"}}}, {"score", {{"type", "number"}}}}}};
  json request = {{"type", "object"},
                  {"additionalProperties", false},
                  {"required", {"query", "projectId"}},
                  {"properties",
                   {{"query", {{"type", "string"}, {"minLength", 1}, {"maxLength", 4096}}},
                    {"projectId", uuid},
                    {"k", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}, {"default", 10}}},
                    {"mode", {{"type", "string"}, {"enum", {"hybrid", "vector", "lexical"}}, {"default", "hybrid"}}},
                    {"filters",
                     {{"type", "object"},
                      {"additionalProperties", false},
                      {"properties",
                       {{"tags", names},
                        {"contentTypes", names},
                        {"threadId", uuid},
                        {"contentIds", uuids},
                        {"excludeContentIds", uuids}}}}},
                    {"boostNodeIds", uuids}}}};
  json content = {{"type", "object"},
                  {"properties",
                   {{"id", uuid},
                    {"title", {{"type", "string"}}},
                    {"contentType", {{"type", "string"}}},
                    {"projectId", uuid},
                    {"sourceUrl", {{"type", {"string", "null"}}}}}}};
  json hit = {{"type", "object"},
              {"required", {"chunkId", "content", "text", "score", "scores"}},
              {"properties",
               {{"chunkId", uuid},
                {"content", content},
                {"text", {{"type", "string"}}},
                {"chunkIndex", {{"type", "integer"}}},
                {"startOffset", {{"type", "integer"}}},
                {"endOffset", {{"type", "integer"}}},
                {"tokenCount", {{"type", "integer"}}},
                {"contentHash", {{"type", "string"}}},
                {"score", {{"type", "number"}}},
                {"scores", {{"type", "object"}, {"additionalProperties", ranked}}}}}};
  json related = content;
  related["properties"]["score"] = {{"type", "number"}};
  related["properties"]["bestChunkId"] = uuid;
  auto ok = [](const char* why, json schema) {
    return json{{"200", {{"description", why}, {"content", {{"application/json", {{"schema", std::move(schema)}}}}}}}};
  };
  std::vector<api::OperationDoc> docs;
  docs.push_back(
      {.method = http::verb::post,
       .path = "/v1/search",
       .operation_id = "search",
       .summary = "Hybrid search (vector, full text, graph) over a project's chunks",
       .tag = "Search",
       .request_schema = {{"$ref", "#/components/schemas/SearchRequest"}},
       .responses = ok("the hits, best first",
                       {{"type", "object"},
                        {"required", {"results", "mode", "projectId"}},
                        {"properties",
                         {{"results", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/SearchHit"}}}}},
                          {"mode", {{"type", "string"}}},
                          {"projectId", uuid},
                          {"tookMs", {{"type", "number"}}}}}}),
       .schemas = {{"SearchRequest", request}, {"SearchHit", hit}}});
  docs.push_back(
      {.method = http::verb::get,
       .path = "/v1/content/{id}/related",
       .operation_id = "getRelatedContent",
       .summary = "Content items related to this one",
       .tag = "Search",
       .query = json::array(
           {{{"name", "k"}, {"in", "query"}, {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}}}}}),
       .responses = ok("related content, best first",
                       {{"type", "object"},
                        {"properties", {{"contentId", uuid}, {"items", {{"type", "array"}, {"items", related}}}}}})});
  return docs;
}

}  // namespace cnx::search
