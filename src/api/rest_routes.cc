// Route table and handlers of the /v1 REST API.

// GCC 12 at -O2 reports asio's awaitable frame operator delete as mismatched
// with its operator new in some coroutines (a false positive, GCC PR 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "api/gate.h"
#include "api/pg_lanes.h"
#include "api/rest.h"
#include "text/chunker.h"

namespace cnx::api {

using domain::Fault;
using domain::Principal;
using domain::ResourceSpec;
using nlohmann::json;

std::string ProblemTypeUri(std::string_view slug) {
  return "urn:cnx:problem:" + std::string(slug);
}

Response Problem(int status, std::string_view slug, std::string detail, const std::vector<domain::FieldIssue>& fields,
                 const nlohmann::json* extra_key, std::string_view extra_name) {
  json j;
  j["type"] = ProblemTypeUri(slug);
  j["title"] = std::string(http::obsolete_reason(static_cast<http::status>(status)));
  j["status"] = status;
  j["detail"] = std::move(detail);
  if (!fields.empty()) {
    auto& errors = j["errors"] = json::array();
    for (const auto& f : fields) errors.push_back({{"field", f.field}, {"message", f.message}});
  }
  if (extra_key) j[std::string(extra_name)] = *extra_key;
  Response r(static_cast<http::status>(status));
  r.SetBody(j.dump(-1, ' ', false, json::error_handler_t::replace), kProblemType);
  return r;
}

namespace {

// "content item" -> "ContentItem"
std::string Camel(const std::string& name) {
  std::string out;
  bool up = true;
  for (char c : name) {
    if (c == ' ' || c == '-') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

std::vector<RestRoute> BuildRoutes() {
  std::vector<RestRoute> r;
  auto add = [&](http::verb m, std::string pattern, RestKind k, const ResourceSpec* spec, std::string op,
                 std::string summary, std::string tag) {
    r.push_back({m, std::move(pattern), k, spec, std::move(op), std::move(summary), std::move(tag)});
  };
  using V = http::verb;
  add(V::post, "/v1/signup", RestKind::kSignup, nullptr, "signup",
      "Create a tenant and its owner; returns a session token", "Accounts");
  add(V::post, "/v1/sessions", RestKind::kLogin, nullptr, "createSession", "Log in with email and password",
      "Accounts");
  add(V::get, "/v1/sessions", RestKind::kListSessions, nullptr, "listSessions", "List your live sessions", "Accounts");
  add(V::delete_, "/v1/sessions/current", RestKind::kLogoutCurrent, nullptr, "deleteCurrentSession",
      "Log out (revoke the calling session)", "Accounts");
  add(V::delete_, "/v1/sessions/{id}", RestKind::kRevokeSession, nullptr, "deleteSession",
      "Revoke one of your sessions", "Accounts");
  add(V::post, "/v1/api-keys", RestKind::kCreateApiKey, nullptr, "createApiKey",
      "Create an API key (the secret is shown once)", "Accounts");
  add(V::get, "/v1/api-keys", RestKind::kListApiKeys, nullptr, "listApiKeys", "List your API keys", "Accounts");
  add(V::get, "/v1/api-keys/{id}", RestKind::kGetApiKey, nullptr, "getApiKey", "Get one of your API keys", "Accounts");
  add(V::delete_, "/v1/api-keys/{id}", RestKind::kRevokeApiKey, nullptr, "deleteApiKey", "Revoke an API key",
      "Accounts");
  add(V::get, "/v1/me", RestKind::kMe, nullptr, "getMe", "The calling user and tenant", "Accounts");
  add(V::get, "/v1/openapi.json", RestKind::kOpenApi, nullptr, "getOpenApi", "This document", "Meta");
  add(V::get, "/v1/token-usage/summary", RestKind::kUsageSummary, nullptr, "getTokenUsageSummary",
      "Token usage per project, model, kind and day (refreshed periodically)", "TokenUsage");
  add(V::get, "/v1/projects/{id}/ingest-status", RestKind::kIngestStatus, nullptr, "getIngestStatus",
      "Chunks of a project's content and how many are embedded, pending or failed", "ContentItem");

  for (const auto& spec : domain::Resources()) {
    std::string T = Camel(spec.name);
    std::string tag = spec.schema_name;
    const ResourceSpec* parent = spec.parent.empty() ? nullptr : domain::FindResource(spec.parent);
    std::string base = "/v1/" + spec.path;
    if (spec.table == "resource_locks") {
      add(V::post, base, RestKind::kAcquireLock, &spec, "acquireLock", "Acquire a lock (409 names the holder)", tag);
      add(V::post, base + "/{id}/renew", RestKind::kRenewLock, &spec, "renewLock", "Extend a lock you hold", tag);
    }
    if (spec.can_create && spec.top_level_create) {
      add(V::post, base, RestKind::kCreate, &spec, "create" + T, "Create a " + spec.name, tag);
    }
    if (spec.can_create && parent) {
      add(V::post, "/v1/" + parent->path + "/{id}/" + spec.nested, RestKind::kCreateNested, &spec,
          "create" + T + "In" + Camel(parent->name), "Create a " + spec.name + " in a " + parent->name, tag);
    }
    if (spec.top_level_list) {
      add(V::get, base, RestKind::kList, &spec, "list" + T + "s", "List the " + spec.name + "s you can see", tag);
    }
    if (parent) {
      add(V::get, "/v1/" + parent->path + "/{id}/" + spec.nested, RestKind::kListNested, &spec,
          "list" + T + "sOf" + Camel(parent->name), "List the " + spec.name + "s of a " + parent->name, tag);
    }
    add(V::get, base + "/{id}", RestKind::kGet, &spec, "get" + T, "Get a " + spec.name, tag);
    if (spec.can_update && spec.versioned) {
      add(V::patch, base + "/{id}", RestKind::kUpdate, &spec, "update" + T, "Change a " + spec.name + " (If-Match)",
          tag);
    }
    if (spec.can_delete && spec.versioned) {
      add(V::delete_, base + "/{id}", RestKind::kDelete, &spec, "delete" + T,
          (spec.table == "resource_locks" ? std::string("Release a lock") : "Delete a " + spec.name) + " (If-Match)",
          tag);
    }
  }
  return r;
}

struct State {
  State(domain::Store& st, RestConfig c, Gate* shared)
      : store(st), config(c), gate(SharedOrOwn(shared, st, {c.rate_per_second, c.rate_burst})) {
    lanes.conninfo = st.pool_options().conninfo;
    lanes.connect = st.pool_options().connect;
    lanes.connect.on_connect.push_back("SET application_name = 'cnx io thread'");
    lanes.connections = c.io_thread_connections;
  }
  domain::Store& store;
  RestConfig config;
  std::shared_ptr<Gate> gate;
  PgLaneOptions lanes;  // GETs by id with a cached principal (docs/decisions/0005-io-thread-reads.md)
  std::string openapi;  // the document served at /v1/openapi.json
};

// --- responses ----------------------------------------------------------------

std::string Etag(int64_t version) {
  return "\"" + std::to_string(version) + "\"";
}

// If-None-Match (RFC 9110 §13.1.2): "*" or a list of entity tags, weak
// comparison (a W/ prefix matches too).
bool MatchesNoneMatch(std::string_view header, std::string_view etag) {
  if (header.empty()) return false;
  size_t start = 0;
  while (start <= header.size()) {
    size_t comma = header.find(',', start);
    std::string_view tag = header.substr(start, comma == std::string_view::npos ? header.npos : comma - start);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return false;
}

Response EntityResponse(int status, const domain::Entity& e, const std::string& location = "") {
  Response r(static_cast<http::status>(status));
  r.SetBody(e.body.dump(-1, ' ', false, json::error_handler_t::replace), kJsonType);
  if (e.version) r.SetHeader(http::field::etag, Etag(*e.version));
  if (!location.empty()) r.SetHeader(http::field::location, location);
  return r;
}

Response JsonOk(int status, const json& body) {
  Response r(static_cast<http::status>(status));
  r.SetBody(body.dump(-1, ' ', false, json::error_handler_t::replace), kJsonType);
  return r;
}

// --- request parsing ------------------------------------------------------------

std::optional<Response> ParseBody(const Request& req, const RestConfig& config, json& out) {
  return DecodeJsonBody(req.Header(http::field::content_type), req.body(), config, out);
}

std::optional<Response> PathId(const Request& req, Uuid& out) {
  auto u = Uuid::Parse(req.PathParam("id"));
  if (!u) return Problem(400, "validation", "the id in the path is not a UUID", {{"id", "must be a UUID"}});
  out = *u;
  return std::nullopt;
}

// If-Match: nullopt inside = "*". Returns an error response when absent or malformed.
std::optional<Response> IfMatch(const Request& req, std::optional<int64_t>& out, bool required = true) {
  std::string_view v = req.Header(http::field::if_match);
  if (v.empty()) {
    if (!required) {
      out = std::nullopt;
      return std::nullopt;
    }
    return Problem(428, "precondition-required", "send If-Match with the ETag you read (or *)");
  }
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v == "*") {
    out = std::nullopt;
    return std::nullopt;
  }
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 1 || v.empty()) {
    return Problem(400, "validation", "If-Match must be an ETag this API returned, or *", {{"If-Match", "malformed"}});
  }
  out = n;
  return std::nullopt;
}

std::optional<Response> CheckQuery(const Request& req, std::initializer_list<std::string_view> allowed) {
  std::string_view q = req.query();
  std::vector<domain::FieldIssue> issues;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto key = PercentDecode(pair.substr(0, pair.find('=')), true);
    if (!key) {
      issues.push_back({"query", "bad percent-encoding"});
      continue;
    }
    bool ok = false;
    for (auto a : allowed) ok = ok || a == *key;
    if (!ok) issues.push_back({key->substr(0, 100), "unknown query parameter"});
  }
  if (!issues.empty()) return Problem(400, "validation", "the query is invalid", issues);
  return std::nullopt;
}

// --- the handlers -------------------------------------------------------------------

Response Authenticated(State& s, const RestRoute& route, Request& req, const Principal& p);
Response WithReplay(State& s, const RestRoute& route, Request& req, const Principal& p);

Response Handle(State& s, const RestRoute& route, Request& req, bool charged) {
  if (route.kind == RestKind::kOpenApi) {
    Response r(http::status::ok);
    r.SetBody(s.openapi, kJsonType);
    return r;
  }
  if (route.kind == RestKind::kSignup || route.kind == RestKind::kLogin) {
    if (auto busy = s.gate->Throttle(req)) return *busy;
    if (auto bad = CheckQuery(req, {})) return *bad;
    json body;
    if (auto bad = ParseBody(req, s.config, body)) return *bad;
    std::string ua(req.Header(http::field::user_agent));
    auto out = route.kind == RestKind::kSignup ? s.store.Signup(body, ua) : s.store.Login(body, ua);
    if (!out) return FaultResponse(out.error());
    return JsonOk(201, *out);
  }
  // The handlers reach the database only through the Store: the Gate may
  // serve the principal from its credential cache (one round trip per GET).
  return s.gate->Serve(
      req, [&](const Principal& p) { return WithReplay(s, route, req, p); }, charged);
}

// Idempotent replay of POSTs around Authenticated.
Response WithReplay(State& s, const RestRoute& route, Request& req, const Principal& p) {
  std::string_view key = req.Header("Idempotency-Key");
  if (req.method() != http::verb::post || key.empty()) return Authenticated(s, route, req, p);
  if (!ValidIdempotencyKey(key)) {
    return Problem(400, "validation", "Idempotency-Key must be 1-255 visible ASCII characters",
                   {{"Idempotency-Key", "malformed"}});
  }
  if (auto answer = BeginIdempotency(s.store, p, key, req)) return std::move(*answer);
  Response r = Authenticated(s, route, req, p);
  FinishIdempotency(s.store, p, key, r);
  return r;
}

std::optional<Response> ListParams(const Request& req, const RestConfig& config, size_t& limit,
                                   std::optional<std::string>& cursor) {
  limit = config.default_page_size;
  if (auto l = req.QueryParam("limit")) {
    size_t n = 0;
    auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), n);
    if (ec != std::errc() || p != l->data() + l->size() || n < 1 || n > config.max_page_size) {
      return Problem(400, "validation",
                     "limit must be an integer between 1 and " + std::to_string(config.max_page_size),
                     {{"limit", "out of range"}});
    }
    limit = n;
  }
  if (auto c = req.QueryParam("cursor")) cursor = *c;
  return std::nullopt;
}

