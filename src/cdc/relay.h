// Relay: committed outbox inserts → bus events, confirming WAL positions to
// PostgreSQL only after the bus made them durable.
//
// Run() connects (a normal connection for setup and cleanup, a replication
// connection for the stream), creates the publication (FOR TABLE outbox, with
// inserts and updates only: the relay's own deletes of relayed rows are not
// streamed back to it) and
// the pgoutput slot when absent, and streams from the slot's confirmed
// position with protocol 1. Each committed transaction becomes one bus batch
// whose sequence is the transaction's end LSN (transactions without outbox
// inserts become empty batches, so acknowledgements stay in commit order).
// When the bus acknowledges a batch, FeedbackPolicy may confirm that end LSN;
// keepalives are answered and status updates sent by the policy's rules.
// Acknowledged outbox rows are deleted in bounded batches, when the stream is
// idle and also while it is busy (a full batch waiting, or every second).
//
// Delivery is at-least-once: after a restart the slot replays everything
// after the last confirmed position. Within one Relay object, transactions
// already handed to the bus are not published twice after a reconnect.
//
// Thread safety: Run() blocks its caller; RequestStop() and the accessors may
// be called from other threads. One Relay per slot. Acknowledgements that
// arrive after the Relay was destroyed are ignored safely.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "bus/bus.h"
#include "cdc/envelope.h"
#include "cdc/frames.h"
#include "pg/connection.h"

namespace cnx::cdc {

struct RelayOptions {
  std::string conninfo;  // libpq URL / key=value; the role needs REPLICATION (or superuser)
  std::string slot = "cnx_relay";
  std::string publication = "cnx_outbox";
  OutboxOptions outbox;
  FeedbackPolicy::Options feedback;
  size_t cleanup_batch = 1000;  // outbox rows deleted per statement
  bool cleanup = true;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds idle_wait{100};  // longest wait for the socket per loop turn
  // After a burst of events, once the stream is idle and the bus has
  // acknowledged all of them, return freed heap pages to the system
  // (malloc_trim; at most every 5 s; glibc only).
  bool release_memory_when_idle = true;
};

struct RelayStats {
  uint64_t transactions = 0;
  uint64_t events = 0;
  uint64_t skipped_updates = 0;  // UPDATEs of outbox rows (not relayed)
  Lsn published_lsn = 0;         // end LSN of the last batch handed to the bus
  Lsn durable_lsn = 0;           // end LSN of the last batch the bus acknowledged
  Lsn confirmed_lsn = 0;         // last position reported to PostgreSQL
  uint64_t rows_deleted = 0;
};

class Relay {
 public:
  Relay(RelayOptions options, bus::Bus& bus);

  // Streams until RequestStop() or an error (connection loss, failed batch).
  // The caller decides whether to run again (typically with a backoff).
  Status Run();
  void RequestStop() { stop_.store(true); }

  RelayStats stats() const;

  // Creates the publication and the slot when absent (Run() does it too).
  // Call it before accepting writes: changes committed before the slot
  // exists are not in its stream.
  Status Setup();

 private:
  Status CleanUp();

  RelayOptions options_;
  bus::Bus& bus_;
  std::atomic<bool> stop_{false};
  Lsn published_ = 0;  // last sequence handed to the bus (survives reconnects and restarts on the same bus)

  // What the bus's ack callbacks touch: shared with them, so an acknowledgement
  // that arrives after the Relay is gone is harmless.
  struct Shared {
    std::atomic<Lsn> durable{0};
    std::atomic<bool> bus_failed{false};
    mutable std::mutex mu;
    RelayStats stats;
    std::vector<std::string> acked_ids;  // outbox rows whose events are durable
  };
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::optional<pg::Connection> cleanup_conn_;
};

}  // namespace cnx::cdc
