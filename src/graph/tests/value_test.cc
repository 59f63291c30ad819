#include "graph/value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "graph/packstream.h"

namespace cnx::graph {
namespace {

TEST(Value, KindsAndAccessors) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_TRUE(Value(true).as_bool());
  EXPECT_EQ(Value(int64_t{-5}).as_int(), -5);
  EXPECT_EQ(Value(1.5).as_float(), 1.5);
  EXPECT_EQ(Value("x").as_string(), "x");
  EXPECT_NE(Value(42), Value(42.0));  // Integer and Float are different values
  Value m(Map{{"a", 1}, {"b", List{1, "two"}}});
  ASSERT_NE(m.Find("b"), nullptr);
  EXPECT_EQ(m.Find("b")->as_list().size(), 2u);
  EXPECT_EQ(m.Find("zz"), nullptr);
}

TEST(Value, MapEqualityIgnoresOrder) {
  EXPECT_EQ(Value(Map{{"a", 1}, {"b", 2}}), Value(Map{{"b", 2}, {"a", 1}}));
  EXPECT_NE(Value(Map{{"a", 1}}), Value(Map{{"a", 2}}));
  Map m{{"a", 1}};
  MapSet(m, "a", 3);
  MapSet(m, "c", "x");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(*MapFind(m, "a"), Value(3));
}

TEST(Value, JsonRoundTrip) {
  auto j = nlohmann::json::parse(
      R"({"id": 42, "score": 0.75, "name": "Zürich", "tags": ["a", null, true], "nested": {"lsn": 123456789012}})");
  auto v = FromJson(j);
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->Find("id")->is_int());
  EXPECT_TRUE(v->Find("score")->is_float());
  EXPECT_EQ(v->Find("nested")->Find("lsn")->as_int(), 123456789012);
  EXPECT_EQ(ToJson(*v), j);
  Value b(Bytes{{0xCA, 0xFE}});
  EXPECT_EQ(ToJson(b).dump(), R"({"$bytes":"CAFE"})");
  EXPECT_EQ(FromJson(ToJson(b)).value(), b);
  Value s(Structure{0x44, {Value(19724)}});
  EXPECT_EQ(FromJson(ToJson(s)).value(), s);
  EXPECT_FALSE(FromJson(nlohmann::json(18446744073709551615ull)).has_value());
  EXPECT_EQ(ToJson(Value(std::nan(""))).get<std::string>(), "NaN");
}

TEST(Value, DebugString) {
  Value v(Map{{"id", 1}, {"f", 2.0}, {"s", "x\"y"}, {"l", List{}}});
  EXPECT_EQ(v.DebugString(), R"({"id": 1, "f": 2.0, "s": "x\"y", "l": []})");
}

TEST(PackStream, RoundTripNested) {
  Value v(Map{{"a", List{1, -17, 128, 32768, int64_t{5000000000}, 0.5, "é", Bytes{{1, 2}}}},
              {"s", Structure{0x4E, {Value(1), Value(List{"L"}), Value(Map{}), Value("4:x:1")}}},
              {"n", nullptr},
              {"t", true}});
  auto enc = packstream::Encode(v);
  auto dec = packstream::Decode(enc);
  ASSERT_TRUE(dec.has_value()) << dec.error().ToString();
  EXPECT_EQ(*dec, v);
}

TEST(PackStream, RejectsMalformedInput) {
  auto bad = [](std::string bytes) { return !packstream::Decode(bytes).has_value(); };
  EXPECT_TRUE(bad(std::string("\xC4", 1)));  // reserved marker
  EXPECT_TRUE(
      bad(std::string("\xD0\x05"
                      "ab",
                      4)));                                  // truncated string
  EXPECT_TRUE(bad(std::string("\xA1\x01\x01", 3)));          // non-String map key
  EXPECT_TRUE(bad(std::string("\xD6\xFF\xFF\xFF\xFF", 5)));  // list count beyond input
  EXPECT_TRUE(bad(std::string("\x01\x02", 2)));              // trailing bytes
  EXPECT_TRUE(bad(""));
  EXPECT_TRUE(bad(std::string("\xA2\x81k\x01\x81k\x02", 7)));  // duplicate key
  std::string big("\xD8\x11", 2);                              // 17 entries, the last repeating the first key
  for (int i = 0; i < 17; ++i) big += std::string("\x82k") + static_cast<char>('a' + (i % 16)) + "\x01";
  EXPECT_TRUE(bad(big));
  std::string deep(100, '\x91');
  deep.push_back('\x01');
  EXPECT_TRUE(bad(deep));  // nesting limit
}

}  // namespace
}  // namespace cnx::graph
