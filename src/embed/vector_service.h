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
// Model change: when the checkpoint was made with another model than
// `embedder`'s and `previous_embedder` can make an embedder of that model,
// the old index keeps serving (index() and query_embedder() are the old
// model's) while a background thread re-embeds every chunk into
// chunk_embeddings under the new model and into a new index built aside (the
// worker embeds new chunks with the new model into that index too); when no
// chunk is left, the new index and the new query embedder are swapped in at
// once and checkpointed. A restart in the middle resumes: rows already made
// under the new model are reused. Without a previous embedder the index is
// rebuilt from the new model's rows (empty until the worker re-embeds).
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
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "base/result.h"
#include "bus/bus.h"
#include "embed/embedder.h"
#include "embed/index_sync.h"
#include "embed/model_change.h"
#include "embed/worker.h"
#include "pg/pool.h"
#include "vector/hnsw_index.h"
#include "vector/vector_index.h"

namespace cnx::embed {

struct VectorServiceOptions {
  std::filesystem::path dir;  // <data-dir>/vector
  std::chrono::milliseconds checkpoint_interval{60'000};
  WorkerOptions worker;
  bool run_worker = true;
  // Makes an embedder for a model tag ("name/version") the checkpoint was
  // written with; an error (or no function) means "cannot serve it".
  std::function<Result<std::unique_ptr<Embedder>>(const std::string& model_tag)> previous_embedder;
  size_t reembed_batch = 256;
  // Graph parameters of the indexes the service creates (the dimension is the embedder's).
  vector::HnswOptions hnsw;
};

struct VectorServiceStats {
  uint64_t loaded_position = 0;
  size_t caught_up = 0;  // vectors upserted by the start-up catch-up or rebuild
  bool rebuilt = false;
  std::atomic<uint64_t> deletes{0};     // delete events applied
  std::atomic<bool> migrating{false};   // re-embedding under a new model; the old one serves
  std::atomic<uint64_t> reembedded{0};  // chunks re-embedded by the model change
  std::string migrated_from;            // the old model tag, when a model change ran
};

class VectorService {
 public:
  // `pool` (administrative), `embedder` and `bus` (may be null: no delete
  // events) must outlive the service.
  static Result<std::unique_ptr<VectorService>> Start(VectorServiceOptions options, pg::Pool& pool, Embedder& embedder,
                                                      bus::Bus* bus);
  ~VectorService();
  void Stop();

  // The served index and the embedder its queries need (the old model's
  // during a model change); both stay valid for the service's lifetime.
  vector::VectorIndex& index() { return *served_; }
  Embedder& query_embedder() { return *query_embedder_; }
  EmbeddingWorker* worker() { return worker_.get(); }
  const VectorServiceStats& stats() const { return stats_; }
  ModelId model() const;  // the configured (target) model

  // Blocks until a running model change has switched (true) or `timeout`
  // passed (false). True at once when none runs.
  bool WaitForModelChange(std::chrono::milliseconds timeout);

  // Catches up and writes a checkpoint now.
  Status CheckpointNow();

 private:
  VectorService(VectorServiceOptions options, pg::Pool& pool, Embedder& embedder)
      : options_(std::move(options)), pool_(pool), embedder_(embedder) {}

  Status RunModelChange();
  ModelId served_model() const;

  VectorServiceOptions options_;
  pg::Pool& pool_;
  Embedder& embedder_;
  std::shared_ptr<Embedder> target_embedder_;    // non-owning view of embedder_
  std::shared_ptr<vector::VectorIndex> target_;  // the configured model's index (worker writes here)
  std::shared_ptr<vector::VectorIndex> old_;     // the old model's index while migrating
  std::unique_ptr<ServedIndex> served_;
  std::unique_ptr<ServedEmbedder> query_embedder_;
  uint64_t old_position_ = 0;  // of old_, while migrating
  std::thread migration_;
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
// The same for a bus event: an outbox event whose `type` header names another
// kind of change ("content_chunks.created", "content_chunks.updated", as the
// outbox trigger writes it next to the payload) is answered from the header,
// without parsing the payload (most of which is the chunk's text); an event
// without that header, or of any other type, is decided by its payload.
std::optional<Uuid> DeletedChunkId(const bus::Event& event);

}  // namespace cnx::embed
