// CopyBoth frames of a logical replication stream, the standby status update,
// and the feedback policy that decides when to send one and which LSN to report.
//
// Server → client CopyData payloads are 'w' XLogData (25-byte header, then one
// pgoutput message) and 'k' primary keepalive (18 bytes). The client answers
// with 'r' standby status updates (34 bytes). All integers are big-endian.
// Parsing is zero-copy (XLogData::message points into the input), bounds-checked,
// and returns kDataLoss for malformed frames. Pure functions; thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cdc/lsn.h"
#include "cdc/pgoutput.h"

namespace cnx::cdc {

struct XLogData {
  Lsn data_start = 0;  // change LSN for I/U/D/T/M, end LSN for C, 0 for R/Y: never progress
  Lsn wal_end = 0;
  int64_t send_time_us = 0;          // µs since 2000-01-01 UTC
  std::span<const uint8_t> message;  // the pgoutput message
};

struct Keepalive {
  Lsn wal_end = 0;
  int64_t send_time_us = 0;
  bool reply_requested = false;
};

struct Frame {
  enum class Kind : char { kXLogData = 'w', kKeepalive = 'k' } kind = Kind::kXLogData;
  XLogData xlog;
  Keepalive keepalive;
};

inline constexpr size_t kXLogDataHeaderSize = 25;
inline constexpr size_t kKeepaliveSize = 18;
inline constexpr size_t kStandbyStatusSize = 34;

Result<Frame> ParseFrame(std::span<const uint8_t> copy_data);

struct StandbyStatus {
  Lsn written = 0;
  Lsn flushed = 0;  // becomes the slot's confirmed_flush_lsn
  Lsn applied = 0;
  int64_t client_time_us = 0;  // µs since 2000-01-01 UTC
  bool reply_requested = false;
};

std::array<uint8_t, kStandbyStatusSize> EncodeStandbyStatus(const StandbyStatus& s);
Result<StandbyStatus> ParseStandbyStatus(std::span<const uint8_t> bytes);  // for tests and tools

// Encodes frames as the server does (used by tests, tools and the fuzz seeds).
std::array<uint8_t, kKeepaliveSize> EncodeKeepalive(const Keepalive& k);
void AppendXLogDataHeader(std::string& out, Lsn data_start, Lsn wal_end, int64_t send_time_us);

// FeedbackPolicy: when to send a standby status update and what to report.
//
// The replication loop reports every received frame and every durability
// acknowledgement to it, and asks Poll(now) after each event or timer tick; it
// sends the returned status when there is one. Rules (pgoutput.md §3, §8):
//  * `flushed` = the end LSN of the last commit that is durable downstream, never
//    a position merely received;
//  * when idle between transactions (no open Begin or streamed block) and every
//    received commit is durable, the keepalive's wal_end may be confirmed too,
//    so a database that only writes unpublished tables still advances the slot;
//  * answer at once when a keepalive asks for a reply; send soon (after
//    `coalesce`) when the durable position advanced; send at least every
//    `interval` otherwise.
// Not thread-safe: owned by the replication loop.
class FeedbackPolicy {
 public:
  using Time = std::chrono::steady_clock::time_point;
  struct Options {
    std::chrono::milliseconds interval{10'000};
    std::chrono::milliseconds coalesce{100};
  };

  explicit FeedbackPolicy(Lsn start_lsn, Options options);
  explicit FeedbackPolicy(Lsn start_lsn) : FeedbackPolicy(start_lsn, Options{}) {}

  // Every decoded message (only B, C, S, E, c and A matter): tracks whether a
  // transaction or a streamed block is open and the last commit received.
  void OnMessage(const Message& m);
  void OnKeepalive(const Keepalive& k, Time now);
  // Everything up to and including the commit ending at `end_lsn` is durable.
  void OnDurable(Lsn end_lsn);

  // The status to send now, if any; records it as sent.
  std::optional<StandbyStatus> Poll(Time now, int64_t client_time_us);
  // When Poll() should be called next at the latest.
  Time NextDeadline() const;

  Lsn confirmed() const { return reported_; }  // last flushed value sent
  Lsn confirmable() const;                     // what the next status would report

 private:
  Options options_;
  Lsn durable_ = 0;        // highest durable commit end LSN (or start position)
  Lsn received_end_ = 0;   // end LSN of the last commit received
  Lsn keepalive_end_ = 0;  // wal_end of the last keepalive
  Lsn reported_ = 0;
  bool in_tx_ = false;
  bool in_stream_block_ = false;
  std::vector<Xid> open_streamed_;  // streamed transactions not yet committed/aborted
  bool reply_due_ = false;
  bool ever_sent_ = false;
  Time last_sent_{};
  Time advanced_at_{};
  bool advance_pending_ = false;
};

}  // namespace cnx::cdc
