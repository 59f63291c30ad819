// AckTracker: turns per-event durability reports into per-batch
// acknowledgements delivered in sequence order (the Bus contract, bus.h).
//
// Register() a batch with the number of event deliveries that must become
// durable; call EventDone() once per delivery from any thread. Callbacks run on
// the thread whose EventDone() (or Register()) completed the oldest pending
// batch, one at a time and in order, without internal locks held, so a callback
// may call Register() (publish again). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "bus/bus.h"

namespace cnx::bus {

class AckTracker {
 public:
  struct Batch;  // opaque handle, valid until its callback has run

  // kFailedPrecondition when `sequence` is not greater than the last one.
  // `deliveries` may be 0 (nothing to wait for: the batch is durable at once).
  Result<Batch*> Register(uint64_t sequence, size_t deliveries, AckCallback callback);
  // Completes `count` deliveries of `batch`; a non-ok status fails the whole batch.
  void EventDone(Batch* batch, const Status& status, size_t count = 1);

  uint64_t durable_through() const;
  uint64_t last_sequence() const;  // of the last batch registered; 0 before the first
  bool failed() const;
  size_t pending_batches() const;
  // Waits until no batch is pending; false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  void Dispatch(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::deque<std::unique_ptr<Batch>> pending_;  // in sequence order
  uint64_t last_sequence_ = 0;
  bool any_registered_ = false;
  uint64_t durable_through_ = 0;
  bool failed_ = false;
  bool dispatching_ = false;
};

struct AckTracker::Batch {
  uint64_t sequence = 0;
  size_t remaining = 0;
  Status status;
  AckCallback callback;
};

}  // namespace cnx::bus
