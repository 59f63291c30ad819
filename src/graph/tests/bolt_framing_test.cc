#include <gtest/gtest.h>

#include "graph/bolt_connection.h"
#include "graph/packstream.h"

namespace cnx::graph {
namespace {

std::span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(BoltFraming, ExampleFramesFromTheProtocolNotes) {
  std::string out;
  AppendChunked(out, packstream::Encode(Value(Structure{bolt::kReset, {}})));
  EXPECT_EQ(out, std::string("\x00\x02\xB0\x0F\x00\x00", 6));
  out.clear();
  AppendChunked(out, packstream::Encode(Value(Structure{bolt::kPull, {Value(Map{{"n", -1}})}})));
  EXPECT_EQ(out, std::string("\x00\x06\xB1\x3F\xA1\x81\x6E\xFF\x00\x00", 10));
}

TEST(BoltFraming, LargeMessagesSplitAt65535AndReassemble) {
  std::string body(200000, 'x');
  std::string out;
  AppendChunked(out, body);
  EXPECT_EQ(out.size(), body.size() + 4 * 2 + 2);  // 4 chunks + end marker
  EXPECT_EQ(static_cast<uint8_t>(out[0]), 0xFF);
  EXPECT_EQ(static_cast<uint8_t>(out[1]), 0xFF);
  std::vector<std::string> msgs;
  auto used = SplitMessages(B(out), 1 << 20, msgs);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, out.size());
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], body);
  msgs.clear();
  EXPECT_FALSE(SplitMessages(B(out), 100000, msgs).has_value());  // bound enforced
}

TEST(BoltFraming, NoopsAreSkippedAndPartialMessagesWait) {
  std::string stream("\x00\x00", 2);
  AppendChunked(stream, packstream::Encode(Value(Structure{bolt::kSuccess, {Value(Map{})}})));
  stream.append("\x00\x00", 2);
  std::string second;
  AppendChunked(second, packstream::Encode(Value(Structure{bolt::kIgnored, {}})));
  std::string partial = stream + second.substr(0, 3);
  std::vector<std::string> msgs;
  auto used = SplitMessages(B(partial), 1024, msgs);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, stream.size());
  ASSERT_EQ(msgs.size(), 1u);
  auto r = DecodeReply(msgs[0]);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, BoltReply::Type::kSuccess);
}

TEST(BoltFraming, DecodeReplyRejectsWhatIsNotAReply) {
  EXPECT_FALSE(DecodeReply(packstream::Encode(Value(Structure{bolt::kRun, {}}))).has_value());
  EXPECT_FALSE(DecodeReply(packstream::Encode(Value(Structure{bolt::kSuccess, {Value(1)}}))).has_value());
  EXPECT_FALSE(DecodeReply(packstream::Encode(Value(Map{}))).has_value());
  EXPECT_FALSE(DecodeReply(std::string("\xB1\x71", 2)).has_value());
  auto rec = DecodeReply(packstream::Encode(Value(Structure{bolt::kRecord, {Value(List{1, "a", nullptr})}})));
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->fields.size(), 3u);
}

}  // namespace
}  // namespace cnx::graph
