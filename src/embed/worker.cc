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
  std::string tid;    // ctid of the claimed row version, "(page,item)"
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

// The store and the completion find their jobs by ctid, one TID probe each.
// embedding_jobs is a queue: it is often empty when (auto)vacuum counts it,
// which makes the planner believe any size is "0 rows" and price a scan of
// the whole table below a probe whenever the table has few pages; a plan
// cached then would keep scanning it once per job while a backlog grows
// (decision 1411's failure, by another road). Without sequential scans the
// plan is the probes whatever the statistics say.
constexpr const char* kProbesOnly = "SET LOCAL enable_seqscan = off";

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
                           "  WHERE completed_at IS NULL AND next_attempt_at <= now()"
                           "    AND (status = 'pending' OR (status = 'processing' AND locked_until < now()))"
                           "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
                           " claimed AS ("
                           "  UPDATE embedding_jobs j SET status = 'processing',"
                           "    locked_until = clock_timestamp() + make_interval(secs => $2::float8),"
                           "    attempt_count = j.attempt_count + 1, last_attempt_at = now(), updated_at = now()"
                           "  FROM due WHERE j.id = due.id"
                           "  RETURNING j.id, j.tenant_id, j.content_chunk_id, j.attempt_count, j.locked_until, j.ctid)"
                           " SELECT c.id::text, c.tenant_id, c.content_chunk_id, c.attempt_count, c.locked_until::text,"
                           "   ch.content, ch.content_hash, ci.project_id, c.ctid::text"
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
      j.tid = CNX_TRY(r.Get<std::string>(8));
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
      auto upd =
          CNX_TRY(tx.Exec("UPDATE embedding_jobs SET status = 'failed', locked_until = NULL, error_message = $3,"
                          "  next_attempt_at = 'infinity', updated_at = now()"
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

  // 3. Store. One statement: lock the chunks that still have the embedded
  // text (FOR KEY SHARE, the lock the chunk_embeddings key takes anyway), then
  // the jobs still held under our token, then upsert their vectors. Each job
  // is found by the ctid its claim returned (a TID probe; the id, token and
  // status are checked on the row found, so a job updated meanwhile —
  // re-queued, re-claimed — is not held), locked in id order (the arrays are
  // sorted). The chunk comes first because that is the order of a DELETE: it
  // locks the chunk's row, then its BEFORE DELETE trigger (migration 0014)
  // deletes the job; a store locking the job first and the chunk later
  // (through the key) would deadlock with it. A delete committed first leaves
  // no chunk to lock; one that comes later waits for the store and then takes
  // the job and, through the key's cascade, the vector. The re-queue trigger of
  // a changed chunk updates the job row, so it serialises with the job's lock.
  // The vectors travel as one binary bytea, cut by ordinality.
  CNX_TRY(Fault(WorkerStep::kStore));
  std::vector<bool> stored(jobs.size(), false);
  {
    const size_t width = embedder_.dimension() * sizeof(float);
    std::vector<std::string> tids, job_ids, tokens, hashes, chunk_ids;
    std::vector<uint8_t> vectors;
    vectors.reserve(jobs.size() * width);
    for (size_t i = 0; i < jobs.size(); ++i) {
      tids.push_back(jobs[i].tid);
      job_ids.push_back(jobs[i].job_id);
      tokens.push_back(jobs[i].token);
      hashes.push_back(jobs[i].content_hash);
      chunk_ids.push_back(jobs[i].chunk.ToString());
      auto bytes = EncodeVector((*embedded)[i]);
      vectors.insert(vectors.end(), bytes.begin(), bytes.end());
    }
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    CNX_TRY(tx.Exec(kProbesOnly));
    auto rows = CNX_TRY(tx.Exec(
        "WITH t AS (SELECT * FROM unnest($1::tid[], $2::uuid[], $3::timestamptz[], $4::text[], $10::uuid[])"
        "   WITH ORDINALITY AS t(tid, id, token, hash, chunk, n)),"
        " live AS MATERIALIZED (SELECT c.id, c.content_hash FROM content_chunks c"
        "   JOIN t ON c.id = t.chunk AND c.content_hash = t.hash ORDER BY c.id FOR KEY SHARE OF c),"
        " held AS MATERIALIZED (SELECT t.n, t.hash, x.tenant_id, x.content_chunk_id FROM t"
        "   JOIN live c ON c.id = t.chunk AND c.content_hash = t.hash"
        "   CROSS JOIN LATERAL (SELECT j.tenant_id, j.content_chunk_id FROM embedding_jobs j"
        "     WHERE j.ctid = t.tid AND j.id = t.id AND j.locked_until = t.token AND j.status = 'processing'"
        "       AND j.content_chunk_id = c.id"
        "     FOR UPDATE) x)"
        " INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, embedding, content_hash)"
        " SELECT h.tenant_id, h.content_chunk_id, $5, $6, $7::integer,"
        "   substring($8::bytea FROM ((h.n - 1) * $9::integer + 1)::integer FOR $9::integer), h.hash"
        " FROM held h"
        " ORDER BY h.n"
        " ON CONFLICT (chunk_id, model, model_version) DO UPDATE SET"
        "  dimension = EXCLUDED.dimension, embedding = EXCLUDED.embedding,"
        "  content_hash = EXCLUDED.content_hash, created_at = now(),"
        "  written_xid = pg_current_xact_id()"
        " RETURNING chunk_id::text",
        {PgArray(tids), PgArray(job_ids), PgArray(tokens), PgArray(hashes), pg::Param(embedder_.model_name()),
         pg::Param(embedder_.model_version()), static_cast<int64_t>(embedder_.dimension()), pg::Param::Bytes(vectors),
         static_cast<int64_t>(width), PgArray(chunk_ids)}));
    CNX_TRY(tx.Commit());
    std::unordered_set<std::string> stored_chunks;
    for (int r = 0; r < rows.rows(); ++r) stored_chunks.insert(std::string(rows[r].Text(0)));
    for (size_t i = 0; i < jobs.size(); ++i) {
      stored[i] = stored_chunks.contains(jobs[i].chunk.ToString());
      if (!stored[i]) ++result.discarded;
    }
  }

  // 4. Index.
  CNX_TRY(Fault(WorkerStep::kIndex));
  if (index_ != nullptr) {
    std::vector<vector::VectorRecord> records;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!stored[i]) continue;
      records.push_back({jobs[i].chunk, jobs[i].tenant, jobs[i].project, (*embedded)[i]});
    }
    if (!records.empty()) CNX_TRY(index_->Upsert(records));
  }

  // 5. Complete: the jobs still held under the token are deleted (a completed
  // job keeps no row; migration 0014), found again by ctid with the same
  // checks. The same statement finds the chunks deleted while their vectors
  // went into the index, to undo those: a job that is no longer held was
  // re-queued, re-claimed or deleted with its chunk; one still held proves its
  // chunk exists (a chunk's delete removes its job first, in the same
  // transaction), so only the former are probed.
  CNX_TRY(Fault(WorkerStep::kComplete));
  {
    std::vector<std::string> tids, job_ids, tokens, chunk_ids;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!stored[i]) continue;
      tids.push_back(jobs[i].tid);
      job_ids.push_back(jobs[i].job_id);
      tokens.push_back(jobs[i].token);
      chunk_ids.push_back(jobs[i].chunk.ToString());
    }
    if (!job_ids.empty()) {
      auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
      CNX_TRY(tx.Exec(kProbesOnly));
      auto rows = CNX_TRY(tx.Exec(
          "WITH t AS (SELECT * FROM unnest($1::tid[], $2::uuid[], $3::timestamptz[], $4::uuid[]) WITH ORDINALITY"
          "   AS t(tid, id, token, chunk, n)),"
          " done AS (DELETE FROM embedding_jobs j USING t"
          "   WHERE j.ctid = t.tid AND j.id = t.id AND j.locked_until = t.token AND j.status = 'processing'"
          "   RETURNING t.n)"
          " SELECT NULL::text, (SELECT count(*) FROM done)"
          " UNION ALL"
          " SELECT t.chunk::text, 0 FROM t WHERE NOT EXISTS (SELECT 1 FROM done d WHERE d.n = t.n)"
          "   AND NOT EXISTS (SELECT 1 FROM content_chunks c WHERE c.id = t.chunk)",
          {PgArray(tids), PgArray(job_ids), PgArray(tokens), PgArray(chunk_ids)}));
      CNX_TRY(tx.Commit());
      std::vector<Uuid> gone;
      size_t completed = 0;
      for (int r = 0; r < rows.rows(); ++r) {
        if (rows[r].IsNull(0)) {
          completed = static_cast<size_t>(CNX_TRY(rows[r].Get<int64_t>(1)));
        } else {
          gone.push_back(CNX_TRY(rows[r].Get<Uuid>(0)));
        }
      }
      result.completed += completed;
      result.discarded += job_ids.size() - completed;
      if (index_ != nullptr && !gone.empty()) CNX_TRY(index_->Delete(gone));
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
