#include <gtest/gtest.h>

#include "cdc/event_json.h"
#include "cdc/frames.h"

namespace cnx::cdc {
namespace {

using namespace std::chrono_literals;
using Time = FeedbackPolicy::Time;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Frames, ParsesXLogData) {
  std::string f;
  AppendXLogDataHeader(f, 0x195C500, 0x195C600, 848909897621043);
  f += *DecodeHex("45");
  auto r = ParseFrame(Bytes(f));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->kind, Frame::Kind::kXLogData);
  EXPECT_EQ(r->xlog.data_start, 0x195C500u);
  EXPECT_EQ(r->xlog.wal_end, 0x195C600u);
  EXPECT_EQ(r->xlog.send_time_us, 848909897621043);
  ASSERT_EQ(r->xlog.message.size(), 1u);
  EXPECT_EQ(r->xlog.message[0], 'E');
}

TEST(Frames, ParsesKeepaliveAndRejectsBadFrames) {
  auto k = EncodeKeepalive({.wal_end = 0x1985AF8, .send_time_us = 42, .reply_requested = true});
  std::string ks(reinterpret_cast<const char*>(k.data()), k.size());
  auto r = ParseFrame(Bytes(ks));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->kind, Frame::Kind::kKeepalive);
  EXPECT_EQ(r->keepalive.wal_end, 0x1985AF8u);
  EXPECT_EQ(r->keepalive.send_time_us, 42);
  EXPECT_TRUE(r->keepalive.reply_requested);
  EXPECT_FALSE(ParseFrame(Bytes(ks.substr(0, 17))).has_value());
  EXPECT_FALSE(ParseFrame(Bytes(ks + "x")).has_value());
  EXPECT_FALSE(ParseFrame(Bytes(std::string("w") + std::string(23, '\0'))).has_value());
  EXPECT_FALSE(ParseFrame(Bytes("")).has_value());
  EXPECT_FALSE(ParseFrame(Bytes("q")).has_value());
}

TEST(Frames, StandbyStatusLayout) {
  auto b = EncodeStandbyStatus({.written = 0x0102030405060708,
                                .flushed = 0x1985AF8,
                                .applied = 0x1985AF8,
                                .client_time_us = 7,
                                .reply_requested = false});
  std::string hex;
  AppendHex(hex, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  EXPECT_EQ(hex,
            "72"
            "0102030405060708"
            "0000000001985af8"
            "0000000001985af8"
            "0000000000000007"
            "00");
  auto back = ParseStandbyStatus(b);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->flushed, 0x1985AF8u);
  EXPECT_EQ(back->client_time_us, 7);
}

Message Msg(MessageType t, Xid xid = 0, Lsn end = 0, Xid sub = 0) {
  Message m;
  m.type = t;
  m.xid = xid;
  m.end_lsn = end;
  m.subxid = sub;
  return m;
}

TEST(FeedbackPolicy, ConfirmsOnlyDurableCommits) {
  FeedbackPolicy p(0x100, {.interval = 10s, .coalesce = 100ms});
  Time t0{};
  auto first = p.Poll(t0, 0);  // the first status is sent at once
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->flushed, 0x100u);

  p.OnMessage(Msg(MessageType::kBegin, 1));
  p.OnMessage(Msg(MessageType::kCommit, 0, 0x200));
  // Received but not durable: nothing to confirm, and a keepalive does not change that.
  p.OnKeepalive({.wal_end = 0x300}, t0);
  EXPECT_EQ(p.confirmable(), 0x100u);
  EXPECT_FALSE(p.Poll(t0 + 1s, 0).has_value());

  p.OnDurable(0x200);
  // Idle and everything received is durable: the keepalive position may be confirmed.
  EXPECT_EQ(p.confirmable(), 0x300u);
  EXPECT_FALSE(p.Poll(t0 + 1s, 0).has_value());  // coalescing window starts
  EXPECT_FALSE(p.Poll(t0 + 1s + 50ms, 0).has_value());
  auto s = p.Poll(t0 + 1s + 100ms, 0);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->flushed, 0x300u);
  EXPECT_EQ(s->applied, 0x300u);
  EXPECT_EQ(p.confirmed(), 0x300u);
}

TEST(FeedbackPolicy, KeepaliveNotConfirmedInsideTransaction) {
  FeedbackPolicy p(0x100, {.interval = 10s, .coalesce = 0ms});
  Time t0{};
  p.Poll(t0, 0);
  p.OnMessage(Msg(MessageType::kBegin, 1));
  p.OnKeepalive({.wal_end = 0x500}, t0);
  EXPECT_EQ(p.confirmable(), 0x100u);
  // A streamed transaction left open between blocks also blocks it.
  p.OnMessage(Msg(MessageType::kCommit, 0, 0x200));
  p.OnDurable(0x200);
  p.OnMessage(Msg(MessageType::kStreamStart, 7));
  p.OnMessage(Msg(MessageType::kStreamStop));
  EXPECT_EQ(p.confirmable(), 0x200u);
  p.OnMessage(Msg(MessageType::kStreamAbort, 7, 0, 8));  // subtransaction only
  EXPECT_EQ(p.confirmable(), 0x200u);
  p.OnMessage(Msg(MessageType::kStreamAbort, 7, 0, 7));  // whole transaction
  EXPECT_EQ(p.confirmable(), 0x500u);
}

TEST(FeedbackPolicy, AnswersReplyRequestsAndSendsPeriodically) {
  FeedbackPolicy p(0x100, {.interval = 10s, .coalesce = 100ms});
  Time t0{};
  p.Poll(t0, 0);
  EXPECT_FALSE(p.Poll(t0 + 5s, 0).has_value());
  EXPECT_EQ(p.NextDeadline(), t0 + 10s);
  p.OnKeepalive({.wal_end = 0x100, .reply_requested = true}, t0 + 6s);
  EXPECT_EQ(p.NextDeadline(), Time::min());
  auto s = p.Poll(t0 + 6s, 123);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->client_time_us, 123);
  EXPECT_FALSE(p.Poll(t0 + 7s, 0).has_value());
  EXPECT_TRUE(p.Poll(t0 + 16s, 0).has_value());  // interval since the last status
}

TEST(FeedbackPolicy, NeverGoesBackwards) {
  FeedbackPolicy p(0x500, {.interval = 10s, .coalesce = 0ms});
  Time t0{};
  p.OnDurable(0x200);  // older than the start position
  auto s = p.Poll(t0, 0);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->flushed, 0x500u);
}

}  // namespace
}  // namespace cnx::cdc
