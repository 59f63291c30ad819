#include <gtest/gtest.h>

#include "crdt/lib0.h"

namespace cnx::crdt {
namespace {

std::vector<uint8_t> VarUint(uint64_t v) {
  Encoder e;
  e.VarUint(v);
  return e.Take();
}
std::vector<uint8_t> VarInt(double v) {
  Encoder e;
  e.VarInt(v);
  return e.Take();
}

TEST(crdt_lib0, VarUintLayouts) {
  EXPECT_EQ(VarUint(0), (std::vector<uint8_t>{0x00}));
  EXPECT_EQ(VarUint(127), (std::vector<uint8_t>{0x7f}));
  EXPECT_EQ(VarUint(128), (std::vector<uint8_t>{0x80, 0x01}));
  EXPECT_EQ(VarUint(300), (std::vector<uint8_t>{0xac, 0x02}));
  EXPECT_EQ(VarUint(4294967295u), (std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff, 0x0f}));
}

TEST(crdt_lib0, VarIntLayouts) {
  EXPECT_EQ(VarInt(1), (std::vector<uint8_t>{0x01}));
  EXPECT_EQ(VarInt(-1), (std::vector<uint8_t>{0x41}));
  EXPECT_EQ(VarInt(63), (std::vector<uint8_t>{0x3f}));
  EXPECT_EQ(VarInt(64), (std::vector<uint8_t>{0x80, 0x01}));
  EXPECT_EQ(VarInt(-64), (std::vector<uint8_t>{0xc0, 0x01}));
  EXPECT_EQ(VarInt(2147483647), (std::vector<uint8_t>{0xbf, 0xff, 0xff, 0xff, 0x0f}));
  EXPECT_EQ(VarInt(-0.0), (std::vector<uint8_t>{0x40}));
}

TEST(crdt_lib0, AnyRoundTripAndNumberTags) {
  Encoder e;
  e.Any(Any::Number(0.5));         // float32
  e.Any(Any::Number(0.1));         // float64
  e.Any(Any::Number(2147483648));  // float32 (2^31)
  e.Any(Any::Number(-7));          // varInt
  auto b = e.Take();
  EXPECT_EQ(b[0], 124);
  EXPECT_EQ(b[5], 123);
  EXPECT_EQ(b[14], 124);
  EXPECT_EQ(b[19], 125);
  Decoder d(b);
  EXPECT_EQ(d.Any().number, 0.5);
  EXPECT_EQ(d.Any().number, 0.1);
  EXPECT_EQ(d.Any().number, 2147483648.0);
  EXPECT_EQ(d.Any().number, -7);
  EXPECT_TRUE(d.ok());
}

TEST(crdt_lib0, DecoderRejectsTruncationAndBadUtf8) {
  std::vector<uint8_t> t{0x80};
  Decoder d(t);
  d.VarUint();
  EXPECT_FALSE(d.ok());
  std::vector<uint8_t> s{0x02, 0xc3, 0x28};
  Decoder d2(s);
  d2.String();
  EXPECT_FALSE(d2.ok());
}

TEST(crdt_lib0, JsonMatchesJavaScript) {
  EXPECT_EQ(JsNumberToString(1e21), "1e+21");
  EXPECT_EQ(JsNumberToString(1e20), "100000000000000000000");
  EXPECT_EQ(JsNumberToString(0.000001), "0.000001");
  EXPECT_EQ(JsNumberToString(1e-7), "1e-7");
  EXPECT_EQ(JsNumberToString(-2.25), "-2.25");
  EXPECT_EQ(JsNumberToString(123456789), "123456789");
  auto v = JsonParse(R"({"b":1,"1":[true,null,"x\n"],"a":{"c":0.5}})");
  ASSERT_TRUE(v.has_value());
  // Array-index keys first, as JavaScript orders properties.
  EXPECT_EQ(JsonStringify(*v), R"({"1":[true,null,"x\n"],"b":1,"a":{"c":0.5}})");
  EXPECT_FALSE(JsonParse("{").has_value());
}

TEST(crdt_lib0, Utf16Offsets) {
  std::string s = "a\xC3\xA9\xF0\x9F\x98\x80z";  // a é 😀 z
  EXPECT_EQ(Utf16Length(s), 5u);
  EXPECT_EQ(Utf8OffsetOfUtf16(s, 2), 3u);
  bool inside = false;
  EXPECT_EQ(Utf8OffsetOfUtf16(s, 3, &inside), 3u);
  EXPECT_TRUE(inside);
  EXPECT_EQ(Utf8OffsetOfUtf16(s, 4), 7u);
  EXPECT_EQ(Utf16OffsetOfUtf8(s, 7), 4u);
}

}  // namespace
}  // namespace cnx::crdt