Response PageResponse(const domain::Page& page) {
  json out{{"items", page.items}, {"nextCursor", page.next_cursor ? json(*page.next_cursor) : json(nullptr)}};
  return JsonOk(200, out);
}

Response GetResponse(const Request& req, domain::Outcome<domain::EntityText> e) {
  if (!e) return FaultResponse(e.error());
  if (e->version && MatchesNoneMatch(req.Header(http::field::if_none_match), Etag(*e->version))) {
    Response r(http::status::not_modified);  // the client's copy is current
    r.SetHeader(http::field::etag, Etag(*e->version));
    return r;
  }
  Response r(http::status::ok);
  r.SetBody(std::move(e->json), kJsonType);
  if (e->version) r.SetHeader(http::field::etag, Etag(*e->version));
  return r;
}

Response Authenticated(State& s, const RestRoute& route, Request& req, const Principal& p) {
  auto& store = s.store;
  const ResourceSpec* spec = route.spec;
  bool has_body = req.method() == http::verb::post || req.method() == http::verb::patch;
  json body = json::object();
  Uuid id;
  bool has_id = route.pattern.find("{id}") != std::string::npos;
  if (has_id) {
    if (auto bad = PathId(req, id)) return *bad;
  }
  if (route.kind != RestKind::kList && route.kind != RestKind::kListNested && route.kind != RestKind::kUsageSummary) {
    if (auto bad = CheckQuery(req, {})) return *bad;
  }
  if (has_body) {
    if (auto bad = ParseBody(req, s.config, body)) return *bad;
  } else if (!req.body().empty()) {
    return Problem(400, "validation", "this method takes no body");
  }
  std::optional<int64_t> if_match;
  if (route.kind == RestKind::kUpdate || route.kind == RestKind::kDelete || route.kind == RestKind::kRevokeSession ||
      route.kind == RestKind::kRevokeApiKey) {
    if (auto bad = IfMatch(req, if_match)) return *bad;
  }
  if (route.kind == RestKind::kRenewLock) {
    if (auto bad = IfMatch(req, if_match, false)) return *bad;
  }

  switch (route.kind) {
    case RestKind::kCreate:
    case RestKind::kCreateNested: {
      std::optional<Uuid> parent;
      if (route.kind == RestKind::kCreateNested) parent = id;
      auto e = store.Create(*spec, p, parent, body);
      if (!e) return FaultResponse(e.error());
      if (e->outcome != domain::WriteOutcome::kCreated) {
        // Upsert by source: the content item that already had this sourceUrl.
        Response r = EntityResponse(200, *e);
        r.SetHeader("Cnx-Write", e->outcome == domain::WriteOutcome::kUpdated ? "updated" : "unchanged");
        return r;
      }
      Response r = EntityResponse(201, *e, "/v1/" + spec->path + "/" + e->body.value("id", std::string()));
      if (spec->table == "content_items") r.SetHeader("Cnx-Write", "created");
      return r;
    }
    case RestKind::kList:
    case RestKind::kListNested: {
      std::optional<Uuid> parent;
      if (route.kind == RestKind::kListNested) {
        if (auto bad = CheckQuery(req, {"limit", "cursor"})) return *bad;
        parent = id;
      } else {
        std::string filter;
        const domain::Field* pf = nullptr;
        for (const auto& f : spec->fields) {
          if (!spec->parent_column.empty() && f.column == spec->parent_column) pf = &f;
        }
        if (pf) filter = pf->json;
        if (auto bad =
                filter.empty() ? CheckQuery(req, {"limit", "cursor"}) : CheckQuery(req, {"limit", "cursor", filter})) {
          return *bad;
        }
        if (!filter.empty()) {
          if (auto v = req.QueryParam(filter)) {
            auto u = Uuid::Parse(*v);
            if (!u) return Problem(400, "validation", filter + " must be a UUID", {{filter, "must be a UUID"}});
            parent = *u;
          }
        }
      }
      size_t limit = 0;
      std::optional<std::string> cursor;
      if (auto bad = ListParams(req, s.config, limit, cursor)) return *bad;
      auto page = store.List(*spec, p, parent, limit, cursor);
      if (!page) return FaultResponse(page.error());
      return PageResponse(*page);
    }
    case RestKind::kGet:
      return GetResponse(req, store.GetText(*spec, p, id));
    case RestKind::kUpdate: {
      auto e = store.Update(*spec, p, id, if_match, body);
      if (!e) return FaultResponse(e.error());
      return EntityResponse(200, *e);
    }
    case RestKind::kDelete: {
      auto st = store.Delete(*spec, p, id, if_match);
      if (!st) return FaultResponse(st.error());
      return Response(http::status::no_content);
    }
    case RestKind::kListSessions: {
      auto out = store.ListSessions(p);
      if (!out) return FaultResponse(out.error());
      return JsonOk(200, *out);
    }
    case RestKind::kLogoutCurrent: {
      auto st = store.Logout(p);
      if (!st) return FaultResponse(st.error());
      return Response(http::status::no_content);
    }
    case RestKind::kRevokeSession: {
      auto st = store.RevokeSession(p, id, if_match);
      if (!st) return FaultResponse(st.error());
      return Response(http::status::no_content);
    }
    case RestKind::kCreateApiKey: {
      auto e = store.CreateApiKey(p, body);
      if (!e) return FaultResponse(e.error());
      return EntityResponse(201, *e, "/v1/api-keys/" + e->body.value("id", std::string()));
    }
    case RestKind::kListApiKeys: {
      auto out = store.ListApiKeys(p);
      if (!out) return FaultResponse(out.error());
      return JsonOk(200, *out);
    }
    case RestKind::kGetApiKey: {
      auto e = store.GetApiKey(p, id);
      if (!e) return FaultResponse(e.error());
      return EntityResponse(200, *e);
    }
    case RestKind::kRevokeApiKey: {
      auto st = store.RevokeApiKey(p, id, if_match);
      if (!st) return FaultResponse(st.error());
      return Response(http::status::no_content);
    }
    case RestKind::kMe: {
      auto out = store.Me(p);
      if (!out) return FaultResponse(out.error());
      return JsonOk(200, *out);
    }
    case RestKind::kAcquireLock: {
      auto e = store.AcquireLock(p, body);
      if (!e) return FaultResponse(e.error());
      return EntityResponse(201, *e, "/v1/locks/" + e->body.value("id", std::string()));
    }
    case RestKind::kRenewLock: {
      auto e = store.RenewLock(p, id, if_match, body);
      if (!e) return FaultResponse(e.error());
      return EntityResponse(200, *e);
    }
    case RestKind::kUsageSummary: {
      if (auto bad = CheckQuery(req, {"projectId"})) return *bad;
      std::optional<Uuid> project;
      if (auto v = req.QueryParam("projectId")) {
        auto u = Uuid::Parse(*v);
        if (!u) return Problem(400, "validation", "projectId must be a UUID", {{"projectId", "must be a UUID"}});
        project = *u;
      }
      auto out = store.TokenUsageSummary(p, project);
      if (!out) return FaultResponse(out.error());
      return JsonOk(200, *out);
    }
    case RestKind::kIngestStatus: {
      auto out = store.IngestStatus(p, id);
      if (!out) return FaultResponse(out.error());
      return JsonOk(200, *out);
    }
    default:
      return Problem(500, "internal", "unrouted");
  }
}

