// BatchRun (internal): the retry and dead-letter rules of bus.h for one batch
// of deliveries, shared by the in-process and Kafka buses.
//
// Run() hands the batch to the handler (attempt 1), then hands the kRetryLater
// ones to it again after a backoff that doubles per round, until each one is
// done: kOk, or a dead letter is due (kReject, or `max_attempts` reached). It
// stops early when `sleep` returns false (the subscription is closing); the
// deliveries not done then stay unprocessed. The caller makes dead letters
// durable (or enqueues them) and only then counts them processed.
//
// Not thread-safe; a worker keeps one and reuses its buffers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.h"

namespace cnx::bus::internal {

struct BatchItem {
  const Event* event = nullptr;
  int32_t partition = -1;
  int64_t offset = -1;
};

class BatchRun {
 public:
  // `sleep(d)` waits `d` and returns false when the subscription is closing.
  void Run(std::span<const BatchItem> items, const SubscribeOptions& options, const BatchHandler& handler,
           const std::function<bool(std::chrono::milliseconds)>& sleep);

  // After Run(), per item: processed by the handler (kOk) ...
  bool ok(size_t i) const { return state_[i] == State::kOk; }
  // ... or its dead letter (kReject / retries exhausted), else null (unfinished).
  const std::optional<Event>& dead_letter(size_t i) const { return dead_[i]; }

 private:
  enum class State : uint8_t { kOpen, kOk, kDead };
  std::vector<State> state_;
  std::vector<int> attempt_;
  std::vector<std::optional<std::chrono::system_clock::time_point>> first_failure_;
  std::vector<std::optional<Event>> dead_;
  std::vector<size_t> open_, again_;
  std::vector<Delivery> deliveries_;
  std::vector<HandlerResult> results_;
};

}  // namespace cnx::bus::internal
