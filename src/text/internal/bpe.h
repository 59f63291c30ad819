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

  // `limit` is the end of readable memory after p (>= p + n): when 8 bytes are
  // readable the first bytes of the key are read with one load.
  [[gnu::always_inline]] uint32_t Find(const uint8_t* p, size_t n, const uint8_t* limit) const {
    if (n > max_len_) return kNoRank;
    if (n == 1) return byte_rank_[p[0]];
    const uint64_t head = Head(p, n, limit);
    const size_t tail = n > 8 ? n - 8 : 0;  // bytes after the head
    uint64_t i = Hash(head, p, n) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.rank == kNoRank) return kNoRank;
      if (s.head == head && s.len == n &&
          (tail == 0 || std::memcmp(arena_.data() + offsets_[s.rank] + 8, p + 8, tail) == 0)) {
        return s.rank;
      }
      i = (i + 1) & mask_;
    }
  }
  uint32_t Find(std::string_view bytes) const {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    return Find(p, bytes.size(), p + bytes.size());
  }

  template <class Emit>
  void EncodePiece(const uint8_t* p, size_t n, const uint8_t* limit, Emit&& emit) const {
    const uint32_t whole = Find(p, n, limit);
    if (whole != kNoRank) {
      emit(whole);
      return;
    }
    if (n < kShortPiece) {
      MergeShort(p, n, limit, emit);
    } else {
      MergeLong(p, n, limit, emit);
    }
  }

  size_t CountPiece(const uint8_t* p, size_t n, const uint8_t* limit) const {
    if (Find(p, n, limit) != kNoRank) return 1;
    size_t count = 0;
    auto emit = [&](uint32_t) { ++count; };
    if (n < kShortPiece) {
      MergeShort(p, n, limit, emit);
    } else {
      MergeLong(p, n, limit, emit);
    }
    return count;
  }

  // The heap merge on any piece (tests compare it against the vector scan).
  std::vector<uint32_t> MergeLongForTest(std::string_view piece) const;
  std::vector<uint32_t> MergeShortForTest(std::string_view piece) const;

  static constexpr size_t kShortPiece = 128;

 private:
  struct Slot {
    uint64_t head = 0;  // first min(len, 8) bytes, little-endian, zero-padded
    uint32_t rank = kNoRank;
    uint32_t len = 0;
  };

  static uint64_t Load64(const uint8_t* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  }

  static uint64_t Head(const uint8_t* p, size_t n, const uint8_t* limit) {
    if (limit - p >= 8) {
      const uint64_t w = Load64(p);
      return n >= 8 ? w : w & ((uint64_t{1} << (8 * n)) - 1);
    }
    if (n >= 4) {  // n < 8 here (fewer than 8 bytes readable)
      uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      return a | (static_cast<uint64_t>(b) << (8 * (n - 4)));
    }
    uint64_t w = p[0];
    if (n > 1) w |= static_cast<uint64_t>(p[1]) << 8;
    if (n > 2) w |= static_cast<uint64_t>(p[2]) << 16;
    return w;
  }

  static uint64_t Mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
  }

  static uint64_t Hash(uint64_t head, const uint8_t* p, size_t n) {
    uint64_t h = Mix(0x9E3779B97F4A7C15ull ^ n, head);
    if (n > 8) {
      size_t off = 8;
      for (; off + 8 <= n; off += 8) h = Mix(h, Load64(p + off));
      if (off < n) h = Mix(h, Load64(p + n - 8));
    }
    return h ^ (h >> 32);
  }

  // Vector scan, tiktoken's _byte_pair_merge. n < kShortPiece.
  template <class Emit>
  void MergeShort(const uint8_t* p, size_t n, const uint8_t* limit, Emit& emit) const {
    uint32_t pos[kShortPiece + 1];
    uint32_t rank[kShortPiece + 1];  // rank[i]: merging part i with part i+1
    size_t m = n;                    // number of parts; pos[m] == n
    for (size_t i = 0; i <= n; ++i) pos[i] = static_cast<uint32_t>(i);
    for (size_t i = 0; i + 1 < n; ++i) rank[i] = Find(p + i, 2, limit);
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
      rank[bi] = bi + 1 < m ? Find(p + pos[bi], pos[bi + 2] - pos[bi], limit) : kNoRank;
      if (bi > 0) rank[bi - 1] = Find(p + pos[bi - 1], pos[bi + 1] - pos[bi - 1], limit);
    }
    for (size_t i = 0; i < m; ++i) emit(Find(p + pos[i], pos[i + 1] - pos[i], limit));
  }

  // Heap merge, same result as MergeShort (tiktoken's _byte_pair_merge_large).
  template <class Emit>
  void MergeLong(const uint8_t* p, size_t n, const uint8_t* limit, Emit& emit) const;

  std::string arena_;
  std::vector<uint32_t> offsets_{0};
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  size_t max_len_ = 0;
  uint32_t byte_rank_[256] = {};
};

}  // namespace cnx::text::internal

#include "text/internal/bpe_long.h"
