#include "embed/index_sync.h"

#include <algorithm>
#include <charconv>

#include "embed/worker.h"

namespace cnx::embed {
namespace {

constexpr int64_t kPage = 2000;

// Positions written by this code carry kXidPosition with the xmin of a
// snapshot in the low bits; a position without it is a created_at time of an
// older checkpoint.
constexpr uint64_t kXidPosition = uint64_t{1} << 63;

// The xmin of a fresh snapshot: every transaction with a smaller xid has
// ended, so a row with a smaller written_xid that is not visible now never
// will be. As a position: the next catch-up starts there.
Result<uint64_t> SnapshotXmin(pg::Connection& conn) {
  auto rows = CNX_TRY(conn.Exec("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"));
  const std::string text(rows[0].Text(0));
  uint64_t xmin = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), xmin);
  if (ec != std::errc() || end != text.data() + text.size() || xmin >= kXidPosition)
    return Err(Module::kEmbed, ErrorCode::kInternal, "unexpected snapshot xmin '" + text + "'");
  return xmin;
}

Status UpsertRows(const pg::QueryResult& rows, vector::VectorIndex& index, CatchUpResult& out) {
  std::vector<std::vector<float>> values(rows.rows());
  std::vector<vector::VectorRecord> records;
  records.reserve(rows.rows());
  for (int i = 0; i < rows.rows(); ++i) {
    auto r = rows[i];
    values[i] = CNX_TRY(DecodeVector(CNX_TRY(r.Get<std::vector<uint8_t>>(3))));
    records.push_back({CNX_TRY(r.Get<Uuid>(0)), CNX_TRY(r.Get<Uuid>(1)), CNX_TRY(r.Get<Uuid>(2)), values[i]});
  }
  CNX_TRY(index.Upsert(records));
  out.upserted += records.size();
  return Ok();
}

// Every current embedding of `model` (optionally only the ids in `id_list`),
// in chunk-id order, a page at a time. The position returned is the xmin taken
// before the first page.
Result<CatchUpResult> Load(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index,
                           const std::string* id_list = nullptr) {
  CatchUpResult out{.position = kXidPosition | CNX_TRY(SnapshotXmin(conn))};
  std::string after = Uuid().ToString();
  for (;;) {
    auto rows =
        CNX_TRY(conn.Exec("SELECT e.chunk_id, e.tenant_id, ci.project_id, e.embedding"
                          " FROM chunk_embeddings e"
                          " JOIN content_chunks c ON c.id = e.chunk_id AND c.content_hash = e.content_hash"
                          " JOIN content_items ci ON ci.id = c.content_item_id"
                          " WHERE e.model = $1 AND e.model_version = $2 AND e.chunk_id > $3::uuid"
                          "   AND ($5::uuid[] IS NULL OR e.chunk_id = ANY($5::uuid[]))"
                          " ORDER BY e.chunk_id LIMIT $4",
                          {model.name, model.version, after, kPage, id_list ? pg::Param(*id_list) : pg::Param()}));
    if (rows.empty()) return out;
    CNX_TRY(UpsertRows(rows, index, out));
    after = std::string(rows[rows.rows() - 1].Text(0));
    if (rows.rows() < kPage) return out;
  }
}

std::string UuidArray(std::span<const Uuid> ids) {
  std::string s = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += ids[i].ToString();
  }
  return s + "}";
}

}  // namespace

Result<CatchUpResult> CatchUp(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index,
                              uint64_t position) {
  // A position of an older checkpoint (a time): everything once.
  const uint64_t from = (position & kXidPosition) ? position & ~kXidPosition : 0;
  CatchUpResult out{.position = kXidPosition | CNX_TRY(SnapshotXmin(conn))};
  // Rows of transactions that ended before `from` are in the index already.
  // Keyset paging on (written_xid, chunk_id) through chunk_embeddings_written.
  std::string after_xid = std::to_string(from), after_chunk = Uuid().ToString();
  for (;;) {
    auto rows =
        CNX_TRY(conn.Exec("SELECT e.chunk_id, e.tenant_id, ci.project_id, e.embedding, e.written_xid::text"
                          " FROM chunk_embeddings e"
                          " JOIN content_chunks c ON c.id = e.chunk_id AND c.content_hash = e.content_hash"
                          " JOIN content_items ci ON ci.id = c.content_item_id"
                          " WHERE e.model = $1 AND e.model_version = $2"
                          "   AND (e.written_xid, e.chunk_id) > ($3::xid8, $4::uuid)"
                          " ORDER BY e.written_xid, e.chunk_id LIMIT $5",
                          {model.name, model.version, after_xid, after_chunk, kPage}));
    if (rows.empty()) return out;
    CNX_TRY(UpsertRows(rows, index, out));
    after_xid = std::string(rows[rows.rows() - 1].Text(4));
    after_chunk = std::string(rows[rows.rows() - 1].Text(0));
    if (rows.rows() < kPage) return out;
  }
}

Result<CatchUpResult> Rebuild(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index) {
  return Load(conn, model, index);
}

Result<Drift> Verify(pg::Connection& conn, const ModelId& model, const vector::VectorIndex& index) {
  Drift d;
  d.indexed = index.Count();
  std::string after = Uuid().ToString();
  for (;;) {
    auto rows = CNX_TRY(
        conn.Exec("SELECT e.chunk_id, e.content_hash = c.content_hash FROM chunk_embeddings e"
                  " JOIN content_chunks c ON c.id = e.chunk_id"
                  " WHERE e.model = $1 AND e.model_version = $2 AND e.chunk_id > $3::uuid ORDER BY e.chunk_id LIMIT $4",
                  {model.name, model.version, after, kPage}));
    for (int i = 0; i < rows.rows(); ++i) {
      Uuid id = CNX_TRY(rows[i].Get<Uuid>(0));
      bool current = CNX_TRY(rows[i].Get<bool>(1));
      bool present = index.Contains(id);
      if (current) {
        ++d.expected;
        if (!present) d.missing.push_back(id);
      } else if (present) {
        d.stale.push_back(id);
      }
    }
    if (rows.rows() < kPage) break;
    after = std::string(rows[rows.rows() - 1].Text(0));
  }
  const size_t accounted = (d.expected - d.missing.size()) + d.stale.size();
  d.extra = d.indexed > accounted ? d.indexed - accounted : 0;
  return d;
}

Result<ReconcileResult> Reconcile(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index,
                                  vector::VectorIndex* fresh) {
  ReconcileResult out;
  auto drift = CNX_TRY(Verify(conn, model, index));
  if (drift.extra > 0 && fresh != nullptr) {
    auto r = CNX_TRY(Rebuild(conn, model, *fresh));
    out.upserted = r.upserted;
    out.rebuilt = true;
    return out;
  }
  if (!drift.stale.empty()) {
    CNX_TRY(index.Delete(drift.stale));
    out.deleted = drift.stale.size();
  }
  for (size_t i = 0; i < drift.missing.size(); i += kPage) {
    auto part = std::span<const Uuid>(drift.missing).subspan(i, std::min<size_t>(kPage, drift.missing.size() - i));
    std::string list = UuidArray(part);
    auto r = CNX_TRY(Load(conn, model, index, &list));
    out.upserted += r.upserted;
  }
  if (drift.extra > 0)
    return Err(Module::kEmbed, ErrorCode::kFailedPrecondition,
               std::to_string(drift.extra) + " extra vectors: rebuild needed (pass a fresh index)");
  return out;
}

Status DeleteVectors(vector::VectorIndex& index, std::span<const Uuid> chunk_ids) {
  return index.Delete(chunk_ids);
}

}  // namespace cnx::embed
