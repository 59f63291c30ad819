#include "collab/routes.h"

// GCC 12 at -O2 reports asio's awaitable frame operator delete as mismatched
// with its operator new in some coroutines (a false positive, GCC PR 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <deque>

#include "api/http.h"
#include "collab/send_queue.h"
#include "collab/trace.h"

namespace cnx::collab {
namespace {

using api::WebSocketStream;
namespace asio = api::asio;
namespace beast = api::beast;
namespace http = api::http;
namespace websocket = api::websocket;
using Frame = std::shared_ptr<const std::vector<uint8_t>>;

// A Peer over a Beast WebSocket. All stream access happens on the stream's
// executor (the connection's io thread); Send/Close post there.
class WsPeer : public Peer, public std::enable_shared_from_this<WsPeer> {
 public:
  WsPeer(api::WebSocket ws, size_t max_queued)
      : ws_(std::move(ws)),
        out_(max_queued),
        io_context_(&asio::query(ws_.stream().get_executor(), asio::execution::context)) {}

  // The io_context of the connection's io thread.
  const void* GroupKey() const override { return io_context_; }
  void SendToGroup(std::span<const std::shared_ptr<Peer>> peers, const Frame& frame) override {
    std::vector<std::shared_ptr<WsPeer>> group;
    group.reserve(peers.size());
    // Every peer of this key is a WsPeer (the key is an io_context only they return).
    for (const auto& p : peers) group.push_back(std::static_pointer_cast<WsPeer>(p));
    asio::post(ws_.stream().get_executor(),
               [group = std::move(group), frame,
                posted = trace::Enabled() ? trace::Clock::now() : trace::Clock::time_point{}] {
                 for (const auto& self : group) {
                   if (posted != trace::Clock::time_point{}) self->Traced(frame, posted);
                   self->Enqueue(frame);
                 }
               });
  }
  void Send(Frame frame) override {
    if (trace::Enabled()) {
      asio::post(ws_.stream().get_executor(),
                 [self = shared_from_this(), frame = std::move(frame), posted = trace::Clock::now()]() mutable {
                   self->Traced(frame, posted);
                   self->Enqueue(std::move(frame));
                 });
      return;
    }
    asio::post(ws_.stream().get_executor(),
               [self = shared_from_this(), frame = std::move(frame)]() mutable { self->Enqueue(std::move(frame)); });
  }
  void Close(uint16_t code, std::string reason) override {
    asio::post(ws_.stream().get_executor(),
               [self = shared_from_this(), code, reason = std::move(reason)] { self->StartClose(code, reason); });
  }
  WebSocketStream& stream() { return ws_.stream(); }

  // On the executor.
  void StartClose(uint16_t code, const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = reason;
    out_.Clear();
    traced_.clear();
    if (!writing_) DoClose();
  }

 private:
  void Enqueue(Frame frame) {
    if (closing_) return;
    if (!out_.Push(std::move(frame))) {
      StartClose(1008, "too slow: outbound backlog exceeded");
      return;
    }
    if (!writing_) DoWrite();
  }
  // Latency trace (trace.h): when a broadcast update frame reached this io thread.
  void Traced(const Frame& frame, trace::Clock::time_point posted) {
    if (!IsUpdateFrame(*frame)) return;
    auto now = trace::Clock::now();
    traced_.push_back({frame.get(), posted, now});
  }
  struct TracedFrame {
    const void* frame;
    trace::Clock::time_point posted, queued;
  };
  // Writes the next frame; what queued meanwhile follows (its updates merged, send_queue.h).
  void DoWrite() {
    current_ = out_.Take();
    if (!current_) return;
    writing_ = true;
    if (!traced_.empty() && IsUpdateFrame(*current_)) {
      auto started = trace::Clock::now();
      if (traced_.front().frame == current_.get()) {
        writing_traced_ = traced_.front();
        write_started_ = started;
        traced_.pop_front();
      } else {
        // A merged run (send_queue.h): counted as merged, all of what waited
        // (approximate when another frame kind sits between update runs).
        for (const auto& t : traced_) {
          trace::RecordFrame(t.queued - t.posted, started - t.queued, trace::Clock::duration::zero());
        }
        traced_.clear();
      }
    }
    auto& ws = ws_.stream();
    ws.binary(true);
    ws.async_write(asio::buffer(*current_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (self->writing_traced_.frame != nullptr) {
        const auto& t = self->writing_traced_;
        trace::RecordFrame(t.queued - t.posted, self->write_started_ - t.queued,
                           trace::Clock::now() - self->write_started_);
        self->writing_traced_ = {};
      }
      self->writing_ = false;
      self->current_.reset();
      if (ec) {
        self->closing_ = true;
        self->out_.Clear();
        return;
      }
      if (self->closing_) {
        self->DoClose();
        return;
      }
      self->out_.Done();
      if (self->out_.waiting()) self->DoWrite();
    });
  }
  void DoClose() {
    websocket::close_reason cr(static_cast<websocket::close_code>(close_code_), close_reason_);
    ws_.stream().async_close(cr, [self = shared_from_this()](beast::error_code) {});
  }

