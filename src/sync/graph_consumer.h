// GraphConsumer: the graph projector as a bus consumer group ("graph").
//
// The bus hands events over in batches (Bus::SubscribeBatch): each bus
// worker passes its batch to a group-commit batcher and waits once for the
// whole batch. The batcher applies whatever events are waiting, from every
// worker, as one GraphProjector batch (one durable store write, one
// sync_state statement), then releases the workers with their outcomes. An
// idle batcher lingers `batch_linger` after the first event for others to
// join its batch. So an event is acknowledged only after it is durable in the
// graph, no bus thread waits per event, and the store sees batches of up to
// `workers` × `max_batch` events (decision 1440).

// Outcomes: applied or stale → ok; store/database trouble → retry later (the
// bus backs off); malformed, or still failing at the last attempt → a
// dead_letters row, sync_state "failed", and the bus's DLQ topic.
//
// A relationship whose endpoint is not in the graph yet (kWaiting: events of
// different keys run on different workers or batches, so a chunk can overtake its
// content item) is parked by the batcher on its first delivery: it rides
// along with every following batch until it applies, without using up bus
// attempts or sleeping through back-offs. It is released to the ordinary
// retry path after `endpoint_wait`, when any event was dead-lettered (its
// endpoint may be that one), or at Close(). The wait cannot deadlock: an
// endpoint's event was published before the event that needs it, and the
// oldest unfinished event is always at the head of its worker's queue, which
// every batch of that worker includes.
//
// Thread safety: internal; Close() (or the destructor) stops the subscription
// and then the batcher.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "sync/graph_projector.h"

namespace cnx::sync {

struct GraphConsumerOptions {
  std::string group = "graph";
  std::string topic_prefix = "outbox.event.";
  int workers = 4;        // bus worker threads, each handing over one batch at a time
  size_t max_batch = 64;  // events per bus hand-over: the store sees up to workers × max_batch
  int max_attempts = 8;
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds endpoint_wait{30'000};  // parking limit for kWaiting, see above
  // How long the batcher, woken by an event while idle, waits for more before
  // applying (unless every worker's batch is already in). Each batch is one
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
  struct Call;
  struct Pending {
    Change change;
    uint64_t position = 0;
    int attempt = 1;
    Call* call = nullptr;          // the bus hand-over waiting for this event
    Result<Outcome> outcome{};     // set when resolved (mu_)
    TimePoint deadline{};          // set when first parked
    uint64_t dead_letter_gen = 0;  // dead_letter_gen_ when first parked
  };
  GraphConsumer(GraphProjector& projector, GraphConsumerOptions options);
  void HandleBatch(std::span<const bus::Delivery> deliveries, std::span<bus::HandlerResult> results);
  void BatchLoop();
  // Parks `p` (kWaiting on a first delivery, within its deadline) or resolves it. mu_ held.
  void Settle(Pending* p, Result<Outcome> outcome, TimePoint now);
  void Resolve(Pending* p, Result<Outcome> outcome);  // mu_ held
  void ReleaseParked(bool all, TimePoint now);        // mu_ held
  bool Full() const;                                  // mu_ held: no more events can join a batch

  GraphProjector& projector_;
  GraphConsumerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;
  TimePoint first_queued_{};      // when queue_ last went from empty to non-empty
  std::vector<Pending*> parked_;  // guarded by mu_
  uint64_t dead_letter_gen_ = 0;  // bumped whenever an event is dead-lettered
  bool draining_ = false;         // Close() started: park nothing more
  int waiting_calls_ = 0;         // bus hand-overs waiting for the batcher
  GraphConsumerStats stats_;      // guarded by mu_
  bool stop_ = false;
  std::thread batcher_;
  std::unique_ptr<bus::Subscription> subscription_;
};

}  // namespace cnx::sync
