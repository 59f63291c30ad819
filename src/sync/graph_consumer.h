// GraphConsumer: the graph projector as a bus consumer group ("graph").
//
// Each bus worker hands its event to a group-commit batcher and waits: the
// batcher applies whatever events are waiting as one GraphProjector batch (one
// durable store write, one sync_state statement), then releases the workers
// with their outcome. An idle batcher lingers `batch_linger` after the first
// event for others to join its batch. So an event is acknowledged only after it is durable in
// the graph, while the store sees batches as large as the worker count.
//
// Outcomes: applied or stale → ok; store/database trouble → retry later (the
// bus backs off); malformed, or still failing at the last attempt → a
// dead_letters row, sync_state "failed", and the bus's DLQ topic.
//
// A relationship whose endpoint is not in the graph yet (kWaiting: events of
// different keys run on different workers, so a chunk can overtake its
// content item) is parked by the batcher on its first delivery: it rides
// along with every following batch until it applies, without using up bus
// attempts or sleeping through back-offs. It is released to the ordinary
// retry path after `endpoint_wait`, when any event was dead-lettered (its
// endpoint may be that one), or at Close(). The wait cannot deadlock: an
// endpoint's event was published before the event that needs it, and the
// oldest unfinished event is always at the head of its worker's queue.
//
// Thread safety: internal; Close() (or the destructor) stops the subscription
// and then the batcher.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "sync/graph_projector.h"

namespace cnx::sync {

struct GraphConsumerOptions {
  std::string group = "graph";
  std::string topic_prefix = "outbox.event.";
  int workers = 64;  // each holds one event: the largest batch the store sees
  int max_attempts = 8;
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds endpoint_wait{30'000};  // parking limit for kWaiting, see above
  // How long the batcher, woken by an event while idle, waits for more before
  // applying (unless every worker already holds one). Each batch is one
  // fdatasync of the store and one sync_state statement, so at a steady
  // trickle (one event per collaboration commit) lingering turns several
  // batches into one. It delays the projection, never a client: only the
  // acknowledgement to the bus waits. 0 = apply at once.
  std::chrono::milliseconds batch_linger{20};
};

struct GraphConsumerStats {
  uint64_t events = 0;    // deliveries handed to the batcher
  uint64_t batches = 0;   // GraphProjector::Apply calls
  uint64_t parked = 0;    // deliveries parked for a missing endpoint
  uint64_t released = 0;  // parked deliveries given back to the retry path (timeout, dead letter, close)
};

class GraphConsumer {
 public:
  static Result<std::unique_ptr<GraphConsumer>> Start(bus::Bus& bus, GraphProjector& projector,
                                                      GraphConsumerOptions options = {});
  ~GraphConsumer();
  void Close();

  // Topics of every projected table.
  static std::vector<std::string> Topics(const std::string& prefix);

  GraphConsumerStats stats() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Pending {
    Change change;
    uint64_t position;
    int attempt = 1;
    std::promise<Result<Outcome>> done;
    TimePoint deadline{};          // set when first parked
    uint64_t dead_letter_gen = 0;  // dead_letter_gen_ when first parked
  };
  GraphConsumer(GraphProjector& projector, GraphConsumerOptions options);
  bus::HandlerResult Handle(const bus::Delivery& d);
  void BatchLoop();
  // Parks `p` (kWaiting on a first delivery, within its deadline) or resolves it.
  void Settle(Pending* p, Result<Outcome> outcome, TimePoint now);
  void ReleaseParked(bool all, TimePoint now);  // mu_ held

  GraphProjector& projector_;
  GraphConsumerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;
  TimePoint first_queued_{};      // when queue_ last went from empty to non-empty
  std::vector<Pending*> parked_;  // guarded by mu_
  uint64_t dead_letter_gen_ = 0;  // bumped whenever an event is dead-lettered
  bool draining_ = false;         // Close() started: park nothing more
  GraphConsumerStats stats_;      // guarded by mu_
  bool stop_ = false;
  std::thread batcher_;
  std::unique_ptr<bus::Subscription> subscription_;
};

}  // namespace cnx::sync
