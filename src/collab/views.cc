#include "collab/views.h"

// GCC 12 at -O2 reports asio's awaitable frame operator delete as mismatched
// with its operator new in some coroutines (a false positive, GCC PR 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <cmath>
#include <variant>
#include <vector>

#include "api/rest.h"
#include "pg/connection.h"

namespace cnx::collab {
namespace {

namespace asio = api::asio;
namespace http = api::http;

constexpr size_t kMaxStateBytes = 16 * 1024;

std::string Key(const Uuid& view, const Uuid& user, const std::optional<Uuid>& session) {
  return view.ToString() + "|" + user.ToString() + "|" + (session ? session->ToString() : "-");
}

}  // namespace

bool ViewThrottle::Admit(const std::string& key, Clock::time_point now, Clock::time_point* due) {
  auto it = last_.find(key);
  if (it == last_.end() || now - it->second >= min_interval_) {
    last_[key] = now;
    return true;
  }
  *due = it->second + min_interval_;
  return false;
}

void ViewThrottle::Wrote(const std::string& key, Clock::time_point now) {
  last_[key] = now;
}

void ViewThrottle::Forget(const std::string& key) {
  last_.erase(key);
}

ViewTracker::ViewTracker(pg::Pool& pool, ViewTrackerOptions options)
    : pool_(pool), options_(options), throttle_(options.min_interval) {
  flusher_ = std::thread([this] { FlushLoop(); });
}

ViewTracker::~ViewTracker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  FlushDue(true);
}

Status ViewTracker::Write(const Pending& p) {
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(p.tenant));
  CNX_TRY(
      tx.Exec("INSERT INTO view_participants (tenant_id, view_id, user_id, session_id, view_position, camera, zoom) "
              "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) ON CONFLICT (view_id, user_id, "
              "coalesce(session_id, '00000000-0000-0000-0000-000000000000'::uuid)) DO UPDATE SET "
              "view_position = excluded.view_position, camera = excluded.camera, zoom = excluded.zoom, "
              "last_updated_at = now(), updated_at = now()",
              {p.tenant, p.view, p.user, pg::Param(p.session), p.state.view_position.dump(), p.state.camera.dump(),
               p.state.zoom}));
  return tx.Commit();
}

Result<bool> ViewTracker::Update(const Uuid& tenant, const Uuid& view, const Uuid& user,
                                 const std::optional<Uuid>& session, const ViewerState& state) {
  const std::string key = Key(view, user, session);
  std::lock_guard write_lock(write_mu_);
  {
    std::lock_guard lock(mu_);
    ViewThrottle::Clock::time_point due;
    if (!throttle_.Admit(key, ViewThrottle::Clock::now(), &due)) {
      pending_[key] = Pending{tenant, view, user, session, state, due};
      return false;
    }
    pending_.erase(key);  // this state is newer than anything deferred
  }
  if (auto st = Write(Pending{tenant, view, user, session, state, {}}); !st) {
    std::lock_guard lock(mu_);
    throttle_.Forget(key);  // let the next update try again at once
    return std::unexpected(st.error());
  }
  return true;
}

Status ViewTracker::Leave(const Uuid& tenant, const Uuid& view, const Uuid& user, const std::optional<Uuid>& session) {
  const std::string key = Key(view, user, session);
  std::lock_guard write_lock(write_mu_);
  {
    std::lock_guard lock(mu_);
    pending_.erase(key);
    throttle_.Forget(key);
  }
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  CNX_TRY(
      tx.Exec("DELETE FROM view_participants WHERE view_id = $1 AND user_id = $2 AND session_id IS NOT DISTINCT "
              "FROM $3",
              {view, user, pg::Param(session)}));
  return tx.Commit();
}

