// Vocab::MergeLong, the O(n log n) merge for long pieces (included by bpe.h).
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

namespace cnx::text::internal {

template <class Emit>
void Vocab::MergeLong(const uint8_t* p, size_t n, Emit& emit) const {
  // Parts form a linked list over byte positions: next_[i] is where the part
  // starting at i ends. rank_[i] is the rank of merging the part at i with the
  // next one. Heap entries (rank << 32 | start) go stale when either changes;
  // a popped entry is used only if it still matches rank_[start].
  struct Scratch {
    std::vector<uint32_t> next, prev, rank;
    std::vector<uint64_t> heap;
  };
  thread_local Scratch s;
  s.next.resize(n + 1);
  s.prev.resize(n + 1);
  s.rank.resize(n + 1);
  s.heap.clear();
  uint32_t* next = s.next.data();
  uint32_t* prev = s.prev.data();
  uint32_t* rank = s.rank.data();
  for (size_t i = 0; i <= n; ++i) {
    next[i] = static_cast<uint32_t>(i + 1);
    prev[i] = static_cast<uint32_t>(i) - 1;  // prev[0] wraps; never read
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    rank[i] = Find(p + i, 2);
    if (rank[i] != kNoRank) s.heap.push_back((static_cast<uint64_t>(rank[i]) << 32) | i);
  }
  rank[n - 1] = kNoRank;
  rank[n] = kNoRank;
  const auto cmp = std::greater<uint64_t>();
  std::make_heap(s.heap.begin(), s.heap.end(), cmp);
  const uint32_t end = static_cast<uint32_t>(n);
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), cmp);
    const uint64_t top = s.heap.back();
    s.heap.pop_back();
    const uint32_t i = static_cast<uint32_t>(top);
    const uint32_t r = static_cast<uint32_t>(top >> 32);
    if (rank[i] != r) continue;  // stale (or the part at i was absorbed: rank set to kNoRank)
    const uint32_t j = next[i];  // part absorbed into i
    const uint32_t k = next[j];  // new end of part i
    next[i] = k;
    if (k != end) prev[k] = i;
    rank[j] = kNoRank;
    if (k != end) {
      rank[i] = Find(p + i, next[k] - i);
      if (rank[i] != kNoRank) {
        s.heap.push_back((static_cast<uint64_t>(rank[i]) << 32) | i);
        std::push_heap(s.heap.begin(), s.heap.end(), cmp);
      }
    } else {
      rank[i] = kNoRank;
    }
    if (i != 0) {
      const uint32_t h = prev[i];
      rank[h] = Find(p + h, k - h);
      if (rank[h] != kNoRank) {
        s.heap.push_back((static_cast<uint64_t>(rank[h]) << 32) | h);
        std::push_heap(s.heap.begin(), s.heap.end(), cmp);
      }
    }
  }
  for (uint32_t i = 0; i < end; i = next[i]) emit(Find(p + i, next[i] - i));
}

}  // namespace cnx::text::internal
