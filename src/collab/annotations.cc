#include "collab/annotations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "api/rest.h"
#include "crdt/doc.h"
#include "crdt/relative_position.h"
#include "pg/connection.h"
#include "text/chunker.h"

namespace cnx::collab {
namespace {

namespace asio = api::asio;
namespace http = api::http;

constexpr std::string_view kAnchorKind = "yjs-relative-position";

Error Invalid(const std::string& m) {
  return Error(Module::kCollab, ErrorCode::kInvalidArgument, m);
}

// The chunk whose byte range holds `byte` (the last chunk for the end of the text).
std::optional<std::string> ChunkAt(pg::Transaction& tx, const Uuid& document, const std::string& text,
                                   uint64_t utf16_index, Status* st) {
  auto cur = tx.Exec(
      "SELECT v.content_hash FROM content_items c JOIN content_versions v ON v.id = c.current_version_id "
      "WHERE c.id = $1",
      {document});
  if (!cur) {
    *st = std::unexpected(cur.error());
    return std::nullopt;
  }
  // Chunks are of the current version: only map when that version is this text.
  if (cur->empty() || std::string((*cur)[0].Text(0)) != text::Sha256Hex(text)) return std::nullopt;
  auto chunks =
      tx.Exec("SELECT id, start_offset, end_offset FROM content_chunks WHERE content_item_id = $1 ORDER BY chunk_index",
              {document});
  if (!chunks) {
    *st = std::unexpected(chunks.error());
    return std::nullopt;
  }
  auto byte = static_cast<int64_t>(crdt::Utf8OffsetOfUtf16(text, utf16_index));
  std::optional<std::string> best;
  for (int i = 0; i < chunks->rows(); ++i) {
    auto start = (*chunks)[i].Get<int64_t>(1);
    auto end = (*chunks)[i].Get<int64_t>(2);
    if (!start || !end) continue;
    if (*start <= byte && (byte < *end || (byte == *end && i + 1 == chunks->rows()))) {
      return std::string((*chunks)[i].Text(0));
    }
    if (*start <= byte) best = std::string((*chunks)[i].Text(0));  // between chunks: the one before
  }
  return best;
}

std::optional<std::string> BearerToken(const api::Request& req) {
  std::string_view auth = req.Header(http::field::authorization);
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    return std::string(auth.substr(7));
  }
  return std::nullopt;
}

std::optional<uint64_t> Offset(const nlohmann::json& v) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) return std::nullopt;
  if (v.is_number_integer() && v.get<int64_t>() < 0) return std::nullopt;
  return v.get<uint64_t>();
}

// What the wrapper decided: pass the (possibly rewritten) request on, or answer.
struct Prepared {
  std::optional<api::Response> answer;
};

// Anchors `body` (a create or update body) for `document`; `current` is the
// stored annotation for an update. Leaves `body` alone when there is nothing
// to anchor or the caller has no access (the generic handler answers then).
Prepared Prepare(const AnnotationDeps& deps, const std::string& token, const Uuid& document,
                 const nlohmann::json* current, nlohmann::json& body) {
  Prepared out;
  const nlohmann::json none;
  auto pick = [&](const char* key) -> const nlohmann::json& {
    if (body.contains(key)) return body[key];
    if (current != nullptr && current->contains(key)) return (*current)[key];
    return none;
  };
  auto start = Offset(pick("startOffset"));
  auto end = Offset(pick("endOffset"));
  if (!start && !end) return out;
  if (!start) start = end;
  if (!end) end = start;
  auto principal = deps.store.Authenticate(token);
  if (!principal) return out;
  auto access = deps.store.ContentItemAccess(*principal, document);
  if (!access || access->role == domain::Role::kViewer) return out;
  Result<nlohmann::json> anchor = std::unexpected(Invalid("not computed"));
  std::string text;
  auto st = deps.hub.WithDocument(principal->tenant_id, document, [&](crdt::Doc& doc) {
    anchor = AnchorRange(doc, deps.text_root, *start, *end);
    text = doc.GetText(deps.text_root).ToString();
  });
  if (!st) {
    out.answer = api::Problem(503, "unavailable", "the document could not be loaded: " + st.error().message());
    return out;
  }
  if (!anchor) {
    out.answer = api::Problem(400, "validation", "the annotation range does not fit the document",
                              {{"/startOffset", anchor.error().message()}});
    return out;
  }
  nlohmann::json position =
      body.contains("positionData") && body["positionData"].is_object()
          ? body["positionData"]
          : (current != nullptr && current->contains("positionData") && (*current)["positionData"].is_object()
                 ? (*current)["positionData"]
                 : nlohmann::json::object());
  position["anchor"] = *anchor;
  body["positionData"] = position;
  body["startOffset"] = *start;
  body["endOffset"] = *end;
  auto conn = deps.pool.Acquire();
  if (conn) {
    auto tx = pg::Transaction::Begin(**conn);
    if (tx && tx->SetTenant(principal->tenant_id)) {
      Status cst = Ok();
      if (auto chunk = ChunkAt(*tx, document, text, *start, &cst)) body["chunkId"] = *chunk;
      (void)tx->Commit();
    }
  }
  return out;
}

