#include <gtest/gtest.h>

#include "collab/annotations.h"
#include "crdt/doc.h"
#include "crdt/relative_position.h"

namespace cnx::collab {
namespace {

TEST(collab_anchor, RangeFollowsEditsAroundIt) {
  crdt::Doc server(crdt::DocOptions{.client_id = 1});
  crdt::Doc client(crdt::DocOptions{.client_id = 2});
  auto st = server.GetText("content");
  auto ct = client.GetText("content");
  auto seed = server.Transact([&] { ASSERT_TRUE(st.Insert(0, "one two three").has_value()); });
  ASSERT_TRUE(client.ApplyUpdate(seed).has_value());
  auto anchor = AnchorRange(server, "content", 4, 7);  // "two"
  ASSERT_TRUE(anchor.has_value());
  EXPECT_EQ((*anchor)["kind"], "yjs-relative-position");
  // The binary forms are Yjs' encodings of the JSON forms.
  auto from_json = crdt::RelativePositionFromJson((*anchor)["start"]);
  ASSERT_TRUE(from_json.has_value());
  auto bytes = crdt::Base64Decode((*anchor)["startBytes"].get<std::string>());
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*crdt::EncodeRelativePosition(*from_json), *bytes);
  // Text typed at both edges stays outside; text before shifts the range.
  auto u = client.Transact([&] {
    ASSERT_TRUE(ct.Insert(7, "!!").has_value());
    ASSERT_TRUE(ct.Insert(4, "<<").has_value());
    ASSERT_TRUE(ct.Insert(0, "zero ").has_value());
  });
  ASSERT_TRUE(server.ApplyUpdate(u).has_value());
  auto r = ResolveAnchor(server, *anchor);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(st.ToString().substr(r->start, r->end - r->start), "two");
  // Deleting the range collapses it where it was.
  ASSERT_TRUE(st.Delete(r->start - 1, r->end - r->start + 2).has_value());
  r = ResolveAnchor(server, *anchor);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->start, r->end);
  EXPECT_EQ(r->start, 10u);  // "zero one <" is 10 characters
}

// An anchor is also read from stored rows a client wrote (an annotation
// created without offsets keeps its positionData as sent): whatever its
// members hold, it does not resolve rather than throw.
TEST(collab_anchor, AMalformedAnchorDoesNotResolve) {
  crdt::Doc doc(crdt::DocOptions{.client_id = 1});
  (void)doc.Transact([&] { ASSERT_TRUE(doc.GetText("content").Insert(0, "one two three").has_value()); });
  auto good = AnchorRange(doc, "content", 4, 7);
  ASSERT_TRUE(good.has_value());
  for (const char* key : {"kind", "root"}) {
    for (const nlohmann::json& value : {nlohmann::json(5), nlohmann::json::array(), nlohmann::json(nullptr)}) {
      nlohmann::json bad = *good;
      bad[key] = value;
      std::optional<TextRange> r;
      EXPECT_NO_THROW(r = ResolveAnchor(doc, bad)) << bad;
      EXPECT_FALSE(r.has_value()) << bad;
    }
  }
}

TEST(collab_anchor, RejectsBadRangesAndForeignAnchors) {
  crdt::Doc doc(crdt::DocOptions{.client_id = 1});
  ASSERT_TRUE(doc.GetText("content").Insert(0, "abc").has_value());
  EXPECT_FALSE(AnchorRange(doc, "content", 2, 1).has_value());
  EXPECT_FALSE(AnchorRange(doc, "content", 0, 4).has_value());
  auto empty = AnchorRange(doc, "content", 3, 3);  // at the end
  ASSERT_TRUE(empty.has_value());
  auto r = ResolveAnchor(doc, *empty);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->start, 3u);
  EXPECT_EQ(r->end, 3u);
  EXPECT_FALSE(ResolveAnchor(doc, nlohmann::json::object()).has_value());
  auto other = *empty;
  other["start"]["item"] = {{"client", 99}, {"clock", 0}};  // content this document has not seen
  EXPECT_FALSE(ResolveAnchor(doc, other).has_value());
}

}  // namespace
}  // namespace cnx::collab