Result<nlohmann::json> ViewTracker::Viewers(const Uuid& tenant, const Uuid& view) {
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  auto rows = CNX_TRY(
      tx.Exec("SELECT json_build_object('userId', user_id, 'sessionId', session_id, 'viewPosition', view_position, "
              "'camera', camera, 'zoom', zoom, 'lastUpdatedAt', to_char(last_updated_at AT TIME ZONE 'UTC', "
              "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))::text FROM view_participants WHERE view_id = $1 AND "
              "last_updated_at > now() - make_interval(secs => $2) ORDER BY last_updated_at, id",
              {view, static_cast<int64_t>(options_.stale_after.count())}));
  CNX_TRY(tx.Commit());
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < rows.rows(); ++i) items.push_back(nlohmann::json::parse(rows[i].Text(0), nullptr, false));
  return items;
}

Result<nlohmann::json> ViewTracker::ProjectViewers(const Uuid& tenant, const Uuid& project) {
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  auto rows = CNX_TRY(tx.Exec(
      "SELECT json_build_object('viewId', v.id, 'viewName', v.name, 'userId', p.user_id, 'sessionId', p.session_id, "
      "'viewPosition', p.view_position, 'camera', p.camera, 'zoom', p.zoom, 'lastUpdatedAt', "
      "to_char(p.last_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))::text "
      "FROM view_participants p JOIN collaborative_views v ON v.id = p.view_id WHERE v.project_id = $1 AND "
      "p.last_updated_at > now() - make_interval(secs => $2) ORDER BY p.last_updated_at, p.id",
      {project, static_cast<int64_t>(options_.stale_after.count())}));
  CNX_TRY(tx.Commit());
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < rows.rows(); ++i) items.push_back(nlohmann::json::parse(rows[i].Text(0), nullptr, false));
  return items;
}

void ViewTracker::FlushDue(bool all) {
  std::lock_guard write_lock(write_mu_);
  std::vector<std::pair<std::string, Pending>> due;
  auto now = ViewThrottle::Clock::now();
  {
    std::lock_guard lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (all || it->second.due <= now) {
        due.emplace_back(it->first, std::move(it->second));
        throttle_.Wrote(it->first, now);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [key, p] : due) {
    if (auto st = Write(p); !st)
      spdlog::warn("collab: viewer state of view {}: {}", p.view.ToString(), st.error().ToString());
  }
}

void ViewTracker::FlushLoop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, options_.flush_tick, [this] { return stop_; })) {
    lock.unlock();
    FlushDue(false);
    lock.lock();
  }
}

namespace {

struct Caller {
  domain::Principal principal;
  Uuid view;
};

// Authenticates and checks that the caller may see the view (or, with
// `resource` = "project", the project) at any project role.
std::variant<Caller, api::Response> Authorize(const ViewRouteDeps& deps, const api::Request& req,
                                              const char* resource = "collaborative view") {
  auto admitted = deps.gate->Admit(req);
  if (auto* refused = std::get_if<api::Response>(&admitted)) return std::move(*refused);
  const auto* principal = &std::get<domain::Principal>(admitted);
  auto view = Uuid::Parse(req.PathParam("id"));
  const domain::ResourceSpec* spec = domain::FindResource(resource);
  const std::string missing = std::string("no such ") + resource;
  if (!view || spec == nullptr) return api::Problem(404, "not-found", missing);
  auto e = deps.store.Get(*spec, *principal, *view);
  if (!e) return api::FaultResponse(e.error());
  return Caller{*principal, *view};
}

std::optional<Uuid> SessionOf(const domain::Principal& p) {
  if (p.credential_kind == "session") return p.credential_id;
  return std::nullopt;
}

api::Response Json(int status, const nlohmann::json& body) {
  api::Response r(static_cast<http::status>(status));
  r.SetBody(body.dump(), "application/json");
  return r;
}

// The PUT body: objects for viewPosition/camera (at most 16 KiB each), zoom in (0, 1000].
std::variant<ViewerState, api::Response> ParseState(const api::Request& req) {
  std::vector<domain::FieldIssue> issues;
  nlohmann::json body;
  if (auto bad = api::DecodeJsonBody(req.Header(http::field::content_type), req.body(), api::RestConfig{}, body)) {
    return *bad;
  }
  if (!body.is_object()) return api::Problem(400, "malformed-json", "the body must be a JSON object");
  ViewerState s;
  for (auto& [k, v] : body.items()) {
    if (k == "viewPosition" || k == "camera") {
      if (!v.is_object()) {
        issues.push_back({"/" + k, "must be an object"});
      } else if (v.dump().size() > kMaxStateBytes) {
        issues.push_back({"/" + k, "larger than 16 KiB"});
      } else {
        (k == "camera" ? s.camera : s.view_position) = v;
      }
    } else if (k == "zoom") {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0 || v.get<double>() > 1000) {
        issues.push_back({"/zoom", "must be a number in (0, 1000]"});
      } else {
        s.zoom = v.get<double>();
      }
    } else {
      issues.push_back({"/" + k, "unknown field"});
    }
  }
  if (!issues.empty()) return api::Problem(400, "validation", "the viewer state is invalid", issues);
  return s;
}