// After a successful write that named `resolved`: records when and by whom
// annotation `written_body`'s row was resolved (cleared when unresolved).
// Returns the final representation and version, or nullopt when nothing was
// stamped.
struct Stamped {
  std::string body;
  std::optional<int64_t> version;
};
std::optional<Stamped> StampResolution(const AnnotationDeps& deps, const domain::ResourceSpec& spec,
                                       const std::string& token, const std::string& written_body) {
  auto written = nlohmann::json::parse(written_body, nullptr, false);
  if (!written.is_object() || !written.contains("id") || !written["id"].is_string()) return std::nullopt;
  auto id = Uuid::Parse(written["id"].get<std::string>());
  auto principal = deps.store.Authenticate(token);
  if (!id || !principal) return std::nullopt;
  auto conn = deps.pool.Acquire();
  if (!conn) return std::nullopt;
  auto tx = pg::Transaction::Begin(**conn);
  if (!tx || !tx->SetTenant(principal->tenant_id)) return std::nullopt;
  auto stamped = tx->Exec(
      "UPDATE realtime_annotations SET resolved_at = CASE WHEN resolved THEN now() END, "
      "resolved_by = CASE WHEN resolved THEN $2::uuid END WHERE id = $1 AND (resolved_at IS NULL) = resolved "
      "RETURNING id",
      {*id, principal->user_id});
  if (!stamped || stamped->empty() || !tx->Commit()) return std::nullopt;
  auto e = deps.store.Get(spec, *principal, *id);
  if (!e) return std::nullopt;
  return Stamped{e->body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), e->version};
}

void SetBody(api::Request& req, const nlohmann::json& body) {
  req.raw().body() = body.dump();
  req.raw().prepare_payload();
}

// The wrapped create (POST /v1/content/{id}/annotations) or update (PATCH
// /v1/annotations/{id}) route. A free coroutine (not a lambda): GCC warns about
// coroutine lambdas' frame deallocation.
asio::awaitable<api::Response> ServeWrite(std::shared_ptr<AnnotationDeps> deps, const domain::ResourceSpec* spec,
                                          bool create, api::Handler inner, api::Request& req) {
  auto token = BearerToken(req);
  auto id = Uuid::Parse(req.PathParam("id"));
  auto body = nlohmann::json::parse(req.body(), nullptr, false);
  if (token && id && body.is_object() && (body.contains("startOffset") || body.contains("endOffset"))) {
    auto prepared = co_await req.RunBlocking([&]() -> Prepared {
      if (create) return Prepare(*deps, *token, *id, nullptr, body);
      auto principal = deps->store.Authenticate(*token);
      if (!principal) return {};
      auto cur = deps->store.Get(*spec, *principal, *id);
      if (!cur) return {};
      auto doc = Uuid::Parse(cur->body.value("documentId", ""));
      if (!doc) return {};
      return Prepare(*deps, *token, *doc, &cur->body, body);
    });
    if (prepared.answer) co_return std::move(*prepared.answer);
    SetBody(req, body);
  }
  api::Response resp = co_await inner(req);
  if (token && body.is_object() && body.contains("resolved") &&
      (resp.status() == http::status::ok || resp.status() == http::status::created)) {
    std::string written = resp.body();
    auto stamped = co_await req.RunBlocking([&] { return StampResolution(*deps, *spec, *token, written); });
    if (stamped) {
      resp.SetBody(std::move(stamped->body), "application/json");
      if (stamped->version) resp.SetHeader(http::field::etag, "\"" + std::to_string(*stamped->version) + "\"");
    }
  }
  co_return resp;
}

}  // namespace

Result<nlohmann::json> AnchorRange(crdt::Doc& doc, std::string_view root, uint64_t start, uint64_t end) {
  auto text = doc.GetText(root);
  uint64_t length = text.Length();
  if (start > end) return std::unexpected(Invalid("startOffset is after endOffset"));
  if (end > length) {
    return std::unexpected(Invalid("endOffset " + std::to_string(end) + " is past the text (" + std::to_string(length) +
                                   " UTF-16 units)"));
  }
  auto s = crdt::CreateRelativePositionFromTypeIndex(text.type(), start, 0);
  auto e = crdt::CreateRelativePositionFromTypeIndex(text.type(), end, -1);
  auto sb = CNX_TRY(crdt::EncodeRelativePosition(s));
  auto eb = CNX_TRY(crdt::EncodeRelativePosition(e));
  nlohmann::json j;
  j["kind"] = kAnchorKind;
  j["root"] = std::string(root);
  j["start"] = nlohmann::json::parse(crdt::RelativePositionToJson(s).dump());
  j["end"] = nlohmann::json::parse(crdt::RelativePositionToJson(e).dump());
  j["startBytes"] = crdt::Base64Encode(sb);
  j["endBytes"] = crdt::Base64Encode(eb);
  return j;
}

