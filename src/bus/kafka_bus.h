// KafkaBus: the Bus (bus.h) on Apache Kafka (or any Kafka-API broker) through
// librdkafka.
//
// Producer: idempotent (enable.idempotence=true, acks=all), so retries keep
// per-partition order and never duplicate within a producer session; the key
// picks the partition (murmur2, like the Java client and Debezium). A batch is
// acknowledged when every one of its records has a successful delivery report;
// a failed delivery (message timeout, non-retriable broker error) fails its
// batch, and a fatal producer error (e.g. out-of-order sequence) makes the bus
// unusable: Publish() returns kUnavailable and the owner must create a new one
// and replay from its last durable position.
//
// Consumers: each subscription is one member of the Kafka consumer group
// `group` (run more processes for more members) with auto-commit off; its
// `workers` threads each take a fixed share of the assigned partitions, so the
// records of a partition (and of each key) are handled in order. A worker hands
// the handler a prefix of its queue (up to `max_batch`, ending before a key
// repeats), one call per batch.
// An offset is stored only after the handler succeeded (or the record was
// dead-lettered) and committed every `commit_interval`, on partition revocation
// (after the workers drained what they held) and on Close(). After a crash or
// rebalance uncommitted records are delivered again.
// Dead letters are produced (idempotently, waiting for the delivery report) to
// "dlq.<group>" before the offset is stored.
//
// Topics are expected to exist (created by operations; see docs/operations.md).
// Thread-safe. Subscriptions must be closed before the bus is destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bus/ack_tracker.h"
#include "bus/bus.h"

struct rd_kafka_s;

namespace cnx::bus {

struct KafkaBusOptions {
  std::string bootstrap_servers;
  std::string client_id = "cnx";
  // Extra librdkafka properties, applied after our defaults (so they win).
  std::vector<std::pair<std::string, std::string>> producer_config;
  std::vector<std::pair<std::string, std::string>> consumer_config;
  size_t max_pending_events = 100'000;  // records awaiting delivery reports
  std::chrono::milliseconds publish_timeout{30'000};
  std::chrono::milliseconds commit_interval{200};
  std::chrono::milliseconds dead_letter_timeout{30'000};
};

class KafkaBus final : public Bus {
 public:
  static Result<std::unique_ptr<KafkaBus>> Create(KafkaBusOptions options);
  ~KafkaBus() override;

  Status Publish(uint64_t sequence, std::vector<Event> events, AckCallback on_ack) override;
  Result<std::unique_ptr<Subscription>> SubscribeBatch(SubscribeOptions options, BatchHandler handler) override;
  uint64_t durable_through() const override { return acks_.durable_through(); }
  uint64_t published_through() const override { return acks_.last_sequence(); }
  Status Flush(std::chrono::milliseconds timeout) override;

  // True after a fatal producer error; the bus accepts nothing more.
  bool fatal() const { return fatal_.load(); }
  const KafkaBusOptions& options() const { return options_; }

 private:
  explicit KafkaBus(KafkaBusOptions options);
  friend struct KafkaBusCallbacks;

  KafkaBusOptions options_;
  AckTracker acks_;
  rd_kafka_s* producer_ = nullptr;
  std::thread poll_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> fatal_{false};
  std::mutex publish_mu_;  // one Publish at a time keeps records in sequence order
};

// The librdkafka properties the bus sets on its producers and consumers (for
// docs and diagnostics).
std::vector<std::pair<std::string, std::string>> KafkaProducerDefaults();
std::vector<std::pair<std::string, std::string>> KafkaConsumerDefaults(const std::string& group);

}  // namespace cnx::bus