// A GET by id for a cached principal, read by the io thread itself (PgLanes):
// the response, or nullopt to take the blocking path (no lane ready, the lane
// broke, the guard refused or did not run, anything but a plain GET).
// `charged` tells whether the rate-limit token was taken.
asio::awaitable<std::optional<Response>> FastGet(State& s, const RestRoute& route, Request& req, bool& charged) {
  Uuid id;
  if (PathId(req, id) || CheckQuery(req, {}) || !req.body().empty()) co_return std::nullopt;
  auto cached = s.gate->CachedPrincipal(req);
  if (!cached) co_return std::nullopt;
  charged = true;
  if (auto busy = s.gate->Charge(cached->second)) co_return std::move(*busy);
  const Principal& p = cached->first;
  auto plan = domain::Store::GetPlan(*route.spec, p, id);
  auto rows = co_await PgLanes::Exec(s.lanes, req.blocking_executor(), p.tenant_id, plan.guard ? &*plan.guard : nullptr,
                                     plan.sql, plan.params);
  // Any failure (a refusing guard, a lane that broke, anything local) is left
  // to the blocking path, which authenticates afresh when it must.
  if (!rows || !*rows) co_return std::nullopt;
  auto e = domain::Store::GetTextFrom(*route.spec, p, std::move(*rows));
  if (!p.pending->confirmed) co_return std::nullopt;
  co_return GetResponse(req, std::move(e));
}

