// InProcessBus: the embedded Bus (bus.h) — bounded queues in memory, one
// worker pool per consumer group, nothing on disk.
//
// Durability: since nothing survives the process, an event counts as durable
// only when every group subscribed to its topic at publish time has processed
// it (handler kOk or dead-lettered). The relay therefore confirms a WAL position
// only after all consumers are done with it, and after a crash the replication
// slot replays from there. Events of a topic that no group subscribes to are
// durable at once (no one would ever read them).
//
// Groups: the first Subscribe() of a group creates it; the group keeps its
// queue when its subscription closes, and the next Subscribe() of the same
// group resumes where it stopped (at-least-once). One open subscription per
// group; `workers` threads share it, events are assigned to a worker by a hash
// of their key, so each key is handled in order. A worker hands the handler
// its queue's head and the following events of other keys (up to `max_batch`,
// looking at most 4 × `max_batch` deep), one call per batch.
//
// Backpressure: at most `max_pending_events` deliveries are queued over all
// groups; Publish() blocks until there is room (or `publish_timeout`).
// Dead-letter events are queued even when the bus is full (a worker must never
// wait on itself).
//
// Thread-safe. The destructor closes open subscriptions; pending acks are dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bus/ack_tracker.h"
#include "bus/bus.h"

namespace cnx::bus {

struct InProcessBusOptions {
  size_t max_pending_events = 10'000;
  std::chrono::milliseconds publish_timeout{30'000};
};

class InProcessBus final : public Bus {
 public:
  explicit InProcessBus(InProcessBusOptions options = {});
  ~InProcessBus() override;

  Status Publish(uint64_t sequence, std::vector<Event> events, AckCallback on_ack) override;
  Result<std::unique_ptr<Subscription>> SubscribeBatch(SubscribeOptions options, BatchHandler handler) override;
  uint64_t durable_through() const override { return acks_.durable_through(); }
  uint64_t published_through() const override { return acks_.last_sequence(); }
  Status Flush(std::chrono::milliseconds timeout) override;

  size_t pending_events() const;

  struct Group;  // internal
  struct Item;   // internal

 private:
  friend class InProcessSubscription;
  void WorkerLoop(Group* g, size_t worker);
  void Enqueue(Group* g, Item item);
  void CloseGroup(Group* g);

  InProcessBusOptions options_;
  AckTracker acks_;
  mutable std::mutex mu_;
  std::condition_variable space_cv_;
  std::map<std::string, std::unique_ptr<Group>> groups_;
  size_t pending_ = 0;
  uint64_t next_offset_ = 0;
  bool closed_ = false;
};

}  // namespace cnx::bus
