// Model change: what lets the vector service re-embed every chunk under a new
// embedding model in the background while searches keep using the old model's
// vectors, and then switch at once.
//
// - ServedIndex: a VectorIndex that forwards to the index currently served;
//   Swap() replaces it atomically (searches already running finish on the
//   index they started with, which stays alive while they hold it).
// - ServedEmbedder: the same for the query embedder: queries must be embedded
//   with the model of the index they search.
// - ReEmbedBatch: embeds up to `batch` chunks that have no chunk_embeddings
//   row of `embedder`'s model for their current text, stores the rows and
//   upserts the vectors into `target`. Returns how many it stored; 0 means
//   every chunk has one. A chunk that changes meanwhile keeps its old hash row
//   out (the INSERT joins on the current hash); its re-queued embedding job
//   embeds the new text.
//
// Thread safety: ServedIndex and ServedEmbedder may be used and swapped from
// any thread. ReEmbedBatch uses the connection it is given.
#pragma once

#include <memory>
#include <mutex>

#include "base/result.h"
#include "embed/embedder.h"
#include "pg/connection.h"
#include "vector/vector_index.h"

namespace cnx::embed {

class ServedIndex final : public vector::VectorIndex {
 public:
  explicit ServedIndex(std::shared_ptr<vector::VectorIndex> index) : index_(std::move(index)) {}

  std::shared_ptr<vector::VectorIndex> Current() const {
    std::lock_guard lock(mu_);
    return index_;
  }
  void Swap(std::shared_ptr<vector::VectorIndex> index) {
    std::lock_guard lock(mu_);
    index_ = std::move(index);
  }

  size_t dimension() const override { return Current()->dimension(); }
  vector::Metric metric() const override { return Current()->metric(); }
  Status Upsert(std::span<const vector::VectorRecord> records) override { return Current()->Upsert(records); }
  Status Delete(std::span<const Uuid> ids) override { return Current()->Delete(ids); }
  Result<std::vector<vector::SearchHit>> Search(std::span<const float> query, size_t k,
                                                const vector::SearchFilter& filter) const override {
    return Current()->Search(query, k, filter);
  }
  size_t Count() const override { return Current()->Count(); }
  size_t Count(const vector::SearchFilter& filter) const override { return Current()->Count(filter); }
  bool Contains(const Uuid& id) const override { return Current()->Contains(id); }
  Status Checkpoint(const std::filesystem::path& dir, const vector::IndexPosition& position) override {
    return Current()->Checkpoint(dir, position);
  }
  Result<vector::IndexPosition> Load(const std::filesystem::path& dir) override { return Current()->Load(dir); }
  vector::IndexStats Stats() const override { return Current()->Stats(); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<vector::VectorIndex> index_;
};

class ServedEmbedder final : public Embedder {
 public:
  explicit ServedEmbedder(std::shared_ptr<Embedder> embedder) : embedder_(std::move(embedder)) {}

  std::shared_ptr<Embedder> Current() const {
    std::lock_guard lock(mu_);
    return embedder_;
  }
  void Swap(std::shared_ptr<Embedder> embedder) {
    std::lock_guard lock(mu_);
    embedder_ = std::move(embedder);
  }

  // The views stay valid while the embedder they came from lives; the served
  // embedders live as long as the vector service.
  std::string_view model_name() const override { return Current()->model_name(); }
  std::string_view model_version() const override { return Current()->model_version(); }
  size_t dimension() const override { return Current()->dimension(); }
  Result<std::vector<std::vector<float>>> Embed(std::span<const std::string> texts) override {
    return Current()->Embed(texts);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Embedder> embedder_;
};

Result<size_t> ReEmbedBatch(pg::Connection& conn, Embedder& embedder, vector::VectorIndex& target, size_t batch);

// The model tag and dimension of the checkpoint in `dir` (its manifest), or
// nullopt when there is none or it cannot be read.
struct CheckpointModel {
  std::string model_tag;
  size_t dimension = 0;
};
std::optional<CheckpointModel> ReadCheckpointModel(const std::filesystem::path& dir);

}  // namespace cnx::embed