// Only trivially copyable parameters: the State is owned by the route handlers.
asio::awaitable<Response> Serve(State* state, const RestRoute* route, Request& req) {
  bool charged = false;
  if (route->kind == RestKind::kGet && state->lanes.connections > 0) {
    if (auto r = co_await FastGet(*state, *route, req, charged)) co_return std::move(*r);
  }
  co_return co_await req.RunBlocking([state, route, &req, charged]() -> Response {
    try {
      return Handle(*state, *route, req, charged);
    } catch (const std::exception& e) {
      spdlog::error("rest: {} {}: {}", req.method_string(), route->pattern, e.what());
      return Problem(500, "internal", "internal error");
    }
  });
}

}  // namespace

bool ValidIdempotencyKey(std::string_view key) {
  bool ok = !key.empty() && key.size() <= 255;
  for (char c : key) ok = ok && c >= 0x21 && c <= 0x7e;
  return ok;
}

std::optional<Response> BeginIdempotency(domain::Store& store, const domain::Principal& p, std::string_view key,
                                         const Request& req) {
  std::string hash = text::Sha256Hex(std::string(req.method_string()) + "\n" + std::string(req.target()) + "\n" +
                                     std::string(req.Header(http::field::content_type)) + "\n" + req.body());
  auto begin = store.BeginIdempotent(p, key, req.method_string(), req.target(), hash);
  if (!begin) return FaultResponse(begin.error());
  switch (begin->first) {
    case domain::IdempotencyState::kMismatch:
      return Problem(422, "idempotency-key-reused", "this Idempotency-Key was used for a different request");
    case domain::IdempotencyState::kInProgress:
      return Problem(409, "idempotency-in-progress", "a request with this Idempotency-Key is still running");
    case domain::IdempotencyState::kReplay: {
      const auto& stored = begin->second;
      Response r(static_cast<http::status>(stored.status));
      r.SetBody(stored.body, stored.headers.value("content-type", std::string(kJsonType)));
      for (const auto& [k, v] : stored.headers.items()) {
        if (k != "content-type" && v.is_string()) r.SetHeader(k, v.get<std::string>());
      }
      r.SetHeader("Idempotent-Replayed", "true");
      return r;
    }
    case domain::IdempotencyState::kNew:
      break;
  }
  return std::nullopt;
}

