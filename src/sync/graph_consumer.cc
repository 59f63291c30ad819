#include "sync/graph_consumer.h"

#include <spdlog/spdlog.h>

#include "base/thread.h"

namespace cnx::sync {

std::vector<std::string> GraphConsumer::Topics(const std::string& prefix) {
  std::vector<std::string> topics;
  for (const auto& t : GraphProjection()) topics.push_back(prefix + t.table);
  topics.push_back(prefix + GraphProjector::kConfigurationTable);  // steers the projection
  return topics;
}

GraphConsumer::GraphConsumer(GraphProjector& projector, GraphConsumerOptions options)
    : projector_(projector), options_(std::move(options)) {}

Result<std::unique_ptr<GraphConsumer>> GraphConsumer::Start(bus::Bus& bus, GraphProjector& projector,
                                                            GraphConsumerOptions options) {
  std::unique_ptr<GraphConsumer> c(new GraphConsumer(projector, std::move(options)));
  c->batcher_ = std::thread([p = c.get()] { p->BatchLoop(); });
  bus::SubscribeOptions so;
  so.group = c->options_.group;
  so.topics = Topics(c->options_.topic_prefix);
  so.workers = c->options_.workers;
  so.max_attempts = c->options_.max_attempts;
  so.retry_backoff = c->options_.retry_backoff;
  so.max_backoff = c->options_.max_backoff;
  auto sub = bus.Subscribe(std::move(so), [p = c.get()](const bus::Delivery& d) { return p->Handle(d); });
  if (!sub) {
    c->Close();
    return std::unexpected(sub.error());
  }
  c->subscription_ = std::move(*sub);
  return c;
}

GraphConsumer::~GraphConsumer() {
  Close();
}

GraphConsumerStats GraphConsumer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void GraphConsumer::Close() {
  {
    // Handlers wait for parked deliveries: release them before the
    // subscription waits for its handlers.
    std::lock_guard lock(mu_);
    draining_ = true;
    ReleaseParked(/*all=*/true, std::chrono::steady_clock::now());
  }
  cv_.notify_all();
  if (subscription_) {
    subscription_->Close();  // waits for running handlers
    subscription_.reset();
  }
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (batcher_.joinable()) batcher_.join();
}

bus::HandlerResult GraphConsumer::Handle(const bus::Delivery& d) {
  auto change = ParseOutboxPayloadText(d.event.value, ProjectedColumns());
  bool last_attempt = d.attempt >= options_.max_attempts;
  if (!change) {
    // Cannot be projected, now or ever. Keep it for inspection.
    Change stub;
    stub.table = std::string(d.event.topic);
    stub.id = d.event.key;
    (void)projector_.RecordDeadLetter(stub, nlohmann::json(d.event.value).dump(), change.error().message(), d.attempt);
    return bus::HandlerResult::Reject(change.error().message());
  }
  Pending p{std::move(*change), static_cast<uint64_t>(std::max<int64_t>(d.offset, 0)), d.attempt, {}, {}, 0};
  auto fut = p.done.get_future();
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stop_) return bus::HandlerResult::RetryLater("shutting down");
    if (queue_.empty()) first_queued_ = std::chrono::steady_clock::now();
    queue_.push_back(&p);
    ++stats_.events;
    // The batcher needs the first event of a batch, and the one that fills it
    // (it may be lingering); the others would only wake it to wait again.
    wake = queue_.size() == 1 || queue_.size() + parked_.size() >= static_cast<size_t>(options_.workers);
  }
  if (wake) cv_.notify_one();
  Result<Outcome> r = fut.get();
  std::string why;
  if (!r) {
    why = r.error().ToString();
  } else if (r->kind == Outcome::Kind::kApplied || r->kind == Outcome::Kind::kStale) {
    return bus::HandlerResult::Ok();
  } else {
    why = r->error;
    if (r->kind == Outcome::Kind::kInvalid) last_attempt = true;
  }
  if (!last_attempt) return bus::HandlerResult::RetryLater(why);
  auto st = projector_.RecordDeadLetter(p.change, d.event.value, why, d.attempt);
  {
    // Parked relationships may be waiting for this very event.
    std::lock_guard lock(mu_);
    ++dead_letter_gen_;
  }
  cv_.notify_all();
  if (!st) {
    spdlog::error("graph projection: cannot record dead letter for {} {}: {}", p.change.table, p.change.id,
                  st.error().ToString());
    return bus::HandlerResult::RetryLater(why);
  }
  spdlog::warn("graph projection: gave up on {} {} after {} attempts: {}", p.change.table, p.change.id, d.attempt, why);
  return bus::HandlerResult::Reject(why);
}

