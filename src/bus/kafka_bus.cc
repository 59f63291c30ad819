#include "bus/kafka_bus.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <unordered_set>

#include "bus/batch_run.h"

namespace cnx::bus {

std::vector<std::pair<std::string, std::string>> KafkaProducerDefaults() {
  return {
      {"enable.idempotence", "true"},  // per-partition order and no duplicates under retries
      {"acks", "all"},
      {"linger.ms", "5"},
      {"partitioner", "murmur2_random"},  // the Java client's key → partition mapping
      {"message.timeout.ms", "300000"},   // a record not delivered by then fails its batch
  };
}

std::vector<std::pair<std::string, std::string>> KafkaConsumerDefaults(const std::string& group) {
  return {
      {"group.id", group},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},  // offsets are stored after the handler succeeded
      {"auto.offset.reset", "earliest"},
      {"isolation.level", "read_committed"},
  };
}

namespace {

std::unexpected<Error> KafkaErr(ErrorCode code, std::string msg) {
  return Err(Module::kBus, code, std::move(msg));
}

void LogCallback(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  // librdkafka logs every transient broker problem it recovers from (level 3,
  // "error"); what matters reaches us as delivery reports and fatal errors.
  if (level <= 2) {
    spdlog::warn("kafka {}: {}", fac, buf);
  } else {
    spdlog::debug("kafka {}: {}", fac, buf);
  }
}

Result<rd_kafka_conf_t*> MakeConf(const std::vector<std::pair<std::string, std::string>>& a,
                                  const std::vector<std::pair<std::string, std::string>>& b) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto* list : {&a, &b}) {
    for (const auto& [k, v] : *list) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return KafkaErr(ErrorCode::kInvalidArgument, "kafka config " + k + "=" + v + ": " + errstr);
      }
    }
  }
  rd_kafka_conf_set_log_cb(conf, LogCallback);
  return conf;
}

std::vector<std::pair<std::string, std::string>> Common(const KafkaBusOptions& o) {
  return {{"bootstrap.servers", o.bootstrap_servers}, {"client.id", o.client_id}};
}

std::vector<std::pair<std::string, std::string>> Concat(std::vector<std::pair<std::string, std::string>> a,
                                                        const std::vector<std::pair<std::string, std::string>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

rd_kafka_headers_t* ToKafkaHeaders(const Event& e) {
  if (e.headers.empty()) return nullptr;
  rd_kafka_headers_t* h = rd_kafka_headers_new(e.headers.size());
  for (const auto& x : e.headers) {
    rd_kafka_header_add(h, x.name.data(), static_cast<ssize_t>(x.name.size()), x.value.data(),
                        static_cast<ssize_t>(x.value.size()));
  }
  return h;
}

Event FromKafkaMessage(rd_kafka_message_t* m) {
  Event e;
  e.topic = rd_kafka_topic_name(m->rkt);
  if (m->key != nullptr) e.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) e.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      e.headers.push_back({name, value != nullptr ? std::string(static_cast<const char*>(value), size) : ""});
    }
  }
  return e;
}

// Produces one record and waits for its delivery report (dead letters).
struct SyncDelivery {
  std::atomic<bool> done{false};
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
};

void SyncDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* d = static_cast<SyncDelivery*>(m->_private);
  if (d == nullptr) return;
  d->err = m->err;
  d->done.store(true);
}

Status ProduceAndWait(rd_kafka_t* producer, const Event& e, std::chrono::milliseconds timeout) {
  SyncDelivery d;
  rd_kafka_headers_t* h = ToKafkaHeaders(e);
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer, RD_KAFKA_V_TOPIC(e.topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(e.value.data()), e.value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (h != nullptr) rd_kafka_headers_destroy(h);
    return KafkaErr(ErrorCode::kUnavailable, std::string("produce ") + e.topic + ": " + rd_kafka_err2str(err));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!d.done.load()) {
    rd_kafka_poll(producer, 20);
    if (std::chrono::steady_clock::now() > deadline && !d.done.load()) {
      // The report must still arrive before `d` goes away: purge and drain.
      rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      while (!d.done.load()) rd_kafka_poll(producer, 20);
      return KafkaErr(ErrorCode::kTimeout, "dead letter to " + e.topic + " not delivered in time");
    }
  }
  if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErr(ErrorCode::kUnavailable, "dead letter to " + e.topic + ": " + rd_kafka_err2str(d.err));
  }
  return Ok();
}

}  // namespace

