// Vocab::MergeLong, the O(n log n) merge for long pieces (included by bpe.h).
#pragma once

#include <algorithm>
#include <bit>
#include <functional>
#include <vector>

namespace cnx::text::internal {

// Min-priority queue of 64-bit keys (rank << 32 | position). A radix heap
// (buckets by the highest bit that differs from the last popped key) gives
// O(1) amortised work with sequential memory access, but needs every pushed key
// to be >= the last popped one. BPE nearly always creates pairs of higher rank
// than the merge that made them; a key that breaks this goes to a small binary
// heap instead, so the result is exact for any vocabulary.
class MergeQueue {
 public:
  void Clear() {
    for (auto& b : buckets_) b.clear();
    side_.clear();
    last_ = 0;
    size_ = 0;
  }
  void Push(uint64_t key) {
    if (key < last_) {
      side_.push_back(key);
      std::push_heap(side_.begin(), side_.end(), std::greater<uint64_t>());
      return;
    }
    buckets_[Bucket(key)].push_back(key);
    ++size_;
  }
  bool Empty() const { return size_ == 0 && side_.empty(); }
  // Requires !Empty().
  uint64_t Pop() {
    if (size_ != 0 && buckets_[0].empty()) Refill();
    if (!side_.empty() && (size_ == 0 || side_.front() < last_)) {
      std::pop_heap(side_.begin(), side_.end(), std::greater<uint64_t>());
      const uint64_t k = side_.back();
      side_.pop_back();
      return k;
    }
    buckets_[0].pop_back();
    --size_;
    return last_;
  }

 private:
  size_t Bucket(uint64_t key) const {
    return key == last_ ? 0 : 64 - static_cast<size_t>(std::countl_zero(key ^ last_));
  }
  void Refill() {
    size_t b = 1;
    while (buckets_[b].empty()) ++b;
    last_ = *std::min_element(buckets_[b].begin(), buckets_[b].end());
    for (uint64_t k : buckets_[b]) buckets_[Bucket(k)].push_back(k);
    buckets_[b].clear();
  }

  std::vector<uint64_t> buckets_[65];
  std::vector<uint64_t> side_;
  uint64_t last_ = 0;
  size_t size_ = 0;
};

template <class Emit>
void Vocab::MergeLong(const uint8_t* p, size_t n, const uint8_t* limit, Emit& emit) const {
  // Parts form a linked list over byte positions: next[i] is where the part
  // starting at i ends. rank[i] is the rank of merging the part at i with the
  // next one. Queue entries (rank << 32 | start) go stale when either changes;
  // a popped entry is used only if it still matches rank[start]. Keys order by
  // rank, then position: the leftmost of equal ranks merges first, as in tiktoken.
  struct Scratch {
    std::vector<uint32_t> next, prev, rank;
    MergeQueue queue;
  };
  thread_local Scratch s;
  s.next.resize(n + 1);
  s.prev.resize(n + 1);
  s.rank.resize(n + 1);
  s.queue.Clear();
  uint32_t* next = s.next.data();
  uint32_t* prev = s.prev.data();
  uint32_t* rank = s.rank.data();
  MergeQueue& queue = s.queue;
  for (size_t i = 0; i <= n; ++i) {
    next[i] = static_cast<uint32_t>(i + 1);
    prev[i] = static_cast<uint32_t>(i) - 1;  // prev[0] wraps; never read
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    rank[i] = Find(p + i, 2, limit);
    if (rank[i] != kNoRank) queue.Push((static_cast<uint64_t>(rank[i]) << 32) | i);
  }
  rank[n - 1] = kNoRank;
  rank[n] = kNoRank;
  const uint32_t end = static_cast<uint32_t>(n);
  while (!queue.Empty()) {
    const uint64_t top = queue.Pop();
    const uint32_t i = static_cast<uint32_t>(top);
    const uint32_t r = static_cast<uint32_t>(top >> 32);
    if (rank[i] != r) continue;  // stale (or the part at i was absorbed: rank set to kNoRank)
    const uint32_t j = next[i];  // part absorbed into i
    const uint32_t k = next[j];  // new end of part i
    next[i] = k;
    if (k != end) prev[k] = i;
    rank[j] = kNoRank;
    if (k != end) {
      rank[i] = Find(p + i, next[k] - i, limit);
      if (rank[i] != kNoRank) queue.Push((static_cast<uint64_t>(rank[i]) << 32) | i);
    } else {
      rank[i] = kNoRank;
    }
    if (i != 0) {
      const uint32_t h = prev[i];
      rank[h] = Find(p + h, k - h, limit);
      if (rank[h] != kNoRank) queue.Push((static_cast<uint64_t>(rank[h]) << 32) | h);
    }
  }
  for (uint32_t i = 0; i < end; i = next[i]) emit(Find(p + i, next[i] - i, limit));
}

}  // namespace cnx::text::internal
