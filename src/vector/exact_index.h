// ExactIndex: the reference VectorIndex. Every search scans every vector of
// the index (skipping other tenants), so results are exact; use it for small
// data sets and as the ground truth HnswIndex is measured against.
//
// Locking: one reader/writer lock. Searches, counts and Checkpoint() share it;
// Upsert(), Delete() and Load() hold it exclusively.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "vector/internal/flat_store.h"
#include "vector/internal/rw_lock.h"
#include "vector/vector_index.h"

namespace cnx::vector {

class ExactIndex final : public VectorIndex {
 public:
  ExactIndex(size_t dimension, Metric metric);

  size_t dimension() const override { return dim_; }
  Metric metric() const override { return metric_; }
  Status Upsert(std::span<const VectorRecord> records) override;
  Status Delete(std::span<const Uuid> ids) override;
  Result<std::vector<SearchHit>> Search(std::span<const float> query, size_t k,
                                        const SearchFilter& filter) const override;
  size_t Count() const override;
  size_t Count(const SearchFilter& filter) const override;
  bool Contains(const Uuid& id) const override;
  Status Checkpoint(const std::filesystem::path& dir, const IndexPosition& position) override;
  Result<IndexPosition> Load(const std::filesystem::path& dir) override;
  IndexStats Stats() const override;

 private:
  const size_t dim_;
  const Metric metric_;
  mutable internal::RwLock mu_;
  internal::FlatStore store_;
  std::optional<IndexPosition> checkpoint_;
  uint64_t upserts_ = 0, deletes_ = 0;
  mutable std::atomic<uint64_t> searches_{0};
};

}  // namespace cnx::vector
