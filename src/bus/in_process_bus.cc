#include "bus/in_process_bus.h"

#include <deque>
#include <functional>
#include <set>
#include <thread>

#include "base/thread.h"

namespace cnx::bus {

struct InProcessBus::Item {
  std::shared_ptr<const Event> event;
  AckTracker::Batch* batch = nullptr;  // null for dead letters (not tracked)
  int64_t offset = 0;
};

struct InProcessBus::Group {
  std::string name;
  std::set<std::string, std::less<>> topics;
  std::vector<std::deque<Item>> queues{1};  // one per worker
  // One per worker: an event wakes only the worker whose queue it joined.
  std::vector<std::unique_ptr<std::condition_variable>> cvs;
  bool active = false;
  bool stopping = false;
  SubscribeOptions options;
  Handler handler;
  std::vector<std::thread> threads;

  size_t WorkerFor(const std::string& key) const { return std::hash<std::string>{}(key) % queues.size(); }
};

class InProcessSubscription final : public Subscription {
 public:
  InProcessSubscription(InProcessBus* bus, InProcessBus::Group* group) : bus_(bus), group_(group) {}
  ~InProcessSubscription() override { Close(); }
  void Close() override {
    if (bus_ != nullptr) bus_->CloseGroup(group_);
    bus_ = nullptr;
  }

 private:
  InProcessBus* bus_;
  InProcessBus::Group* group_;
};

InProcessBus::InProcessBus(InProcessBusOptions options) : options_(options) {}

InProcessBus::~InProcessBus() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    space_cv_.notify_all();
  }
  for (auto& [name, g] : groups_) CloseGroup(g.get());
}

size_t InProcessBus::pending_events() const {
  std::lock_guard lock(mu_);
  return pending_;
}

void InProcessBus::Enqueue(Group* g, Item item) {
  const size_t w = g->WorkerFor(item.event->key);
  auto& q = g->queues[w];
  q.push_back(std::move(item));
  ++pending_;
  // Only a worker whose queue was empty can be waiting: a burst of events
  // wakes each worker once, and one event wakes one worker, not all of them.
  if (q.size() == 1 && w < g->cvs.size()) g->cvs[w]->notify_one();
}

Status InProcessBus::Publish(uint64_t sequence, std::vector<Event> events, AckCallback on_ack) {
  std::unique_lock lock(mu_);
  if (closed_) return Err(Module::kBus, ErrorCode::kUnavailable, "bus is closed");
  // Which groups receive each event: the groups subscribed to its topic now.
  std::vector<std::vector<Group*>> targets(events.size());
  size_t deliveries = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    for (auto& [name, g] : groups_) {
      if (g->topics.contains(events[i].topic)) targets[i].push_back(g.get());
    }
    deliveries += targets[i].size();
  }
  if (deliveries == 0) {
    lock.unlock();  // the callback may run right here and may publish again
    CNX_TRY(acks_.Register(sequence, 0, std::move(on_ack)));
    return Ok();
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.publish_timeout;
  // A batch larger than the whole bound is let in when the bus is empty.
  if (!space_cv_.wait_until(lock, deadline, [&] {
        return closed_ || pending_ == 0 || pending_ + deliveries <= options_.max_pending_events;
      })) {
    return Err(Module::kBus, ErrorCode::kTimeout,
               "bus full: " + std::to_string(pending_) + " deliveries pending (backpressure)");
  }
  if (closed_) return Err(Module::kBus, ErrorCode::kUnavailable, "bus is closed");
  AckTracker::Batch* batch = CNX_TRY(acks_.Register(sequence, deliveries, std::move(on_ack)));
  for (size_t i = 0; i < events.size(); ++i) {
    auto ev = std::make_shared<const Event>(std::move(events[i]));
    const int64_t offset = static_cast<int64_t>(next_offset_++);
    for (Group* g : targets[i]) Enqueue(g, Item{ev, batch, offset});
  }
  return Ok();
}

