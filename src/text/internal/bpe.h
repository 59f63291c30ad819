// Vocab: the mergeable ranks of one encoding and tiktoken's byte-pair merge.
//
// A piece (one pre-tokenizer match) that is itself a token is emitted at once.
// Otherwise the lowest-ranked adjacent pair is merged, leftmost on ties, until no
// pair is a token. Short pieces use tiktoken's vector scan (O(n·m), cache
// friendly); long ones a min-heap of (rank, position) over a linked list, which
// is O(n log n), so one huge piece (1 MB of 'a' or of spaces) stays cheap.
// Immutable after Build(); safe to share between threads.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace cnx::text::internal {

inline constexpr uint32_t kNoRank = 0xFFFFFFFFu;

class Vocab {
 public:
  // tokens[rank] = bytes; all 256 single bytes must be present, no duplicates.
  Status Build(const std::vector<std::string>& tokens);

  size_t size() const { return offsets_.size() - 1; }
  std::string_view TokenBytes(uint32_t rank) const {
    return std::string_view(arena_.data() + offsets_[rank], offsets_[rank + 1] - offsets_[rank]);
  }

  uint32_t Find(const uint8_t* p, size_t n) const {
    if (n > max_len_) return kNoRank;
    if (n == 1) return byte_rank_[p[0]];
    uint64_t i = Hash(p, n) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.rank == kNoRank) return kNoRank;
      if (s.len == n && std::memcmp(arena_.data() + offsets_[s.rank], p, n) == 0) return s.rank;
      i = (i + 1) & mask_;
    }
  }

  template <class Emit>
  void EncodePiece(const uint8_t* p, size_t n, Emit&& emit) const {
    const uint32_t whole = Find(p, n);
    if (whole != kNoRank) {
      emit(whole);
      return;
    }
    if (n < kShortPiece) {
      MergeShort(p, n, emit);
    } else {
      MergeLong(p, n, emit);
    }
  }

  size_t CountPiece(const uint8_t* p, size_t n) const {
    if (Find(p, n) != kNoRank) return 1;
    size_t count = 0;
    auto emit = [&](uint32_t) { ++count; };
    if (n < kShortPiece) {
      MergeShort(p, n, emit);
    } else {
      MergeLong(p, n, emit);
    }
    return count;
  }

  // The heap merge on any piece (tests compare it against the vector scan).
  std::vector<uint32_t> MergeLongForTest(std::string_view piece) const;
  std::vector<uint32_t> MergeShortForTest(std::string_view piece) const;

  static constexpr size_t kShortPiece = 128;

 private:
  struct Slot {
    uint32_t rank = kNoRank;
    uint32_t len = 0;
  };

  static uint64_t Hash(const uint8_t* p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(n) * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 29;
      p += 8;
      n -= 8;
    }
    if (n != 0) {
      uint64_t w = 0;
      if (n >= 4) {
        uint32_t a, b;
        std::memcpy(&a, p, 4);
        std::memcpy(&b, p + n - 4, 4);
        w = (static_cast<uint64_t>(a) << 32) | b;
      } else {
        w = (static_cast<uint64_t>(p[0]) << 16) | (static_cast<uint64_t>(p[n >> 1]) << 8) | p[n - 1];
      }
      h = (h ^ w) * 0x94D049BB133111EBull;
    }
    h ^= h >> 32;
    return h;
  }

  // Vector scan, tiktoken's _byte_pair_merge. n < kShortPiece.
  template <class Emit>
  void MergeShort(const uint8_t* p, size_t n, Emit& emit) const {
    uint32_t pos[kShortPiece + 1];
    uint32_t rank[kShortPiece + 1];  // rank[i]: merging part i with part i+1
    size_t m = n;                    // number of parts; pos[m] == n
    for (size_t i = 0; i <= n; ++i) pos[i] = static_cast<uint32_t>(i);
    for (size_t i = 0; i + 1 < n; ++i) rank[i] = Find(p + i, 2);
    rank[n - 1] = kNoRank;
    while (m > 1) {
      uint32_t best = kNoRank;
      size_t bi = 0;
      for (size_t i = 0; i + 1 < m; ++i) {
        if (rank[i] < best) {
          best = rank[i];
          bi = i;
        }
      }
      if (best == kNoRank) break;
      // Remove boundary bi+1: part bi absorbs part bi+1.
      std::memmove(pos + bi + 1, pos + bi + 2, (m - bi - 1) * sizeof(uint32_t));
      std::memmove(rank + bi + 1, rank + bi + 2, (m - bi - 2) * sizeof(uint32_t));
      --m;
      rank[bi] = bi + 1 < m ? Find(p + pos[bi], pos[bi + 2] - pos[bi]) : kNoRank;
      if (bi > 0) rank[bi - 1] = Find(p + pos[bi - 1], pos[bi + 1] - pos[bi - 1]);
    }
    for (size_t i = 0; i < m; ++i) emit(Find(p + pos[i], pos[i + 1] - pos[i]));
  }

  // Heap merge, same result as MergeShort (tiktoken's _byte_pair_merge_large).
  template <class Emit>
  void MergeLong(const uint8_t* p, size_t n, Emit& emit) const;

  std::string arena_;
  std::vector<uint32_t> offsets_{0};
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  size_t max_len_ = 0;
  uint32_t byte_rank_[256] = {};
};

}  // namespace cnx::text::internal

#include "text/internal/bpe_long.h"
