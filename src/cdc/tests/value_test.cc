#include <gtest/gtest.h>

#include <cmath>

#include "cdc/event_json.h"
#include "cdc/pg_types.h"
#include "cdc/tests/test_util.h"
#include "cdc/value.h"

namespace cnx::cdc {
namespace {

Value Text(std::string_view s, uint32_t oid) {
  return Value(ColumnValue{ValueKind::kText, s}, oid);
}
Value Bin(std::string_view s, uint32_t oid) {
  return Value(ColumnValue{ValueKind::kBinary, s}, oid);
}

TEST(Value, Scalars) {
  EXPECT_TRUE(*Text("t", oid::kBool).AsBool());
  EXPECT_FALSE(*Text("f", oid::kBool).AsBool());
  EXPECT_FALSE(Text("x", oid::kBool).AsBool().has_value());
  EXPECT_EQ(*Text("-32768", oid::kInt2).AsInt(), -32768);
  EXPECT_EQ(*Text("9223372036854775807", oid::kInt8).AsInt(), INT64_MAX);
  EXPECT_FALSE(Text("12a", oid::kInt4).AsInt().has_value());
  EXPECT_FALSE(Text("1", oid::kText).AsInt().has_value());
  EXPECT_EQ(*Bin(std::string_view("\xff\xff\xff\xfe", 4), oid::kInt4).AsInt(), -2);
  EXPECT_DOUBLE_EQ(*Text("1e-300", oid::kFloat8).AsDouble(), 1e-300);
  EXPECT_TRUE(std::isnan(*Text("NaN", oid::kFloat8).AsDouble()));
  EXPECT_EQ(*Text("-Infinity", oid::kFloat4).AsDouble(), -INFINITY);
  EXPECT_EQ(*Text("-0.01", oid::kNumeric).AsNumericText(), "-0.01");
  EXPECT_EQ(*Text("Zoë", oid::kText).AsText(), "Zoë");
}

TEST(Value, NullAndUnchangedToastHaveNoData) {
  Value n(ColumnValue{ValueKind::kNull, {}}, oid::kText);
  Value u(ColumnValue{ValueKind::kUnchangedToast, {}}, oid::kText);
  EXPECT_TRUE(n.is_null());
  EXPECT_TRUE(u.is_unchanged_toast());
  EXPECT_EQ(n.AsText().error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(u.AsText().error().code(), ErrorCode::kNotFound);
}

TEST(Value, UuidJsonBytes) {
  EXPECT_EQ(Text("6f1c1a2e-0c4b-4a51-9d3e-1b2c3d4e5f60", oid::kUuid).AsUuid()->ToString(),
            "6f1c1a2e-0c4b-4a51-9d3e-1b2c3d4e5f60");
  EXPECT_EQ(Bin(*DecodeHex("6f1c1a2e0c4b4a519d3e1b2c3d4e5f60"), oid::kUuid).AsUuid()->ToString(),
            "6f1c1a2e-0c4b-4a51-9d3e-1b2c3d4e5f60");
  EXPECT_FALSE(Text("nope", oid::kUuid).AsUuid().has_value());
  EXPECT_EQ(*Text(R"({"a": 1})", oid::kJsonb).AsJsonText(), R"({"a": 1})");
  EXPECT_EQ(*Bin("\x01{}", oid::kJsonb).AsJsonText(), "{}");
  EXPECT_EQ(*Text("\\x00ff5c27", oid::kBytea).AsBytes(), std::string("\x00\xff\x5c\x27", 4));
  EXPECT_FALSE(Text("\\000", oid::kBytea).AsBytes().has_value());
  EXPECT_FALSE(Text("\\x0g", oid::kBytea).AsBytes().has_value());
}

TEST(Value, Timestamps) {
  // 2024-03-10 10:34:56.789+00 = 1710066896.789 s since the Unix epoch.
  EXPECT_EQ(*Text("2024-03-10 10:34:56.789+00", oid::kTimestamptz).AsUnixMicros(), 1710066896789000);
  EXPECT_EQ(*Text("2024-03-10 12:34:56.789+02", oid::kTimestamptz).AsUnixMicros(), 1710066896789000);
  EXPECT_EQ(*Text("2024-03-11 09:15:00.5-05:30", oid::kTimestamptz).AsUnixMicros(), 1710168300500000);
  EXPECT_EQ(*Text("2024-03-12 23:59:59.999999+00", oid::kTimestamptz).AsUnixMicros(), 1710287999999999);
  EXPECT_EQ(*Text("2000-01-01 00:00:00", oid::kTimestamp).AsUnixMicros(), kPgEpochUnixMicros);
  EXPECT_FALSE(Text("infinity", oid::kTimestamptz).AsUnixMicros().has_value());
  EXPECT_FALSE(Text("2024-02-30 00:00:00+00", oid::kTimestamptz).AsUnixMicros().has_value());
  EXPECT_FALSE(Text("2024-03-10 10:34:56+0x", oid::kTimestamptz).AsUnixMicros().has_value());
  // Binary: µs since 2000-01-01.
  EXPECT_EQ(*Bin(std::string("\0\0\0\0\0\0\0\x01", 8), oid::kTimestamptz).AsUnixMicros(), kPgEpochUnixMicros + 1);
}

// Every text value of the golden v1 stream reads through the accessor its type
// calls for, and the binary stream's values agree with the text ones.
TEST(Value, GoldenColumnsReadByType) {
  auto streams = testing::FindGoldenStreams();
  const testing::GoldenStream* v1 = nullptr;
  const testing::GoldenStream* bin = nullptr;
  for (const auto& s : streams) {
    if (s.name == "setA_v1") v1 = &s;
    if (s.name == "setA_v1binary") bin = &s;
  }
  ASSERT_NE(v1, nullptr);
  ASSERT_NE(bin, nullptr);
  auto text_msgs = testing::ReadHexMessages(v1->hex_path);
  auto bin_msgs = testing::ReadHexMessages(bin->hex_path);
  ASSERT_EQ(text_msgs.size(), bin_msgs.size());
  Decoder dt, db;
  Message mt, mb;
  size_t checked = 0;
  for (size_t i = 0; i < text_msgs.size(); ++i) {
    ASSERT_TRUE(dt.Decode(text_msgs[i], mt));
    ASSERT_TRUE(db.Decode(bin_msgs[i], mb));
    if (!mt.IsChange() || mt.relation == nullptr) continue;
    for (size_t c = 0; c < mt.new_tuple.size(); ++c) {
      const uint32_t type = mt.relation->columns[c].type_oid;
      Value t(mt.new_tuple[c], type), b(mb.new_tuple[c], type);
      if (!t.has_data()) continue;
      ASSERT_EQ(b.has_data(), true);
      switch (type) {
        case oid::kBool:
          EXPECT_EQ(*t.AsBool(), *b.AsBool());
          break;
        case oid::kInt4:
        case oid::kInt8:
          EXPECT_EQ(*t.AsInt(), *b.AsInt());
          break;
        case oid::kUuid:
          EXPECT_EQ(*t.AsUuid(), *b.AsUuid());
          break;
        case oid::kTimestamptz:
          EXPECT_EQ(*t.AsUnixMicros(), *b.AsUnixMicros());
          break;
        case oid::kJsonb:
          EXPECT_EQ(*t.AsJsonText(), *b.AsJsonText());
          break;
        case oid::kBytea:
          EXPECT_EQ(*t.AsBytes(), *b.AsBytes());
          break;
        case oid::kText:
        case oid::kVarchar:
          EXPECT_EQ(*t.AsText(), *b.AsText());
          break;
        case oid::kNumeric:
          EXPECT_TRUE(t.AsNumericText().has_value());
          break;
        default:
          continue;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000u);
}

}  // namespace
}  // namespace cnx::cdc
