#include "collab/annotations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "api/rest.h"
#include "collab/text_merge.h"
#include "crdt/doc.h"
#include "crdt/relative_position.h"
#include "pg/connection.h"
#include "text/chunker.h"
#include "text/html_text.h"

namespace cnx::collab {
namespace {

namespace asio = api::asio;
namespace http = api::http;

constexpr std::string_view kAnchorKind = "yjs-relative-position";

Error Invalid(const std::string& m) {
  return Error(Module::kCollab, ErrorCode::kInvalidArgument, m);
}

// Where byte `byte` of an HTML source lands in its page text (what the
// chunks of an HTML item index, text::HtmlToText): the text of the source up
// to `byte` is a prefix of the page text up to where the cut shows (a cut
// tag, a trailing space, the final newline); from there the next visible
// character of the page text. So a position in markup or whitespace maps to
// the first character of text after it.
size_t PageTextOffset(std::string_view html, std::string_view page, size_t byte) {
  std::string prefix = text::HtmlToText(html.substr(0, std::min(byte, html.size())));
  size_t common = 0;
  while (common < prefix.size() && common < page.size() && prefix[common] == page[common]) ++common;
  while (common < page.size() && (page[common] == ' ' || page[common] == '\n' || page[common] == '\t')) ++common;
  return common;
}

// Byte `pos` of the text `edits` start from, in the text they produce; a
// position inside a replaced span maps to the start of its replacement.
size_t MapThroughEdits(const std::vector<TextEdit>& edits, size_t pos) {
  int64_t delta = 0;
  for (const auto& e : edits) {
    if (pos < e.begin) break;
    if (pos < e.end) return static_cast<size_t>(static_cast<int64_t>(e.begin) + delta);
    delta += static_cast<int64_t>(e.text.size()) - static_cast<int64_t>(e.end - e.begin);
  }
  return static_cast<size_t>(static_cast<int64_t>(pos) + delta);
}

// The chunks of a document's current version, and the chunk of a position
// in the document's collaborative text (`live`, the Y.Text), which may be
// ahead of the current version (not materialised yet) and, for an HTML item,
// is the HTML source while the chunks index its page text (docs/collab.md,
// "Annotations"; decision record 1400).
class ChunkMap {
 public:
  static Result<ChunkMap> Load(pg::Transaction& tx, const Uuid& document, std::string live) {
    ChunkMap m;
    m.live_ = std::move(live);
    auto cur =
        CNX_TRY(tx.Exec("SELECT v.content_hash, c.content_type FROM content_items c JOIN content_versions v ON v.id = "
                        "c.current_version_id WHERE c.id = $1",
                        {document}));
    if (cur.empty()) return m;  // no version: no chunks
    std::string content_type(cur[0].Text(1));
    for (auto& c : content_type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    m.html_ = text::IsHtmlContentType(content_type);
    bool same = std::string(cur[0].Text(0)) == text::Sha256Hex(m.live_);
    if (!same || m.html_) {
      auto body =
          CNX_TRY(tx.Exec("SELECT s.state FROM content_items c JOIN content_versions v ON v.id = c.current_version_id "
                          "JOIN document_snapshots s ON s.id = v.snapshot_id WHERE c.id = $1 AND s.format = 'text'",
                          {document}));
      if (body.empty()) return m;  // the version's text is not at hand: no chunk
      auto bytes = CNX_TRY(body[0].Get<std::vector<uint8_t>>(0));
      m.version_.assign(bytes.begin(), bytes.end());
      if (!same) m.to_version_ = DiffText(m.live_, m.version_);
      if (m.html_) m.page_ = text::HtmlToText(m.version_);
    }
    auto chunks =
        CNX_TRY(tx.Exec("SELECT id, start_offset, end_offset FROM content_chunks WHERE content_item_id = $1 ORDER BY "
                        "chunk_index",
                        {document}));
    for (int i = 0; i < chunks.rows(); ++i) {
      auto start = chunks[i].Get<int64_t>(1);
      auto end = chunks[i].Get<int64_t>(2);
      if (start && end) m.chunks_.push_back({std::string(chunks[i].Text(0)), *start, *end});
    }
    return m;
  }

  // The chunk holding UTF-16 index `index` of the live text (for an HTML
  // item: the first page-text character at or after it); between chunks the
  // one before, at the end the last one. nullopt without chunks.
  std::optional<std::string> At(uint64_t index) const {
    size_t byte = crdt::Utf8OffsetOfUtf16(live_, index);
    if (to_version_) byte = MapThroughEdits(*to_version_, byte);
    if (html_) byte = PageTextOffset(version_, page_, byte);
    auto b = static_cast<int64_t>(byte);
    std::optional<std::string> best;
    for (size_t i = 0; i < chunks_.size(); ++i) {
      const auto& c = chunks_[i];
      if (c.start <= b && (b < c.end || (b == c.end && i + 1 == chunks_.size()))) return c.id;
      if (c.start <= b) best = c.id;  // between chunks: the one before
    }
    return best;
  }

 private:
  struct Row {
    std::string id;
    int64_t start, end;
  };
  std::string live_;
  std::string version_;                              // the current version's text, when needed
  std::optional<std::vector<TextEdit>> to_version_;  // live -> version, when they differ
  bool html_ = false;
  std::string page_;  // HTML: the page text the chunks index
  std::vector<Row> chunks_;
};

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
  std::optional<uint64_t> start = Offset(pick("startOffset"));
  std::optional<uint64_t> end = Offset(pick("endOffset"));
  if (!start && !end) return out;
  auto principal = deps.store.Authenticate(token);
  if (!principal) return out;
  auto access = deps.store.ContentItemAccess(*principal, document);
  if (!access || access->role == domain::Role::kViewer) return out;
  // A side the body does not name keeps where the current anchor is now in
  // the live text (its stored offset may lag behind, decision record 1400).
  const nlohmann::json* current_anchor = nullptr;
  if (current != nullptr && current->contains("positionData") && (*current)["positionData"].is_object() &&
      (*current)["positionData"].contains("anchor")) {
    current_anchor = &(*current)["positionData"]["anchor"];
  }
  const bool body_start = body.contains("startOffset"), body_end = body.contains("endOffset");
  Result<nlohmann::json> anchor = std::unexpected(Invalid("not computed"));
  std::string text;
  auto st = deps.hub.WithDocument(principal->tenant_id, document, [&](crdt::Doc& doc) {
    if (current_anchor != nullptr && (!body_start || !body_end)) {
      if (auto now = ResolveAnchor(doc, *current_anchor)) {
        if (!body_start) start = now->start;
        if (!body_end) end = now->end;
      }
    }
    if (!start) start = end;
    if (!end) end = start;
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
      if (auto map = ChunkMap::Load(*tx, document, std::move(text))) {
        if (auto chunk = map->At(*start)) body["chunkId"] = *chunk;
      }
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

// The anchored annotations among `items` (entity objects) whose document is
// loaded in this process get the offsets and chunk of their anchor in the
// live text (decision record 1400); the stored ones lag behind until the next
// materialisation. Returns whether any item's document was live. Blocking.
bool ApplyLiveOffsets(const AnnotationDeps& deps, const std::string& token, const std::vector<nlohmann::json*>& items) {
  std::map<std::string, std::vector<nlohmann::json*>> by_document;
  for (auto* item : items) {
    if (!item->is_object() || !item->contains("documentId") || !(*item)["documentId"].is_string()) continue;
    auto pd = item->find("positionData");
    if (pd == item->end() || !pd->is_object() || !pd->contains("anchor")) continue;
    auto document = Uuid::Parse((*item)["documentId"].get<std::string>());
    if (!document || !deps.hub.IsLive(*document)) continue;
    by_document[document->ToString()].push_back(item);
  }
  if (by_document.empty()) return false;
  auto principal = deps.store.Authenticate(token);
  if (!principal) return false;
  bool live = false;
  for (auto& [key, list] : by_document) {
    auto document = Uuid::Parse(key);
    std::vector<std::optional<TextRange>> now(list.size());
    std::string text;
    bool loaded = deps.hub.WithLoadedDocument(principal->tenant_id, *document, [&](crdt::Doc& doc) {
      for (size_t i = 0; i < list.size(); ++i) now[i] = ResolveAnchor(doc, (*list[i])["positionData"]["anchor"]);
      text = doc.GetText(deps.text_root).ToString();
    });
    if (!loaded) continue;
    live = true;
    std::optional<ChunkMap> map;
    if (auto conn = deps.pool.Acquire()) {
      auto tx = pg::Transaction::Begin(**conn);
      if (tx && tx->SetTenant(principal->tenant_id)) {
        if (auto m = ChunkMap::Load(*tx, *document, std::move(text))) map = std::move(*m);
        (void)tx->Commit();
      }
    }
    for (size_t i = 0; i < list.size(); ++i) {
      if (!now[i]) continue;
      auto& item = *list[i];
      item["startOffset"] = now[i]->start;
      item["endOffset"] = now[i]->end;
      if (map) {
        if (auto chunk = map->At(now[i]->start)) item["chunkId"] = *chunk;
      }
    }
  }
  return live;
}

// RFC 9110 §13.1.2 weak comparison of an If-None-Match value with `etag`.
bool NoneMatchHits(std::string_view header, std::string_view etag) {
  auto strip = [](std::string_view t) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t.starts_with("W/")) t.remove_prefix(2);
    return t;
  };
  if (etag.empty()) return false;
  if (strip(header) == "*") return true;
  while (!header.empty()) {
    size_t comma = header.find(',');
    if (strip(header.substr(0, comma)) == strip(etag)) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

// Rewrites an annotation response (one entity, or a page with `items`) to the
// live offsets. Returns whether a document of it was live.
bool LiveResponse(const AnnotationDeps& deps, const std::string& token, api::Response& resp) {
  auto body = nlohmann::json::parse(resp.body(), nullptr, false);
  if (!body.is_object()) return false;
  std::vector<nlohmann::json*> items;
  if (body.contains("items") && body["items"].is_array()) {
    for (auto& i : body["items"]) items.push_back(&i);
  } else {
    items.push_back(&body);
  }
  if (!ApplyLiveOffsets(deps, token, items)) return false;
  resp.SetBody(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  return true;
}

// The wrapped reads (GET /v1/annotations/{id} and the lists): offsets and
// chunk of live documents are those of the live text. A conditional GET is
// answered 304 only when the document is not live (the stored row is then
// what the client would get).
asio::awaitable<api::Response> ServeRead(std::shared_ptr<AnnotationDeps> deps, api::Handler inner, api::Request& req) {
  auto token = BearerToken(req);
  if (!token) co_return co_await inner(req);
  std::string none_match(req.Header(http::field::if_none_match));
  if (!none_match.empty()) req.raw().erase(http::field::if_none_match);
  api::Response resp = co_await inner(req);
  if (resp.status() != http::status::ok) co_return resp;
  bool live = co_await req.RunBlocking([&] { return LiveResponse(*deps, *token, resp); });
  if (!live && !none_match.empty()) {
    std::string etag(resp.raw()[http::field::etag]);
    if (NoneMatchHits(none_match, etag)) {
      api::Response r(http::status::not_modified);  // the client's copy is current
      r.SetHeader(http::field::etag, etag);
      co_return r;
    }
  }
  co_return resp;
}

// Idempotency of an anchored create (decision record 1400). The generic
// handler fingerprints the body it gets, and the anchored body carries the
// relative positions and chunk of the text at that moment: a retry after the
// text changed would not match its first attempt. So this route handles the
// key itself, over the body as sent (the same fingerprint and states as
// api's), and does not pass it on.
struct Idempotent {
  std::optional<domain::Principal> principal;
  std::string key;
  std::optional<api::Response> answer;  // replay or refusal
};
Idempotent BeginIdempotent(const AnnotationDeps& deps, const std::string& token, const api::Request& req) {
  Idempotent out;
  std::string_view key = req.Header("Idempotency-Key");
  if (!api::ValidIdempotencyKey(key)) return out;  // absent, or malformed: the generic handler answers
  auto principal = deps.store.Authenticate(token);
  if (!principal) return out;
  out.answer = api::BeginIdempotency(deps.store, *principal, key, req);
  if (out.answer) return out;
  out.principal = *principal;
  out.key = std::string(key);
  return out;
}

// The wrapped create (POST /v1/content/{id}/annotations) or update (PATCH
// /v1/annotations/{id}) route. A free coroutine (not a lambda): GCC warns about
// coroutine lambdas' frame deallocation.
asio::awaitable<api::Response> ServeWrite(std::shared_ptr<AnnotationDeps> deps, const domain::ResourceSpec* spec,
                                          bool create, api::Handler inner, api::Request& req) {
  auto token = BearerToken(req);
  auto id = Uuid::Parse(req.PathParam("id"));
  auto body = nlohmann::json::parse(req.body(), nullptr, false);
  Idempotent idem;
  api::Response resp;
  bool answered = false;  // by Prepare (validation, unavailable)
  if (token && id && body.is_object() && (body.contains("startOffset") || body.contains("endOffset"))) {
    if (create && req.method() == http::verb::post) {
      idem = co_await req.RunBlocking([&] { return BeginIdempotent(*deps, *token, req); });
      if (idem.answer) co_return std::move(*idem.answer);
      if (idem.principal) req.raw().erase("Idempotency-Key");
    }
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
    if (prepared.answer) {
      resp = std::move(*prepared.answer);
      answered = true;
    } else {
      SetBody(req, body);
    }
  }
  if (!answered) {
    resp = co_await inner(req);
    bool written = resp.status() == http::status::ok || resp.status() == http::status::created;
    if (token && written && body.is_object() && body.contains("resolved")) {
      std::string w = resp.body();
      auto stamped = co_await req.RunBlocking([&] { return StampResolution(*deps, *spec, *token, w); });
      if (stamped) {
        resp.SetBody(std::move(stamped->body), "application/json");
        if (stamped->version) resp.SetHeader(http::field::etag, "\"" + std::to_string(*stamped->version) + "\"");
      }
    }
    if (token && written) (void)co_await req.RunBlocking([&] { return LiveResponse(*deps, *token, resp); });
  }
  if (idem.principal) {
    co_await req.RunBlocking([&] { api::FinishIdempotency(deps->store, *idem.principal, idem.key, resp); });
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
  if (!anchor.is_object() || !anchor.contains("kind") || !anchor["kind"].is_string() ||
      anchor["kind"].get<std::string>() != kAnchorKind || !anchor.contains("root") || !anchor["root"].is_string() ||
      !anchor.contains("start") || !anchor.contains("end")) {
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
  auto map = CNX_TRY(ChunkMap::Load(tx, document, std::move(text)));
  for (auto& r : list) {
    if (!r.now) continue;
    auto chunk = map.At(r.now->start);
    if (!chunk) chunk = r.chunk;  // no chunks (yet): keep what was there
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
    if (route.kind == api::RestKind::kGet || route.kind == api::RestKind::kList ||
        route.kind == api::RestKind::kListNested) {
      CNX_TRY(router.Wrap(route.method, route.pattern, [shared](api::Handler inner) {
        return api::Handler([shared, inner](api::Request& req) { return ServeRead(shared, inner, req); });
      }));
      continue;
    }
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
