// EmbeddingWorker: drains `embedding_jobs` into `chunk_embeddings` and the
// vector index.
//
// One batch (RunOnce) goes through five steps, each its own unit of work
// (decision 1450 for the statements):
//   1. kClaim    one statement: up to batch_size due jobs (pending, or
//                processing with an expired lease) are taken with
//                FOR UPDATE SKIP LOCKED, set to processing with a lease
//                (locked_until = now() + lease) and attempt_count + 1, a
//                heap-only update. The lease value is the claim token of every
//                later step; the row version's ctid is how they find the job.
//   2. kEmbed    the embedder is called outside any transaction.
//   3. kStore    one statement: the chunks that still have the content hash
//                that was embedded are locked (FOR KEY SHARE), then the jobs
//                still held under the same token, and for those the vector is
//                written to chunk_embeddings
//                (upsert on chunk, model, version). The chunk row itself is not
//                written (no outbox event per embedding; decision 1150): the
//                view content_chunk_embedding_status presents the seed's
//                vector_db_id / embedding_model / ... columns. A job whose chunk
//                changed meanwhile was re-queued by the trigger (status back to
//                pending, lease cleared): it is left alone and its vector
//                discarded.
//   4. kIndex    the stored vectors are upserted into the index.
//   5. kComplete one statement: jobs still held under the token are deleted (a
//                completed job keeps no row), and vectors of chunks deleted in
//                the meantime are removed from the index again.
// A crash (or a fault injected by the test hook) at any step leaves the job in
// processing; once its lease expires it is claimed again and the steps are
// repeated, all of them idempotent. A vector enters the index only after its
// chunk_embeddings row is committed, so the index never holds a vector that
// PostgreSQL does not know (deletes racing with step 4 are undone in step 5
// and, failing that, by `cnx reconcile --target vector`). Deleting a chunk
// locks its row, then deletes its job (a trigger, migration 0014); the store
// locks in the same order (chunk, then job), so a delete waits for a store
// that holds them, then the chunk_embeddings foreign key removes the row.
//
// Embedder failures release the batch with exponential backoff
// (backoff_base * 2^(attempt-1), capped at backoff_max); a job whose attempts
// reach max_attempts becomes failed and gets a dead_letters row (source
// 'embed').
//
// The worker runs as the administrative role: the pool must connect with a
// role that bypasses row-level security (system work across tenants).
//
// Thread safety: RunOnce() may be called from several threads (SKIP LOCKED
// keeps their batches disjoint); Start()/Stop() run `threads` such loops. A
// loop sleeps `idle_poll` when nothing was due and `fill_wait` after a batch
// that was not full (decision 1411).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.h"
#include "embed/embedder.h"
#include "pg/pool.h"
#include "vector/vector_index.h"

namespace cnx::embed {

struct WorkerOptions {
  size_t batch_size = 64;
  std::chrono::milliseconds lease{60'000};
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{1'000};
  std::chrono::milliseconds backoff_max{300'000};
  size_t threads = 1;
  std::chrono::milliseconds idle_poll{250};  // sleep when no job was due
  // Sleep after a batch that was not full: while jobs trickle in (an
  // ingestion), the next claim then finds more of them. Every batch costs a
  // few statements and commits whatever its size (docs/performance.md).
  std::chrono::milliseconds fill_wait{50};
};

enum class WorkerStep { kClaim, kEmbed, kStore, kIndex, kComplete };

// Called before each step; an error aborts the batch right there, as a crash
// would (nothing is released: the lease has to expire). For tests.
using WorkerFaultHook = std::function<Status(WorkerStep)>;

struct BatchResult {
  size_t claimed = 0;
  size_t completed = 0;
  size_t discarded = 0;  // chunk changed or job lost its lease meanwhile
  size_t retried = 0;    // released with backoff after an embedder error
  size_t failed = 0;     // attempts exhausted: failed + dead letter
};

struct WorkerStats {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> discarded{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> errors{0};
};

class EmbeddingWorker {
 public:
  // `pool` (administrative role), `embedder` and `index` are borrowed and must
  // outlive the worker. `index` may be null (PostgreSQL only).
  EmbeddingWorker(pg::Pool& pool, Embedder& embedder, vector::VectorIndex* index, WorkerOptions options = {});
  ~EmbeddingWorker();
  EmbeddingWorker(const EmbeddingWorker&) = delete;
  EmbeddingWorker& operator=(const EmbeddingWorker&) = delete;

  void SetFaultHook(WorkerFaultHook hook) { hook_ = std::move(hook); }

  // Claims and processes one batch. claimed == 0 when no job was due.
  Result<BatchResult> RunOnce();

  // Processes batches until no job is due; returns the totals.
  Result<BatchResult> Drain();

  // Background loops.
  void Start();
  void Stop();

  const WorkerStats& stats() const { return stats_; }

 private:
  Status Fault(WorkerStep step) const { return hook_ ? hook_(step) : Ok(); }

  pg::Pool& pool_;
  Embedder& embedder_;
  vector::VectorIndex* index_;
  WorkerOptions options_;
  WorkerFaultHook hook_;
  WorkerStats stats_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Little-endian float32 bytes as stored in chunk_embeddings.embedding.
std::vector<uint8_t> EncodeVector(std::span<const float> v);
Result<std::vector<float>> DecodeVector(std::span<const uint8_t> bytes);

}  // namespace cnx::embed