void GraphConsumer::ReleaseParked(bool all, TimePoint now) {
  std::erase_if(parked_, [&](Pending* p) {
    if (!all && now < p->deadline && p->dead_letter_gen == dead_letter_gen_) return false;
    ++stats_.released;
    p->done.set_value(Outcome{Outcome::Kind::kWaiting, "relationship endpoint not in the graph yet"});
    return true;
  });
}

void GraphConsumer::Settle(Pending* p, Result<Outcome> outcome, TimePoint now) {
  if (outcome && outcome->kind == Outcome::Kind::kWaiting && p->attempt == 1) {
    std::lock_guard lock(mu_);
    bool first = p->deadline == TimePoint{};
    if (first) {
      p->deadline = now + options_.endpoint_wait;
      p->dead_letter_gen = dead_letter_gen_;
    }
    if (!draining_ && now < p->deadline && p->dead_letter_gen == dead_letter_gen_) {
      if (first) ++stats_.parked;
      parked_.push_back(p);
      return;
    }
    ++stats_.released;
  }
  p->done.set_value(std::move(outcome));
}

void GraphConsumer::BatchLoop() {
  NameThisThread("cnx-graph-batch");  // not lowered: docs/decisions/1430-*.md
  using Clock = std::chrono::steady_clock;
  for (;;) {
    std::vector<Pending*> batch;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        // Parked deliveries are applied again only together with new events:
        // nothing else can bring their endpoints.
        auto ready = [this] { return stop_ || !queue_.empty(); };
        if (parked_.empty()) {
          cv_.wait(lock, ready);
        } else {
          TimePoint earliest = TimePoint::max();
          for (auto* p : parked_) earliest = std::min(earliest, p->deadline);
          uint64_t gen = dead_letter_gen_;
          cv_.wait_until(lock, earliest, [&] { return ready() || draining_ || dead_letter_gen_ != gen; });
        }
        ReleaseParked(/*all=*/stop_ || draining_, Clock::now());
        if (!queue_.empty()) break;
        if (stop_) return;  // stopping with nothing left
      }
      // Linger for batch-mates, unless no more can come: every worker holds
      // one event (queued or parked).
      const auto full = [this] {
        return stop_ || draining_ || queue_.size() + parked_.size() >= static_cast<size_t>(options_.workers);
      };
      if (options_.batch_linger.count() > 0 && !full()) {
        cv_.wait_until(lock, first_queued_ + options_.batch_linger, full);
      }
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
      batch.insert(batch.end(), parked_.begin(), parked_.end());
      parked_.clear();
      ++stats_.batches;
    }
    // The changes are moved into the batch and back (a row's JSON is costly to copy).
    std::vector<Change> changes;
    changes.reserve(batch.size());
    uint64_t position = 0;
    for (auto* p : batch) {
      changes.push_back(std::move(p->change));
      position = std::max(position, p->position);
    }
    auto outcomes = projector_.Apply(changes, position);
    auto now = Clock::now();
    if (outcomes) {
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->change = std::move(changes[i]);
        Settle(batch[i], (*outcomes)[i], now);
      }
      continue;
    }
    // One bad event must not fail its batch-mates: apply them one by one.
    for (size_t i = 0; i < batch.size(); ++i) {
      auto one = batch.size() == 1 ? std::move(outcomes) : projector_.Apply(std::span(&changes[i], 1), position);
      batch[i]->change = std::move(changes[i]);
      if (one) {
        Settle(batch[i], (*one)[0], now);
      } else {
        batch[i]->done.set_value(std::unexpected(one.error()));
      }
    }
  }
}

}  // namespace cnx::sync
