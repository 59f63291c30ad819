#include "collab/protocol.h"

#include <gtest/gtest.h>

namespace cnx::collab {
namespace {

std::vector<uint8_t> B(std::initializer_list<int> v) {
  return std::vector<uint8_t>(v.begin(), v.end());
}

TEST(Protocol, ParsesEveryMessageKind) {
  auto step1 = B({0, 0, 1, 0});  // sync step 1 with the empty state vector
  auto m = ParseMessage(step1);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->kind, MessageKind::kSyncStep1);
  EXPECT_EQ(m->data.size(), 1u);

  auto update = B({0, 2, 2, 0, 0});
  m = ParseMessage(update);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->kind, MessageKind::kUpdate);
  EXPECT_EQ(std::vector<uint8_t>(m->data.begin(), m->data.end()), B({0, 0}));

  auto query = B({3});
  m = ParseMessage(query);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->kind, MessageKind::kQueryAwareness);
}

TEST(Protocol, RejectsMalformedFrames) {
  for (auto bad : {B({}), B({0}), B({0, 3, 0}), B({0, 2, 5, 0}), B({9}), B({0x80}), B({1, 10, 1})}) {
    EXPECT_FALSE(ParseMessage(bad).has_value());
  }
}

TEST(Protocol, EncodersRoundTrip) {
  auto sv = B({1, 7, 3});
  auto frame = EncodeSyncStep1(sv);
  auto m = ParseMessage(frame);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->kind, MessageKind::kSyncStep1);
  EXPECT_EQ(std::vector<uint8_t>(m->data.begin(), m->data.end()), sv);

  std::vector<AwarenessEntry> entries = {{42, 3, R"({"user":{"name":"a"}})"}, {7, 1, "null"}};
  auto aw = EncodeAwareness(EncodeAwarenessUpdate(entries));
  m = ParseMessage(aw);
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->kind, MessageKind::kAwareness);
  auto parsed = ParseAwareness(m->data);
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].client, 42u);
  EXPECT_EQ((*parsed)[0].clock, 3u);
  EXPECT_EQ((*parsed)[0].state, entries[0].state);
  EXPECT_EQ((*parsed)[1].state, "null");

  auto denied = EncodePermissionDenied("read-only");
  m = ParseMessage(denied);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->kind, MessageKind::kAuth);
}

TEST(Protocol, UpdateOriginReadsTheFirstClientBlock) {
  // One block, one struct, client 5, clock 9 (body not inspected).
  auto o = UpdateOrigin(B({1, 1, 5, 9, 4}));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->first, 5u);
  EXPECT_EQ(o->second, 9u);
  o = UpdateOrigin(B({0, 0}));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->first, 0u);
  EXPECT_FALSE(UpdateOrigin(B({1, 1})).has_value());
}

}  // namespace
}  // namespace cnx::collab
