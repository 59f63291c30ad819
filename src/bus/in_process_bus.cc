#include "bus/in_process_bus.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <set>
#include <thread>
#include <unordered_set>

#include "bus/batch_run.h"

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
  BatchHandler handler;
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

Result<std::unique_ptr<Subscription>> InProcessBus::SubscribeBatch(SubscribeOptions options, BatchHandler handler) {
  if (options.group.empty() || options.topics.empty() || !handler) {
    return Err(Module::kBus, ErrorCode::kInvalidArgument, "subscribe needs a group, topics and a handler");
  }
  if (options.workers < 1) options.workers = 1;
  if (options.max_attempts < 1) options.max_attempts = 1;
  if (options.max_batch < 1) options.max_batch = 1;
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
    // Merged in offset (publish) order, so every queue stays sorted by offset.
    std::vector<Item> all;
    for (auto& q : g->queues) {
      for (auto& item : q) all.push_back(std::move(item));
    }
    std::stable_sort(all.begin(), all.end(), [](const Item& a, const Item& b) { return a.offset < b.offset; });
    g->queues = std::vector<std::deque<Item>>(static_cast<size_t>(options.workers));
    for (auto& item : all) g->queues[g->WorkerFor(item.event->key)].push_back(std::move(item));
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
  std::vector<Item> batch;
  std::vector<internal::BatchItem> items;
  std::unordered_set<std::string_view> keys;
  std::vector<std::pair<AckTracker::Batch*, size_t>> done_acks;
  internal::BatchRun run;
  std::unique_lock lock(mu_);
  std::condition_variable& cv = *g->cvs[worker];
  const auto sleep = [&](std::chrono::milliseconds d) {
    std::unique_lock l(mu_);
    return !cv.wait_for(l, d, [&] { return g->stopping; });
  };
  while (true) {
    cv.wait(lock, [&] { return g->stopping || !g->queues[worker].empty(); });
    if (g->stopping) return;
    // The batch: the longest prefix of the queue without a repeated key (one
    // event per key at a time). Being a prefix, it keeps the publish order
    // across keys too: an event never overtakes an earlier one of another key
    // that it may depend on (a relationship and its endpoint's node). The
    // events leave the queue while they are handled; Publish() only appends,
    // and an unfinished one is put back in offset order before this worker
    // takes anything else.
    auto& q = g->queues[worker];
    batch.clear();
    keys.clear();
    for (auto it = q.begin(); it != q.end() && batch.size() < opt.max_batch;) {
      if (opt.max_batch > 1 && !keys.insert(it->event->key).second) break;
      batch.push_back(std::move(*it));
      it = q.erase(it);
      if (opt.max_batch == 1) break;
    }
    lock.unlock();

    items.clear();
    for (const Item& it : batch) items.push_back({it.event.get(), static_cast<int32_t>(worker), it.offset});
    run.Run(items, opt, g->handler, sleep);

    lock.lock();
    done_acks.clear();
    size_t done = 0;
    std::vector<Item> unfinished;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (const auto& dead = run.dead_letter(i)) {
        auto dl = std::make_shared<const Event>(*dead);
        const int64_t dl_offset = static_cast<int64_t>(next_offset_++);
        for (auto& [name, other] : groups_) {
          if (other->topics.contains(dl->topic)) Enqueue(other.get(), Item{dl, nullptr, dl_offset});
        }
      } else if (!run.ok(i)) {
        unfinished.push_back(std::move(batch[i]));
        continue;
      }
      ++done;
      if (batch[i].batch == nullptr) continue;
      if (!done_acks.empty() && done_acks.back().first == batch[i].batch) {
        ++done_acks.back().second;
      } else {
        done_acks.emplace_back(batch[i].batch, 1);
      }
    }
    // Closing in the middle of a retry: what was not processed goes back to
    // its place for the group's next subscription.
    for (auto& it : unfinished) {
      auto pos = std::lower_bound(q.begin(), q.end(), it.offset,
                                  [](const Item& a, int64_t offset) { return a.offset < offset; });
      q.insert(pos, std::move(it));
    }
    batch.clear();  // drop the events before the acks let the publisher go on
    pending_ -= done;
    if (done > 0) space_cv_.notify_all();
    if (!done_acks.empty()) {
      lock.unlock();
      for (const auto& [b, n] : done_acks) acks_.EventDone(b, Ok(), n);
      lock.lock();
    }
    if (!unfinished.empty()) return;  // only a closing subscription leaves events unfinished
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
