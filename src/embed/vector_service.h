// VectorService: the vector index's lifecycle inside `cnx serve`.
//
// Start(): opens an HNSW index, loads the newest checkpoint from `dir` (none,
// or one of another model/dimension: rebuilds from chunk_embeddings without
// calling the embedder), catches up from chunk_embeddings since the
// checkpoint's position, starts the embedding worker pool, subscribes to the
// bus (group "vector", topic "outbox.event.content_chunks") to remove the
// vectors of deleted chunks, and every `checkpoint_interval` catches up and
// writes a checkpoint. Stop(): closes the subscription, stops the worker,
// writes a final checkpoint.
//
// Deleted chunks: through delete events on the bus. A delete that is lost (for
// example the process stops between the delete and its event) is found by
// `cnx verify --target vector` as `extra` and fixed by reconcile.
//
// Thread safety: index() may be searched from any thread while the service
// runs; Start/Stop from one thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "base/result.h"
#include "bus/bus.h"
#include "embed/embedder.h"
#include "embed/index_sync.h"
#include "embed/worker.h"
#include "pg/pool.h"
#include "vector/vector_index.h"

namespace cnx::embed {

struct VectorServiceOptions {
  std::filesystem::path dir;  // <data-dir>/vector
  std::chrono::milliseconds checkpoint_interval{60'000};
  WorkerOptions worker;
  bool run_worker = true;
};

struct VectorServiceStats {
  uint64_t loaded_position = 0;
  size_t caught_up = 0;  // vectors upserted by the start-up catch-up or rebuild
  bool rebuilt = false;
  std::atomic<uint64_t> deletes{0};  // delete events applied
};

class VectorService {
 public:
  // `pool` (administrative), `embedder` and `bus` (may be null: no delete
  // events) must outlive the service.
  static Result<std::unique_ptr<VectorService>> Start(VectorServiceOptions options, pg::Pool& pool, Embedder& embedder,
                                                      bus::Bus* bus);
  ~VectorService();
  void Stop();

  vector::VectorIndex& index() { return *index_; }
  EmbeddingWorker* worker() { return worker_.get(); }
  const VectorServiceStats& stats() const { return stats_; }
  ModelId model() const;

  // Catches up and writes a checkpoint now.
  Status CheckpointNow();

 private:
  VectorService(VectorServiceOptions options, pg::Pool& pool, Embedder& embedder)
      : options_(std::move(options)), pool_(pool), embedder_(embedder) {}

  VectorServiceOptions options_;
  pg::Pool& pool_;
  Embedder& embedder_;
  std::unique_ptr<vector::VectorIndex> index_;
  std::unique_ptr<EmbeddingWorker> worker_;
  std::unique_ptr<bus::Subscription> subscription_;
  std::mutex mu_;  // position_ and checkpointing
  uint64_t position_ = 0;
  VectorServiceStats stats_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread periodic_;
};

// The delete events' chunk id, when `value` (an outbox payload) is a delete of
// a content_chunks row; nullopt otherwise.
std::optional<Uuid> DeletedChunkId(std::string_view value);

}  // namespace cnx::embed
