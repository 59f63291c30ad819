// Latency trace of the collaboration path, for diagnosis (off by default).
//
// With the environment variable CNX_COLLAB_TRACE=1 the hub records, per
// accepted update, when it was received, applied and queued, taken by the
// writer, committed, and released (its broadcast handed to the peers), and
// the connections record, per broadcast frame, the delay until their io
// thread queued it, until its write started, and the write itself. When
// nothing was recorded for a second (the end of a benchmark phase) the
// maintenance thread logs per-stage percentiles and the slowest updates with
// their breakdown and wall-clock time (to correlate with other logs), and
// clears the records. docs/collab.md, "Latency trace".
//
// Thread safety: every function may be called from any thread. When the
// trace is off each call is one relaxed load of a cached flag.
#pragma once

#include <chrono>
#include <cstddef>

namespace cnx::collab::trace {

using Clock = std::chrono::steady_clock;

// True when CNX_COLLAB_TRACE=1 (read once).
bool Enabled();

struct OpTimes {
  Clock::time_point received;   // Hub::Receive entered (before the room lock)
  Clock::time_point queued;     // applied to the room's document and queued
  Clock::time_point taken;      // the writer took its batch
  Clock::time_point sent;       // the batch's statement was sent (after building it)
  Clock::time_point committed;  // the commit returned
  Clock::time_point released;   // the room's broadcast was handed to its peers
  size_t batch = 0;             // operations in its group commit
  int slot = 0;                 // which commit pipeline slot carried it
};
void RecordOp(const OpTimes& op);

// One broadcast frame on one connection: posted → queued on its io thread →
// write started (zero when the frame was merged into another) → written.
void RecordFrame(Clock::duration to_io, Clock::duration to_write, Clock::duration write);

// Logs and clears the records when the last one is older than `quiet`.
void DumpIfQuiet(Clock::duration quiet);

}  // namespace cnx::collab::trace
