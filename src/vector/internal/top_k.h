// TopK: the k best hits seen so far (highest score first; ties by id), and the
// small vector helpers shared by the index implementations.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "base/result.h"
#include "vector/vector_index.h"

namespace cnx::vector::internal {

// Inner product through the module's kernel (dot_kernel.h), the one the graph
// partitions use too, so exact scans and graph searches score identically.
float Dot(const float* a, const float* b, size_t dim);

// kInvalidArgument if `values` has the wrong size or a non-finite value.
Status CheckVector(std::span<const float> values, size_t dim);

// Copies `values` into `out` (dim floats), L2-normalised for kCosine. A zero
// vector stays zero.
void PrepareVector(std::span<const float> values, Metric metric, float* out);

inline bool Better(const SearchHit& a, const SearchHit& b) {
  if (a.score != b.score) return a.score > b.score;
  return a.id < b.id;
}

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k + 1); }

  bool Accepts(float score) const { return k_ > 0 && (heap_.size() < k_ || score >= heap_.front().score); }

  void Push(const SearchHit& hit) {
    if (k_ == 0) return;
    auto worse_first = [](const SearchHit& a, const SearchHit& b) { return Better(a, b); };
    if (heap_.size() < k_) {
      heap_.push_back(hit);
      std::push_heap(heap_.begin(), heap_.end(), worse_first);
    } else if (Better(hit, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), worse_first);
      heap_.back() = hit;
      std::push_heap(heap_.begin(), heap_.end(), worse_first);
    }
  }

  std::vector<SearchHit> Take() && {
    std::sort(heap_.begin(), heap_.end(), Better);
    return std::move(heap_);
  }

 private:
  size_t k_;
  std::vector<SearchHit> heap_;  // heap with the worst hit at the front
};

}  // namespace cnx::vector::internal
