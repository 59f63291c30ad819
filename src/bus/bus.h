// Bus: the event bus between the change-capture relay and the consumers
// (projectors, embedding scheduler, realtime fan-out).
//
// Contract, the same for every implementation (in-process, Kafka):
//  * Publish() takes a batch of events with a sequence number that grows with
//    every call. When every event of the batch is durable, the bus calls the
//    batch's AckCallback. Callbacks run in sequence order, one at a time, on a
//    bus thread, and report `durable_through`: the highest sequence such that it
//    and every earlier batch are durable. The relay confirms a WAL position to
//    PostgreSQL only up to `durable_through`. After a failed batch
//    `durable_through` stops advancing for good: the publisher must start over
//    from its last durable position with a new bus.
//  * Subscribe() joins a named consumer group. Each event of a subscribed topic
//    is delivered to one worker of every group at least once; events with the
//    same key are handled one at a time in publish order; an event counts as
//    processed (its offset is committed) only after its handler returned kOk or
//    the event was routed to the group's dead-letter topic. Handlers must be
//    idempotent (redelivery after a crash or rebalance is normal).
//  * SubscribeBatch() is Subscribe() with a handler that takes up to
//    `max_batch` deliveries per call and answers each: one handler call (and
//    one thread hand-over) per batch instead of per event, under the same
//    contract. The deliveries of one call have distinct keys, so a key still
//    has one event in progress at a time; a kRetryLater delivery comes back
//    (with the call's other retried ones) after the backoff, before its
//    worker takes anything new. Subscribe(h) is SubscribeBatch with
//    max_batch 1.
//  * HandlerResult kRetryLater redelivers the same event after a backoff (later
//    events of the same key wait); after `max_attempts` it is dead-lettered.
//    kReject dead-letters it at once. Dead letters go to topic "dlq.<group>"
//    with the same key and value and headers describing the failure.
//
// Thread safety: Bus methods may be called from any thread. Handlers run on
// the subscription's worker threads and must not call Subscription::Close().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace cnx::bus {

struct Header {
  std::string name;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};

struct Event {
  std::string topic;
  std::string key;    // partitioning key: same key → same order
  std::string value;  // payload bytes (JSON for outbox events)
  std::vector<Header> headers;

  // The first header called `name`, if any.
  std::optional<std::string_view> FindHeader(std::string_view name) const;
  friend bool operator==(const Event&, const Event&) = default;
};

struct BatchAck {
  uint64_t sequence = 0;
  Status status;                 // ok: every event of this batch is durable
  uint64_t durable_through = 0;  // see the contract above
};
using AckCallback = std::function<void(const BatchAck&)>;

struct Delivery {
  const Event& event;
  int attempt = 1;         // 1 on the first delivery in this subscription
  int32_t partition = -1;  // Kafka partition, or the in-process worker index
  int64_t offset = -1;     // Kafka offset, or the in-process topic sequence
};

struct HandlerResult {
  enum class Outcome : uint8_t { kOk, kRetryLater, kReject };
  Outcome outcome = Outcome::kOk;
  std::string reason;  // recorded in the dead-letter headers

  static HandlerResult Ok() { return {}; }
  static HandlerResult RetryLater(std::string why = {}) { return {Outcome::kRetryLater, std::move(why)}; }
  static HandlerResult Reject(std::string why = {}) { return {Outcome::kReject, std::move(why)}; }
};
using Handler = std::function<HandlerResult(const Delivery&)>;
// Writes one result per delivery (same index) into `results`, which holds
// kOk on entry; returns when every delivery of the call has its answer.
using BatchHandler = std::function<void(std::span<const Delivery> deliveries, std::span<HandlerResult> results)>;

struct SubscribeOptions {
  std::string group;
  std::vector<std::string> topics;
  int workers = 1;
  int max_attempts = 5;                         // deliveries of one event before it is dead-lettered
  std::chrono::milliseconds retry_backoff{50};  // doubles per attempt
  std::chrono::milliseconds max_backoff{2000};
  size_t max_batch = 256;  // SubscribeBatch: deliveries per handler call (Subscribe: 1)
};

class Subscription {
 public:
  virtual ~Subscription() = default;
  // Stops delivering: waits for running handlers, commits what was processed
  // and leaves the group. Events not yet processed stay for the group's next
  // subscription. Idempotent; the destructor calls it.
  virtual void Close() = 0;
};

class Bus {
 public:
  virtual ~Bus() = default;

  // Queues `events` as batch `sequence` (strictly greater than the previous
  // batch's). Blocks while the bus is full (backpressure), up to the
  // implementation's publish timeout: then kTimeout. kFailedPrecondition for a
  // non-increasing sequence, kUnavailable when the bus has failed or closed.
  virtual Status Publish(uint64_t sequence, std::vector<Event> events, AckCallback on_ack) = 0;

  // kInvalidArgument for an empty group or topic list; kConflict when the
  // implementation allows one subscription per group and one is open.
  virtual Result<std::unique_ptr<Subscription>> SubscribeBatch(SubscribeOptions options, BatchHandler handler) = 0;
  // One delivery per handler call: SubscribeBatch with max_batch 1.
  Result<std::unique_ptr<Subscription>> Subscribe(SubscribeOptions options, Handler handler);

  virtual uint64_t durable_through() const = 0;
  // The sequence of the last batch Publish() accepted (0 before the first):
  // a publisher that restarts on the same bus resumes after it, since the bus
  // still holds (and will acknowledge) everything up to it.
  virtual uint64_t published_through() const = 0;

  // Waits until every published batch has been acknowledged (kTimeout if not).
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;
};

// "dlq.<group>"
std::string DeadLetterTopic(std::string_view group);

// Header names on dead-lettered events.
inline constexpr std::string_view kDlqOriginalTopic = "dlq.original.topic";
inline constexpr std::string_view kDlqOriginalPartition = "dlq.original.partition";
inline constexpr std::string_view kDlqOriginalOffset = "dlq.original.offset";
inline constexpr std::string_view kDlqErrorClass = "dlq.error.class";  // "rejected" | "retries-exhausted"
inline constexpr std::string_view kDlqErrorMessage = "dlq.error.message";
inline constexpr std::string_view kDlqAttempts = "dlq.attempts";
inline constexpr std::string_view kDlqFirstFailure = "dlq.first_failure";  // ISO UTC

// Builds the dead-letter copy of `event` (same key and value, extra headers).
Event MakeDeadLetter(const Delivery& delivery, std::string_view group, std::string_view error_class,
                     std::string_view message, std::chrono::system_clock::time_point first_failure);

}  // namespace cnx::bus
