#include <gtest/gtest.h>

#include "crdt/doc.h"
#include "crdt/golden_json.h"

namespace cnx::crdt {
namespace {

TEST(crdt_doc, AnnotatedBytesFromTheProtocolNotes) {
  Doc doc(DocOptions{.client_id = 1});
  auto t = doc.GetText("t");
  auto u1 = doc.Transact([&] { ASSERT_TRUE(t.Insert(0, "abc").has_value()); });
  EXPECT_EQ(u1, (std::vector<uint8_t>{1, 1, 1, 0, 4, 1, 1, 0x74, 3, 0x61, 0x62, 0x63, 0}));
  auto u2 = doc.Transact([&] { ASSERT_TRUE(t.Insert(1, "X").has_value()); });
  EXPECT_EQ(u2, (std::vector<uint8_t>{1, 1, 1, 3, 0xc4, 1, 0, 1, 1, 1, 0x58, 0}));
  auto u3 = doc.Transact([&] { ASSERT_TRUE(t.Delete(2, 1).has_value()); });
  EXPECT_EQ(u3, (std::vector<uint8_t>{0, 1, 1, 1, 1, 1}));
  auto m = doc.GetMap("m");
  auto u4 = doc.Transact([&] { m.Set("k", Any::Number(1)); });
  EXPECT_EQ(u4, (std::vector<uint8_t>{1, 1, 1, 4, 0x28, 1, 1, 0x6d, 1, 0x6b, 1, 0x7d, 1, 0}));
  auto u5 = doc.Transact([&] { m.Set("k", Any::String("v")); });
  EXPECT_EQ(u5, (std::vector<uint8_t>{1, 1, 1, 5, 0xa8, 1, 4, 1, 0x77, 1, 0x76, 1, 1, 1, 4, 1}));
  auto a = doc.GetArray("a");
  auto u6 = doc.Transact([&] {
    auto nt = a.InsertType(0, TypeRef::kText);
    ASSERT_TRUE(nt.has_value());
    ASSERT_TRUE(Text(*nt).Insert(0, "n").has_value());
  });
  EXPECT_EQ(u6, (std::vector<uint8_t>{1, 2, 1, 6, 7, 1, 1, 0x61, 2, 4, 0, 1, 6, 1, 0x6e, 0}));
  EXPECT_EQ(doc.EncodeStateVector(), (std::vector<uint8_t>{1, 1, 8}));
  EXPECT_EQ(t.ToString(), "aXc");
}

TEST(crdt_doc, TwoReplicasConvergeAndUtf16Indices) {
  Doc a(DocOptions{.client_id = 10});
  Doc b(DocOptions{.client_id = 20});
  auto ua = a.Transact([&] { ASSERT_TRUE(a.GetText("t").Insert(0, "h\xC3\xA9llo \xF0\x9F\x98\x80!").has_value()); });
  ASSERT_TRUE(b.ApplyUpdate(ua).has_value());
  // Concurrent inserts at the same position: lower client id first.
  auto ua2 = a.Transact([&] { ASSERT_TRUE(a.GetText("t").Insert(8, "A").has_value()); });
  auto ub2 = b.Transact([&] { ASSERT_TRUE(b.GetText("t").Insert(8, "B").has_value()); });
  ASSERT_TRUE(a.ApplyUpdate(ub2).has_value());
  ASSERT_TRUE(b.ApplyUpdate(ua2).has_value());
  EXPECT_EQ(a.GetText("t").ToString(), b.GetText("t").ToString());
  EXPECT_EQ(a.GetText("t").ToString(),
            "h\xC3\xA9llo \xF0\x9F\x98\x80"
            "AB!");
  EXPECT_EQ(*a.EncodeStateAsUpdate(), *b.EncodeStateAsUpdate());
}

TEST(crdt_doc, CorruptUpdateLeavesDocUnchanged) {
  Doc src(DocOptions{.client_id = 3});
  auto u = src.Transact([&] { ASSERT_TRUE(src.GetText("t").Insert(0, "hello world").has_value()); });
  Doc dst(DocOptions{.client_id = 4});
  auto before = *dst.EncodeStateAsUpdate();
  for (size_t cut = 1; cut < u.size(); ++cut) {
    std::vector<uint8_t> trunc(u.begin(), u.begin() + static_cast<ptrdiff_t>(cut));
    auto st = dst.ApplyUpdate(trunc);
    if (st) continue;  // a prefix may itself be a valid (smaller) update
    EXPECT_EQ(st.error().code(), ErrorCode::kDataLoss);
    EXPECT_EQ(*dst.EncodeStateAsUpdate(), before);
  }
  std::vector<uint8_t> bad = u;
  bad[4] = 0x1f;  // unknown content ref
  Doc fresh(DocOptions{.client_id = 5});
  auto st = fresh.ApplyUpdate(bad);
  EXPECT_FALSE(st.has_value());
  EXPECT_EQ(fresh.EncodeStateVector(), (std::vector<uint8_t>{0}));
}

TEST(crdt_doc, ObserverReportsChangedTypesAndUpdate) {
  Doc doc(DocOptions{.client_id = 9});
  std::vector<TransactionEvent> seen;
  std::vector<std::vector<uint8_t>> updates;
  doc.Observe([&](const TransactionEvent& ev) {
    seen.push_back(TransactionEvent{ev.local, ev.changes, ev.before, ev.after, nullptr, {}});
    updates.emplace_back(ev.update.begin(), ev.update.end());
  });
  auto m = doc.GetMap("m");
  auto t = doc.GetText("t");
  doc.Transact([&] {
    m.Set("x", Any::Bool(true));
    ASSERT_TRUE(t.Insert(0, "hi").has_value());
  });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].local);
  ASSERT_EQ(seen[0].changes.size(), 2u);
  EXPECT_EQ(seen[0].changes[0].root, "m");
  EXPECT_EQ(seen[0].changes[0].keys_changed, std::vector<std::string>{"x"});
  EXPECT_EQ(seen[0].changes[1].root, "t");
  EXPECT_TRUE(seen[0].changes[1].child_list_changed);
  Doc other(DocOptions{.client_id = 11});
  ASSERT_TRUE(other.ApplyUpdate(updates[0]).has_value());
  EXPECT_EQ(other.GetText("t").ToString(), "hi");
}