void FinishIdempotency(domain::Store& store, const domain::Principal& p, std::string_view key, const Response& r) {
  int status = static_cast<int>(r.status());
  if (status >= 500 || status == 429 || status == 401) {
    (void)store.AbandonIdempotent(p, key);
    return;
  }
  domain::StoredResponse stored;
  stored.status = status;
  stored.body = r.body();
  for (auto f : {http::field::content_type, http::field::etag, http::field::location}) {
    auto it = r.raw().find(f);
    if (it != r.raw().end()) {
      std::string name(http::to_string(f));
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      stored.headers[name] = std::string(it->value());
    }
  }
  (void)store.FinishIdempotent(p, key, stored);
}

int StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kUnimplemented:
      return 405;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kFailedPrecondition:
      return 412;
    case ErrorCode::kUnavailable:
    case ErrorCode::kResourceExhausted:  // the server's capacity (pool, connections); rate limits answer 429 themselves
    case ErrorCode::kRetryable:
    case ErrorCode::kTimeout:
      return 503;
    default:
      return 500;
  }
}

Response FaultResponse(const Fault& f) {
  int status = StatusFor(f.code);
  if (status >= 500) {
    if (status == 500) spdlog::error("rest: {}", f.detail);
    return Problem(status, status == 503 ? "unavailable" : "internal",
                   status == 503 ? "the service is busy, retry later" : "internal error");
  }
  if (status == 412 && f.current) {
    Response r = Problem(status, f.type, f.detail, f.fields, &*f.current, "current");
    if (f.current_version) r.SetHeader(http::field::etag, Etag(*f.current_version));
    return r;
  }
  if (status == 409 && f.current) return Problem(status, f.type, f.detail, f.fields, &*f.current, "holder");
  if (status == 401) {
    Response r = Problem(status, f.type.empty() ? "unauthenticated" : f.type, f.detail);
    r.SetHeader(http::field::www_authenticate, "Bearer");
    return r;
  }
  if (status == 405) return Problem(status, "method-not-allowed", f.detail);
  return Problem(status, f.type.empty() ? "error" : f.type, f.detail, f.fields);
}

