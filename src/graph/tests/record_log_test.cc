#include "graph/record_log.h"

#include <gtest/gtest.h>

#include <vector>

namespace cnx::graph {
namespace {

std::span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<std::string> ReadAll(const std::string& data, size_t* valid) {
  std::vector<std::string> out;
  auto r = ReadRecords(B(data), [&](std::span<const uint8_t> p) {
    out.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
    return Ok();
  });
  *valid = r.value();
  return out;
}

// The instruction-based CRC (where the CPU has it) and the table agree for
// every length and alignment, also when continuing a previous value.
TEST(RecordLog, Crc32cMatchesTheTableForm) {
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 300; ++i) {
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 16));
  }
  for (size_t off = 0; off < 9; ++off) {
    for (size_t n = 0; off + n <= data.size(); n += 7) {
      EXPECT_EQ(Crc32c(data.data() + off, n), Crc32cPortable(data.data() + off, n)) << off << " " << n;
      EXPECT_EQ(Crc32c(data.data() + off, n, 0xDEADBEEFu), Crc32cPortable(data.data() + off, n, 0xDEADBEEFu));
    }
  }
  EXPECT_EQ(Crc32cPortable("123456789", 9), 0xE3069283u);
}

TEST(RecordLog, Crc32cKnownValue) {
  // RFC 3720 test vector: 32 bytes of zeros.
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
}

TEST(RecordLog, RoundTripAndTornTail) {
  std::string data;
  AppendRecord(data, "first");
  AppendRecord(data, "");
  AppendRecord(data, std::string(70000, 'x'));
  size_t full = data.size();
  size_t valid = 0;
  auto recs = ReadAll(data, &valid);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0], "first");
  EXPECT_EQ(recs[1], "");
  EXPECT_EQ(valid, full);
  // Every truncation point inside the last record yields the first two.
  for (size_t cut : {full - 1, full - 70000, full - 70003, full - 70008 + 1}) {
    auto r = ReadAll(data.substr(0, cut), &valid);
    EXPECT_EQ(r.size(), 2u) << cut;
    EXPECT_EQ(valid, full - 70008) << cut;
  }
}

TEST(RecordLog, StopsAtCorruptRecord) {
  std::string data;
  AppendRecord(data, "one");
  size_t after_one = data.size();
  AppendRecord(data, "two");
  AppendRecord(data, "three");
  data[after_one + 9] ^= 0x01;  // flip a payload bit of "two"
  size_t valid = 0;
  auto recs = ReadAll(data, &valid);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(valid, after_one);
  // A huge length field is not trusted.
  std::string huge("\xFF\xFF\xFF\xFF\0\0\0\0", 8);
  EXPECT_TRUE(ReadAll(huge, &valid).empty());
  EXPECT_EQ(valid, 0u);
}

}  // namespace
}  // namespace cnx::graph
