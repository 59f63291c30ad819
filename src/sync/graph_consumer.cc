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
  so.max_batch = std::max<size_t>(c->options_.max_batch, 1);
  auto sub = bus.SubscribeBatch(
      std::move(so),
      [p = c.get()](std::span<const bus::Delivery> d, std::span<bus::HandlerResult> r) { p->HandleBatch(d, r); });
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

// A bus hand-over: its thread waits until every event of it is resolved.
struct GraphConsumer::Call {
  size_t remaining = 0;
  std::condition_variable cv;
};

bool GraphConsumer::Full() const {
  return stop_ || draining_ || waiting_calls_ >= options_.workers;
}

void GraphConsumer::HandleBatch(std::span<const bus::Delivery> deliveries, std::span<bus::HandlerResult> results) {
  Call call;
  std::vector<Pending> pending;
  std::vector<size_t> index;  // pending[k] answers deliveries[index[k]]
  pending.reserve(deliveries.size());
  index.reserve(deliveries.size());
  for (size_t i = 0; i < deliveries.size(); ++i) {
    const bus::Delivery& d = deliveries[i];
    auto change = ParseOutboxPayloadText(d.event.value, ProjectedColumns());
    if (!change) {
      // Cannot be projected, now or ever. Keep it for inspection.
      Change stub;
      stub.table = std::string(d.event.topic);
      stub.id = d.event.key;
      // As a JSON string; bytes that are not UTF-8 become U+FFFD (dump() would throw).
      const std::string payload =
          nlohmann::json(d.event.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      (void)projector_.RecordDeadLetter(stub, payload, change.error().message(), d.attempt);
      results[i] = bus::HandlerResult::Reject(change.error().message());
      continue;
    }
    Pending& p = pending.emplace_back();
    p.change = std::move(*change);
    p.position = static_cast<uint64_t>(std::max<int64_t>(d.offset, 0));
    p.attempt = d.attempt;
    p.call = &call;
    index.push_back(i);
  }
  if (pending.empty()) return;
  {
    std::unique_lock lock(mu_);
    if (stop_) {
      for (size_t i : index) results[i] = bus::HandlerResult::RetryLater("shutting down");
      return;
    }
    const bool was_empty = queue_.empty();
    if (was_empty) first_queued_ = std::chrono::steady_clock::now();
    for (auto& p : pending) queue_.push_back(&p);
    stats_.events += pending.size();
    call.remaining = pending.size();
    ++waiting_calls_;
    // The batcher needs the first events of a batch, and the hand-over that
    // fills it (it may be lingering); others would only wake it to wait again.
    if (was_empty || Full()) cv_.notify_one();
    call.cv.wait(lock, [&] { return call.remaining == 0; });
    --waiting_calls_;
  }
  bool dead_lettered = false;
  for (size_t k = 0; k < pending.size(); ++k) {
    Pending& p = pending[k];
    const bus::Delivery& d = deliveries[index[k]];
    bus::HandlerResult& result = results[index[k]];
    const Result<Outcome>& r = p.outcome;
    bool last_attempt = d.attempt >= options_.max_attempts;
    std::string why;
    if (!r) {
      why = r.error().ToString();
    } else if (r->kind == Outcome::Kind::kApplied || r->kind == Outcome::Kind::kStale) {
      continue;  // kOk
    } else {
      why = r->error;
      if (r->kind == Outcome::Kind::kInvalid) last_attempt = true;
    }
    if (!last_attempt) {
      result = bus::HandlerResult::RetryLater(why);
      continue;
    }
    auto st = projector_.RecordDeadLetter(p.change, d.event.value, why, d.attempt);
    dead_lettered = true;
    if (!st) {
      spdlog::error("graph projection: cannot record dead letter for {} {}: {}", p.change.table, p.change.id,
                    st.error().ToString());
      result = bus::HandlerResult::RetryLater(why);
      continue;
    }
    spdlog::warn("graph projection: gave up on {} {} after {} attempts: {}", p.change.table, p.change.id, d.attempt,
                 why);
    result = bus::HandlerResult::Reject(why);
  }
  if (dead_lettered) {
    // Parked relationships may be waiting for these very events.
    {
      std::lock_guard lock(mu_);
      ++dead_letter_gen_;
    }
    cv_.notify_all();
  }
}

void GraphConsumer::Resolve(Pending* p, Result<Outcome> outcome) {
  p->outcome = std::move(outcome);
  // Notified under mu_: the waiting hand-over may return (and free `call`)
  // as soon as it sees its count reach zero.
  if (--p->call->remaining == 0) p->call->cv.notify_one();
}

void GraphConsumer::ReleaseParked(bool all, TimePoint now) {
  std::erase_if(parked_, [&](Pending* p) {
    if (!all && now < p->deadline && p->dead_letter_gen == dead_letter_gen_) return false;
    ++stats_.released;
    Resolve(p, Outcome{Outcome::Kind::kWaiting, "relationship endpoint not in the graph yet"});
    return true;
  });
}

void GraphConsumer::Settle(Pending* p, Result<Outcome> outcome, TimePoint now) {
  if (outcome && outcome->kind == Outcome::Kind::kWaiting && p->attempt == 1) {
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
  Resolve(p, std::move(outcome));
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
      // Linger for batch-mates, unless no more can come: every worker's
      // hand-over is in (queued or parked).
      if (options_.batch_linger.count() > 0 && !Full()) {
        cv_.wait_until(lock, first_queued_ + options_.batch_linger, [this] { return Full(); });
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
    if (!outcomes && batch.size() > 1) {
      // One bad event must not fail its batch-mates: apply them one by one.
      std::vector<Result<Outcome>> each;
      each.reserve(batch.size());
      for (size_t i = 0; i < batch.size(); ++i) {
        auto one = projector_.Apply(std::span(&changes[i], 1), position);
        each.push_back(one ? Result<Outcome>((*one)[0]) : Result<Outcome>(std::unexpected(one.error())));
      }
      now = Clock::now();
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->change = std::move(changes[i]);
        Settle(batch[i], std::move(each[i]), now);
      }
      continue;
    }
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->change = std::move(changes[i]);
      Settle(batch[i],
             outcomes ? Result<Outcome>(std::move((*outcomes)[i])) : Result<Outcome>(std::unexpected(outcomes.error())),
             now);
    }
  }
}

}  // namespace cnx::sync
