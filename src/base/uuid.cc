#include "base/uuid.h"

#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>

#include "base/assert.h"

namespace cnx {

void SecureRandom(void* out, size_t n) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      CNX_ASSERT(errno == EINTR, "getrandom failed");
      continue;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

Uuid Uuid::NewV4() {
  std::array<uint8_t, 16> b;
  SecureRandom(b.data(), b.size());
  b[6] = (b[6] & 0x0F) | 0x40;
  b[8] = (b[8] & 0x3F) | 0x80;
  return Uuid(b);
}

Uuid Uuid::NewV7() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return NewV7At(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

Uuid Uuid::NewV7At(int64_t unix_ms) {
  // Monotonic within the process: the 12-bit rand_a field is a counter that
  // restarts at a random point each millisecond (RFC 9562 method 1). If the
  // clock goes backwards or the counter overflows, we borrow the next ms.
  static std::mutex mu;
  static int64_t last_ms = 0;
  static uint16_t seq = 0;
  std::array<uint8_t, 16> b;
  SecureRandom(b.data(), b.size());
  {
    std::lock_guard lock(mu);
    if (unix_ms > last_ms) {
      last_ms = unix_ms;
      seq = static_cast<uint16_t>(((b[6] << 8) | b[7]) & 0x03FF);  // leave headroom
    } else if (++seq > 0x0FFF) {
      ++last_ms;
      seq = 0;
    }
    unix_ms = last_ms;
    b[6] = static_cast<uint8_t>(0x70 | ((seq >> 8) & 0x0F));
    b[7] = static_cast<uint8_t>(seq & 0xFF);
  }
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(unix_ms >> (8 * (5 - i)));
  b[8] = (b[8] & 0x3F) | 0x80;
  return Uuid(b);
}

static int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Uuid> Uuid::Parse(std::string_view text) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') {
    return Err(Module::kBase, ErrorCode::kInvalidArgument, "not a UUID: expected 8-4-4-4-12 hex digits");
  }
  std::array<uint8_t, 16> b{};
  size_t j = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ++i;
      continue;
    }
    int hi = HexVal(text[i]), lo = HexVal(text[i + 1]);
    if (hi < 0 || lo < 0) return Err(Module::kBase, ErrorCode::kInvalidArgument, "not a UUID: bad hex digit");
    b[j++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return Uuid(b);
}

std::string Uuid::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[bytes_[i] >> 4]);
    s.push_back(kHex[bytes_[i] & 15]);
  }
  return s;
}

}  // namespace cnx
