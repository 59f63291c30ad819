// Vocab::MergeLong, the O(n log n) merge for long pieces (included by bpe.h).
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

namespace cnx::text::internal {

// Min-priority queue of (rank, position) for the long-piece merge.
//
// Positions are kept in one bucket per rank; buckets are taken in rank order
// (a small heap of the distinct ranks) and each is sorted by position once,
// when it becomes current. Merging a pair of rank r only creates pairs of other
// ranks, nearly always higher ones, so pushes almost never touch the current
// bucket: pops and pushes are O(1) and sequential in memory. A push of a rank
// at or below the current one goes to a small binary heap instead, so the
// order is exact for any vocabulary: keys come out smallest first, ties of
// rank by position (leftmost first).
class MergeQueue {
 public:
  void Reset(size_t n_ranks) {
    for (uint32_t r : used_) slot_[r] = -1;
    used_.clear();
    if (slot_.size() < n_ranks) slot_.assign(n_ranks, -1);
    for (size_t b = 0; b < n_buckets_; ++b) buckets_[b].clear();
    n_buckets_ = 0;
    ranks_.clear();
    side_.clear();
    has_current_ = false;
    cursor_ = 0;
  }
  void Push(uint32_t rank, uint32_t pos) {
    if (has_current_ && rank <= current_rank_) {
      side_.push_back((static_cast<uint64_t>(rank) << 32) | pos);
      std::push_heap(side_.begin(), side_.end(), std::greater<uint64_t>());
      return;
    }
    int32_t s = slot_[rank];
    if (s < 0) {
      s = static_cast<int32_t>(n_buckets_++);
      if (buckets_.size() < n_buckets_) buckets_.emplace_back();
      bucket_rank_.resize(std::max(bucket_rank_.size(), n_buckets_));
      bucket_rank_[static_cast<size_t>(s)] = rank;
      slot_[rank] = s;
      used_.push_back(rank);
      ranks_.push_back(rank);
      std::push_heap(ranks_.begin(), ranks_.end(), std::greater<uint32_t>());
    }
    buckets_[static_cast<size_t>(s)].push_back(pos);
  }
  // Pops the smallest key into (*rank, *pos); false when empty.
  bool Pop(uint32_t* rank, uint32_t* pos) {
    while (true) {
      const bool have = has_current_ && cursor_ < buckets_[current_].size();
      if (!have && !ranks_.empty()) {
        std::pop_heap(ranks_.begin(), ranks_.end(), std::greater<uint32_t>());
        current_rank_ = ranks_.back();
        ranks_.pop_back();
        current_ = static_cast<size_t>(slot_[current_rank_]);
        auto& b = buckets_[current_];
        if (!std::is_sorted(b.begin(), b.end())) std::sort(b.begin(), b.end());
        cursor_ = 0;
        has_current_ = true;
        continue;
      }
      if (!side_.empty()) {
        const uint64_t top = side_.front();
        if (!have || top < ((static_cast<uint64_t>(current_rank_) << 32) | buckets_[current_][cursor_])) {
          std::pop_heap(side_.begin(), side_.end(), std::greater<uint64_t>());
          side_.pop_back();
          *rank = static_cast<uint32_t>(top >> 32);
          *pos = static_cast<uint32_t>(top);
          return true;
        }
      }
      if (!have) return false;
      *rank = current_rank_;
      *pos = buckets_[current_][cursor_++];
      return true;
    }
  }

 private:
  std::vector<int32_t> slot_;  // rank -> bucket, -1 if none
  std::vector<uint32_t> used_;
  std::vector<std::vector<uint32_t>> buckets_;
  std::vector<uint32_t> bucket_rank_;
  size_t n_buckets_ = 0;
  std::vector<uint32_t> ranks_;  // min-heap of ranks whose bucket is not yet current
  std::vector<uint64_t> side_;   // min-heap of keys at or below the current rank
  bool has_current_ = false;
  uint32_t current_rank_ = 0;
  size_t current_ = 0;
  size_t cursor_ = 0;
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
  s.queue.Reset(size());
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
    if (rank[i] != kNoRank) queue.Push(rank[i], static_cast<uint32_t>(i));
  }
  rank[n - 1] = kNoRank;
  rank[n] = kNoRank;
  const uint32_t end = static_cast<uint32_t>(n);
  uint32_t r = 0, i = 0;
  while (queue.Pop(&r, &i)) {
    if (rank[i] != r) continue;  // stale (or the part at i was absorbed: rank set to kNoRank)
    const uint32_t j = next[i];  // part absorbed into i
    const uint32_t k = next[j];  // new end of part i
    next[i] = k;
    if (k != end) prev[k] = i;
    rank[j] = kNoRank;
    if (k != end) {
      rank[i] = Find(p + i, next[k] - i, limit);
      if (rank[i] != kNoRank) queue.Push(rank[i], i);
    } else {
      rank[i] = kNoRank;
    }
    if (i != 0) {
      const uint32_t h = prev[i];
      rank[h] = Find(p + h, k - h, limit);
      if (rank[h] != kNoRank) queue.Push(rank[h], h);
    }
  }
  for (uint32_t i = 0; i < end; i = next[i]) emit(Find(p + i, next[i] - i, limit));
}

}  // namespace cnx::text::internal