asio::awaitable<api::Response> ServePut(ViewRouteDeps deps, api::Request& req) {
  auto parsed = ParseState(req);
  if (auto* r = std::get_if<api::Response>(&parsed)) co_return std::move(*r);
  ViewerState state = std::get<ViewerState>(parsed);
  co_return co_await req.RunBlocking([&]() -> api::Response {
    auto auth = Authorize(deps, req);
    if (auto* r = std::get_if<api::Response>(&auth)) return std::move(*r);
    const auto& c = std::get<Caller>(auth);
    auto session = SessionOf(c.principal);
    auto wrote = deps.tracker.Update(c.principal.tenant_id, c.view, c.principal.user_id, session, state);
    if (!wrote) return api::Problem(503, "unavailable", "the database is busy, retry later");
    nlohmann::json out = {{"viewId", c.view.ToString()},
                          {"userId", c.principal.user_id.ToString()},
                          {"sessionId", session ? nlohmann::json(session->ToString()) : nlohmann::json()},
                          {"viewPosition", state.view_position},
                          {"camera", state.camera},
                          {"zoom", state.zoom},
                          {"written", *wrote}};
    return Json(*wrote ? 200 : 202, out);
  });
}

asio::awaitable<api::Response> ServeDelete(ViewRouteDeps deps, api::Request& req) {
  co_return co_await req.RunBlocking([&]() -> api::Response {
    auto auth = Authorize(deps, req);
    if (auto* r = std::get_if<api::Response>(&auth)) return std::move(*r);
    const auto& c = std::get<Caller>(auth);
    if (auto st = deps.tracker.Leave(c.principal.tenant_id, c.view, c.principal.user_id, SessionOf(c.principal)); !st) {
      return api::Problem(503, "unavailable", "the database is busy, retry later");
    }
    return api::Response(http::status::no_content);
  });
}

asio::awaitable<api::Response> ServeList(ViewRouteDeps deps, api::Request& req) {
  co_return co_await req.RunBlocking([&]() -> api::Response {
    auto auth = Authorize(deps, req);
    if (auto* r = std::get_if<api::Response>(&auth)) return std::move(*r);
    const auto& c = std::get<Caller>(auth);
    auto items = deps.tracker.Viewers(c.principal.tenant_id, c.view);
    if (!items) return api::Problem(503, "unavailable", "the database is busy, retry later");
    return Json(200, {{"items", *items}});
  });
}

asio::awaitable<api::Response> ServeProjectList(ViewRouteDeps deps, api::Request& req) {
  co_return co_await req.RunBlocking([&]() -> api::Response {
    auto auth = Authorize(deps, req, "project");
    if (auto* r = std::get_if<api::Response>(&auth)) return std::move(*r);
    const auto& c = std::get<Caller>(auth);
    auto items = deps.tracker.ProjectViewers(c.principal.tenant_id, c.view);
    if (!items) return api::Problem(503, "unavailable", "the database is busy, retry later");
    return Json(200, {{"items", *items}});
  });
}

}  // namespace