TEST(crdt_doc, ApplyUpdateReturnsTheUpdateItProduced) {
  Doc src(DocOptions{.client_id = 3});
  auto t = src.GetText("t");
  auto u1 = src.Transact([&] { ASSERT_TRUE(t.Insert(0, "abc").has_value()); });
  auto u2 = src.Transact([&] { ASSERT_TRUE(t.Insert(3, "d").has_value()); });
  auto u3 = src.Transact([&] { ASSERT_TRUE(t.Delete(0, 1).has_value()); });

  Doc dst(DocOptions{.client_id = 4});
  std::vector<std::vector<uint8_t>> observed;
  dst.Observe([&](const TransactionEvent& ev) { observed.emplace_back(ev.update.begin(), ev.update.end()); });
  std::vector<uint8_t> produced{1, 2, 3};
  // u2 before u1: kept pending, nothing produced.
  ASSERT_TRUE(dst.ApplyUpdate(u2, &produced).has_value());
  EXPECT_TRUE(produced.empty());
  EXPECT_TRUE(dst.HasPendingStructs());
  // u1 integrates both: the produced update is the observer's.
  ASSERT_TRUE(dst.ApplyUpdate(u1, &produced).has_value());
  ASSERT_EQ(observed.size(), 1u);
  EXPECT_EQ(produced, observed.back());
  ASSERT_TRUE(dst.ApplyUpdate(u3, &produced).has_value());
  EXPECT_EQ(produced, observed.back());
  EXPECT_EQ(dst.GetText("t").ToString(), "bcd");
  // A duplicate changes nothing.
  ASSERT_TRUE(dst.ApplyUpdate(u1, &produced).has_value());
  EXPECT_TRUE(produced.empty());
  // The produced updates rebuild the document elsewhere.
  Doc copy(DocOptions{.client_id = 5});
  for (const auto& u : observed) ASSERT_TRUE(copy.ApplyUpdate(u).has_value());
  EXPECT_EQ(copy.GetText("t").ToString(), "bcd");
}

TEST(crdt_doc, ObserverListChangesGivePositions) {
  Doc doc(DocOptions{.client_id = 1});
  auto t = doc.GetText("t");
  ASSERT_TRUE(t.Insert(0, "hello world").has_value());
  std::vector<ListChange> got;
  doc.Observe([&](const TransactionEvent& ev) {
    ASSERT_EQ(ev.changes.size(), 1u);
    got = ev.changes[0].list_changes;
  });
  doc.Transact([&] {
    ASSERT_TRUE(t.Delete(0, 1).has_value());     // "ello world"
    ASSERT_TRUE(t.Insert(5, "XY").has_value());  // "ello XYworld"
  });
  using K = ListChange::Kind;
  ASSERT_EQ(got.size(), 3u);  // the trailing retain of "world" is omitted
  EXPECT_EQ(got[0].kind, K::kDelete);
  EXPECT_EQ(got[0].length, 1u);
  EXPECT_EQ(got[1].kind, K::kRetain);
  EXPECT_EQ(got[1].length, 5u);
  EXPECT_EQ(got[2].kind, K::kInsert);
  EXPECT_EQ(got[2].length, 2u);
}

