#include "sync/graph_consumer.h"

#include <spdlog/spdlog.h>

namespace cnx::sync {

std::vector<std::string> GraphConsumer::Topics(const std::string& prefix) {
  std::vector<std::string> topics;
  for (const auto& t : GraphProjection()) topics.push_back(prefix + t.table);
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

void GraphConsumer::Close() {
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
  auto change = ParseOutboxPayloadText(d.event.value);
  bool last_attempt = d.attempt >= options_.max_attempts;
  if (!change) {
    // Cannot be projected, now or ever. Keep it for inspection.
    Change stub;
    stub.table = std::string(d.event.topic);
    stub.id = d.event.key;
    (void)projector_.RecordDeadLetter(stub, nlohmann::json(d.event.value).dump(), change.error().message(), d.attempt);
    return bus::HandlerResult::Reject(change.error().message());
  }
  Pending p{std::move(*change), static_cast<uint64_t>(std::max<int64_t>(d.offset, 0)), {}};
  auto fut = p.done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stop_) return bus::HandlerResult::RetryLater("shutting down");
    queue_.push_back(&p);
  }
  cv_.notify_one();
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
  if (!st) {
    spdlog::error("graph projection: cannot record dead letter for {} {}: {}", p.change.table, p.change.id,
                  st.error().ToString());
    return bus::HandlerResult::RetryLater(why);
  }
  spdlog::warn("graph projection: gave up on {} {} after {} attempts: {}", p.change.table, p.change.id, d.attempt, why);
  return bus::HandlerResult::Reject(why);
}

void GraphConsumer::BatchLoop() {
  for (;;) {
    std::vector<Pending*> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
    }
    std::vector<Change> changes;
    changes.reserve(batch.size());
    uint64_t position = 0;
    for (auto* p : batch) {
      changes.push_back(p->change);
      position = std::max(position, p->position);
    }
    auto outcomes = projector_.Apply(changes, position);
    if (outcomes) {
      for (size_t i = 0; i < batch.size(); ++i) batch[i]->done.set_value((*outcomes)[i]);
      continue;
    }
    // One bad event must not fail its batch-mates: apply them one by one.
    for (size_t i = 0; i < batch.size(); ++i) {
      auto one = batch.size() == 1 ? std::move(outcomes) : projector_.Apply(std::span(&changes[i], 1), position);
      if (one) {
        batch[i]->done.set_value((*one)[0]);
      } else {
        batch[i]->done.set_value(std::unexpected(one.error()));
      }
    }
  }
}

}  // namespace cnx::sync
