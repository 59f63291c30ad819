// UTF-8 validation and lossy repair (Unicode §3.9, "maximal subpart" practice:
// each maximal ill-formed subsequence becomes one U+FFFD).
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "text/tokenizer.h"

namespace cnx::text {
namespace {

// Length of the well-formed sequence at p (1..4), or 0 if ill-formed; on 0,
// *consumed is the length of the maximal subpart to replace (>= 1).
inline size_t DecodeOne(const uint8_t* p, const uint8_t* end, size_t* consumed) {
  const uint8_t b0 = p[0];
  if (b0 < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *consumed = 1;
    return 0;
  }
  size_t i = 1;
  for (; i < need; ++i) {
    if (p + i >= end) break;
    const uint8_t b = p[i];
    const uint8_t l = i == 1 ? lo : 0x80;
    const uint8_t h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) break;
  }
  if (i == need) return need;
  *consumed = i;
  return 0;
}

inline bool AllAscii8(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return (w & 0x8080808080808080ull) == 0;
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    if (end - p >= 8 && AllAscii8(p)) {
      p += 8;
      continue;
    }
    size_t consumed = 0;
    const size_t n = DecodeOne(p, end, &consumed);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

std::string ToValidUtf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 8);
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
  const auto* p = begin;
  const auto* end = p + bytes.size();
  const auto* run = p;  // start of the current well-formed run
  while (p < end) {
    if (end - p >= 8 && AllAscii8(p)) {
      p += 8;
      continue;
    }
    size_t consumed = 0;
    const size_t n = DecodeOne(p, end, &consumed);
    if (n != 0) {
      p += n;
      continue;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    out.append("\xEF\xBF\xBD");
    p += consumed;
    run = p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(end - run));
  return out;
}

}  // namespace cnx::text
