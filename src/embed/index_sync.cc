#include "embed/index_sync.h"

#include <algorithm>

#include "embed/worker.h"

namespace cnx::embed {
namespace {

constexpr int64_t kPage = 2000;

// Streams current embeddings of `model` in chunk-id order, created at or after
// `since_us` (0: all), optionally only the given ids; calls fn per page.
template <typename Fn>
Status ForEachCurrent(pg::Connection& conn, const ModelId& model, int64_t since_us, const std::string* id_list,
                      Fn&& fn) {
  std::string after = Uuid().ToString();
  for (;;) {
    auto rows =
        CNX_TRY(conn.Exec("SELECT e.chunk_id, e.tenant_id, ci.project_id, e.embedding,"
                          "  (extract(epoch FROM e.created_at) * 1000000)::bigint"
                          " FROM chunk_embeddings e"
                          " JOIN content_chunks c ON c.id = e.chunk_id AND c.content_hash = e.content_hash"
                          " JOIN content_items ci ON ci.id = c.content_item_id"
                          " WHERE e.model = $1 AND e.model_version = $2 AND e.chunk_id > $3::uuid"
                          "   AND e.created_at >= to_timestamp($4::float8 / 1000000)"
                          "   AND ($6::uuid[] IS NULL OR e.chunk_id = ANY($6::uuid[]))"
                          " ORDER BY e.chunk_id LIMIT $5",
                          {model.name, model.version, after, static_cast<double>(since_us), kPage,
                           id_list ? pg::Param(*id_list) : pg::Param()}));
    if (rows.empty()) return Ok();
    CNX_TRY(fn(rows));
    after = std::string(rows[rows.rows() - 1].Text(0));
    if (rows.rows() < kPage) return Ok();
  }
}

Result<CatchUpResult> Load(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index, int64_t since_us,
                           uint64_t position, const std::string* id_list = nullptr) {
  CatchUpResult out{.position = position};
  CNX_TRY(ForEachCurrent(conn, model, since_us, id_list, [&](const pg::QueryResult& rows) -> Status {
    std::vector<std::vector<float>> values(rows.rows());
    std::vector<vector::VectorRecord> records;
    records.reserve(rows.rows());
    for (int i = 0; i < rows.rows(); ++i) {
      auto r = rows[i];
      values[i] = CNX_TRY(DecodeVector(CNX_TRY(r.Get<std::vector<uint8_t>>(3))));
      records.push_back({CNX_TRY(r.Get<Uuid>(0)), CNX_TRY(r.Get<Uuid>(1)), CNX_TRY(r.Get<Uuid>(2)), values[i]});
      out.position = std::max<uint64_t>(out.position, static_cast<uint64_t>(CNX_TRY(r.Get<int64_t>(4))));
    }
    CNX_TRY(index.Upsert(records));
    out.upserted += records.size();
    return Ok();
  }));
  return out;
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

Result<CatchUpResult> CatchUp(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index, uint64_t position,
                              std::chrono::seconds overlap) {
  int64_t since =
      static_cast<int64_t>(position) - std::chrono::duration_cast<std::chrono::microseconds>(overlap).count();
  return Load(conn, model, index, std::max<int64_t>(0, since), position);
}

Result<CatchUpResult> Rebuild(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index) {
  return Load(conn, model, index, 0, 0);
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
    auto r = CNX_TRY(Load(conn, model, index, 0, 0, &list));
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