const std::vector<RestRoute>& RestRoutes() {
  static const std::vector<RestRoute> kRoutes = BuildRoutes();
  return kRoutes;
}

size_t JsonDepth(std::string_view s) {
  size_t depth = 0, max = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max = std::max(max, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max;
}

std::optional<Response> DecodeJsonBody(std::string_view content_type, std::string_view body, const RestConfig& config,
                                       json& out) {
  if (body.empty()) {
    out = json::object();
    return std::nullopt;
  }
  std::string_view ct = content_type;
  auto semi = ct.find(';');
  std::string type(ct.substr(0, semi));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type != "application/json") {
    return Problem(415, "unsupported-media-type", "send the body as application/json");
  }
  if (JsonDepth(body) > config.max_json_depth) {
    return Problem(400, "malformed-json", "JSON nested deeper than " + std::to_string(config.max_json_depth));
  }
  out = json::parse(body, nullptr, false);
  if (out.is_discarded()) return Problem(400, "malformed-json", "the body is not valid JSON (RFC 8259, UTF-8)");
  return std::nullopt;
}

Status RegisterRestRoutes(Router& router, RestDeps deps) {
  auto state = std::make_shared<State>(deps.store, deps.config, deps.gate);
  state->openapi = BuildOpenApi(deps.more_operations).dump();
  for (const auto& route : RestRoutes()) {
    const RestRoute* rp = &route;
    RouteOptions options;
    if (route.spec && route.spec->table == "content_items" && route.method != http::verb::get) {
      options.body_limit = 8 * 1024 * 1024;  // content bodies
    }
    CNX_TRY(router.Add(route.method, route.pattern, Handler([state, rp](Request& req) -> asio::awaitable<Response> {
                         return Serve(state.get(), rp, req);
                       }),
                       options));
  }
  return Ok();
}

}  // namespace cnx::api
