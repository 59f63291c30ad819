#include <gtest/gtest.h>

#include "crdt/doc.h"
#include "crdt/relative_position.h"

namespace cnx::crdt {
namespace {

std::vector<uint8_t> Enc(const RelativePosition& p) {
  auto b = EncodeRelativePosition(p);
  EXPECT_TRUE(b.has_value());
  return b ? *b : std::vector<uint8_t>{};
}

uint64_t Resolve(const RelativePosition& p, Doc& doc) {
  auto abs = CreateAbsolutePositionFromRelativePosition(p, doc);
  EXPECT_TRUE(abs.has_value());
  return abs ? abs->index : ~uint64_t{0};
}

TEST(crdt_relpos, CreateFromIndexFollowsYjsCases) {
  Doc doc(DocOptions{.client_id = 1});
  auto t = doc.GetText("t");
  ASSERT_TRUE(t.Insert(0, "abc").has_value());
  // Inside the text: the unit after the index (assoc >= 0) or before it (assoc < 0).
  EXPECT_EQ(Enc(CreateRelativePositionFromTypeIndex(t.type(), 1)), (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(Enc(CreateRelativePositionFromTypeIndex(t.type(), 1, -1)), (std::vector<uint8_t>{0, 1, 0, 0x41}));
  // Start with assoc < 0 and end with assoc >= 0 name the type.
  EXPECT_EQ(Enc(CreateRelativePositionFromTypeIndex(t.type(), 0, -1)), (std::vector<uint8_t>{1, 1, 't', 0x41}));
  EXPECT_EQ(Enc(CreateRelativePositionFromTypeIndex(t.type(), 3)), (std::vector<uint8_t>{1, 1, 't', 0}));
  // End with assoc < 0 sticks to the last unit, also past the end.
  EXPECT_EQ(Enc(CreateRelativePositionFromTypeIndex(t.type(), 3, -1)), (std::vector<uint8_t>{0, 1, 2, 0x41}));
  EXPECT_EQ(Enc(CreateRelativePositionFromTypeIndex(t.type(), 9, -1)), (std::vector<uint8_t>{0, 1, 2, 0x41}));
  // JSON form, in Yjs' key order.
  EXPECT_EQ(RelativePositionToJson(CreateRelativePositionFromTypeIndex(t.type(), 1)).dump(),
            R"({"tname":"t","item":{"client":1,"clock":1},"assoc":0})");
  EXPECT_EQ(RelativePositionToJson(CreateRelativePositionFromTypeIndex(t.type(), 3)).dump(),
            R"({"tname":"t","assoc":0})");
}

TEST(crdt_relpos, ResolvesAfterRemoteEdits) {
  Doc a(DocOptions{.client_id = 1});
  Doc b(DocOptions{.client_id = 2});
  auto ta = a.GetText("t");
  auto tb = b.GetText("t");
  auto u = a.Transact([&] { ASSERT_TRUE(ta.Insert(0, "hello world").has_value()); });
  ASSERT_TRUE(b.ApplyUpdate(u).has_value());
  auto w = CreateRelativePositionFromTypeIndex(ta.type(), 6);          // before "w"
  auto o_end = CreateRelativePositionFromTypeIndex(ta.type(), 5, -1);  // after "o"
  auto end = CreateRelativePositionFromTypeIndex(ta.type(), 11);
  auto start = CreateRelativePositionFromTypeIndex(ta.type(), 0, -1);
  // b inserts before the anchors, a types at the end.
  auto ub = b.Transact([&] { ASSERT_TRUE(tb.Insert(0, "\xF0\x9F\x98\x80 ").has_value()); });  // 3 UTF-16 units
  auto ua = a.Transact([&] { ASSERT_TRUE(ta.Insert(11, "!").has_value()); });
  ASSERT_TRUE(a.ApplyUpdate(ub).has_value());
  ASSERT_TRUE(b.ApplyUpdate(ua).has_value());
  for (Doc* d : {&a, &b}) {
    EXPECT_EQ(Resolve(w, *d), 9u);
    EXPECT_EQ(Resolve(o_end, *d), 8u);
    EXPECT_EQ(Resolve(end, *d), 15u);  // end of type follows appended text
    EXPECT_EQ(Resolve(start, *d), 0u);
  }
  // Deleting the anchored unit leaves the position where the unit was.
  ASSERT_TRUE(ta.Delete(7, 4).has_value());  // " wor" -> deletes the "w"
  EXPECT_EQ(Resolve(w, a), 7u);
  // The decoded bytes resolve the same way.
  auto decoded = DecodeRelativePosition(Enc(w));
  ASSERT_TRUE(decoded.has_value());
  // The binary form of an item position does not carry the type name.
  EXPECT_EQ(decoded->item, w.item);
  EXPECT_FALSE(decoded->tname.has_value());
  EXPECT_EQ(Resolve(*decoded, a), 7u);
}

TEST(crdt_relpos, NestedTypeAndUnknownContent) {
  Doc doc(DocOptions{.client_id = 3});
  Type* nested = doc.GetMap("m").SetType("n", TypeRef::kText);
  ASSERT_TRUE(Text(nested).Insert(0, "xy").has_value());
  auto end = CreateRelativePositionFromTypeIndex(nested, 2);
  ASSERT_TRUE(end.type.has_value());
  EXPECT_EQ(*end.type, nested->item->id);
  EXPECT_FALSE(end.tname.has_value());
  auto abs = CreateAbsolutePositionFromRelativePosition(end, doc);
  ASSERT_TRUE(abs.has_value());
  EXPECT_EQ(abs->type, nested);
  EXPECT_EQ(abs->index, 2u);
  // A position on content this document has not seen resolves to nothing.
  RelativePosition unseen;
  unseen.item = Id{99, 0};
  EXPECT_FALSE(CreateAbsolutePositionFromRelativePosition(unseen, doc).has_value());
  // Overwriting the nested text garbage-collects it: its positions are gone.
  auto inside = CreateRelativePositionFromTypeIndex(nested, 1);
  doc.GetMap("m").Set("n", Any::Number(1));
  EXPECT_FALSE(CreateAbsolutePositionFromRelativePosition(inside, doc).has_value());
  EXPECT_FALSE(CreateAbsolutePositionFromRelativePosition(end, doc).has_value());
}

TEST(crdt_relpos, DecodeRejectsMalformedInput) {
  EXPECT_FALSE(DecodeRelativePosition(std::vector<uint8_t>{}).has_value());
  EXPECT_FALSE(DecodeRelativePosition(std::vector<uint8_t>{3, 0}).has_value());       // unknown kind
  EXPECT_FALSE(DecodeRelativePosition(std::vector<uint8_t>{0, 1}).has_value());       // truncated id
  EXPECT_FALSE(DecodeRelativePosition(std::vector<uint8_t>{1, 5, 'a'}).has_value());  // truncated name
  EXPECT_FALSE(DecodeRelativePosition(std::vector<uint8_t>{0, 0x80, 0x80, 0x80, 0x80, 0x10, 0}).has_value());
  // Missing assoc reads as 0 (as in Yjs); -0 survives a round trip.
  auto p = DecodeRelativePosition(std::vector<uint8_t>{2, 7, 9});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->type, (Id{7, 9}));
  EXPECT_EQ(p->assoc, 0);
  auto neg_zero = DecodeRelativePosition(std::vector<uint8_t>{1, 1, 't', 0x40});
  ASSERT_TRUE(neg_zero.has_value());
  EXPECT_EQ(Enc(*neg_zero), (std::vector<uint8_t>{1, 1, 't', 0x40}));
  EXPECT_EQ(RelativePositionToJson(*neg_zero).dump(), R"({"tname":"t","assoc":0})");
}

TEST(crdt_relpos, JsonForm) {
  auto p = RelativePositionFromJson(nlohmann::json::parse(R"({"item":{"client":4294967295,"clock":12},"assoc":-1})"));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->item, (Id{4294967295u, 12}));
  EXPECT_EQ(p->assoc, -1);
  EXPECT_EQ(RelativePositionToJson(*p).dump(), R"({"item":{"client":4294967295,"clock":12},"assoc":-1})");
  auto no_assoc = RelativePositionFromJson(nlohmann::json::parse(R"({"tname":"content","assoc":null})"));
  ASSERT_TRUE(no_assoc.has_value());
  EXPECT_EQ(no_assoc->assoc, 0);
  for (const char* bad : {R"([])", R"({})", R"({"assoc":1})", R"({"item":{"client":-1,"clock":0}})",
                          R"({"item":{"client":4294967296,"clock":0}})", R"({"item":{"client":1}})", R"({"tname":5})",
                          R"({"tname":"t","assoc":0.5})", R"({"item":"x"})"}) {
    EXPECT_FALSE(RelativePositionFromJson(nlohmann::json::parse(bad)).has_value()) << bad;
  }
}

}  // namespace
}  // namespace cnx::crdt