Status RegisterViewRoutes(api::Router& router, ViewRouteDeps deps) {
  auto gate = api::SharedOrOwn(deps.gate, deps.store);
  deps.gate = gate.get();
  CNX_TRY(router.Add(http::verb::put, "/v1/views/{id}/viewers/me",
                     api::Handler([deps, gate](api::Request& req) { return ServePut(deps, req); })));
  CNX_TRY(router.Add(http::verb::delete_, "/v1/views/{id}/viewers/me",
                     api::Handler([deps, gate](api::Request& req) { return ServeDelete(deps, req); })));
  CNX_TRY(router.Add(http::verb::get, "/v1/projects/{id}/viewers",
                     api::Handler([deps, gate](api::Request& req) { return ServeProjectList(deps, req); })));
  return router.Add(http::verb::get, "/v1/views/{id}/viewers",
                    api::Handler([deps, gate](api::Request& req) { return ServeList(deps, req); }));
}

std::vector<api::OperationDoc> ViewOperationDocs() {
  using nlohmann::json;
  json uuid = {{"type", "string"}, {"format", "uuid"}};
  json state = {{"type", "object"},
                {"additionalProperties", false},
                {"properties",
                 {{"viewPosition", {{"type", "object"}}},
                  {"camera", {{"type", "object"}}},
                  {"zoom", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1000}}}}}};
  json viewer = {{"type", "object"},
                 {"required", {"userId", "lastUpdatedAt"}},
                 {"properties",
                  {{"viewId", uuid},
                   {"viewName", {{"type", "string"}}},
                   {"userId", uuid},
                   {"sessionId", {{"type", {"string", "null"}}}},
                   {"viewPosition", {{"type", {"object", "null"}}}},
                   {"camera", {{"type", {"object", "null"}}}},
                   {"zoom", {{"type", {"number", "null"}}}},
                   {"lastUpdatedAt", {{"type", "string"}, {"format", "date-time"}}}}}};
  json list = {{"type", "object"},
               {"properties", {{"items", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/Viewer"}}}}}}}};
  auto response = [](const char* why, json schema) {
    return json{{"description", why}, {"content", {{"application/json", {{"schema", std::move(schema)}}}}}};
  };
  json written = {{"type", "object"},
                  {"properties",
                   {{"viewId", uuid},
                    {"userId", uuid},
                    {"written", {{"type", "boolean"}}},
                    {"zoom", {{"type", {"number", "null"}}}}}}};
  std::vector<api::OperationDoc> docs;
  docs.push_back({.method = http::verb::put,
                  .path = "/v1/views/{id}/viewers/me",
                  .operation_id = "putViewer",
                  .summary = "Join a collaborative view or move your viewport (throttled writes)",
                  .tag = "Collaboration",
                  .request_schema = state,
                  .responses = {{"200", response("written", written)},
                                {"202", response("accepted: written when the throttle window ends", written)}},
                  .schemas = {{"Viewer", viewer}}});
  docs.push_back({.method = http::verb::delete_,
                  .path = "/v1/views/{id}/viewers/me",
                  .operation_id = "deleteViewer",
                  .summary = "Leave a collaborative view",
                  .tag = "Collaboration",
                  .responses = {{"204", {{"description", "left"}}}}});
  docs.push_back({.method = http::verb::get,
                  .path = "/v1/views/{id}/viewers",
                  .operation_id = "listViewers",
                  .summary = "Who views this view, with their viewport",
                  .tag = "Collaboration",
                  .responses = {{"200", response("the current viewers", list)}}});
  docs.push_back({.method = http::verb::get,
                  .path = "/v1/projects/{id}/viewers",
                  .operation_id = "listProjectViewers",
                  .summary = "Who views which view of this project",
                  .tag = "Collaboration",
                  .responses = {{"200", response("the current viewers of every view", list)}}});
  return docs;
}

}  // namespace cnx::collab
