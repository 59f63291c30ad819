#include "collab/send_queue.h"

#include <gtest/gtest.h>

#include "collab/protocol.h"
#include "crdt/doc.h"

namespace cnx::collab {
namespace {

using Frame = SendQueue::Frame;

Frame F(std::vector<uint8_t> bytes) {
  return std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
}

// Updates of one client typing "a", "b", "c", ... at the end of a text, and
// of a second client inserting at the start.
struct Typing {
  crdt::Doc a{crdt::DocOptions{.client_id = 1}};
  crdt::Doc b{crdt::DocOptions{.client_id = 2}};
  std::vector<uint8_t> Type(crdt::Doc& d, uint64_t at, std::string_view s) {
    return d.Transact([&] { ASSERT_TRUE(d.GetText("t").Insert(at, s).has_value()); });
  }
};

std::string Apply(const std::vector<Frame>& frames) {
  crdt::Doc d;
  for (const auto& f : frames) {
    auto m = ParseMessage(*f);
    EXPECT_TRUE(m.has_value());
    if (m && (m->kind == MessageKind::kUpdate || m->kind == MessageKind::kSyncStep2)) {
      EXPECT_TRUE(d.ApplyUpdate(m->data).has_value());
    }
  }
  return d.GetText("t").ToString();
}

std::vector<Frame> Drain(SendQueue& q) {
  std::vector<Frame> out;
  while (auto f = q.Take()) {
    out.push_back(f);
    q.Done();
  }
  return out;
}

TEST(SendQueue, MergesTheUpdatesThatWaitedBehindAWrite) {
  Typing t;
  SendQueue q(1 << 20);
  std::vector<Frame> sent;
  ASSERT_TRUE(q.Push(F(EncodeUpdate(t.Type(t.a, 0, "x")))));
  auto first = q.Take();  // being written
  ASSERT_TRUE(first);
  sent.push_back(first);
  uint64_t len = 1;
  for (char c : std::string("hello")) {
    ASSERT_TRUE(q.Push(F(EncodeUpdate(t.Type(t.a, len++, std::string(1, c))))));
  }
  ASSERT_TRUE(q.Push(F(EncodeUpdate(t.Type(t.b, 0, "B")))));
  q.Done();
  auto rest = Drain(q);
  ASSERT_EQ(rest.size(), 1u);  // six updates, one frame
  EXPECT_TRUE(IsUpdateFrame(*rest[0]));
  EXPECT_EQ(q.merged_frames(), 5u);
  EXPECT_EQ(q.bytes(), 0u);
  sent.insert(sent.end(), rest.begin(), rest.end());
  crdt::Doc all;
  ASSERT_TRUE(all.ApplyUpdate(*t.a.EncodeStateAsUpdate()).has_value());
  ASSERT_TRUE(all.ApplyUpdate(*t.b.EncodeStateAsUpdate()).has_value());
  EXPECT_EQ(Apply(sent), all.GetText("t").ToString());
}

TEST(SendQueue, OtherFramesKeepTheirPlace) {
  Typing t;
  SendQueue q(1 << 20);
  auto aw = F(EncodeAwareness(EncodeAwarenessUpdate({{7, 1, "{}"}})));
  auto step2 = F(EncodeSyncStep2(t.Type(t.a, 0, "a")));
  ASSERT_TRUE(q.Push(step2));
  ASSERT_TRUE(q.Push(F(EncodeUpdate(t.Type(t.a, 1, "b")))));
  ASSERT_TRUE(q.Push(F(EncodeUpdate(t.Type(t.a, 2, "c")))));
  ASSERT_TRUE(q.Push(aw));
  ASSERT_TRUE(q.Push(F(EncodeUpdate(t.Type(t.a, 3, "d")))));
  auto out = Drain(q);
  ASSERT_EQ(out.size(), 4u);  // step 2 | b+c merged | awareness | d
  EXPECT_EQ(out[0], step2);
  EXPECT_TRUE(IsUpdateFrame(*out[1]));
  EXPECT_EQ(out[2], aw);
  EXPECT_TRUE(IsUpdateFrame(*out[3]));
  EXPECT_EQ(Apply(out), "abcd");
}

TEST(SendQueue, ABacklogOverTheBoundIsMergedThenRefused) {
  Typing t;
  std::vector<Frame> updates;
  size_t total = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    updates.push_back(F(EncodeUpdate(t.Type(t.a, i, "z"))));
    total += updates.back()->size();
  }
  // Room for the merged backlog but not for 50 separate frames: merged in
  // place, nothing refused.
  SendQueue q(total / 2);
  auto in_flight = F(EncodeAwareness(EncodeAwarenessUpdate({{7, 1, "{}"}})));
  ASSERT_TRUE(q.Push(in_flight));
  ASSERT_EQ(q.Take(), in_flight);
  for (const auto& u : updates) ASSERT_TRUE(q.Push(u));
  EXPECT_LE(q.bytes(), total / 2);
  EXPECT_GT(q.merged_frames(), 0u);
  q.Done();
  EXPECT_EQ(Apply(Drain(q)), std::string(50, 'z'));

  // Frames that cannot be merged (awareness) beyond the bound: refused.
  SendQueue small(64);
  bool refused = false;
  for (int i = 0; i < 10 && !refused; ++i) {
    refused = !small.Push(F(EncodeAwareness(EncodeAwarenessUpdate({{7, static_cast<uint64_t>(i), "{\"x\":1}"}}))));
  }
  EXPECT_TRUE(refused);
}

}  // namespace
}  // namespace cnx::collab
