// FlatStore: vectors in one contiguous array, searched by exact scan. Used by
// ExactIndex for everything and by HnswIndex for partitions below its graph
// threshold. Not thread-safe: the owner locks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"
#include "vector/internal/top_k.h"
#include "vector/vector_index.h"

namespace cnx::vector::internal {

struct RowMeta {
  Uuid id;
  Uuid tenant;
  Uuid project;
};

class FlatStore {
 public:
  explicit FlatStore(size_t dim) : dim_(dim) {}

  size_t dim() const { return dim_; }
  size_t size() const { return meta_.size(); }
  bool Contains(const Uuid& id) const { return row_of_.contains(id); }
  const RowMeta& meta(size_t row) const { return meta_[row]; }
  const float* row(size_t row) const { return data_.data() + row * dim_; }
  size_t memory_bytes() const {
    return data_.capacity() * sizeof(float) + meta_.capacity() * sizeof(RowMeta) + row_of_.size() * 48;
  }

  // Inserts or replaces the row of meta.id; `values` has dim() floats.
  void Put(const RowMeta& meta, const float* values);
  // Removes the row of `id` (the last row moves into its place); false if absent.
  bool Remove(const Uuid& id);
  void Clear();

  // Offers every row accepted by `accept(meta)` to `top`.
  template <typename Accept>
  void Scan(const float* query, TopK& top, Accept&& accept) const {
    for (size_t r = 0; r < meta_.size(); ++r) {
      if (!accept(meta_[r])) continue;
      float score = Dot(query, row(r), dim_);
      if (top.Accepts(score)) top.Push({meta_[r].id, meta_[r].project, score});
    }
  }

  // File format (little-endian): "CNXF" u32 version=1, u32 dim, u64 rows, then
  // per row 48 bytes (id, tenant, project) and dim floats.
  Status WriteTo(const std::filesystem::path& path) const;
  static Result<FlatStore> ReadFrom(const std::filesystem::path& path, size_t dim);

 private:
  size_t dim_;
  std::vector<float> data_;
  std::vector<RowMeta> meta_;
  std::unordered_map<Uuid, uint32_t> row_of_;
};

}  // namespace cnx::vector::internal
