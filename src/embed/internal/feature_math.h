// Arithmetic of the lexical embedder's feature hashing, kept apart so that the
// tests can check it against the plain forms (std::sort, the % operator).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace cnx::embed::internal {

// Sorts ascending. An LSD radix sort (eight passes of one byte, a pass whose
// byte is the same everywhere skipped) for the long arrays of character
// n-grams: the same order as std::sort, at about a third of its cost there.
inline void SortHashes(std::vector<uint64_t>& hashes, std::vector<uint64_t>& scratch) {
  const size_t n = hashes.size();
  if (n < 256) {
    std::sort(hashes.begin(), hashes.end());
    return;
  }
  scratch.resize(n);
  std::array<std::array<uint32_t, 256>, 8> counts{};
  for (uint64_t h : hashes)
    for (size_t b = 0; b < 8; ++b) ++counts[b][(h >> (8 * b)) & 0xFF];
  uint64_t* from = hashes.data();
  uint64_t* to = scratch.data();
  for (size_t b = 0; b < 8; ++b) {
    auto& c = counts[b];
    if (c[(from[0] >> (8 * b)) & 0xFF] == n) continue;  // one value of this byte: order unchanged
    uint32_t sum = 0;
    for (auto& x : c) {
      uint32_t k = x;
      x = sum;
      sum += k;
    }
    for (size_t i = 0; i < n; ++i) to[c[(from[i] >> (8 * b)) & 0xFF]++] = from[i];
    std::swap(from, to);
  }
  if (from != hashes.data()) std::memcpy(hashes.data(), from, n * sizeof(uint64_t));
}

// x % d for a fixed d without a division instruction (Lemire, Kaser and
// Kurz, "Faster remainder by direct computation", 2019): exact for every
// 64-bit x and d.
class FastMod {
 public:
  explicit FastMod(uint64_t d) : d_(d), m_(~static_cast<unsigned __int128>(0) / d + 1) {}
  uint64_t operator()(uint64_t x) const {
    const unsigned __int128 low = m_ * x;
    const unsigned __int128 bottom = ((low & ~uint64_t{0}) * d_) >> 64;
    const unsigned __int128 top = (low >> 64) * d_;
    return static_cast<uint64_t>((bottom + top) >> 64);
  }

 private:
  uint64_t d_;
  unsigned __int128 m_;
};

}  // namespace cnx::embed::internal
