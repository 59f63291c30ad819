#include "embed/worker.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace cnx::embed {
namespace {

struct ClaimedJob {
  std::string job_id;
  Uuid tenant;
  Uuid chunk;
  Uuid project;
  int32_t attempts = 0;
  std::string token;  // locked_until as text
  std::string content;
  std::string content_hash;
};

// A PostgreSQL array literal of text elements ("{"a","b"}"), for unnest().
std::string PgArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

double Seconds(std::chrono::milliseconds ms) {
  return static_cast<double>(ms.count()) / 1000.0;
}

}  // namespace

std::vector<uint8_t> EncodeVector(std::span<const float> v) {
  static_assert(std::endian::native == std::endian::little, "chunk_embeddings stores little-endian float32");
  std::vector<uint8_t> out(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Result<std::vector<float>> DecodeVector(std::span<const uint8_t> bytes) {
  if (bytes.size() % sizeof(float) != 0)
    return Err(Module::kEmbed, ErrorCode::kDataLoss, "embedding length is not a multiple of 4");
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

EmbeddingWorker::EmbeddingWorker(pg::Pool& pool, Embedder& embedder, vector::VectorIndex* index, WorkerOptions options)
    : pool_(pool), embedder_(embedder), index_(index), options_(options) {
  options_.batch_size = std::max<size_t>(1, options_.batch_size);
  options_.max_attempts = std::max(1, options_.max_attempts);
}

EmbeddingWorker::~EmbeddingWorker() {
  Stop();
}

Result<BatchResult> EmbeddingWorker::RunOnce() {
  BatchResult result;
  CNX_TRY(Fault(WorkerStep::kClaim));
  auto conn = CNX_TRY(pool_.Acquire());

  // 1. Claim.
  std::vector<ClaimedJob> jobs;
  {
    auto rows =
        CNX_TRY(conn->Exec("WITH due AS ("
                           "  SELECT id FROM embedding_jobs"
                           "  WHERE next_attempt_at <= now()"
                           "    AND (status = 'pending' OR (status = 'processing' AND locked_until < now()))"
                           "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
                           " claimed AS ("
                           "  UPDATE embedding_jobs j SET status = 'processing',"
                           "    locked_until = clock_timestamp() + make_interval(secs => $2::float8),"
                           "    attempt_count = j.attempt_count + 1, last_attempt_at = now(), updated_at = now()"
                           "  FROM due WHERE j.id = due.id"
                           "  RETURNING j.id, j.tenant_id, j.content_chunk_id, j.attempt_count, j.locked_until)"
                           " SELECT c.id::text, c.tenant_id, c.content_chunk_id, c.attempt_count, c.locked_until::text,"
                           "   ch.content, ch.content_hash, ci.project_id"
                           " FROM claimed c JOIN content_chunks ch ON ch.id = c.content_chunk_id"
                           " JOIN content_items ci ON ci.id = ch.content_item_id",
                           {static_cast<int64_t>(options_.batch_size), Seconds(options_.lease)}));
    jobs.reserve(rows.rows());
    for (int i = 0; i < rows.rows(); ++i) {
      auto r = rows[i];
      ClaimedJob j;
      j.job_id = CNX_TRY(r.Get<std::string>(0));
      j.tenant = CNX_TRY(r.Get<Uuid>(1));
      j.chunk = CNX_TRY(r.Get<Uuid>(2));
      j.attempts = CNX_TRY(r.Get<int32_t>(3));
      j.token = CNX_TRY(r.Get<std::string>(4));
      j.content = CNX_TRY(r.Get<std::string>(5));
      j.content_hash = CNX_TRY(r.Get<std::string>(6));
      j.project = CNX_TRY(r.Get<Uuid>(7));
      jobs.push_back(std::move(j));
    }
  }
  result.claimed = jobs.size();
  if (jobs.empty()) return result;
  // In id order: the store step locks the jobs in the order of its arrays.
  std::sort(jobs.begin(), jobs.end(), [](const ClaimedJob& a, const ClaimedJob& b) { return a.job_id < b.job_id; });
  ++stats_.batches;

  // A job that keeps crashing its worker is failed once its attempts are used up.
  auto fail_jobs = [&](std::span<const ClaimedJob* const> which, const std::string& error) -> Status {
    if (which.empty()) return Ok();
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    for (const ClaimedJob* j : which) {
      auto upd = CNX_TRY(tx.Exec(
          "UPDATE embedding_jobs SET status = 'failed', locked_until = NULL, error_message = $3, updated_at = now()"
          " WHERE id = $1::uuid AND status = 'processing' AND locked_until = $2::timestamptz",
          {j->job_id, j->token, error}));
      if (upd.affected() == 0) continue;
      nlohmann::json payload = {{"jobId", j->job_id},
                                {"chunkId", j->chunk.ToString()},
                                {"contentHash", j->content_hash},
                                {"model", std::string(embedder_.model_name())},
                                {"modelVersion", std::string(embedder_.model_version())}};
      CNX_TRY(
          tx.Exec("INSERT INTO dead_letters (tenant_id, source, event_id, aggregate_type, aggregate_id, payload, "
                  "error, attempts)"
                  " VALUES ($1, 'embed', $2, 'content_chunks', $3, $4::jsonb, $5, $6)",
                  {j->tenant, j->job_id, j->chunk, payload.dump(), error, j->attempts}));
      ++result.failed;
    }
    CNX_TRY(tx.Commit());
    return Ok();
  };

  // 2. Embed.
  // Jobs whose earlier attempts all crashed (lease expired) are given up.
  {
    std::vector<const ClaimedJob*> crashed;
    std::vector<ClaimedJob> keep;
    for (const auto& j : jobs)
      if (j.attempts > options_.max_attempts) crashed.push_back(&j);
    CNX_TRY(fail_jobs(crashed, "lease expired on every attempt"));
    if (!crashed.empty()) {
      for (auto& j : jobs)
        if (j.attempts <= options_.max_attempts) keep.push_back(std::move(j));
      jobs = std::move(keep);
      stats_.failed += result.failed;
      if (jobs.empty()) return result;
    }
  }

  // 2. Embed. An injected fault here behaves like a crash: the lease expires.
  CNX_TRY(Fault(WorkerStep::kEmbed));
  auto embedded = [&]() -> Result<std::vector<std::vector<float>>> {
    std::vector<std::string> texts;
    texts.reserve(jobs.size());
    for (const auto& j : jobs) texts.push_back(j.content);
    auto v = embedder_.Embed(texts);
    if (v && v->size() != jobs.size())
      return Err(Module::kEmbed, ErrorCode::kDataLoss, "embedder returned a wrong number of vectors");
    return v;
  }();
  if (!embedded) {
    const std::string error = embedded.error().ToString();
    const size_t failed_before = result.failed;
    std::vector<const ClaimedJob*> exhausted;
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    for (const auto& j : jobs) {
      if (j.attempts >= options_.max_attempts) {
        exhausted.push_back(&j);
        continue;
      }
      double delay = Seconds(options_.backoff_base) * std::ldexp(1.0, std::min(j.attempts - 1, 30));
      delay = std::min(delay, Seconds(options_.backoff_max));
      auto upd =
          CNX_TRY(tx.Exec("UPDATE embedding_jobs SET status = 'pending', locked_until = NULL, error_message = $3,"
                          "  next_attempt_at = now() + make_interval(secs => $4::float8), updated_at = now()"
                          " WHERE id = $1::uuid AND status = 'processing' AND locked_until = $2::timestamptz",
                          {j.job_id, j.token, error, delay}));
      if (upd.affected() > 0) ++result.retried;
    }
    CNX_TRY(tx.Commit());
    CNX_TRY(fail_jobs(exhausted, error));
    stats_.retried += result.retried;
    stats_.failed += result.failed - failed_before;
    return result;
  }
  for (const auto& v : *embedded) {
    if (v.size() != embedder_.dimension())
      return Err(Module::kEmbed, ErrorCode::kDataLoss, "embedder returned a vector of the wrong dimension");
  }

  // 3. Store. Set-based: a handful of statements per batch, not per job.
  CNX_TRY(Fault(WorkerStep::kStore));
  std::vector<bool> stored(jobs.size(), false);
  {
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    // Lock the jobs still held under our token, then their chunks that still
    // have the embedded text; the trigger that re-queues a changed chunk
    // updates the job row, so it serialises with us here.
    std::vector<std::string> job_ids, tokens;
    for (const auto& j : jobs) {
      job_ids.push_back(j.job_id);
      tokens.push_back(j.token);
    }
    // One primary-key probe per job, in id order (the arrays are sorted), by
    // construction: written as a join with `status = 'processing'` in its
    // WHERE, the planner may take the partial index embedding_jobs_claim,
    // whose statistics lag behind a backlog of pending jobs, and walk the
    // whole backlog on every batch. The LIMIT keeps the status test out of
    // the subquery (no implied partial-index predicate); the token alone
    // already implies `processing` (every other status clears locked_until).
    auto held = CNX_TRY(
        tx.Exec("SELECT x.id::text FROM unnest($1::uuid[], $2::timestamptz[]) WITH ORDINALITY AS t(id, token, n)"
                " CROSS JOIN LATERAL (SELECT j.id, j.status FROM embedding_jobs j"
                "   WHERE j.id = t.id AND j.locked_until = t.token LIMIT 1 FOR UPDATE) x"
                " WHERE x.status = 'processing' ORDER BY t.n",
                {PgArray(job_ids), PgArray(tokens)}));
    std::unordered_set<std::string> held_ids;
    for (int r = 0; r < held.rows(); ++r) held_ids.insert(std::string(held[r].Text(0)));
    std::vector<std::string> chunk_ids, hashes;
    for (const auto& j : jobs) {
      if (!held_ids.contains(j.job_id)) continue;
      chunk_ids.push_back(j.chunk.ToString());
      hashes.push_back(j.content_hash);
    }
    std::unordered_set<std::string> current;
    if (!chunk_ids.empty()) {
      auto chunks = CNX_TRY(
          tx.Exec("SELECT c.id::text FROM content_chunks c"
                  " JOIN unnest($1::uuid[], $2::text[]) AS t(id, hash) ON c.id = t.id AND c.content_hash = t.hash"
                  " ORDER BY c.id FOR UPDATE OF c",
                  {PgArray(chunk_ids), PgArray(hashes)}));
      for (int r = 0; r < chunks.rows(); ++r) current.insert(std::string(chunks[r].Text(0)));
    }
    std::string values;
    std::vector<pg::Param> params{pg::Param(embedder_.model_name()), pg::Param(embedder_.model_version()),
                                  pg::Param(static_cast<int64_t>(embedder_.dimension()))};
    std::vector<std::string> stored_chunks;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const auto& j = jobs[i];
      if (!held_ids.contains(j.job_id) || !current.contains(j.chunk.ToString())) {
        ++result.discarded;
        continue;
      }
      auto bytes = EncodeVector((*embedded)[i]);
      size_t n = params.size();
      params.push_back(pg::Param(j.tenant));
      params.push_back(pg::Param(j.chunk));
      params.push_back(pg::Param::Bytes(bytes));
      params.push_back(pg::Param(j.content_hash));
      values += (values.empty() ? "" : ", ") + std::string("($") + std::to_string(n + 1) + "::uuid, $" +
                std::to_string(n + 2) + "::uuid, $1, $2, $3::integer, $" + std::to_string(n + 3) + "::bytea, $" +
                std::to_string(n + 4) + ")";
      stored_chunks.push_back(j.chunk.ToString());
      stored[i] = true;
    }
    if (!stored_chunks.empty()) {
      CNX_TRY(tx.Exec(
          "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, embedding, content_hash)"
          " VALUES " +
              values +
              " ON CONFLICT (chunk_id, model, model_version) DO UPDATE SET"
              "  dimension = EXCLUDED.dimension, embedding = EXCLUDED.embedding,"
              "  content_hash = EXCLUDED.content_hash, created_at = now(),"
              "  written_xid = pg_current_xact_id()",
          params));
    }
    CNX_TRY(tx.Commit());
  }

  // 4. Index.
  CNX_TRY(Fault(WorkerStep::kIndex));
  if (index_ != nullptr) {
    std::vector<vector::VectorRecord> records;
    std::vector<Uuid> ids;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!stored[i]) continue;
      records.push_back({jobs[i].chunk, jobs[i].tenant, jobs[i].project, (*embedded)[i]});
      ids.push_back(jobs[i].chunk);
    }
    if (!records.empty()) {
      CNX_TRY(index_->Upsert(records));
      // Undo vectors of chunks deleted while we were upserting.
      std::string list = "{";
      for (size_t i = 0; i < ids.size(); ++i) list += (i ? "," : "") + ids[i].ToString();
      list += "}";
      auto gone =
          CNX_TRY(conn->Exec("SELECT u.id FROM unnest($1::uuid[]) AS u(id)"
                             " WHERE NOT EXISTS (SELECT 1 FROM content_chunks c WHERE c.id = u.id)",
                             {list}));
      std::vector<Uuid> remove;
      for (int r = 0; r < gone.rows(); ++r) remove.push_back(CNX_TRY(gone[r].Get<Uuid>(0)));
      if (!remove.empty()) CNX_TRY(index_->Delete(remove));
    }
  }

  // 5. Complete.
  CNX_TRY(Fault(WorkerStep::kComplete));
  {
    std::vector<std::string> job_ids, tokens;
    size_t expected = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!stored[i]) continue;
      job_ids.push_back(jobs[i].job_id);
      tokens.push_back(jobs[i].token);
      ++expected;
    }
    if (expected > 0) {
      auto upd = CNX_TRY(
          conn->Exec("UPDATE embedding_jobs j SET status = 'completed', locked_until = NULL, error_message = NULL,"
                     "  completed_at = now(), updated_at = now()"
                     " FROM (SELECT x.tid FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, token)"
                     "   CROSS JOIN LATERAL (SELECT j2.ctid AS tid, j2.status FROM embedding_jobs j2"
                     "     WHERE j2.id = t.id AND j2.locked_until = t.token LIMIT 1) x"
                     "   WHERE x.status = 'processing') m"
                     // The version read above, if still current: a job updated
                     // meanwhile (re-queued, re-claimed) has moved and is skipped.
                     " WHERE j.ctid = m.tid",
                     {PgArray(job_ids), PgArray(tokens)}));
      result.completed += static_cast<size_t>(upd.affected());
      result.discarded += expected - static_cast<size_t>(upd.affected());
    }
  }
  stats_.completed += result.completed;
  stats_.discarded += result.discarded;
  return result;
}

Result<BatchResult> EmbeddingWorker::Drain() {
  BatchResult total;
  for (;;) {
    auto r = CNX_TRY(RunOnce());
    if (r.claimed == 0) return total;
    total.claimed += r.claimed;
    total.completed += r.completed;
    total.discarded += r.discarded;
    total.retried += r.retried;
    total.failed += r.failed;
  }
}

void EmbeddingWorker::Start() {
  stop_ = false;
  for (size_t t = 0; t < std::max<size_t>(1, options_.threads); ++t) {
    threads_.emplace_back([this] {
      while (!stop_) {
        auto r = RunOnce();
        if (!r) {
          ++stats_.errors;
          spdlog::warn("embed worker: {}", r.error().ToString());
        }
        if (!r || r->claimed < options_.batch_size) {
          auto until =
              std::chrono::steady_clock::now() + (!r || r->claimed == 0 ? options_.idle_poll : options_.fill_wait);
          while (!stop_ && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }
}

void EmbeddingWorker::Stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace cnx::embed
