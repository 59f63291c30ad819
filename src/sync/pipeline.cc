#include "sync/pipeline.h"

#include <spdlog/spdlog.h>

#include "base/thread.h"
#include "bus/in_process_bus.h"
#include "bus/kafka_bus.h"
#include "graph/embedded_graph_store.h"
#include "graph/neo4j_graph_store.h"

namespace cnx::sync {

Result<std::unique_ptr<Pipeline>> Pipeline::Start(PipelineOptions options, pg::Pool& system_pool,
                                                  MetricsRegistry& metrics) {
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->options_ = std::move(options);
  const auto& o = p->options_;

  if (o.neo4j) {
    // Every schema statement before the first write transaction.
    auto neo4j = std::make_unique<graph::Neo4jGraphStore>(*o.neo4j);
    CNX_TRY(neo4j->EnsureSchema(ProjectedLabels()));
    CNX_TRY(neo4j->EnsureRelationshipIndexes(ProjectedRelationshipTypes()));
    p->store_ = std::move(neo4j);
  } else {
    p->store_ = CNX_TRY(graph::EmbeddedGraphStore::Open(o.graph_dir));
    CNX_TRY(p->store_->EnsureSchema(ProjectedLabels()));
  }

  if (o.kafka_brokers.empty()) {
    p->bus_ = std::make_unique<bus::InProcessBus>();
  } else {
    bus::KafkaBusOptions ko;
    ko.bootstrap_servers = o.kafka_brokers;
    p->bus_ = CNX_TRY(bus::KafkaBus::Create(ko));
  }

  {
    // The slot must exist before the server accepts writes.
    cdc::RelayOptions ro;
    ro.conninfo = o.replication_conninfo;
    ro.slot = o.slot;
    CNX_TRY(cdc::Relay(ro, *p->bus_).Setup());
  }
  p->projector_ = std::make_unique<GraphProjector>(*p->store_, &system_pool);
  GraphConsumerOptions co;
  co.max_batch = static_cast<size_t>(std::max(o.graph_workers, 1));
  p->consumer_ = CNX_TRY(GraphConsumer::Start(*p->bus_, *p->projector_, co));
  p->purger_ = std::make_unique<TombstonePurger>(
      *p->store_, TombstonePurgeOptions{.horizon = o.tombstone_horizon, .interval = o.tombstone_purge_interval});
  p->relay_thread_ = std::thread([raw = p.get()] { raw->RelayLoop(); });

  // Lag: WAL not yet confirmed by the relay's slot, and the age of the oldest
  // outbox row not yet relayed (rows are removed once their events are durable).
  Pipeline* raw = p.get();
  metrics.AddGaugeCallback("cnx_cdc_lag_bytes", "WAL bytes the relay's slot has not confirmed", [&system_pool, raw] {
    auto c = system_pool.Acquire();
    if (!c) return -1.0;
    auto r = (*c)->Exec(
        "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::float8 "
        "FROM pg_replication_slots WHERE slot_name = $1",
        {raw->options_.slot});
    return r && r->rows() == 1 ? r->operator[](0).Get<double>(0).value_or(-1) : -1.0;
  });
  metrics.AddGaugeCallback("cnx_cdc_lag_seconds", "Age of the oldest outbox row not yet relayed", [&system_pool] {
    auto c = system_pool.Acquire();
    if (!c) return -1.0;
    auto r = (*c)->Exec("SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM outbox");
    return r && r->rows() == 1 ? r->operator[](0).Get<double>(0).value_or(-1) : -1.0;
  });
  metrics.AddGaugeCallback("cnx_cdc_relayed_events", "Events the relay handed to the bus since start",
                           [raw] { return static_cast<double>(raw->relay_stats().events); });
  // The consumer lives as long as the pipeline (Stop() closes it, never resets it).
  metrics.AddGaugeCallback("cnx_graph_consumer_events", "Events the graph consumer handed to its batcher since start",
                           [raw] { return static_cast<double>(raw->consumer_->stats().events); });
  metrics.AddGaugeCallback("cnx_graph_consumer_batches", "Group-commit batches the graph consumer applied since start",
                           [raw] { return static_cast<double>(raw->consumer_->stats().batches); });
  metrics.AddGaugeCallback("cnx_graph_tombstones_purged", "Graph tombstones purged after the horizon since start",
                           [raw] { return static_cast<double>(raw->purger_->stats().purged); });
  if (auto* embedded = dynamic_cast<graph::EmbeddedGraphStore*>(p->store_.get())) {
    metrics.AddGaugeCallback("cnx_graph_tombstones", "Tombstones held by the embedded graph store",
                             [embedded] { return static_cast<double>(embedded->tombstone_count()); });
  }
  return p;
}

void Pipeline::RelayLoop() {
  NameThisThread("cnx-relay");
  (void)RunThisThreadInBackground();  // docs/decisions/1430-*.md
  auto backoff = std::chrono::milliseconds(500);
  for (;;) {
    cdc::RelayOptions ro;
    ro.conninfo = options_.replication_conninfo;
    ro.slot = options_.slot;
    cdc::Relay relay(ro, *bus_);
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      relay_ = &relay;
    }
    const auto started = std::chrono::steady_clock::now();
    Status st = relay.Run();
    {
      std::lock_guard lock(mu_);
      relay_ = nullptr;
      last_stats_ = relay.stats();
      if (stop_) return;
    }
    // A relay that streamed for a while before it stopped (a bus-full
    // timeout, a dropped connection) restarts quickly; only repeated quick
    // failures back off towards 30 s.
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(30)) backoff = std::chrono::milliseconds(500);
    spdlog::warn("relay stopped: {}; restarting in {} ms", st ? "no error" : st.error().ToString(), backoff.count());
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, backoff, [this] { return stop_; })) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
  }
}

cdc::RelayStats Pipeline::relay_stats() const {
  std::lock_guard lock(mu_);
  return relay_ ? relay_->stats() : last_stats_;
}

void Pipeline::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
    if (relay_) relay_->RequestStop();
  }
  cv_.notify_all();
  if (purger_) purger_->Stop();
  if (relay_thread_.joinable()) relay_thread_.join();
  // Let what was published reach the graph before closing (best effort: the
  // slot replays anything not confirmed anyway).
  if (bus_) (void)bus_->Flush(std::chrono::seconds(5));
  if (consumer_) consumer_->Close();
}

Pipeline::~Pipeline() {
  Stop();
}

}  // namespace cnx::sync
