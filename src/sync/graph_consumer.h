// GraphConsumer: the graph projector as a bus consumer group ("graph").
//
// Each bus worker hands its event to a group-commit batcher and waits: the
// batcher applies whatever events are waiting as one GraphProjector batch (one
// durable store write, one sync_state statement), then releases the workers
// with their outcome. So an event is acknowledged only after it is durable in
// the graph, while the store sees batches as large as the worker count.
//
// Outcomes: applied or stale → ok; endpoint missing or store/database trouble
// → retry later (the bus backs off); malformed, or still failing at the last
// attempt → a dead_letters row, sync_state "failed", and the bus's DLQ topic.
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
  int workers = 16;
  int max_attempts = 8;
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

class GraphConsumer {
 public:
  static Result<std::unique_ptr<GraphConsumer>> Start(bus::Bus& bus, GraphProjector& projector,
                                                      GraphConsumerOptions options = {});
  ~GraphConsumer();
  void Close();

  // Topics of every projected table.
  static std::vector<std::string> Topics(const std::string& prefix);

 private:
  struct Pending {
    Change change;
    uint64_t position;
    std::promise<Result<Outcome>> done;
  };
  GraphConsumer(GraphProjector& projector, GraphConsumerOptions options);
  bus::HandlerResult Handle(const bus::Delivery& d);
  void BatchLoop();

  GraphProjector& projector_;
  GraphConsumerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;
  bool stop_ = false;
  std::thread batcher_;
  std::unique_ptr<bus::Subscription> subscription_;
};

}  // namespace cnx::sync
