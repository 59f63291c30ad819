#include "graph/record_log.h"

#include <array>
#include <cstring>

namespace cnx::graph {
namespace {

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kTable = MakeTable();

void PutLE32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint32_t GetLE32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

uint32_t Crc32cTable(const uint8_t* p, size_t n, uint32_t crc) {
  for (size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// The same polynomial in hardware (SSE4.2 crc32), 8 bytes per instruction:
// every log record's checksum is computed once when written and once when read.
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}

const bool kHaveCrc32Instruction = [] {
  __builtin_cpu_init();  // may run before the runtime's own initialisation
  return __builtin_cpu_supports("sse4.2") != 0;
}();
#endif

}  // namespace

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (kHaveCrc32Instruction) return ~Crc32cHardware(p, n, ~crc);
#endif
  return ~Crc32cTable(p, n, ~crc);
}

uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc) {
  return ~Crc32cTable(static_cast<const uint8_t*>(data), n, ~crc);
}

void AppendRecord(std::string& out, std::string_view payload) {
  PutLE32(out, static_cast<uint32_t>(payload.size()));
  PutLE32(out, Crc32c(payload.data(), payload.size()));
  out.append(payload);
}

Result<size_t> ReadRecords(std::span<const uint8_t> data, const std::function<Status(std::span<const uint8_t>)>& fn) {
  size_t pos = 0;
  while (data.size() - pos >= kRecordHeaderBytes) {
    uint32_t len = GetLE32(data.data() + pos);
    uint32_t crc = GetLE32(data.data() + pos + 4);
    if (len > kMaxRecordBytes || data.size() - pos - kRecordHeaderBytes < len) break;
    auto payload = data.subspan(pos + kRecordHeaderBytes, len);
    if (Crc32c(payload.data(), payload.size()) != crc) break;
    CNX_TRY(fn(payload));
    pos += kRecordHeaderBytes + len;
  }
  return pos;
}

}  // namespace cnx::graph
