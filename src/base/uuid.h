// Uuid: 128-bit identifiers as PostgreSQL stores them (RFC 9562).
//
// NewV4() is fully random; NewV7() is time-ordered (48-bit Unix milliseconds,
// then a 12-bit sub-millisecond sequence and random bits), so ids created later
// sort later and B-tree inserts stay at the right edge. Both are thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace cnx {

class Uuid {
 public:
  constexpr Uuid() = default;  // the nil UUID
  explicit constexpr Uuid(const std::array<uint8_t, 16>& bytes) : bytes_(bytes) {}

  static Uuid NewV4();
  static Uuid NewV7();
  static Uuid NewV7At(int64_t unix_ms);

  // Accepts the canonical 8-4-4-4-12 form, either case; rejects everything else.
  static Result<Uuid> Parse(std::string_view text);

  std::string ToString() const;  // lower-case canonical form
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  int version() const { return bytes_[6] >> 4; }
  bool IsNil() const { return *this == Uuid(); }

  friend constexpr auto operator<=>(const Uuid&, const Uuid&) = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

// Fills `out` with cryptographically secure random bytes (getrandom(2)).
void SecureRandom(void* out, size_t n);

}  // namespace cnx

template <>
struct std::hash<cnx::Uuid> {
  size_t operator()(const cnx::Uuid& u) const noexcept {
    uint64_t a, b;
    __builtin_memcpy(&a, u.bytes().data(), 8);
    __builtin_memcpy(&b, u.bytes().data() + 8, 8);
    return a ^ (b * 0x9E3779B97F4A7C15ull);
  }
};