TEST(crdt_doc, MapAndArrayEditing) {
  Doc doc(DocOptions{.client_id = 1});
  auto m = doc.GetMap("m");
  auto a = doc.GetArray("a");
  m.Set("n", Any::Number(1.5));
  m.Set("b", Any::Binary("\x01\x02"));
  m.Set("n", Any::String("x"));
  ASSERT_TRUE(a.Insert(0, {Any::Number(1), Any::Number(2), Any::Number(3)}).has_value());
  ASSERT_TRUE(a.Insert(1, {Any::Bool(true)}).has_value());
  ASSERT_TRUE(a.Delete(2, 1).has_value());
  EXPECT_FALSE(a.Delete(5, 1).has_value());
  EXPECT_EQ(m.Get("n")->any, Any::String("x"));
  EXPECT_EQ(m.Get("b")->any.kind, Any::Kind::kBinary);
  EXPECT_FALSE(m.Get("missing").has_value());
  m.Delete("b");
  EXPECT_EQ(m.Keys(), std::vector<std::string>{"n"});
  EXPECT_EQ(TypeToJson(a.type()), nlohmann::json::parse("[1,true,3]"));
  Doc copy(DocOptions{.client_id = 2});
  ASSERT_TRUE(copy.ApplyUpdate(*doc.EncodeStateAsUpdate()).has_value());
  EXPECT_EQ(TypeToJson(copy.GetMap("m").type()), TypeToJson(m.type()));
  EXPECT_EQ(TypeToJson(copy.GetArray("a").type()), nlohmann::json::parse("[1,true,3]"));
}

TEST(crdt_doc, RemoteUseOfOurClientIdMakesUsPickAnother) {
  Doc a(DocOptions{.client_id = 77});
  Doc b(DocOptions{.client_id = 77});
  auto u = a.Transact([&] { ASSERT_TRUE(a.GetText("t").Insert(0, "x").has_value()); });
  ASSERT_TRUE(b.ApplyUpdate(u).has_value());
  EXPECT_NE(b.client_id(), 77u);
  auto u2 = b.Transact([&] { ASSERT_TRUE(b.GetText("t").Insert(1, "y").has_value()); });
  ASSERT_TRUE(a.ApplyUpdate(u2).has_value());
  EXPECT_EQ(a.GetText("t").ToString(), "xy");
}

TEST(crdt_doc, PendingUntilDependencyArrivesAndIdempotent) {
  Doc src(DocOptions{.client_id = 5});
  auto t = src.GetText("t");
  auto u1 = src.Transact([&] { ASSERT_TRUE(t.Insert(0, "ab").has_value()); });
  auto u2 = src.Transact([&] { ASSERT_TRUE(t.Insert(2, "cd").has_value()); });
  auto u3 = src.Transact([&] { ASSERT_TRUE(t.Delete(0, 1).has_value()); });
  Doc dst(DocOptions{.client_id = 6});
  std::vector<TransactionEvent> remote;
  dst.Observe([&](const TransactionEvent& ev) {
    remote.push_back({ev.local, ev.changes, ev.before, ev.after, nullptr, {}});
  });
  ASSERT_TRUE(dst.ApplyUpdate(u3).has_value());
  ASSERT_TRUE(dst.ApplyUpdate(u2).has_value());
  EXPECT_TRUE(dst.HasPendingStructs());
  EXPECT_TRUE(dst.HasPendingDeleteSet());
  EXPECT_EQ(dst.PendingMissing().at(5), 1u);  // clock 1 must arrive (the gap before "cd")
  EXPECT_EQ(dst.GetText("t").ToString(), "");
  ASSERT_TRUE(dst.ApplyUpdate(u1).has_value());
  EXPECT_FALSE(dst.HasPendingStructs());
  EXPECT_FALSE(dst.HasPendingDeleteSet());
  EXPECT_EQ(dst.GetText("t").ToString(), "bcd");
  auto state = *dst.EncodeStateAsUpdate();
  ASSERT_TRUE(dst.ApplyUpdate(u2).has_value());  // duplicates change nothing
  ASSERT_TRUE(dst.ApplyUpdate(u1).has_value());
  EXPECT_EQ(*dst.EncodeStateAsUpdate(), state);
  EXPECT_EQ(*dst.EncodeStateAsUpdate(), *src.EncodeStateAsUpdate());
  ASSERT_FALSE(remote.empty());
  EXPECT_FALSE(remote.back().local);
}

TEST(crdt_doc, FormattingAndDelta) {
  Doc doc(DocOptions{.client_id = 1});
  auto t = doc.GetText("t");
  ASSERT_TRUE(t.Insert(0, "hello world").has_value());
  ASSERT_TRUE(t.Format(0, 5, {{"bold", Any::Bool(true)}}).has_value());
  ASSERT_TRUE(t.InsertEmbed(11, Any::Object({{"image", Any::String("x.png")}})).has_value());
  auto d = DeltaToJson(t.ToDelta());
  EXPECT_EQ(d,
            nlohmann::json::parse(
                R"([{"insert":"hello","attributes":{"bold":true}},{"insert":" world"},{"insert":{"image":"x.png"}}])"));
  ASSERT_TRUE(t.Format(0, 5, {{"bold", Any::Null()}}).has_value());
  EXPECT_EQ(DeltaToJson(t.ToDelta())[0], nlohmann::json::parse(R"({"insert":"hello world"})"));
  Doc copy(DocOptions{.client_id = 2});
  ASSERT_TRUE(copy.ApplyUpdate(*doc.EncodeStateAsUpdate()).has_value());
  EXPECT_EQ(DeltaToJson(copy.GetText("t").ToDelta()), DeltaToJson(t.ToDelta()));
}

}  // namespace
}  // namespace cnx::crdt