  api::WebSocket ws_;
  SendQueue out_;
  const void* io_context_;
  Frame current_;  // being written
  bool writing_ = false;
  bool closing_ = false;
  std::deque<TracedFrame> traced_;  // latency trace only
  TracedFrame writing_traced_{};
  trace::Clock::time_point write_started_{};
  uint16_t close_code_ = 1000;
  std::string close_reason_;
};

std::optional<std::string> BearerToken(const api::Request& req) {
  std::string_view auth = req.Header(http::field::authorization);
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    return std::string(auth.substr(7));
  }
  return req.QueryParam("token");
}

asio::awaitable<void> CloseNow(WebSocketStream& ws, uint16_t code, std::string reason) {
  websocket::close_reason cr(static_cast<websocket::close_code>(code), reason);
  beast::error_code ec;
  co_await ws.async_close(cr, asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

api::Response Problem(int status, std::string_view slug, std::string_view detail) {
  api::Response r(static_cast<http::status>(status));
  nlohmann::json body = {{"type", "urn:cnx:problem:" + std::string(slug)},
                         {"title", std::string(http::obsolete_reason(static_cast<http::status>(status)))},
                         {"status", status},
                         {"detail", std::string(detail)}};
  r.SetBody(body.dump(), "application/problem+json");
  return r;
}

asio::awaitable<api::Response> ServePresence(CollabDeps deps, api::Request& req) {
  co_return co_await req.RunBlocking([&]() -> api::Response {
    auto admitted = deps.gate->Admit(req);
    if (auto* refused = std::get_if<api::Response>(&admitted)) return std::move(*refused);
    const auto& principal = std::get<domain::Principal>(admitted);
    auto id = Uuid::Parse(req.PathParam("id"));
    if (!id) return Problem(404, "not-found", "no such content item");
    auto access = deps.store.ContentItemAccess(principal, *id);
    if (!access) return api::FaultResponse(access.error());
    auto json = deps.hub.PresenceJson(principal.tenant_id, *id);
    if (!json) return Problem(503, "unavailable", "the database is busy, retry later");
    api::Response r;
    r.SetBody("{\"items\":" + *json + "}", "application/json");
    return r;
  });
}

asio::awaitable<void> ServeCollab(CollabDeps deps, api::Request& req, api::WebSocket ws) {
  auto token = BearerToken(req);
  auto document = Uuid::Parse(req.PathParam("contentItemId"));
  if (!token) {
    co_await CloseNow(ws.stream(), 4401, "send a bearer token (header or ?token=)");
    co_return;
  }
  if (!document) {
    co_await CloseNow(ws.stream(), 4404, "no such content item");
    co_return;
  }
  auto principal = co_await req.RunBlocking([&] { return deps.store.Authenticate(*token); });
  if (!principal) {
    co_await CloseNow(ws.stream(), 4401, "invalid or expired token");
    co_return;
  }
  auto access = co_await req.RunBlocking([&] { return deps.store.ContentItemAccess(*principal, *document); });
  if (!access) {
    co_await CloseNow(ws.stream(), access.error().code == ErrorCode::kNotFound ? 4404 : 4403, access.error().detail);
    co_return;
  }
  PeerInfo info;
  info.user_id = principal->user_id;
  if (principal->credential_kind == "session") info.session_id = principal->credential_id;
  if (access->role == domain::Role::kViewer) {
    info.read_only = true;
    info.read_only_reason = "read-only: your project role is viewer";
  }
  auto peer = std::make_shared<WsPeer>(std::move(ws), deps.options.max_queued_bytes);
  auto room =
      co_await req.RunBlocking([&] { return deps.hub.Join(principal->tenant_id, *document, peer, std::move(info)); });
  if (!room) {
    spdlog::warn("collab: loading {} failed: {}", document->ToString(), room.error().ToString());
    peer->StartClose(1011, "the document could not be loaded");
    co_return;
  }
  beast::flat_buffer buffer;
  double tokens = deps.options.message_burst;
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    beast::error_code ec;
    size_t n = co_await peer->stream().async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    auto now = std::chrono::steady_clock::now();
    tokens = std::min(deps.options.message_burst,
                      tokens + std::chrono::duration<double>(now - last).count() * deps.options.messages_per_second);
    last = now;
    if (deps.options.messages_per_second > 0 && (tokens -= 1) < 0) {
      peer->StartClose(1008, "message rate exceeded");
      break;
    }
    if (!peer->stream().got_binary()) {
      peer->StartClose(4400, "text frames are not part of the protocol");
      break;
    }
    auto data = buffer.cdata();
    std::span<const uint8_t> frame(static_cast<const uint8_t*>(data.data()), data.size());
    auto st = deps.hub.Receive(**room, peer.get(), frame);
    buffer.consume(n);
    if (!st) {
      peer->StartClose(st.error().code() == ErrorCode::kUnavailable ? 1011 : 4400, st.error().message());
      break;
    }
  }
  deps.hub.Leave(**room, peer.get());
}

Status RegisterCollabRoutes(api::Router& router, CollabDeps deps) {
  auto gate = api::SharedOrOwn(deps.gate, deps.store);
  deps.gate = gate.get();
  // GET /v1/content/{id}/presence: who is in the document (any project role).
  CNX_TRY(router.Add(http::verb::get, "/v1/content/{id}/presence",
                     api::Handler([deps, gate](api::Request& req) { return ServePresence(deps, req); })));
  api::WebSocketOptions ws_opts;
  ws_opts.max_message_size = deps.options.max_message_size;
  return router.AddWebSocket(
      "/v1/collab/{contentItemId}",
      [deps](api::Request& req, api::WebSocket ws) { return ServeCollab(deps, req, std::move(ws)); }, ws_opts);
}

std::vector<api::OperationDoc> CollabOperationDocs() {
  using nlohmann::json;
  json presence = {{"type", "object"},
                   {"properties", {{"items", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}};
  std::vector<api::OperationDoc> docs;
  docs.push_back({.method = http::verb::get,
                  .path = "/v1/content/{id}/presence",
                  .operation_id = "getContentPresence",
                  .summary = "Who is in a collaborative document now",
                  .tag = "Collaboration",
                  .responses = {{"200",
                                 {{"description", "the clients present"},
                                  {"content", {{"application/json", {{"schema", presence}}}}}}}}});
  docs.push_back(
      {.method = http::verb::get,
       .path = "/v1/collab/{contentItemId}",
       .operation_id = "collaborate",
       .summary = "WebSocket: the y-websocket protocol (sync, updates, awareness) on a content item (docs/collab.md)",
       .tag = "Collaboration",
       .query = json::array({{{"name", "token"},
                              {"in", "query"},
                              {"description", "the bearer token, for browsers that cannot set headers"},
                              {"schema", {{"type", "string"}}}}}),
       .responses = {{"101", {{"description", "switched to the WebSocket protocol"}}}}});
  return docs;
}

}  // namespace cnx::collab
