// Pipeline: the change-capture path of `cnx serve`, assembled.
//
//   PostgreSQL outbox ──(relay: pgoutput slot)──► bus ──► GraphConsumer ──► GraphStore
//                                                            TombstonePurger ──┘ (periodic)
//
// The bus is in-process unless Kafka brokers are configured; the graph store
// is the embedded one in <data-dir>/graph unless a Neo4j server is configured.
// The relay runs on its own thread and is restarted with a backoff when its
// connection drops; the slot replays from the last confirmed position, so a
// restart (or a kill -9 of the whole process) loses nothing.
//
// Thread safety: Start/Stop from one owner thread; graph() is safe to use
// from any thread while the pipeline runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "base/metrics.h"
#include "bus/bus.h"
#include "cdc/relay.h"
#include "graph/bolt_connection.h"
#include "graph/graph_store.h"
#include "pg/pool.h"
#include "sync/graph_consumer.h"
#include "sync/graph_projector.h"
#include "sync/tombstone_purger.h"

namespace cnx::sync {

struct PipelineOptions {
  std::string replication_conninfo;  // a role with REPLICATION (the admin URL)
  std::filesystem::path graph_dir;   // embedded graph store
  std::string kafka_brokers;         // empty: in-process bus
  std::optional<graph::BoltConfig> neo4j;
  int graph_workers = 64;  // events per bus hand-over of the graph consumer (GraphConsumerOptions::max_batch)
  // Graph tombstones older than this are purged every `tombstone_purge_interval`
  // (decision 1500); 0 = never.
  std::chrono::seconds tombstone_horizon{std::chrono::hours(24)};
  std::chrono::milliseconds tombstone_purge_interval{std::chrono::minutes(1)};
  std::string slot = "cnx_relay";
};

class Pipeline {
 public:
  // `system_pool` (administrative) is used for sync_state, dead letters and lag
  // metrics; it and `metrics` must outlive the pipeline.
  static Result<std::unique_ptr<Pipeline>> Start(PipelineOptions options, pg::Pool& system_pool,
                                                 MetricsRegistry& metrics);
  ~Pipeline();
  void Stop();  // idempotent: relay, then consumers, then bus and store

  graph::GraphStore& graph() { return *store_; }
  bus::Bus& bus() { return *bus_; }  // for further consumers (the vector index)
  GraphProjector& projector() { return *projector_; }
  TombstonePurger& tombstone_purger() { return *purger_; }
  cdc::RelayStats relay_stats() const;

 private:
  Pipeline() = default;
  void RelayLoop();

  PipelineOptions options_;
  std::unique_ptr<graph::GraphStore> store_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<GraphProjector> projector_;
  std::unique_ptr<GraphConsumer> consumer_;
  std::unique_ptr<TombstonePurger> purger_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  cdc::Relay* relay_ = nullptr;  // the running relay, guarded by mu_
  cdc::RelayStats last_stats_;
  std::thread relay_thread_;
};

}  // namespace cnx::sync