struct KafkaBusCallbacks {
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* bus = static_cast<KafkaBus*>(opaque);
    auto* batch = static_cast<AckTracker::Batch*>(m->_private);
    if (batch == nullptr) return;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka delivery to {} failed: {}", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
      bus->acks_.EventDone(
          batch, KafkaErr(ErrorCode::kUnavailable, std::string("delivery failed: ") + rd_kafka_err2str(m->err)));
    } else {
      bus->acks_.EventDone(batch, Ok());
    }
  }
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* bus = static_cast<KafkaBus*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_fatal_error(rk, buf, sizeof buf);
      spdlog::error("kafka producer fatal error: {} ({})", buf, reason);
      bus->fatal_.store(true);
      return;
    }
    spdlog::debug("kafka producer error: {}: {}", rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)), reason);
  }
};

KafkaBus::KafkaBus(KafkaBusOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<KafkaBus>> KafkaBus::Create(KafkaBusOptions options) {
  if (options.bootstrap_servers.empty()) {
    return KafkaErr(ErrorCode::kInvalidArgument, "kafka bootstrap servers are required");
  }
  std::unique_ptr<KafkaBus> bus(new KafkaBus(std::move(options)));
  auto settings = Concat(Common(bus->options_), KafkaProducerDefaults());
  settings.emplace_back("queue.buffering.max.messages", std::to_string(bus->options_.max_pending_events + 1024));
  rd_kafka_conf_t* conf = CNX_TRY(MakeConf(settings, bus->options_.producer_config));
  rd_kafka_conf_set_opaque(conf, bus.get());
  rd_kafka_conf_set_dr_msg_cb(conf, KafkaBusCallbacks::OnDelivery);
  rd_kafka_conf_set_error_cb(conf, KafkaBusCallbacks::OnError);
  char errstr[512];
  bus->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (bus->producer_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return KafkaErr(ErrorCode::kInvalidArgument, std::string("kafka producer: ") + errstr);
  }
  KafkaBus* raw = bus.get();
  bus->poll_thread_ = std::thread([raw] {
    while (!raw->stop_.load()) rd_kafka_poll(raw->producer_, 50);
  });
  return bus;
}

KafkaBus::~KafkaBus() {
  if (producer_ != nullptr) {
    rd_kafka_flush(producer_, 2000);
    // Whatever is still queued fails its batch, so no callback is lost.
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (rd_kafka_outq_len(producer_) > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  stop_.store(true);
  if (poll_thread_.joinable()) poll_thread_.join();
  if (producer_ != nullptr) rd_kafka_destroy(producer_);
}

Status KafkaBus::Publish(uint64_t sequence, std::vector<Event> events, AckCallback on_ack) {
  if (fatal_.load()) return KafkaErr(ErrorCode::kUnavailable, "kafka producer hit a fatal error; recreate the bus");
  std::unique_lock lock(publish_mu_);
  if (events.empty()) {
    lock.unlock();  // the callback may run right here and may publish again
    CNX_TRY(acks_.Register(sequence, 0, std::move(on_ack)));
    return Ok();
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.publish_timeout;
  // Backpressure before the batch is registered: wait for room in the queue.
  while (rd_kafka_outq_len(producer_) > 0 &&
         static_cast<size_t>(rd_kafka_outq_len(producer_)) + events.size() > options_.max_pending_events) {
    if (std::chrono::steady_clock::now() > deadline) {
      return KafkaErr(ErrorCode::kTimeout, "kafka producer queue full (backpressure)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  AckTracker::Batch* batch = CNX_TRY(acks_.Register(sequence, events.size(), std::move(on_ack)));
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    rd_kafka_resp_err_t err;
    while (true) {
      rd_kafka_headers_t* h = ToKafkaHeaders(e);
      err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(e.topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(e.value.data()), e.value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(batch),
                              RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (h != nullptr) rd_kafka_headers_destroy(h);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // The batch is registered: report the failure through its callback.
      Status failed = KafkaErr(ErrorCode::kUnavailable, "produce to " + e.topic + ": " + rd_kafka_err2str(err));
      spdlog::warn("kafka: {}", failed.error().message());
      for (size_t j = i; j < events.size(); ++j) acks_.EventDone(batch, failed);
      return Ok();
    }
  }
  return Ok();
}

Status KafkaBus::Flush(std::chrono::milliseconds timeout) {
  if (!acks_.WaitIdle(timeout)) {
    return KafkaErr(ErrorCode::kTimeout, std::to_string(acks_.pending_batches()) + " batches not yet acknowledged");
  }
  return Ok();
}

// ---------------------------------------------------------------- consumers

namespace {

class KafkaSubscription final : public Subscription {
 public:
  KafkaSubscription(const KafkaBusOptions& bus_options, SubscribeOptions options, BatchHandler handler)
      : bus_options_(bus_options),
        options_(std::move(options)),
        handler_(std::move(handler)),
        queues_(static_cast<size_t>(options_.workers)) {}
  ~KafkaSubscription() override { Close(); }

  Status Start() {
    // The dead-letter producer: idempotent, acks=all, like the bus's own.
    auto pconf = CNX_TRY(MakeConf(Concat(Common(bus_options_), KafkaProducerDefaults()), bus_options_.producer_config));
    rd_kafka_conf_set_dr_msg_cb(pconf, SyncDeliveryReport);
    char errstr[512];
    dlq_producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof errstr);
    if (dlq_producer_ == nullptr) {
      rd_kafka_conf_destroy(pconf);
      return KafkaErr(ErrorCode::kInvalidArgument, std::string("kafka dead-letter producer: ") + errstr);
    }
    auto conf = CNX_TRY(
        MakeConf(Concat(Common(bus_options_), KafkaConsumerDefaults(options_.group)), bus_options_.consumer_config));
    rd_kafka_conf_set_rebalance_cb(conf, OnRebalance);
    rd_kafka_conf_set_opaque(conf, this);
    consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (consumer_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return KafkaErr(ErrorCode::kInvalidArgument, std::string("kafka consumer: ") + errstr);
    }
    rd_kafka_poll_set_consumer(consumer_);
    rd_kafka_topic_partition_list_t* topics =
        rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size()));
    for (const auto& t : options_.topics) rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaErr(ErrorCode::kUnavailable, std::string("kafka subscribe: ") + rd_kafka_err2str(err));
    }
    for (size_t w = 0; w < queues_.size(); ++w) workers_.emplace_back([this, w] { WorkerLoop(w); });
    poller_ = std::thread([this] { PollLoop(); });
    return Ok();
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    stopping_.store(true);
    {
      // Wakes the poller where it waits for room in a full queue (a worker
      // held in a retry takes nothing more) or in Drain(), and idle workers.
      std::lock_guard lock(mu_);
      space_cv_.notify_all();
      idle_cv_.notify_all();
      cv_.notify_all();
    }
    if (poller_.joinable()) poller_.join();
    {
      // Records not yet started are dropped (not stored, so redelivered later).
      std::lock_guard lock(mu_);
      for (auto& q : queues_) {
        for (rd_kafka_message_t* m : q) rd_kafka_message_destroy(m);
        q.clear();
      }
      cv_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    if (consumer_ != nullptr) {
      rd_kafka_commit(consumer_, nullptr, 0);  // what was processed since the last commit
      rd_kafka_consumer_close(consumer_);
      rd_kafka_destroy(consumer_);
      consumer_ = nullptr;
    }
    if (dlq_producer_ != nullptr) {
      rd_kafka_flush(dlq_producer_, 2000);
      rd_kafka_destroy(dlq_producer_);
      dlq_producer_ = nullptr;
    }
  }

 private:
  // Runs inside rd_kafka_consumer_poll() / rd_kafka_consumer_close() on the calling thread.
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                          void* opaque) {
    auto* self = static_cast<KafkaSubscription*>(opaque);
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts);
        if (e != nullptr) rd_kafka_error_destroy(e);
      } else {
        rd_kafka_assign(rk, parts);
      }
      return;
    }
    // Revoked: let the workers finish what they hold, store it, and commit it
    // before another member takes the partitions over.
    self->Drain();
    rd_kafka_commit(rk, nullptr, 0);
    if (cooperative) {
      rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts);
      if (e != nullptr) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }

  void Drain() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return (queued_ == 0 && busy_ == 0) || stopping_.load(); });
  }

  // Waits `d` unless the subscription is closing; false when closing.
  bool Sleep(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      if (stopping_.load()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return !stopping_.load();
  }

  // Produces a dead letter, waiting until it is durable; false when closing first.
  bool DeadLetter(const Event& dead) {
    auto wait = options_.retry_backoff;
    while (true) {
      Status st = ProduceAndWait(dlq_producer_, dead, bus_options_.dead_letter_timeout);
      if (st) return true;
      spdlog::warn("kafka group {}: {}", options_.group, st.error().message());
      if (!Sleep(wait)) return false;
      wait = std::min(wait * 2, options_.max_backoff);
    }
  }

  // A partition always goes to the same worker, so its records (and thus each
  // key's) are handled one at a time, in offset order.
  void PollLoop() {
    auto last_commit = std::chrono::steady_clock::now();
    while (!stopping_.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, 50);
      if (m != nullptr) {
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            spdlog::debug("kafka group {}: {}", options_.group, rd_kafka_message_errstr(m));
          }
          rd_kafka_message_destroy(m);
        } else {
          std::unique_lock lock(mu_);
          auto& q = queues_[static_cast<size_t>(m->partition) % queues_.size()];
          // Bounded: the poll loop waits while a worker is far behind.
          space_cv_.wait(lock, [&] { return q.size() < kMaxQueued || stopping_.load(); });
          q.push_back(m);
          ++queued_;
          cv_.notify_all();
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (uncommitted_.exchange(false) && now - last_commit >= bus_options_.commit_interval) {
        rd_kafka_commit(consumer_, nullptr, 1);  // async; Close() and revocation commit synchronously
        last_commit = now;
      }
    }
  }

  // Takes a batch from the front of the worker's queue: records in poll
  // order up to the first whose key is already in the batch (or max_batch),
  // so it is a prefix of each of its partitions and a key has one record in
  // progress at a time. An offset is stored only up to the first record of
  // its partition that is not processed (a close in the middle of a retry).
  void WorkerLoop(size_t w) {
    std::vector<rd_kafka_message_t*> batch;
    std::vector<Event> events;
    std::vector<internal::BatchItem> items;
    std::unordered_set<std::string_view> keys;
    internal::BatchRun run;
    const auto sleep = [this](std::chrono::milliseconds d) { return Sleep(d); };
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_.load() || !queues_[w].empty(); });
      // Closing: take nothing new. A record left unprocessed by the last batch
      // (a retry or dead letter cut short) must not be overtaken by a later
      // one of its partition, whose stored offset would skip it.
      if (stopping_.load() || queues_[w].empty()) return;
      auto& q = queues_[w];
      batch.clear();
      keys.clear();
      while (!q.empty() && batch.size() < options_.max_batch) {
        rd_kafka_message_t* m = q.front();
        const std::string_view key =
            m->key != nullptr ? std::string_view(static_cast<const char*>(m->key), m->key_len) : std::string_view();
        if (!keys.insert(key).second) break;
        batch.push_back(m);
        q.pop_front();
      }
      queued_ -= batch.size();
      ++busy_;
      space_cv_.notify_all();
      lock.unlock();

      events.clear();
      items.clear();
      for (rd_kafka_message_t* m : batch) events.push_back(FromKafkaMessage(m));
      for (size_t i = 0; i < batch.size(); ++i) items.push_back({&events[i], batch[i]->partition, batch[i]->offset});
      run.Run(items, options_, handler_, sleep);

      // Per partition (in the batch's order): the next offset to store, up to
      // the first record that is not processed.
      struct Mark {
        rd_kafka_topic_t* topic;
        int32_t partition;
        int64_t next = -1;
        bool blocked = false;
      };
      std::vector<Mark> marks;
      for (size_t i = 0; i < batch.size(); ++i) {
        rd_kafka_message_t* m = batch[i];
        auto it = std::find_if(marks.begin(), marks.end(),
                               [&](const Mark& k) { return k.topic == m->rkt && k.partition == m->partition; });
        if (it == marks.end()) it = marks.insert(marks.end(), Mark{m->rkt, m->partition});
        if (it->blocked) continue;
        // The record is committed only once its dead letter is durable.
        const bool done = run.ok(i) || (run.dead_letter(i) && DeadLetter(*run.dead_letter(i)));
        if (!done) {
          it->blocked = true;
          continue;
        }
        it->next = m->offset + 1;
      }
      rd_kafka_topic_partition_list_t* offs = rd_kafka_topic_partition_list_new(static_cast<int>(marks.size()));
      for (const Mark& k : marks) {
        if (k.next >= 0)
          rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(k.topic), k.partition)->offset = k.next;
      }
      if (offs->cnt > 0) {
        // Fails harmlessly when a partition is no longer assigned (it is redelivered).
        rd_kafka_offsets_store(consumer_, offs);
        uncommitted_.store(true);
      }
      rd_kafka_topic_partition_list_destroy(offs);
      for (rd_kafka_message_t* m : batch) rd_kafka_message_destroy(m);
      lock.lock();
      --busy_;
      idle_cv_.notify_all();
    }
  }

  static constexpr size_t kMaxQueued = 500;

  KafkaBusOptions bus_options_;
  SubscribeOptions options_;
  BatchHandler handler_;
  rd_kafka_t* consumer_ = nullptr;
  rd_kafka_t* dlq_producer_ = nullptr;
  std::thread poller_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, space_cv_, idle_cv_;
  std::vector<std::deque<rd_kafka_message_t*>> queues_;
  size_t queued_ = 0;
  size_t busy_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> uncommitted_{false};
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<Subscription>> KafkaBus::SubscribeBatch(SubscribeOptions options, BatchHandler handler) {
  if (options.group.empty() || options.topics.empty() || !handler) {
    return KafkaErr(ErrorCode::kInvalidArgument, "subscribe needs a group, topics and a handler");
  }
  if (options.workers < 1) options.workers = 1;
  if (options.max_attempts < 1) options.max_attempts = 1;
  if (options.max_batch < 1) options.max_batch = 1;
  auto sub = std::make_unique<KafkaSubscription>(options_, std::move(options), std::move(handler));
  CNX_TRY(sub->Start());
  return std::unique_ptr<Subscription>(std::move(sub));
}

}  // namespace cnx::bus