std::optional<TextRange> ResolveAnchor(crdt::Doc& doc, const nlohmann::json& anchor) {
  if (!anchor.is_object() || anchor.value("kind", "") != kAnchorKind || !anchor.contains("root") ||
      !anchor["root"].is_string() || !anchor.contains("start") || !anchor.contains("end")) {
    return std::nullopt;
  }
  auto s = crdt::RelativePositionFromJson(anchor["start"]);
  auto e = crdt::RelativePositionFromJson(anchor["end"]);
  if (!s || !e) return std::nullopt;
  const crdt::Type* root = doc.GetText(anchor["root"].get<std::string>()).type();
  auto sa = crdt::CreateAbsolutePositionFromRelativePosition(*s, doc);
  auto ea = crdt::CreateAbsolutePositionFromRelativePosition(*e, doc);
  if (!sa || !ea || sa->type != root || ea->type != root) return std::nullopt;
  return TextRange{sa->index, std::max(sa->index, ea->index)};
}

namespace {

struct AnchoredRow {
  std::string id;
  nlohmann::json anchor;
  std::optional<int64_t> start, end;
  std::optional<std::string> chunk;
  std::optional<TextRange> now;
};

Result<std::vector<AnchoredRow>> LoadAnchored(pg::Pool& pool, const Uuid& tenant, const Uuid& document) {
  auto conn = CNX_TRY(pool.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  auto rows = CNX_TRY(
      tx.Exec("SELECT id, position_data->'anchor', start_offset, end_offset, chunk_id FROM realtime_annotations "
              "WHERE document_id = $1 AND position_data ? 'anchor' ORDER BY id",
              {document}));
  std::vector<AnchoredRow> list;
  for (int i = 0; i < rows.rows(); ++i) {
    AnchoredRow r;
    r.id = std::string(rows[i].Text(0));
    r.anchor = nlohmann::json::parse(rows[i].Text(1), nullptr, false);
    if (!rows[i].IsNull(2)) r.start = rows[i].Get<int64_t>(2).value_or(-1);
    if (!rows[i].IsNull(3)) r.end = rows[i].Get<int64_t>(3).value_or(-1);
    if (!rows[i].IsNull(4)) r.chunk = std::string(rows[i].Text(4));
    list.push_back(std::move(r));
  }
  CNX_TRY(tx.Commit());
  return list;
}

}  // namespace

Result<size_t> ReanchorAnnotations(pg::Pool& pool, Hub& hub, const Uuid& tenant, const Uuid& document,
                                   std::string_view text_root) {
  // Three steps, so that no connection is held while the hub may load the room.
  auto list = CNX_TRY(LoadAnchored(pool, tenant, document));
  if (list.empty()) return size_t{0};
  std::string text;
  CNX_TRY(hub.WithDocument(tenant, document, [&](crdt::Doc& doc) {
    for (auto& r : list) r.now = ResolveAnchor(doc, r.anchor);
    text = doc.GetText(text_root).ToString();
  }));
  auto conn = CNX_TRY(pool.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  size_t changed = 0;
  for (auto& r : list) {
    if (!r.now) continue;
    Status st = Ok();
    auto chunk = ChunkAt(tx, document, text, r.now->start, &st);
    if (!st) return std::unexpected(st.error());
    if (!chunk) chunk = r.chunk;  // not materialised yet: the next materialisation fixes it
    auto start = static_cast<int64_t>(r.now->start);
    auto end = static_cast<int64_t>(r.now->end);
    if (r.start == start && r.end == end && r.chunk == chunk) continue;
    // Only if nobody moved the annotation meanwhile (a PATCH between the read and now).
    CNX_TRY(
        tx.Exec("UPDATE realtime_annotations SET start_offset = $2, end_offset = $3, chunk_id = $4 "
                "WHERE id = $1 AND position_data->'anchor' = $5::jsonb",
                {r.id, start, end, pg::Param(chunk), r.anchor.dump()}));
    ++changed;
  }
  CNX_TRY(tx.Commit());
  return changed;
}

Status RegisterAnnotationRoutes(api::Router& router, AnnotationDeps deps) {
  auto shared = std::make_shared<AnnotationDeps>(deps);
  const domain::ResourceSpec* spec = domain::FindResource("annotation");
  if (spec == nullptr) return Err(Module::kCollab, ErrorCode::kNotFound, "no annotation resource");
  for (const auto& route : api::RestRoutes()) {
    if (route.spec != spec) continue;
    if (route.kind != api::RestKind::kCreateNested && route.kind != api::RestKind::kUpdate) continue;
    bool create = route.kind == api::RestKind::kCreateNested;
    CNX_TRY(router.Wrap(route.method, route.pattern, [shared, spec, create](api::Handler inner) {
      return api::Handler(
          [shared, spec, create, inner](api::Request& req) { return ServeWrite(shared, spec, create, inner, req); });
    }));
  }
  return Ok();
}

}  // namespace cnx::collab
