#include <gtest/gtest.h>

#include "cdc/event_json.h"
#include "cdc/lsn.h"
#include "cdc/pgoutput.h"
#include "cdc/tests/test_util.h"

namespace cnx::cdc {
namespace {

// Messages decoded from a temporary keep views into it only until the end of the
// full expression: tests that inspect views keep the bytes in a local.
std::string Hex(std::string_view h) {
  return *DecodeHex(h);
}

TEST(Lsn, FormatsAndParses) {
  EXPECT_EQ(FormatLsn(0x195C708), "0/195C708");
  EXPECT_EQ(FormatLsn(0x16B374D848ull), "16/B374D848");
  EXPECT_EQ(*ParseLsn("16/b374d848"), 0x16B374D848ull);
  EXPECT_FALSE(ParseLsn("16-B3").has_value());
  EXPECT_FALSE(ParseLsn("/1").has_value());
  EXPECT_FALSE(ParseLsn("1/123456789").has_value());
}

TEST(PgTime, FormatsMicrosSince2000) {
  EXPECT_EQ(FormatPgTime(0), "2000-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatPgTime(848909897539126), "2026-11-25T08:18:17.539126Z");
  EXPECT_EQ(FormatPgTime(-1), "1999-12-31T23:59:59.999999Z");
  FormatPgTime(INT64_MAX);  // saturates instead of overflowing
  FormatPgTime(INT64_MIN);
}

TEST(Decoder, BeginAndCommitLayout) {
  Decoder d;
  Message m;
  ASSERT_TRUE(d.Decode(Hex("42000000000195c708000304143ce39e36000002dd"), m));
  EXPECT_EQ(m.type, MessageType::kBegin);
  EXPECT_EQ(m.final_lsn, 0x195C708u);
  EXPECT_EQ(m.xid, 733u);
  EXPECT_EQ(m.commit_time_us, 0x000304143ce39e36);
  ASSERT_TRUE(d.Decode(Hex("4300000000000195c708000000000195c738000304143ce39e36"), m));
  EXPECT_EQ(m.type, MessageType::kCommit);
  EXPECT_EQ(m.commit_lsn, 0x195C708u);
  EXPECT_EQ(m.end_lsn, 0x195C738u);
}

// Every prefix of every golden message is rejected cleanly (never a crash or an
// out-of-bounds read: run under ASan in the dev preset), and so is every
// message with a byte appended.
TEST(Decoder, RejectsTruncatedAndOverlongMessages) {
  auto streams = testing::FindGoldenStreams();
  ASSERT_FALSE(streams.empty());
  auto msgs = testing::ReadHexMessages(streams.front().hex_path);
  Decoder d;
  Message m;
  size_t rejected = 0;
  for (const auto& full : msgs) {
    // Establish the relation cache as the real stream would.
    for (size_t len = 0; len < std::min<size_t>(full.size(), 400); ++len) {
      Decoder scratch;
      auto st = scratch.Decode(std::string_view(full).substr(0, len), m);
      EXPECT_FALSE(st.has_value()) << "prefix of length " << len << " of a '" << full[0] << "' message accepted";
      if (!st) {
        EXPECT_EQ(st.error().code(), ErrorCode::kDataLoss);
        ++rejected;
      }
    }
    std::string longer = full + "x";
    Decoder scratch;
    EXPECT_FALSE(scratch.Decode(longer, m).has_value());
    ASSERT_TRUE(d.Decode(full, m).has_value());
  }
  EXPECT_GT(rejected, 1000u);
}

TEST(Decoder, UnknownTypeAndBadMarkersAreErrors) {
  Decoder d;
  Message m;
  auto st = d.Decode(Hex("5a00"), m);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message().find("unknown message type"), std::string::npos);
  // Insert with 'X' instead of 'N'.
  EXPECT_FALSE(d.Decode(Hex("49000040"
                            "0b"
                            "58"),
                        m)
                   .has_value());
  // Insert tuple with an unknown column marker 'q'.
  EXPECT_FALSE(d.Decode(Hex("490000400b4e000171"), m).has_value());
  // Tuple column count larger than the message.
  EXPECT_FALSE(d.Decode(Hex("490000400b4e7fff"), m).has_value());
  // Column value length beyond the end.
  EXPECT_FALSE(d.Decode(Hex("490000400b4e000174ffffffff41"), m).has_value());
  // Stream Stop without Stream Start.
  EXPECT_FALSE(d.Decode(Hex("45"), m).has_value());
  // Empty input.
  EXPECT_FALSE(d.Decode(std::string_view(), m).has_value());
}

TEST(Decoder, InsertWithoutRelationHasNullRelation) {
  Decoder d;
  Message m;
  const std::string bytes =
      Hex("490000400b4e0002"
          "6e"
          "7400000002"
          "6869");
  ASSERT_TRUE(d.Decode(bytes, m));
  EXPECT_EQ(m.type, MessageType::kInsert);
  EXPECT_EQ(m.relation, nullptr);
  ASSERT_EQ(m.new_tuple.size(), 2u);
  EXPECT_EQ(m.new_tuple[0].kind, ValueKind::kNull);
  EXPECT_EQ(m.new_tuple[1].kind, ValueKind::kText);
  EXPECT_EQ(m.new_tuple[1].bytes, "hi");
  std::string json;
  AppendMessageJson(json, m, d);
  EXPECT_EQ(json, R"({"kind":"insert","relid":16395,"relation":null,"new":[{"name":null,"type":null,"null":true},)"
                  R"({"name":null,"type":null,"value":"hi"}]})");
}

TEST(Decoder, RelationIsReplacedAndColumnCountChecked) {
  Decoder d;
  Message m;
  // R relid 1, "s"."t", identity d, 1 column "a" int4.
  ASSERT_TRUE(d.Decode(Hex("52"
                           "00000001"
                           "7300"
                           "7400"
                           "64"
                           "0001"
                           "01"
                           "6100"
                           "00000017"
                           "ffffffff"),
                       m));
  ASSERT_NE(m.relation, nullptr);
  EXPECT_EQ(m.relation->qualified_name, "s.t");
  EXPECT_EQ(m.relation->columns[0].type_name, "int4");
  // Insert with two columns does not match the cached relation.
  EXPECT_FALSE(d.Decode(Hex("49000000014e0002"
                            "6e"
                            "6e"),
                        m)
                   .has_value());
  ASSERT_TRUE(d.Decode(Hex("49000000014e0001"
                           "7400000001"
                           "37"),
                       m));
  EXPECT_EQ(m.relation->columns.size(), 1u);
  // New shape: two columns, second of a user type announced by a Type message.
  ASSERT_TRUE(d.Decode(Hex("59"
                           "00004e20"
                           "7075626c696300"
                           "6d6f6f6400"),
                       m));
  ASSERT_TRUE(d.Decode(Hex("52"
                           "00000001"
                           "7300"
                           "7400"
                           "66"
                           "0002"
                           "01"
                           "6100"
                           "00000017"
                           "ffffffff"
                           "01"
                           "6200"
                           "00004e20"
                           "ffffffff"),
                       m));
  EXPECT_EQ(m.relation->columns[1].type_name, "public.mood");
  EXPECT_EQ(d.relation_count(), 1u);
  ASSERT_TRUE(d.Decode(Hex("49000000014e0002"
                           "6e"
                           "7400000002"
                           "6f6b"),
                       m));
  d.Reset();
  EXPECT_EQ(d.FindRelation(1), nullptr);
  EXPECT_EQ(d.TypeName(0x4e20), "oid:20000");
}

TEST(Decoder, StreamedBlocksCarryXids) {
  Decoder d;
  Message m;
  ASSERT_TRUE(d.Decode(Hex("53"
                           "000002ef"
                           "01"),
                       m));
  EXPECT_EQ(m.type, MessageType::kStreamStart);
  EXPECT_TRUE(m.first_segment);
  EXPECT_TRUE(d.in_stream());
  // Nested Stream Start is rejected.
  EXPECT_FALSE(d.Decode(Hex("53"
                            "000002ef"
                            "00"),
                        m)
                   .has_value());
  // Inside the block a message carries an xid: M with xid 0x2f0.
  const std::string msg =
      Hex("4d"
          "000002f0"
          "01"
          "0000000000000010"
          "7000"
          "00000001"
          "41");
  ASSERT_TRUE(d.Decode(msg, m));
  EXPECT_TRUE(m.has_xid);
  EXPECT_EQ(m.xid, 0x2f0u);
  EXPECT_EQ(m.prefix, "p");
  EXPECT_EQ(m.content, "A");
  ASSERT_TRUE(d.Decode(Hex("45"), m));
  EXPECT_FALSE(d.in_stream());
  ASSERT_TRUE(d.Decode(Hex("41"
                           "000002ef"
                           "000002f0"),
                       m));
  EXPECT_EQ(m.type, MessageType::kStreamAbort);
  EXPECT_EQ(m.subxid, 0x2f0u);
  std::string json;
  AppendMessageJson(json, m, d);
  EXPECT_EQ(json, R"({"kind":"stream_abort","xid":751,"subxid":752})");
}

TEST(Decoder, OriginMessage) {
  Decoder d;
  Message m;
  ASSERT_TRUE(d.Decode(Hex("4f"
                           "0000000100000002"
                           "6e6f64653100"),
                       m));
  std::string json;
  AppendMessageJson(json, m, d);
  EXPECT_EQ(json, R"({"kind":"origin","origin_lsn":"1/2","origin":"node1"})");
}

TEST(Json, EscapesLikePython) {
  std::string out;
  AppendJsonString(out, std::string_view("a\"\\\n\r\t\b\f\x01\x7f\xc3\xa9", 12));
  EXPECT_EQ(out, "\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\x7f\xc3\xa9\"");
}

TEST(Json, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is long enough"));
  EXPECT_TRUE(IsValidUtf8("Zo\xc3\xab \xe2\x98\x83 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("ok\xe2\x98"));        // truncated
}

}  // namespace
}  // namespace cnx::cdc
