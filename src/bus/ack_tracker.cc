#include "bus/ack_tracker.h"

#include <algorithm>
#include <vector>

namespace cnx::bus {

Result<AckTracker::Batch*> AckTracker::Register(uint64_t sequence, size_t deliveries, AckCallback callback) {
  std::unique_lock lock(mu_);
  if (any_registered_ && sequence <= last_sequence_) {
    return Err(Module::kBus, ErrorCode::kFailedPrecondition,
               "batch sequence " + std::to_string(sequence) + " is not greater than " + std::to_string(last_sequence_));
  }
  any_registered_ = true;
  last_sequence_ = sequence;
  auto b = std::make_unique<Batch>();
  b->sequence = sequence;
  b->remaining = deliveries;
  b->callback = std::move(callback);
  Batch* raw = b.get();
  pending_.push_back(std::move(b));
  if (deliveries == 0) Dispatch(lock);
  return raw;
}

void AckTracker::EventDone(Batch* batch, const Status& status, size_t count) {
  std::unique_lock lock(mu_);
  if (!status && batch->status) batch->status = status;
  batch->remaining -= std::min(count, batch->remaining);
  if (batch->remaining == 0) Dispatch(lock);
}

void AckTracker::Dispatch(std::unique_lock<std::mutex>& lock) {
  if (dispatching_) return;  // the dispatching thread will see our batch
  dispatching_ = true;
  while (!pending_.empty() && pending_.front()->remaining == 0) {
    std::unique_ptr<Batch> b = std::move(pending_.front());
    pending_.pop_front();
    if (!b->status) failed_ = true;
    if (!failed_) durable_through_ = b->sequence;
    BatchAck ack{b->sequence, b->status, durable_through_};
    lock.unlock();
    if (b->callback) b->callback(ack);
    lock.lock();
  }
  dispatching_ = false;
  if (pending_.empty()) idle_cv_.notify_all();
}

uint64_t AckTracker::last_sequence() const {
  std::lock_guard lock(mu_);
  return last_sequence_;
}

uint64_t AckTracker::durable_through() const {
  std::lock_guard lock(mu_);
  return durable_through_;
}

bool AckTracker::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

size_t AckTracker::pending_batches() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

bool AckTracker::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return pending_.empty() && !dispatching_; });
}

}  // namespace cnx::bus