Result<std::unique_ptr<Subscription>> InProcessBus::Subscribe(SubscribeOptions options, Handler handler) {
  if (options.group.empty() || options.topics.empty() || !handler) {
    return Err(Module::kBus, ErrorCode::kInvalidArgument, "subscribe needs a group, topics and a handler");
  }
  if (options.workers < 1) options.workers = 1;
  if (options.max_attempts < 1) options.max_attempts = 1;
  std::lock_guard lock(mu_);
  if (closed_) return Err(Module::kBus, ErrorCode::kUnavailable, "bus is closed");
  auto& slot = groups_[options.group];
  if (!slot) {
    slot = std::make_unique<Group>();
    slot->name = options.group;
  }
  Group* g = slot.get();
  if (g->active) {
    return Err(Module::kBus, ErrorCode::kConflict, "group '" + options.group + "' already has an open subscription");
  }
  g->topics = std::set<std::string, std::less<>>(options.topics.begin(), options.topics.end());
  if (g->queues.size() != static_cast<size_t>(options.workers)) {
    // Re-partition what is queued; a key lived in one old queue, so its order holds.
    std::vector<std::deque<Item>> old = std::move(g->queues);
    g->queues = std::vector<std::deque<Item>>(static_cast<size_t>(options.workers));
    for (auto& q : old) {
      for (auto& item : q) g->queues[g->WorkerFor(item.event->key)].push_back(std::move(item));
    }
  }
  g->options = std::move(options);
  g->handler = std::move(handler);
  g->active = true;
  g->stopping = false;
  g->cvs.clear();
  for (size_t w = 0; w < g->queues.size(); ++w) g->cvs.push_back(std::make_unique<std::condition_variable>());
  for (size_t w = 0; w < g->queues.size(); ++w) g->threads.emplace_back([this, g, w] { WorkerLoop(g, w); });
  return std::unique_ptr<Subscription>(std::make_unique<InProcessSubscription>(this, g));
}

void InProcessBus::CloseGroup(Group* g) {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (!g->active) return;
    g->stopping = true;
    for (auto& cv : g->cvs) cv->notify_all();
    threads = std::move(g->threads);
  }
  for (auto& t : threads) t.join();
  std::lock_guard lock(mu_);
  g->active = false;
  g->threads.clear();
}

void InProcessBus::WorkerLoop(Group* g, size_t worker) {
  NameThisThread("cnx-bus");
  (void)RunThisThreadInBackground();  // docs/decisions/1430-*.md
  const SubscribeOptions& opt = g->options;
  std::unique_lock lock(mu_);
  std::condition_variable& cv = *g->cvs[worker];
  while (true) {
    cv.wait(lock, [&] { return g->stopping || !g->queues[worker].empty(); });
    if (g->stopping) return;
    // The item stays at the front until it is processed, so a Close() in the
    // middle leaves it for the next subscription.
    const std::shared_ptr<const Event> ev = g->queues[worker].front().event;
    const int64_t offset = g->queues[worker].front().offset;
    lock.unlock();

    auto backoff = opt.retry_backoff;
    std::optional<std::chrono::system_clock::time_point> first_failure;
    std::optional<Event> dead;
    for (int attempt = 1;; ++attempt) {
      Delivery d{*ev, attempt, static_cast<int32_t>(worker), offset};
      HandlerResult r = g->handler(d);
      if (r.outcome == HandlerResult::Outcome::kOk) break;
      if (!first_failure) first_failure = std::chrono::system_clock::now();
      if (r.outcome == HandlerResult::Outcome::kReject) {
        dead = MakeDeadLetter(d, g->name, "rejected", r.reason, *first_failure);
        break;
      }
      if (attempt >= opt.max_attempts) {
        dead = MakeDeadLetter(d, g->name, "retries-exhausted", r.reason, *first_failure);
        break;
      }
      lock.lock();
      if (cv.wait_for(lock, backoff, [&] { return g->stopping; })) return;  // item stays queued
      lock.unlock();
      backoff = std::min(backoff * 2, opt.max_backoff);
    }

    lock.lock();
    if (dead) {
      auto dl = std::make_shared<const Event>(std::move(*dead));
      const int64_t dl_offset = static_cast<int64_t>(next_offset_++);
      for (auto& [name, other] : groups_) {
        if (other->topics.contains(dl->topic)) Enqueue(other.get(), Item{dl, nullptr, dl_offset});
      }
    }
    AckTracker::Batch* batch = g->queues[worker].front().batch;
    g->queues[worker].pop_front();
    --pending_;
    space_cv_.notify_all();
    if (batch != nullptr) {
      lock.unlock();
      acks_.EventDone(batch, Ok());
      lock.lock();
    }
  }
}

Status InProcessBus::Flush(std::chrono::milliseconds timeout) {
  if (!acks_.WaitIdle(timeout)) {
    return Err(Module::kBus, ErrorCode::kTimeout,
               std::to_string(acks_.pending_batches()) + " batches not yet acknowledged");
  }
  return Ok();
}

}  // namespace cnx::bus
