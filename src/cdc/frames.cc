#include "cdc/frames.h"

#include <algorithm>

namespace cnx::cdc {

namespace {
uint64_t Be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}
void PutBe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}
std::unexpected<Error> BadFrame(std::string msg) {
  return Err(Module::kCdc, ErrorCode::kDataLoss, "replication frame: " + std::move(msg));
}
}  // namespace

Result<Frame> ParseFrame(std::span<const uint8_t> b) {
  if (b.empty()) return BadFrame("empty CopyData");
  Frame f;
  switch (b[0]) {
    case 'w':
      if (b.size() < kXLogDataHeaderSize) return BadFrame("XLogData shorter than its 25-byte header");
      f.kind = Frame::Kind::kXLogData;
      f.xlog.data_start = Be64(b.data() + 1);
      f.xlog.wal_end = Be64(b.data() + 9);
      f.xlog.send_time_us = static_cast<int64_t>(Be64(b.data() + 17));
      f.xlog.message = b.subspan(kXLogDataHeaderSize);
      return f;
    case 'k':
      if (b.size() != kKeepaliveSize) return BadFrame("keepalive must be 18 bytes, got " + std::to_string(b.size()));
      f.kind = Frame::Kind::kKeepalive;
      f.keepalive.wal_end = Be64(b.data() + 1);
      f.keepalive.send_time_us = static_cast<int64_t>(Be64(b.data() + 9));
      if (b[17] > 1) return BadFrame("keepalive reply flag must be 0 or 1");
      f.keepalive.reply_requested = b[17] == 1;
      return f;
    default:
      return BadFrame("unknown CopyData type byte " + std::to_string(b[0]));
  }
}

std::array<uint8_t, kStandbyStatusSize> EncodeStandbyStatus(const StandbyStatus& s) {
  std::array<uint8_t, kStandbyStatusSize> out{};
  out[0] = 'r';
  PutBe64(out.data() + 1, s.written);
  PutBe64(out.data() + 9, s.flushed);
  PutBe64(out.data() + 17, s.applied);
  PutBe64(out.data() + 25, static_cast<uint64_t>(s.client_time_us));
  out[33] = s.reply_requested ? 1 : 0;
  return out;
}

Result<StandbyStatus> ParseStandbyStatus(std::span<const uint8_t> b) {
  if (b.size() != kStandbyStatusSize || b[0] != 'r') return BadFrame("not a 34-byte standby status update");
  StandbyStatus s;
  s.written = Be64(b.data() + 1);
  s.flushed = Be64(b.data() + 9);
  s.applied = Be64(b.data() + 17);
  s.client_time_us = static_cast<int64_t>(Be64(b.data() + 25));
  s.reply_requested = b[33] != 0;
  return s;
}

std::array<uint8_t, kKeepaliveSize> EncodeKeepalive(const Keepalive& k) {
  std::array<uint8_t, kKeepaliveSize> out{};
  out[0] = 'k';
  PutBe64(out.data() + 1, k.wal_end);
  PutBe64(out.data() + 9, static_cast<uint64_t>(k.send_time_us));
  out[17] = k.reply_requested ? 1 : 0;
  return out;
}

void AppendXLogDataHeader(std::string& out, Lsn data_start, Lsn wal_end, int64_t send_time_us) {
  uint8_t h[kXLogDataHeaderSize];
  h[0] = 'w';
  PutBe64(h + 1, data_start);
  PutBe64(h + 9, wal_end);
  PutBe64(h + 17, static_cast<uint64_t>(send_time_us));
  out.append(reinterpret_cast<const char*>(h), sizeof h);
}

// ---------------------------------------------------------------- FeedbackPolicy

FeedbackPolicy::FeedbackPolicy(Lsn start_lsn, Options options)
    : options_(options), durable_(start_lsn), received_end_(start_lsn), reported_(start_lsn) {}

void FeedbackPolicy::OnMessage(const Message& m) {
  switch (m.type) {
    case MessageType::kBegin:
      in_tx_ = true;
      break;
    case MessageType::kCommit:
      in_tx_ = false;
      received_end_ = std::max(received_end_, m.end_lsn);
      break;
    case MessageType::kStreamStart:
      in_stream_block_ = true;
      if (std::find(open_streamed_.begin(), open_streamed_.end(), m.xid) == open_streamed_.end()) {
        open_streamed_.push_back(m.xid);
      }
      break;
    case MessageType::kStreamStop:
      in_stream_block_ = false;
      break;
    case MessageType::kStreamCommit:
      std::erase(open_streamed_, m.xid);
      received_end_ = std::max(received_end_, m.end_lsn);
      break;
    case MessageType::kStreamAbort:
      if (m.subxid == m.xid) std::erase(open_streamed_, m.xid);
      break;
    default:
      break;
  }
}

void FeedbackPolicy::OnKeepalive(const Keepalive& k, Time /*now*/) {
  keepalive_end_ = std::max(keepalive_end_, k.wal_end);
  if (k.reply_requested) reply_due_ = true;
}

void FeedbackPolicy::OnDurable(Lsn end_lsn) {
  durable_ = std::max(durable_, end_lsn);
}

Lsn FeedbackPolicy::confirmable() const {
  Lsn v = durable_;
  const bool idle = !in_tx_ && !in_stream_block_ && open_streamed_.empty();
  if (idle && durable_ >= received_end_) v = std::max(v, keepalive_end_);
  return std::max(v, reported_);
}

std::optional<StandbyStatus> FeedbackPolicy::Poll(Time now, int64_t client_time_us) {
  const Lsn c = confirmable();
  if (c > reported_ && !advance_pending_) {
    advance_pending_ = true;
    advanced_at_ = now;
  }
  const bool send = reply_due_ || !ever_sent_ || (advance_pending_ && now - advanced_at_ >= options_.coalesce) ||
                    now - last_sent_ >= options_.interval;
  if (!send) return std::nullopt;
  StandbyStatus s{.written = c, .flushed = c, .applied = c, .client_time_us = client_time_us, .reply_requested = false};
  reported_ = c;
  last_sent_ = now;
  ever_sent_ = true;
  reply_due_ = false;
  advance_pending_ = false;
  return s;
}

FeedbackPolicy::Time FeedbackPolicy::NextDeadline() const {
  if (reply_due_ || !ever_sent_ || confirmable() > reported_) {
    if (advance_pending_ && !reply_due_)
      return std::min(advanced_at_ + options_.coalesce, last_sent_ + options_.interval);
    return Time::min();
  }
  return last_sent_ + options_.interval;
}

}  // namespace cnx::cdc
